"""Fixtures for the claims tests: the tree, the Hunan 2026 plan active, covered members with
consent, a settlement partner, and settle bodies in the national field names."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from huzhu.claims.models import Partner, PartnerScope
from huzhu.claims.pricing import clear_caches
from huzhu.enrollment.models import BatchStatus, Enrollment, EnrollmentBatch, EnrollmentStatus
from huzhu.ledger.verify import first_problem
from huzhu.members.models import HardshipRecord, HardshipSource, Member
from huzhu.members.services import grant_consent, id_number_index
from huzhu.plans.models import PlanVersion
from tests import factories
from tests.enrollment.conftest import active_plan


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def tree(db: None) -> factories.Tree:
    return factories.tree()


@pytest.fixture
def plan(db: None) -> PlanVersion:
    return active_plan(2026)


def cover(
    member: Member,
    plan: PlanVersion,
    *,
    start: date = date(2026, 1, 1),
    end: date = date(2026, 12, 31),
    hardship: bool = False,
) -> Enrollment:
    """An active 2026 share for ``member`` (as a confirmed, paid batch leaves it)."""
    batch = EnrollmentBatch.objects.create(
        union=member.union,
        union_path=member.union_path,
        plan_version=plan,
        plan_year=plan.year,
        status=BatchStatus.ACTIVE,
        enrollment_date=start,
        paid_on=start,
    )
    if hardship:
        HardshipRecord.objects.create(
            member=member, source=HardshipSource.CIVIL_AFFAIRS, valid_from=date(2026, 1, 1)
        )
    return Enrollment.objects.create(
        batch=batch,
        member=member,
        person_index=member.id_number_index,
        union=member.union,
        union_path=member.union_path,
        unit=member.unit,
        plan_version=plan,
        plan_year=plan.year,
        status=EnrollmentStatus.ACTIVE,
        hardship=hardship,
        enrollment_date=start,
        coverage_start=start,
        coverage_end=end,
    )


@dataclass
class Person:
    member: Member
    certno: str
    enrollment: Enrollment


def covered_person(
    tree: factories.Tree,
    plan: PlanVersion,
    *,
    consent: bool = True,
    hardship: bool = False,
    start: date = date(2026, 1, 1),
    name: str = "张伟",
) -> Person:
    certno = factories.id_number()
    member = factories.member(tree.grassroots_1, tree.unit_1, number=certno, name=name)
    enrollment = cover(member, plan, start=start, hardship=hardship)
    if consent:
        grant_consent(acting_user=None, member=member)
    return Person(member, certno, enrollment)


@pytest.fixture
def person(tree: factories.Tree, plan: PlanVersion) -> Person:
    return covered_person(tree, plan)


def make_partner(org: Any, *, partner_id: str = "P430100001", key: str = "00" * 32) -> Partner:
    return Partner.objects.create(
        partner_id=partner_id,
        name="长沙市医疗保障事务中心",
        organisation=org,
        organisation_path=org.path,
        key_enc=key,
        scopes=[s.value for s in PartnerScope],
    )


@pytest.fixture
def partner(tree: factories.Tree) -> Partner:
    return make_partner(tree.city_a)


def settle_body(
    certno: str,
    setl_id: str = "S0001",
    *,
    base: str = "12000.00",
    med_type: str = "21",
    adm_date: str = "2026-03-01",
    setl_time: str = "2026-03-10 10:00:00",
    diagnoses: tuple[str, ...] = ("K35.9",),
    **extra: Any,
) -> dict[str, Any]:
    """A 2304 body whose benefit base (inscp − fund − hosp) is ``base`` yuan."""
    info: dict[str, Any] = {
        "setl_id": setl_id,
        "certno": certno,
        "setl_time": setl_time,
        "med_type": med_type,
        "medfee_sumamt": "30000.00",
        "inscp_scp_amt": "25000.00",
        "fulamt_ownpay_amt": "3000.00",
        "overlmt_selfpay": "1000.00",
        "preselfpay_amt": "1000.00",
        "psn_part_amt": "12000.00",
        "adm_date": adm_date,
        "dscg_date": adm_date,
    }
    inscp = 25000_00
    base_fen = int(base.replace(".", ""))
    fund = inscp - base_fen
    info["fund_pay_sumamt"] = f"{fund // 100}.{fund % 100:02d}"
    info["hosp_part_amt"] = "0.00"
    info.update(extra)
    return {
        "setlinfo": info,
        "diseinfo": [
            {"diag_code": c, "diag_name": "诊断", "maindiag_flag": "1"} for c in diagnoses
        ],
    }


def ledger_clean() -> bool:
    return first_problem() is None


__all__ = ["id_number_index"]
