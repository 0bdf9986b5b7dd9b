"""Fixtures for the co-funding tests: the org tree, the Hunan 2026 plan active, a receipt range of
长沙市总工会 for this year, a clerk of 芙蓉区总工会 and a finance officer of 长沙市总工会, and
``enroll(...)``: a confirmed batch built through the real enrollment services (roster file,
validation, confirmation)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from huzhu.contributions.funding_models import Invoice, InvoicePayer
from huzhu.contributions.receipt_models import ReceiptRange
from huzhu.contributions.receipt_services import allocate_range
from huzhu.enrollment import services as enrollment_services
from huzhu.enrollment.models import Enrollment, EnrollmentBatch
from huzhu.ledger.verify import first_problem
from huzhu.members.models import Member
from huzhu.orgs.models import Union, Unit, User
from huzhu.plans.models import PlanVersion
from tests import factories
from tests.enrollment.conftest import active_plan, row, xlsx

# The day batches are confirmed and invoiced: a date in the plan year (real "today" is later).
DAY = date(2026, 3, 2)


@dataclass
class Person:
    name: str
    unit: Unit | None = None
    hardship: bool = False
    number: str = field(default_factory=lambda: factories.id_number())


@dataclass
class FundingWorld:
    tree: factories.Tree
    plan: PlanVersion
    clerk: User  # 芙蓉区总工会 clerk (grassroots_1 is below)
    finance: User  # 长沙市总工会 finance (registers payments, issues receipts)
    range_: ReceiptRange

    def enroll(
        self,
        people: Sequence[Person],
        *,
        union: Union | None = None,
        today: date = DAY,
        include_family: bool = False,
    ) -> EnrollmentBatch:
        union = union or self.tree.grassroots_1
        batch = enrollment_services.create_batch(
            acting_user=self.clerk, union=union, plan_year=2026, today=today
        )
        rows = [
            row(
                name=p.name,
                id_number=p.number,
                uscc=p.unit.uscc if p.unit else "",
                employment="合同" if p.unit else "新就业形态",
                hardship="是" if p.hardship else "",
            )
            for p in people
        ]
        enrollment_services.attach_roster(
            acting_user=self.clerk, batch=batch, file_name="花名册.xlsx", content=xlsx(rows)
        )
        enrollment_services.validate_batch(batch=batch, today=today)
        return enrollment_services.confirm_batch(
            acting_user=self.clerk, batch=batch, today=today, include_family=include_family
        )

    def people(
        self, n: int, unit: Unit | None = None, hardship: Sequence[int] = ()
    ) -> list[Person]:
        return [
            Person(name=f"职工{i:03d}", unit=unit or self.tree.unit_1, hardship=i in hardship)
            for i in range(n)
        ]


def payer(invoice: Invoice, payer_type: str, unit: Unit | None = None) -> InvoicePayer:
    return InvoicePayer.objects.get(invoice=invoice, payer_type=payer_type, unit=unit)


def owed(invoice: Invoice) -> dict[tuple[str, int | None], tuple[int, int, int]]:
    """(owed, paid, refunded) per (payer type, unit id)."""
    return {
        (p.payer_type, p.unit_id): (p.owed_fen, p.paid_fen, p.refunded_fen)
        for p in InvoicePayer.objects.filter(invoice=invoice)
    }


def enrollment_of(batch: EnrollmentBatch, name: str) -> Enrollment:
    return Enrollment.objects.get(batch=batch, member__name=name, family_member__isnull=True)


def member_named(name: str) -> Member:
    return Member.objects.get(name=name)


@pytest.fixture
def world(tree: factories.Tree) -> FundingWorld:
    return build_world(tree)


def build_world(tree: factories.Tree) -> FundingWorld:
    plan = active_plan(2026)
    clerk = factories.staff(tree.county_a1, "clerk", username="fund_clerk")
    finance = factories.staff(tree.city_a, "finance", username="fund_finance")
    today = timezone.localdate()
    range_ = allocate_range(
        acting_user=finance,
        issuer=tree.city_a,
        code=f"430301{today.year % 100:02d}",
        year=today.year,
        first_number="1",
        last_number="500",
    )
    return FundingWorld(tree, plan, clerk, finance, range_)


@pytest.fixture(autouse=True)
def _ledger_checked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that touched the database ends with the books verified (``huzhu
    verify-ledger``'s checks) — and on PostgreSQL with the deferred balance triggers fired.
    (The modules mark themselves ``django_db``, so the database is still there at this point.)"""
    yield
    if "db" not in request.fixturenames and "transactional_db" not in request.fixturenames:
        return
    if connection.needs_rollback:
        return
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    problem = first_problem()
    assert problem is None, problem.message if problem else ""


def login(user: User) -> Client:
    from tests.web.conftest import login_verified

    return login_verified(Client(), user)


def balance(code: str, party_type: str = "", party_id: object = None) -> int:
    """Debits minus credits of an account over every posted line (optionally one party's)."""
    from django.db.models import Sum

    from huzhu.ledger.models import JournalLine

    lines = JournalLine.objects.filter(account__code=code)
    if party_type:
        lines = lines.filter(party_type=party_type, party_id=str(party_id))
    sums = lines.aggregate(d=Sum("debit_fen"), c=Sum("credit_fen"))
    return (sums["d"] or 0) - (sums["c"] or 0)
