"""Reads of the member portal.

A member's own pages read only rows that belong to the member authenticated by the portal session
(``member`` is never taken from the request). The staff list of correction requests is scoped to
the actor's subtree by the member's ``union_path`` (S5).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from huzhu.contributions.receipt_models import Receipt
from huzhu.contributions.receipt_selectors import receipts_for_payer
from huzhu.enrollment.models import Enrollment
from huzhu.members.models import Consent, ConsentPurpose, Member
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.selectors import scope_path
from huzhu.portal.models import CorrectionRequest, CorrectionStatus


def enrollments_of(member: Member) -> QuerySet[Enrollment]:
    """The member's enrollments (their own and their family members'), newest plan year first."""
    return (
        Enrollment.objects.filter(member=member)
        .select_related("plan_version", "unit", "union", "family_member")
        .defer("family_member__id_number_enc")
        .order_by("-plan_year", "product_set", "id")
    )


def receipts_of(member: Member) -> QuerySet[Receipt]:
    """Receipts where the member is the payer, newest first."""
    return receipts_for_payer(member)


def own_receipt(member: Member, receipt_id: int) -> Receipt | None:
    """One of the member's receipts with its signed original, or None (another payer's: None)."""
    return Receipt.objects.filter(pk=receipt_id, payer_member=member).first()


def consents_of(member: Member) -> list[Consent]:
    return list(
        member.consents.filter(purpose=ConsentPurpose.MEDICAL_DATA).order_by("-granted_at", "-pk")
    )


def corrections_of(member: Member) -> QuerySet[CorrectionRequest]:
    return CorrectionRequest.objects.filter(member=member).order_by("-id")


def pending_corrections_count(member: Member) -> int:
    return CorrectionRequest.objects.filter(member=member, status=CorrectionStatus.PENDING).count()


def member_with_plain_data(member: Member) -> Member:
    """The member row with the encrypted columns loaded (decrypted on access)."""
    return Member.objects.select_related("union", "unit").get(pk=member.pk)


# --- the data download (PIPL art. 45: portability) --------------------------------------------
def _d(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: Any) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value is not None else None


def member_data_export(member: Member) -> dict[str, Any]:
    """Everything the platform holds about the member, in their own words (plain values: it is
    their own data; family members' ID numbers stay masked, they are other people's)."""
    person = member_with_plain_data(member)
    enrollments = [
        {
            "plan_year": e.plan_year,
            "plan": e.plan_version.name,
            "product_set": e.get_product_set_display(),
            "insured_person": e.family_member.name if e.family_member else person.name,
            "status": e.get_status_display(),
            "enrollment_date": _d(e.enrollment_date),
            "coverage_start": _d(e.coverage_start),
            "coverage_end": _d(e.coverage_end),
            "union": e.union.name,
            "unit": e.unit.name if e.unit else None,
            "hardship": e.hardship,
        }
        for e in enrollments_of(member)
    ]
    receipts = [
        {
            "code": r.code,
            "number": r.number_text,
            "issued_on": _d(r.issued_on),
            "issuer": r.issuer_name,
            "payer_name": r.payer_name,
            "items": [
                {"name": str(i["name"]), "amount_fen": int(i["amount_fen"])} for i in r.items
            ],
            "total_fen": r.total_fen,
            "status": r.get_status_display(),
        }
        for r in receipts_of(member)
    ]
    return {
        "format": "huzhu-member-data/1",
        "exported_at": _dt(timezone.now()),
        "person": {
            "name": person.name,
            "id_number": str(person.id_number_enc or ""),
            "birth_date": _d(person.birth_date),
            "sex": person.get_sex_display(),
            "phone": str(person.phone_enc or ""),
            "bank_account": str(person.bank_account_enc or ""),
            "bank_name": person.bank_name,
            "union": person.union.name,
            "unit": person.unit.name if person.unit else None,
            "employment_type": person.get_employment_type_display(),
            "retirement_category": person.get_retirement_category_display(),
            "retirement_date": _d(person.retirement_date),
            "registered_at": _dt(person.created_at),
        },
        "family_members": [
            {
                "name": f.name,
                "relation": f.get_relation_display(),
                "id_number_masked": f.id_number_masked,
                "birth_date": _d(f.birth_date),
                "sex": f.get_sex_display(),
            }
            for f in member.family.defer("id_number_enc").order_by("pk")
        ],
        "hardship_records": [
            {
                "source": h.get_source_display(),
                "valid_from": _d(h.valid_from),
                "valid_to": _d(h.valid_to),
                "evidence": h.evidence,
            }
            for h in member.hardship_records.order_by("valid_from", "pk")
        ],
        "consents": [
            {
                "purpose": c.get_purpose_display(),
                "notice_version": c.notice_version,
                "channel": c.get_channel_display(),
                "granted_at": _dt(c.granted_at),
                "withdrawn_at": _dt(c.withdrawn_at),
            }
            for c in member.consents.order_by("granted_at", "pk")
        ],
        "enrollments": enrollments,
        "receipts": receipts,
        "correction_requests": [
            {
                "field": c.get_field_display(),
                "requested_value": c.shown_value,
                "reason": c.reason,
                "status": c.get_status_display(),
                "created_at": _dt(c.created_at),
                "handled_at": _dt(c.handled_at),
                "note": c.note,
            }
            for c in corrections_of(member)
        ],
    }


# --- staff -----------------------------------------------------------------------------------
def corrections_for(actor: User) -> QuerySet[CorrectionRequest]:
    """Correction requests of the members in the actor's subtree."""
    path = scope_path(actor)
    if path is None:
        return CorrectionRequest.objects.none()
    return CorrectionRequest.objects.filter(subtree_q(path, "member__union_path"))
