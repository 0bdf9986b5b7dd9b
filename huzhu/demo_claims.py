"""Claims in the demo province (``huzhu demo``): a settlement partner and claims in every state.

Runs after the funding demo (members of 芙蓉区 are then enrolled and covered), through the real
services only — the one-stop settlement service the API calls, the review workflow, manual filing
with an uploaded document, payment batches with a bank result — so every claims screen has real,
consistent data (ledger, audit and year states included):

- the partner 长沙市医疗保障事务中心 (scoped to 长沙市总工会);
- one-stop settlements: approved at once (the hospital deducted them), paying nothing (deductible),
  sent to review (large amounts), quarantined (members without consent), one cancelled;
- reviews by ``reviewer`` (长沙市): one approved, one rejected and then appealed by the county
  clerk, one above the second-approval limit approved by ``reviewer``, then ``province_admin``;
- a manual claim (out of province) filed by ``unit_clerk`` with PDF documents;
- a payment batch by ``finance``: exported, bank result recorded, claims paid; a hospital clearing
  batch left exported, waiting for the bank.

Idempotent: nothing is added once the partner has settlements.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from reportlab.pdfgen.canvas import Canvas

from huzhu.claims.models import Claim, ClaimStatus, Partner, PartnerScope, Settlement
from huzhu.claims.services import cancel_settlement, receive_settlement
from huzhu.core.context import RequestInfo, current_request
from huzhu.enrollment.models import Enrollment, EnrollmentStatus, ProductSet
from huzhu.members.models import Consent, ConsentPurpose
from huzhu.orgs.models import Union, UnionKind, User

PARTNER_NAME = "长沙市医疗保障事务中心"
CITY_REGION = "430100"
COUNTY_REGION = "430102"
LAST_DAY = date(2026, 11, 20)


@dataclass
class ClaimsDemoSummary:
    partner_id: str = ""
    key: str = ""
    settlements: int = 0
    claims: int = 0


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _body(
    certno: str, setl_id: str, base_fen: int, adm: date, *, diag: str = "K35.9"
) -> dict[str, Any]:
    """A 2304 record whose benefit base (in-scope − fund − hospital) is ``base_fen``."""
    inscp = base_fen + 2 * base_fen + 150_000
    fund = inscp - base_fen
    own = 80_000
    total = inscp + own
    return {
        "setlinfo": {
            "setl_id": setl_id,
            "mdtrt_id": f"MD{setl_id}",
            "certno": certno,
            "insutype": "310",
            "med_type": "21",
            "adm_date": adm.isoformat(),
            "dscg_date": (adm + timedelta(days=6)).isoformat(),
            "setl_time": f"{(adm + timedelta(days=6)).isoformat()} 10:30:00",
            "medfee_sumamt": _yuan(total),
            "fulamt_ownpay_amt": _yuan(own // 2),
            "overlmt_selfpay": _yuan(own // 4),
            "preselfpay_amt": _yuan(own - own // 2 - own // 4),
            "inscp_scp_amt": _yuan(inscp),
            "fund_pay_sumamt": _yuan(fund),
            "hosp_part_amt": "0.00",
            "psn_part_amt": _yuan(total - fund),
        },
        "diseinfo": [{"diag_code": diag, "diag_name": "住院诊断", "maindiag_flag": "1"}],
    }


def _pdf(title: str) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer)
    _cid_font()
    canvas.setFont("STSong-Light", 14)
    canvas.drawString(72, 760, title)
    canvas.drawString(72, 730, "演示材料（虚构数据）")
    canvas.save()
    return buffer.getvalue()


def _cid_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    try:
        pdfmetrics.getFont("STSong-Light")
    except KeyError:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))


def _covered_people(
    limit: int,
) -> tuple[list[tuple[Enrollment, str]], list[tuple[Enrollment, str]]]:
    """(consenting, not consenting) active self enrollments of 芙蓉区, with plain ID numbers."""
    county = Union.objects.filter(kind=UnionKind.COUNTY, region_code=COUNTY_REGION).first()
    if county is None:
        return [], []
    enrollments = list(
        Enrollment.objects.filter(
            union_path__startswith=county.path,
            status=EnrollmentStatus.ACTIVE,
            product_set=ProductSet.SELF,
            plan_year=2026,
        )
        .select_related("member")
        .order_by("id")[: limit * 3]
    )
    consenting = set(
        Consent.objects.filter(
            member_id__in=[e.member_id for e in enrollments],
            purpose=ConsentPurpose.MEDICAL_DATA,
            withdrawn_at__isnull=True,
        ).values_list("member_id", flat=True)
    )
    yes: list[tuple[Enrollment, str]] = []
    no: list[tuple[Enrollment, str]] = []
    for enrollment in enrollments:
        certno = str(enrollment.member.id_number_enc)
        target = yes if enrollment.member_id in consenting else no
        target.append((enrollment, certno))
    return yes[:limit], no[:3]


def _adm(enrollment: Enrollment, offset: int) -> date:
    start = enrollment.coverage_start or date(2026, 3, 1)
    day = start + timedelta(days=40 + offset * 5)
    return min(day, LAST_DAY - timedelta(days=7))


def build_demo_claims() -> ClaimsDemoSummary:
    """See the module docstring. Safe to run again."""
    from huzhu.claims.partners import create_partner

    summary = ClaimsDemoSummary()
    city = Union.objects.filter(kind=UnionKind.CITY, region_code=CITY_REGION).first()
    if city is None:
        return summary
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        partner = Partner.objects.filter(name=PARTNER_NAME, organisation=city).first()
        if partner is None:
            partner, summary.key = create_partner(
                acting_user=None,
                name=PARTNER_NAME,
                organisation=city,
                scopes=[s.value for s in PartnerScope],
            )
        summary.partner_id = partner.partner_id
        if Settlement.objects.filter(partner=partner).exists():
            summary.settlements = Settlement.objects.filter(partner=partner).count()
            summary.claims = Claim.objects.count()
            return summary
        users = {
            u.username: u
            for u in User.objects.filter(
                username__in=["reviewer", "province_admin", "county_clerk", "unit_clerk", "finance"]
            ).select_related("organisation")
        }
        _settlements(partner, users)
        summary.settlements = Settlement.objects.filter(partner=partner).count()
        summary.claims = Claim.objects.count()
    finally:
        current_request.reset(token)
    return summary


def _settlements(partner: Partner, users: dict[str, User]) -> None:
    from huzhu.claims import review

    people, without_consent = _covered_people(24)
    if len(people) < 12:
        return
    bases = [1_200_000, 300_000, 80_000, 650_000, 1_800_000, 220_000, 950_000, 430_000]
    for index, (enrollment, certno) in enumerate(people[:8]):
        receive_settlement(
            partner=partner,
            body=_body(certno, f"DEMO2026{index + 1:04d}", bases[index], _adm(enrollment, index)),
        )
    # Large amounts go to review (above the auto-approval limit of 20,000 yuan).
    review_ids = []
    for index, (enrollment, certno) in enumerate(people[8:12]):
        setl_id = f"DEMO2026R{index + 1:03d}"
        base = 4_500_000 if index == 3 else 3_200_000
        receive_settlement(
            partner=partner,
            body=_body(certno, setl_id, base, _adm(enrollment, index), diag="I21.0"),
        )
        review_ids.append(setl_id)
    # Without consent: kept, not used (S12).
    for index, (enrollment, certno) in enumerate(without_consent):
        receive_settlement(
            partner=partner,
            body=_body(certno, f"DEMO2026Q{index + 1:03d}", 700_000, _adm(enrollment, index)),
        )
    # A settlement the hospital cancelled (2305) after it was approved.
    enrollment, certno = people[12]
    receive_settlement(
        partner=partner, body=_body(certno, "DEMO2026C001", 500_000, _adm(enrollment, 2))
    )
    cancel_at = datetime.combine(_adm(enrollment, 2) + timedelta(days=8), datetime.min.time())
    from huzhu.claims.intake import parse_cancel_body

    moment, digest = parse_cancel_body({"cancel_time": cancel_at.strftime("%Y-%m-%d %H:%M:%S")})
    cancel_settlement(partner=partner, setl_id="DEMO2026C001", cancel_time=moment, body_hash=digest)

    reviewer = users.get("reviewer")
    province_admin = users.get("province_admin")
    clerk = users.get("county_clerk")
    claims = {
        c.record_key: c
        for c in Claim.objects.filter(record_key__in=review_ids).select_related("member", "union")
    }
    if reviewer is not None:
        first = claims.get(review_ids[0])
        if first is not None and first.status == ClaimStatus.IN_REVIEW:
            review.approve(acting_user=reviewer, claim=first, note="材料齐全，费用合理")
        second = claims.get(review_ids[1])
        if second is not None and second.status == ClaimStatus.IN_REVIEW:
            review.reject(
                acting_user=reviewer,
                claim=second,
                code=review.RejectionCode.DOCUMENTS_MISSING,
                note="缺少出院记录，请补充后申诉",
            )
            if clerk is not None:
                second.refresh_from_db()
                review.appeal(acting_user=clerk, claim=second, reason="已补交出院记录")
        large = claims.get(review_ids[3])
        if large is not None and large.status == ClaimStatus.IN_REVIEW:
            review.approve(acting_user=reviewer, claim=large, note="大额，报市总复核")
            large.refresh_from_db()
            if province_admin is not None and large.status == ClaimStatus.SECOND_REVIEW:
                review.second_approve(acting_user=province_admin, claim=large, note="复核同意")
    _manual_claim(people[13:], users)
    _payments(partner, users)


def _manual_claim(people: list[tuple[Enrollment, str]], users: dict[str, User]) -> None:
    from huzhu.claims.manual import DocumentUpload, ManualClaimInput, file_manual_claim

    clerk = users.get("unit_clerk")
    if clerk is None or clerk.organisation is None:
        return
    for enrollment, _certno in people:
        if not enrollment.union_path.startswith(clerk.organisation.path):
            continue
        adm = _adm(enrollment, 5)
        data = ManualClaimInput(
            product="inpatient",
            channel_reason="out_of_province",
            channel_note="在广州异地住院，未联网结算",
            med_type="21",
            adm_date=adm,
            dscg_date=adm + timedelta(days=9),
            settle_date=adm + timedelta(days=9),
            hospital_name="广州市第一人民医院",
            figures={
                "medfee_sumamt": "38000.00",
                "inscp_scp_amt": "30000.00",
                "fund_pay_sumamt": "19500.00",
                "hosp_part_amt": "0.00",
                "fulamt_ownpay_amt": "5000.00",
                "overlmt_selfpay": "2000.00",
                "preselfpay_amt": "1000.00",
                "psn_part_amt": "18500.00",
                "other_reimbursed": "1500.00",
            },
            diagnoses=("K80.2",),
        )
        documents = [
            DocumentUpload(doc_type, f"{doc_type}.pdf", _pdf(title))
            for doc_type, title in (
                ("invoice", "医疗费用发票"),
                ("settlement_sheet", "医保结算单"),
                ("discharge_record", "出院记录"),
            )
        ]
        file_manual_claim(
            acting_user=clerk, member=enrollment.member, data=data, documents=documents
        )
        return


def _payments(partner: Partner, users: dict[str, User]) -> None:
    from huzhu.claims import payments
    from huzhu.claims.models import PaymentLineResult

    finance = users.get("finance")
    if finance is None or finance.organisation is None:
        return
    union = finance.organisation
    created = payments.create_member_batch(acting_user=finance, union=union)
    batch = created.batch
    if batch is not None and batch.line_count:
        payments.export_bank_file(acting_user=finance, batch=batch, reason="演示：生成银行代发文件")
        rows = [
            payments.ResultRow(
                where=f"第 {line.line_no} 行",
                reference=payments.line_reference(batch, line),
                outcome=PaymentLineResult.SUCCEEDED,
                bank_reference=f"DEMO{line.line_no:06d}",
            )
            for line in batch.lines.order_by("line_no")
        ]
        payments.record_bank_results(acting_user=finance, batch=batch, rows=rows)
    clearing = payments.create_hospital_batch(
        acting_user=finance, union=union, hospital_code=partner.partner_id
    )
    if clearing.batch is not None and clearing.batch.line_count:
        payments.export_bank_file(
            acting_user=finance, batch=clearing.batch, reason="演示：一站式结算清算文件"
        )


def print_demo_claims(summary: ClaimsDemoSummary) -> None:
    if not summary.partner_id:
        return
    print()
    print(f"一站式结算合作方：{PARTNER_NAME}（partner_id={summary.partner_id}）")
    if summary.key:
        print(f"  接口密钥（仅此一次显示）：key={summary.key}")
    else:
        print(
            "  接口密钥只在创建时显示一次；如需调用接口，请用 sysadmin 在「结算合作方」页轮换密钥。"
        )
    print(f"  演示结算 {summary.settlements} 笔，理赔申请 {summary.claims} 件（各状态均有）。")
