"""Helpers for the manual-claim tests: documents with real magic bytes, filings of each product,
a family member with their own share."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from huzhu.claims.manual import REQUIRED_DOCUMENTS, DocumentUpload, ManualClaimInput
from huzhu.enrollment.models import Enrollment, EnrollmentStatus, ProductSet
from huzhu.members.models import FamilyMember, Member
from huzhu.members.services import add_family_member
from huzhu.plans.models import PlanVersion
from tests import factories
from tests.claims.conftest import cover

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32

#: The sheet of worked example 1 (RULES.md §4): base = 25000 − 13000 − 0 = 12000 → 6200.00.
SHEET: dict[str, str] = {
    "medfee_sumamt": "30000.00",
    "inscp_scp_amt": "25000.00",
    "fund_pay_sumamt": "13000.00",
    "hosp_part_amt": "0.00",
    "fulamt_ownpay_amt": "3000.00",
    "overlmt_selfpay": "1000.00",
    "preselfpay_amt": "1000.00",
    "psn_part_amt": "12000.00",
}


def pdf(doc_type: str, name: str = "") -> DocumentUpload:
    return DocumentUpload(doc_type, name or f"{doc_type}.pdf", PDF + doc_type.encode())


def documents_for(product: str) -> list[DocumentUpload]:
    return [pdf(doc_type) for doc_type in REQUIRED_DOCUMENTS[product]]


def hospital(product: str = "inpatient", **changes: Any) -> ManualClaimInput:
    figures = dict(SHEET)
    figures.update(changes.pop("figures", {}))
    adm = changes.get("adm_date")
    if adm is not None:
        # Discharged and settled 8 days later unless the test says otherwise.
        if product != "special_outpatient":
            changes.setdefault("dscg_date", adm + timedelta(days=8))
        changes.setdefault("settle_date", adm + timedelta(days=8))
    data = ManualClaimInput(
        product=product,
        channel_reason="out_of_province",
        channel_note="北京协和医院住院，未能一站式结算",
        med_type="21" if product != "special_outpatient" else "14",
        adm_date=date(2026, 3, 1),
        dscg_date=date(2026, 3, 9) if product != "special_outpatient" else None,
        settle_date=date(2026, 3, 9),
        hospital_name="北京协和医院",
        figures=figures,
        diagnoses=("K35.9",),
    )
    return replace(data, **changes)


def critical(disease: int = 1, severity: str = "severe", **changes: Any) -> ManualClaimInput:
    data = ManualClaimInput(
        product="critical_illness",
        diagnosis_date=date(2026, 5, 10),
        disease=disease,
        severity=severity,
        diagnoses=("C34.9",),
    )
    return replace(data, **changes)


def birth(newborns: int = 1, **changes: Any) -> ManualClaimInput:
    data = ManualClaimInput(product="maternity", birth_date=date(2026, 6, 1), newborns=newborns)
    return replace(data, **changes)


def family_member(member: Member, *, name: str = "李芳") -> FamilyMember:
    return add_family_member(
        acting_user=None,
        member=member,
        name=name,
        id_number=factories.id_number(date(1987, 8, 9), male=False),
        relation="spouse",
    )


def cover_family(relative: FamilyMember, plan: PlanVersion) -> Enrollment:
    """An active 2026 family share for ``relative`` (in the member's paid batch, the member
    covered first when not yet)."""
    own = Enrollment.objects.filter(member=relative.member, family_member=None).first()
    if own is None:
        own = cover(relative.member, plan)
    return Enrollment.objects.create(
        batch=own.batch,
        member=relative.member,
        family_member=relative,
        product_set=ProductSet.FAMILY,
        person_index=relative.id_number_index,
        union=relative.member.union,
        union_path=relative.member.union_path,
        unit=relative.member.unit,
        plan_version=plan,
        plan_year=plan.year,
        status=EnrollmentStatus.ACTIVE,
        enrollment_date=date(2026, 1, 1),
        coverage_start=date(2026, 1, 1),
        coverage_end=date(2026, 12, 31),
    )
