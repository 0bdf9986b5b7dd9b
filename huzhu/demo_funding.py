"""Co-funding in the demo province (``huzhu demo``, INTERFACES.md §1: "enrollments with confirmed
payments and receipts … ledger entries — so every screen has something real to show").

``build_demo_funding()`` runs after ``huzhu.demo.build_demo`` (outside its transaction: every
service here is an outer, durable transaction of its own). Idempotent and deterministic — each
step looks up what exists first:

1. the Hunan 2026 plan (``huzhu/rules/plans/hunan-2026.yaml``) imported and activated if no plan
   of the province is active for the year;
2. e-receipt number ranges for 长沙市总工会 and 湖南省总工会 for the current year;
3. split agreements for the units of the enrolled 芙蓉区 grassroots unions (percentages, amounts,
   and one unit left without: its workers pay in full) and for the new-employment federation;
4. the members of the first four 芙蓉区 grassroots unions enrolled through one batch per union,
   with the real enrollment services (roster built in memory from the stored members, validated,
   confirmed — set-based, no per-row query), by the demo account ``county_clerk``;
5. each batch invoiced; the demo account ``finance`` (长沙市总工会) registers full payments for
   all but the last batch (receipts, ledger entries, coverage), and for the last only the
   employer's first instalment, so one invoice shows a partial payment.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.utils import timezone

import huzhu.rules
from huzhu.contributions.funding_models import Invoice, InvoicePayer, PayerType, SplitAgreement
from huzhu.contributions.funding_services import (
    SplitInput,
    create_invoice,
    create_split_agreement,
    register_payment,
)
from huzhu.contributions.receipt_models import ReceiptRange
from huzhu.contributions.receipt_services import allocate_range
from huzhu.core.context import RequestInfo, current_request
from huzhu.enrollment.models import BatchStatus, EnrollmentBatch
from huzhu.enrollment.roster import COLUMNS
from huzhu.enrollment.services import (
    attach_roster,
    confirm_batch,
    create_batch,
    validate_batch,
)
from huzhu.members.models import EmploymentType, Member
from huzhu.orgs.models import Union, UnionKind, Unit, User
from huzhu.plans.models import PlanStatus, PlanVersion
from huzhu.plans.services import activate_plan, import_plan

PLAN_YEAR = 2026
PLAN_FILE = Path(huzhu.rules.__file__).parent / "plans" / "hunan-2026.yaml"
PROVINCE_REGION = "430000"
CITY_REGION = "430100"
COUNTY_REGION = "430102"  # 芙蓉区
ENROLLED_UNIONS = 4
# The demo's business days of the plan year (the services take them; receipts are dated today).
CONFIRMED_ON = date(PLAN_YEAR, 2, 16)
INVOICED_ON = date(PLAN_YEAR, 2, 20)
PAYMENT_DAYS = (date(PLAN_YEAR, 2, 26), date(PLAN_YEAR, 3, 2), date(PLAN_YEAR, 3, 5))
AGREED_FROM = date(PLAN_YEAR, 1, 1)
RANGE_SIZE = 5000

_CATEGORY_TEXT = {"male": "男", "female50": "女50", "female55": "女55"}
_EMPLOYMENT_TEXT = dict(EmploymentType.choices)


@dataclass
class FundingDemoSummary:
    batches: int = 0
    enrolled: int = 0
    invoices: int = 0
    payments: int = 0


def _ensure_plan(province: Union) -> None:
    if PlanVersion.objects.filter(
        region=PROVINCE_REGION, year=PLAN_YEAR, status=PlanStatus.ACTIVE
    ).exists():
        return
    version = import_plan(
        acting_user=None, yaml_text=PLAN_FILE.read_text("utf-8"), filename=PLAN_FILE.name
    )
    if version.status != PlanStatus.ACTIVE:
        activate_plan(acting_user=None, plan_version=version)


def _ensure_ranges(unions: list[tuple[Union, str]], year: int) -> None:
    for issuer, klass in unions:
        if ReceiptRange.objects.filter(issuer=issuer, year=year).exists():
            continue
        allocate_range(
            acting_user=None,
            issuer=issuer,
            code=f"43{klass}01{year % 100:02d}",
            year=year,
            first_number="1",
            last_number=str(RANGE_SIZE),
            platform_reference=f"湘财票〔{year}〕演示号段",
            note="演示数据",
        )


def _ensure_agreements(units: list[Unit], federation: Union | None, clerk: User | None) -> None:
    """Unit 1: 30 % / 20 % (employer 50 %); 2: amounts 40 + 60 + 20; 3: 50 % / 10 %; every 4th:
    none (its workers pay in full, as the screens say)."""
    plans = [
        SplitInput(AGREED_FROM, "percent", individual="30", union="20", note="职代会决议"),
        SplitInput(AGREED_FROM, "amount", individual="40", employer="60", union="20"),
        SplitInput(AGREED_FROM, "percent", individual="50", union="10"),
        None,
    ]
    done = set(
        SplitAgreement.objects.filter(unit__in=units, valid_from=AGREED_FROM).values_list(
            "unit_id", flat=True
        )
    )
    for index, unit in enumerate(units):
        data = plans[index % len(plans)]
        if data is None or unit.pk in done:
            continue
        create_split_agreement(acting_user=clerk, unit=unit, data=data)
    if (
        federation is not None
        and not SplitAgreement.objects.filter(
            union=federation, unit__isnull=True, valid_from=AGREED_FROM
        ).exists()
    ):
        create_split_agreement(
            acting_user=None,
            federation=federation,
            data=SplitInput(AGREED_FROM, "percent", individual="60", union="40"),
        )


def _roster(union: Union) -> bytes:
    """A CSV roster of the union's stored members (the plain ID numbers are read once, here,
    to hand them to the enrollment services exactly as a clerk's file would)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS.values())
    members = (
        Member.objects.filter(union=union, is_active=True)
        .select_related("unit")
        .only(
            "name",
            "id_number_enc",
            "employment_type",
            "retirement_category",
            "unit__uscc",
        )
        .order_by("pk")
    )
    for member in members:
        values = {
            "name": member.name,
            "id_number": str(member.id_number_enc),
            "unit_uscc": member.unit.uscc if member.unit else "",
            "employment_type": _EMPLOYMENT_TEXT[member.employment_type],
            "retirement_category": _CATEGORY_TEXT.get(member.retirement_category, ""),
        }
        writer.writerow([values.get(field, "") for field in COLUMNS])
    return buffer.getvalue().encode("utf-8")


