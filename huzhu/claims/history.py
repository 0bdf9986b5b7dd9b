"""A member's claim history in plain Chinese (issue #5 item 5: "The member's claim history shows
status, amount and why") — shared by the member portal and the staff member page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet

from huzhu.claims.models import Claim, ClaimKind, ClaimStatus, Product
from huzhu.claims.pricing import FLAG_LABELS
from huzhu.core.money import format_fen
from huzhu.members.models import Member
from huzhu.rules.reasons import Reason

#: What each status means for the member, in one sentence.
STATUS_TEXT: dict[str, str] = {
    ClaimStatus.QUARANTINED: "医保结算数据已收到，但您尚未授权使用医保数据；授权后将自动计算补助。",
    ClaimStatus.SUBMITTED: "申请已提交，等待工会审核。",
    ClaimStatus.IN_REVIEW: "工会正在审核。",
    ClaimStatus.SECOND_REVIEW: "补助金额较大，正在由市总工会复核。",
    ClaimStatus.APPROVED: "补助已核准。",
    ClaimStatus.REJECTED: "不予给付。",
    ClaimStatus.APPEALED: "您的申诉已受理，正在重新审核。",
    ClaimStatus.PAID: "补助已支付。",
    ClaimStatus.CANCELLED: "医保结算已撤销，本次补助相应撤回。",
}


@dataclass(frozen=True)
class HistoryRow:
    claim: Claim
    number: str
    product: str
    kind: str
    person: str
    adm_date: date | None
    status: str
    status_label: str
    amount: str
    why: str


def _why(claim: Claim) -> str:
    parts = [STATUS_TEXT.get(claim.status, "")]
    if claim.status == ClaimStatus.APPROVED:
        parts.append(
            "出院结算时已由医院直接减免。"
            if claim.deducted_at_discharge
            else "将转账至您登记的银行账户。"
        )
    if claim.status == ClaimStatus.REJECTED:
        if claim.rejection_note:
            parts.append(f"审核意见：{claim.rejection_note}")
        elif claim.reason and claim.reason in Reason.__members__:
            parts.append(Reason(claim.reason).text)
    if claim.status in (ClaimStatus.IN_REVIEW, ClaimStatus.SUBMITTED) and claim.flags:
        parts.append(
            "需人工审核的原因：" + "、".join(FLAG_LABELS.get(f, f) for f in claim.flags) + "。"
        )
    text = claim.explanation.get("text") if isinstance(claim.explanation, dict) else None
    if text and claim.status not in (ClaimStatus.QUARANTINED, ClaimStatus.CANCELLED):
        parts.append(str(text))
    return "".join(p for p in parts if p)


def claims_of_member(member: Member) -> QuerySet[Claim]:
    """The member's own claims and their family members' (newest first); no diagnoses."""
    return (
        Claim.objects.filter(member=member)
        .defer("diagnoses_enc")
        .select_related("family_member")
        .order_by("-id")
    )


def history(member: Member, limit: int = 200) -> list[HistoryRow]:
    rows = []
    for claim in claims_of_member(member)[:limit]:
        amount = claim.paid_fen if claim.status == ClaimStatus.PAID else claim.benefit_fen
        rows.append(
            HistoryRow(
                claim=claim,
                number=claim.number,
                product=Product(claim.product).label if claim.product else "—",
                kind=ClaimKind(claim.kind).label,
                person=claim.family_member.name if claim.family_member else member.name,
                adm_date=claim.adm_date,
                status=claim.status,
                status_label=ClaimStatus(claim.status).label,
                amount=format_fen(amount),
                why=_why(claim),
            )
        )
    return rows
