"""The member portal in the demo province (``huzhu demo``): one 芙蓉区 member with receipts of
their own and an activated portal account, so a tester can log in at ``/portal/login/``.

``huzhu demo`` runs it after ``huzhu.demo.build_demo`` (and so after the demo's funding; outside
their transactions: the services here are durable transactions of their own). It is kept out of
``build_demo`` itself because the funding demo's own checks count one receipt per registered
payment. Deterministic and idempotent:

1. the demo member is the first member (by id) of 芙蓉区 with an active enrollment of their own —
   or the one who already has a portal account from an earlier run;
2. the demo's funding issues receipts to units and unions only (the union collects the workers'
   individual shares), so no member pays in person there. The member is therefore given one payment
   of their own, through the real services: the family-member inpatient contribution of the active
   plan (a product each worker buys for their family personally), invoiced and received in the
   ledger (Dr/Cr 1122 with the member as the party) and receipted by 长沙市总工会's finance with a
   receipt whose payer is the member — skipped when the member already has a receipt;
3. the county clerk issues an activation code and the member activates it with the documented demo
   password ``Huzhu-Member-2026`` (skipped when the account is active already).

All personal data is synthetic (the demo's ID numbers belong to nobody); printing the demo member's
ID number is what lets a tester log in.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from huzhu.contributions.receipt_models import PayerKind
from huzhu.contributions.receipt_selectors import receipt_issuer_for, receipts_for_payer
from huzhu.contributions.receipt_services import issue_receipt
from huzhu.core.context import RequestInfo, current_request
from huzhu.enrollment.models import Enrollment, EnrollmentStatus, ProductSet
from huzhu.ledger.services import (
    Party,
    PayerShare,
    post_contribution_invoiced,
    post_contribution_received,
)
from huzhu.members.models import Member
from huzhu.orgs.models import Union, UnionKind, User, subtree_q
from huzhu.plans.loader import plan_for
from huzhu.portal.models import MemberAccount
from huzhu.portal.services import activate_account, issue_activation_code

DEMO_MEMBER_PASSWORD = "Huzhu-Member-2026"  # noqa: S105 - the documented demo password
PORTAL_LOGIN_URL = "http://127.0.0.1:8000/portal/login/"
COUNTY_REGION = "430102"  # 芙蓉区
RECEIPT_SOURCE = "demo.portal"


def _county() -> Union | None:
    return Union.objects.filter(kind=UnionKind.COUNTY, region_code=COUNTY_REGION).first()


def demo_portal_member() -> Member | None:
    """The demo's portal member: the one with an account, else the first enrolled 芙蓉区 member."""
    county = _county()
    if county is None:
        return None
    in_county = Member.objects.filter(subtree_q(county.path, "union_path"), is_active=True)
    with_account = in_county.filter(portal_account__isnull=False).order_by("pk").first()
    if with_account is not None:
        return with_account
    enrolled = Enrollment.objects.filter(
        status=EnrollmentStatus.ACTIVE, product_set=ProductSet.SELF
    ).values("member_id")
    return in_county.filter(pk__in=enrolled).order_by("pk").first()


def _may_issue(user: User | None, issuer: Union) -> bool:
    org = user.organisation if user is not None else None
    return org is not None and issuer.path.startswith(org.path)


def _ensure_receipt(member: Member, finance: User | None) -> None:
    if receipts_for_payer(member).exists():
        return
    enrollment = (
        Enrollment.objects.filter(member=member, status=EnrollmentStatus.ACTIVE)
        .select_related("plan_version")
        .order_by("-plan_year")
        .first()
    )
    if enrollment is None:
        return
    product = plan_for(enrollment.plan_version).family_inpatient
    if product is None or not product.contribution:
        return
    today = timezone.localdate()
    issuer = receipt_issuer_for(member.union, today.year)
    if issuer is None:
        return
    amount = product.contribution
    source_id = f"member-{member.pk}-{enrollment.plan_year}"
    party = Party.member(member)
    with transaction.atomic():
        post_contribution_invoiced(
            acting_user=finance,
            organisation=member.union,
            date=today,
            invoice_id=f"{RECEIPT_SOURCE}-{source_id}",
            payers=[PayerShare(party=party, contribution_fen=amount)],
            memo=f"{member.name}个人缴纳家庭成员住院互助金（演示）",
        )
        post_contribution_received(
            acting_user=finance,
            organisation=member.union,
            date=today,
            payment_id=f"{RECEIPT_SOURCE}-{source_id}",
            payer=party,
            amount_fen=amount,
            memo=f"{member.name}个人缴纳家庭成员住院互助金到账（演示）",
        )
        issue_receipt(
            acting_user=finance if _may_issue(finance, issuer) else None,
            issuer=issuer,
            payer_name=member.name,
            payer_kind=PayerKind.INDIVIDUAL,
            payer_reference=member.id_number_masked,
            items=[(f"{enrollment.plan_year}年度家庭成员住院互助金（职工个人缴纳）", amount)],
            total_fen=amount,
            issued_on=today,
            source_type=RECEIPT_SOURCE,
            source_id=source_id,
            payer=member,
        )


def build_demo_portal() -> Member | None:
    """See the module docstring. Returns the demo portal member (None without the demo data)."""
    member = demo_portal_member()
    if member is None:
        return None
    users = {u.username: u for u in User.objects.filter(username__in=["county_clerk", "finance"])}
    clerk, finance = users.get("county_clerk"), users.get("finance")
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        _ensure_receipt(member, finance)
        account = MemberAccount.objects.filter(member=member).first()
        if (account is None or not account.is_activated) and clerk is not None:
            issued = issue_activation_code(acting_user=clerk, member=member)
            id_number = str(Member.objects.only("id_number_enc").get(pk=member.pk).id_number_enc)
            activate_account(id_number=id_number, code=issued.code, password=DEMO_MEMBER_PASSWORD)
    finally:
        current_request.reset(token)
    return member


def print_demo_portal() -> None:
    """The demo portal login (the demo may print its synthetic ID number; a tester needs it)."""
    member = demo_portal_member()
    if member is None or not MemberAccount.objects.filter(member=member).exists():
        return
    plain = str(Member.objects.only("id_number_enc").get(pk=member.pk).id_number_enc)
    print(
        f"会员服务（门户）演示账号：{member.name}，身份证号码 {member.id_number_masked}"
        f"（完整号码 {plain}，仅演示数据），密码 {DEMO_MEMBER_PASSWORD}"
    )
    print(f"  在 {PORTAL_LOGIN_URL} 用完整身份证号码和上述密码登录，可查看保障、下载电子票据。")