def _enroll(union: Union, plan: PlanVersion, clerk: User | None) -> EnrollmentBatch | None:
    existing = (
        EnrollmentBatch.objects.filter(union=union, plan_year=PLAN_YEAR)
        .exclude(status=BatchStatus.CANCELLED)
        .order_by("pk")
        .first()
    )
    if existing is not None:
        return (
            existing
            if existing.status in (BatchStatus.AWAITING_PAYMENT, BatchStatus.ACTIVE)
            else None
        )
    if not Member.objects.filter(union=union).exists():
        return None
    batch = create_batch(
        acting_user=clerk, union=union, plan_year=PLAN_YEAR, plan_version=plan, today=CONFIRMED_ON
    )
    attach_roster(
        acting_user=clerk, batch=batch, file_name="演示花名册.csv", content=_roster(union)
    )
    validate_batch(batch=batch, today=CONFIRMED_ON)
    return confirm_batch(
        acting_user=clerk, batch=batch, accept_invalid_rows=True, today=CONFIRMED_ON
    )


def _pay(invoice: Invoice, finance: User | None, *, partial: bool) -> int:
    """Register the demo payments of one invoice; returns how many were registered now."""
    count = 0
    payers = list(InvoicePayer.objects.filter(invoice=invoice).order_by("pk"))
    for index, payer in enumerate(payers):
        if partial and payer.payer_type != PayerType.EMPLOYER:
            continue
        amount = payer.owed_fen // 2 if partial else payer.outstanding_fen
        if amount <= 0 or payer.outstanding_fen <= 0:
            continue
        if partial and payer.net_paid_fen > 0:
            continue
        register_payment(
            acting_user=finance,
            invoice=invoice,
            payer=payer,
            amount_fen=amount,
            bank_reference=f"DEMO{invoice.pk:04d}{payer.pk:05d}",
            paid_on=PAYMENT_DAYS[index % len(PAYMENT_DAYS)],
        )
        count += 1
        if partial:
            break
    return count


def build_demo_funding() -> FundingDemoSummary:
    """Plan, receipt ranges, split agreements, enrollment batches, invoices and payments of the
    demo province (see the module docstring). Safe to run again: nothing is duplicated."""
    summary = FundingDemoSummary()
    province = Union.objects.filter(kind=UnionKind.PROVINCIAL, region_code=PROVINCE_REGION).first()
    city = Union.objects.filter(kind=UnionKind.CITY, region_code=CITY_REGION).first()
    county = Union.objects.filter(kind=UnionKind.COUNTY, region_code=COUNTY_REGION).first()
    if province is None or city is None or county is None:
        return summary  # the demo province is not there (huzhu.demo.build_demo first)
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        _ensure_plan(province)
        plan = PlanVersion.objects.get(
            region=PROVINCE_REGION, year=PLAN_YEAR, status=PlanStatus.ACTIVE
        )
        _ensure_ranges([(city, "03"), (province, "02")], timezone.localdate().year)
        users = {
            u.username: u for u in User.objects.filter(username__in=["county_clerk", "finance"])
        }
        clerk, finance = users.get("county_clerk"), users.get("finance")
        unions = list(
            Union.objects.filter(parent=county, kind=UnionKind.GRASSROOTS).order_by("pk")[
                :ENROLLED_UNIONS
            ]
        )
        units = list(Unit.objects.filter(union__in=unions).order_by("pk"))
        federation = Union.objects.filter(parent=city, kind=UnionKind.FEDERATION).first()
        _ensure_agreements(units, federation, clerk)
        invoices: list[Invoice] = []
        for union in unions:
            batch = _enroll(union, plan, clerk)
            if batch is None:
                continue
            summary.batches += 1
            summary.enrolled += batch.enrolled_count
            invoice = Invoice.objects.filter(batch=batch).first()
            if invoice is None and batch.status == BatchStatus.AWAITING_PAYMENT:
                invoice = create_invoice(acting_user=clerk, batch=batch, today=INVOICED_ON)
            if invoice is not None:
                invoices.append(invoice)
        summary.invoices = len(invoices)
        for index, invoice in enumerate(invoices):
            summary.payments += _pay(invoice, finance, partial=index == len(invoices) - 1)
    finally:
        current_request.reset(token)
    return summary
