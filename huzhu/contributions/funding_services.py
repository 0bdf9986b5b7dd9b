"""Every write of co-funding (RULES.md §6, §7; R4, R8, R11, R15; S15, S16): split agreements,
invoices, payments, withdrawals and refunds. Keyword-only, atomic, audited in the same transaction.

Payers of an invoice (RULES.md §6 "Payers pay per batch"):
- the workers' individual total: collected by the enrolling union on its workers' behalf (the
  union passes one bank transfer and receives one e-receipt; the per-person amounts are on the
  invoice's lines). Its receivable in the ledger is the enrolling union's (sub-ledger party
  "union"), as are the union's own share and its hardship waivers;
- each employer (用人单位), its own receivable (party "unit");
- the union's own share;
- the union's hardship waivers (R4), a line of their own (paid from its hardship fund).

Ledger (RULES.md §7), always with ``organisation`` = the enrolling union:
- invoice: ``post_contribution_invoiced`` — Dr 1122 per payer / Cr 4001 contributions, Cr 4002
  waivers;
- payment: ``post_contribution_received`` — Dr 1001 / Cr 1122 of the payer;
- a person withdrawn before coverage (one entry per person): Dr 4001 (and Dr 4002 for a waiver)
  the person's contribution / Cr 1122 each payer's share not yet paid, Cr 1001 what that payer
  had already paid and gets back. Not a reversal of the invoice entry: the other persons of the
  batch stay invoiced; the withdrawal is a new business event that reduces income (and pays money
  back), so it is posted as its own balanced entry (source: the invoice line, purpose
  ``withdraw``).

Concurrency (S16): a payment, a settlement of withdrawals and the activation of coverage run under
the invoice's row lock (``_lock_invoice``: ``select_for_update``), so two finance users registering
on the same invoice at once queue there and the second sees the first's payment before it checks
what is still outstanding; the payer's amounts change with ``F()`` updates and a database check
refuses a payer paid beyond what it owes. On SQLite every write transaction is serialised anyway
(``transaction_mode=IMMEDIATE``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from huzhu.contributions import funding_split
from huzhu.contributions.funding_models import (
    Invoice,
    InvoiceLine,
    InvoicePayer,
    InvoiceStatus,
    PayerType,
    Payment,
    Refund,
    SplitAgreement,
    SplitMode,
)
from huzhu.contributions.receipt_models import PayerKind, Receipt, ReceiptStatus
from huzhu.contributions.receipt_selectors import receipt_issuer_for
from huzhu.contributions.receipt_services import issue_receipt, void_receipt
from huzhu.core.audit import Event, record_event
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.core.money import format_fen, parse_yuan
from huzhu.enrollment.models import (
    BatchStatus,
    Enrollment,
    EnrollmentBatch,
    EnrollmentStatus,
    ProductSet,
)
from huzhu.enrollment.services import (
    EVENT_WITHDRAWN,
    activate_batch_coverage,
    coverage_start_for,
    plan_version_for_union,
    year_end,
)
from huzhu.ledger.models import PartyType, SourceType
from huzhu.ledger.services import (
    BANK,
    CONTRIBUTION_INCOME,
    RECEIVABLE,
    UNION_SUBSIDY_INCOME,
    LineSpec,
    Party,
    PayerShare,
    post_contribution_invoiced,
    post_contribution_received,
    post_entry,
)
from huzhu.members.models import HardshipRecord
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import Union, UnionKind, Unit, User
from huzhu.orgs.roles import Perm
from huzhu.plans.loader import plan_for

logger = logging.getLogger(__name__)

RECEIPT_SOURCE = "contribution_payment"
#: Enrollment statuses whose share leaves the invoice (withdrawn; refunded = withdrawn after
#: payment, before coverage; lapsed = its batch was cancelled).
GONE_STATUSES = (EnrollmentStatus.WITHDRAWN, EnrollmentStatus.REFUNDED, EnrollmentStatus.LAPSED)
BANK_REFERENCE_MAX = 64
NOTE_MAX = 200


# --- access --------------------------------------------------------------------------------
def _require(acting_user: User | None, perm: Perm, union: Union) -> None:
    """A person acting needs ``perm`` and ``union`` in their subtree (else 404, S5); system
    callers (``acting_user=None``: the demo, the withdrawal receiver) are trusted."""
    if acting_user is None:
        return
    org = acting_user.organisation if acting_user.organisation_id is not None else None
    if (
        not acting_user.is_authenticated
        or not acting_user.has_perm_code(perm)
        or org is None
        or not union.path.startswith(org.path)
    ):
        raise NotPermitted("无权办理该组织的缴费业务")


def _state(message: str, field_name: str = "status") -> InvalidInput:
    return InvalidInput([FieldError(field_name, message, ErrorCode.STATE)])


# --- split agreements ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitInput:
    """A split agreement as typed: amounts in yuan ("40.00") or percentages ("33.33")."""

    valid_from: date | None
    mode: str
    individual: str = ""
    employer: str = ""
    union: str = ""
    note: str = ""


def plan_contribution_for(union: Union, day: date) -> int | None:
    """The per-person contribution (fen) of the plan version in force for ``union`` on ``day``."""
    version = plan_version_for_union(union, day.year, day)
    return plan_for(version).contribution if version is not None else None


def _parse_amount(errors: ErrorCollector, field_name: str, label: str, text: str) -> int:
    value = (text or "").strip() or "0"
    try:
        return parse_yuan(value)
    except ValueError:
        errors.add(
            field_name, f"{label}金额格式不正确：应为不带符号的数字，最多两位小数（如 40.00）"
        )
        return 0


def _parse_percent(errors: ErrorCollector, field_name: str, label: str, text: str) -> int:
    bp = funding_split.percent_to_bp((text or "").strip() or "0")
    if bp is None:
        errors.add(field_name, f"{label}比例应为0到100之间的数，最多两位小数（如 33.33）")
        return 0
    return bp


@transaction.atomic(durable=True)
def create_split_agreement(
    *,
    acting_user: User | None,
    data: SplitInput,
    unit: Unit | None = None,
    federation: Union | None = None,
) -> SplitAgreement:
    """Record a unit's split (or a federation's, for its workers without a unit), in force from
    ``data.valid_from`` until a later agreement (RULES.md §6; R8)."""
    if (unit is None) == (federation is None):
        raise ValueError("give a unit or a federation")
    union = unit.union if unit is not None else federation
    assert union is not None
    _require(acting_user, Perm.FUNDING_EDIT, union)
    errors = ErrorCollector()
    if federation is not None and federation.kind != UnionKind.FEDERATION:
        errors.add(
            "union",
            "只有工会联合会可以为无单位的新就业形态劳动者约定分担方式；单位职工请在单位下约定",
        )
    valid_from = data.valid_from
    if not isinstance(valid_from, date):
        errors.add("valid_from", "请填写生效日期", ErrorCode.REQUIRED)
    elif not 2000 <= valid_from.year <= 2099:
        errors.add("valid_from", "生效日期的年份应在2000至2099之间")
    note = (data.note or "").strip()
    if len(note) > NOTE_MAX:
        errors.add("note", f"备注不能超过{NOTE_MAX}个字")
    has_employer = unit is not None
    values: dict[str, Any] = {}
    if data.mode == SplitMode.AMOUNT:
        individual = _parse_amount(errors, "individual", "个人", data.individual)
        employer = _parse_amount(errors, "employer", "单位", data.employer) if has_employer else 0
        union_fen = _parse_amount(errors, "union", "工会", data.union)
        if not has_employer and (data.employer or "").strip() not in ("", "0", "0.00"):
            errors.add("employer", "无单位人员没有用人单位分担，单位金额应为0")
        basis = plan_contribution_for(union, valid_from) if isinstance(valid_from, date) else None
        if isinstance(valid_from, date) and basis is None:
            errors.add(
                "mode",
                f"{union.name}所在统筹地区没有{valid_from.year}年度已启用的保障方案，"
                "无法核对约定金额；请改用按比例约定，或先启用方案",
            )
        elif basis is not None and individual + employer + union_fen != basis:
            errors.add(
                "individual",
                f"个人、单位、工会金额合计 {format_fen(individual + employer + union_fen)} 元，"
                f"应等于保障方案的互助金 {format_fen(basis)} 元",
            )
        values = {
            "individual_fen": individual,
            "employer_fen": employer,
            "union_fen": union_fen,
            "basis_fen": basis or 0,
        }
    elif data.mode == SplitMode.PERCENT:
        individual_bp = _parse_percent(errors, "individual", "个人", data.individual)
        union_bp = _parse_percent(errors, "union", "工会", data.union)
        if has_employer and individual_bp + union_bp > funding_split.BASIS_POINTS:
            errors.add("union", "个人与工会比例之和不能超过100%（单位承担其余部分）")
        elif not has_employer and individual_bp + union_bp != funding_split.BASIS_POINTS:
            errors.add("union", "工会联合会没有用人单位分担：个人与工会比例之和应为100%")
        values = {"individual_bp": individual_bp, "union_bp": union_bp}
    else:
        errors.add("mode", "请选择约定方式：按金额或按比例", ErrorCode.REQUIRED)
    if isinstance(valid_from, date):
        same_day = SplitAgreement.objects.filter(valid_from=valid_from)
        same_day = (
            same_day.filter(unit=unit)
            if unit is not None
            else same_day.filter(union=federation, unit__isnull=True)
        )
        if same_day.exists():
            errors.add(
                "valid_from",
                f"{valid_from:%Y-%m-%d}起已有分担协议；如需变更，请以另一生效日期登记新的协议",
                ErrorCode.DUPLICATE,
            )
    errors.raise_if_any()
    assert isinstance(valid_from, date)
    agreement = SplitAgreement.objects.create(
        union=union,
        union_path=union.path,
        unit=unit,
        valid_from=valid_from,
        mode=data.mode,
        note=note,
        created_by=acting_user,
        **values,
    )
    record_event(
        actor=acting_user,
        event=Event.FUNDING_SPLIT_CREATED,
        obj=agreement,
        organisation_id=union.pk,
        detail={
            "unit": unit.pk if unit is not None else None,
            "valid_from": valid_from.isoformat(),
            "mode": data.mode,
            **values,
        },
    )
    return agreement


def agreements_in_force(
    union: Union, unit_ids: Iterable[int], day: date
) -> tuple[dict[int, SplitAgreement], SplitAgreement | None]:
    """The agreement in force on ``day`` per unit (two queries in all), and the enrolling union's
    own agreement for workers without a unit (a federation's)."""
    by_unit: dict[int, SplitAgreement] = {}
    ids = sorted(set(unit_ids))
    if ids:
        for agreement in SplitAgreement.objects.filter(
            unit_id__in=ids, valid_from__lte=day
        ).order_by("unit_id", "-valid_from", "-id"):
            assert agreement.unit_id is not None
            by_unit.setdefault(agreement.unit_id, agreement)
    own = (
        SplitAgreement.objects.filter(union=union, unit__isnull=True, valid_from__lte=day)
        .order_by("-valid_from", "-id")
        .first()
    )
    return by_unit, own


# --- invoices ------------------------------------------------------------------------------------
def payer_name(payer_type: str, union: Union, unit_name: str = "") -> str:
    if payer_type == PayerType.EMPLOYER:
        return unit_name
    if payer_type == PayerType.INDIVIDUAL:
        return f"{union.name}（代收职工个人缴费）"[:100]
    if payer_type == PayerType.UNION_WAIVER:
        return f"{union.name}（困难职工减免）"[:100]
    return union.name


def _party(payer: InvoicePayer, union: Union) -> Party:
    if payer.payer_type == PayerType.EMPLOYER:
        assert payer.unit_id is not None
        return Party(PartyType.UNIT, str(payer.unit_id), payer.name)
    return Party.union(union)


def _lock_invoice(invoice_id: int) -> Invoice:
    """The invoice row, locked until the transaction ends (S16): every payment, settlement and
    activation of one invoice queues here."""
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("union", "batch", "plan_version")
        .get(pk=invoice_id)
    )


@transaction.atomic(durable=True)
def create_invoice(
    *, acting_user: User | None, batch: EnrollmentBatch, today: date | None = None
) -> Invoice:
    """The invoice of a confirmed batch (``awaiting_payment``): idempotent per batch.

    Set-based (one pass over the batch's pending enrollments, lines written with
    ``bulk_create``): each person's contribution is split by the agreement in force on the
    invoice date for their unit (none: the individual pays all), a hardship member's individual
    part is reduced by the plan's waiver (hardship as of the invoice date, R4) and a family
    member's own product adds its fee to the individual. Posts ``post_contribution_invoiced``.
    """
    _require(acting_user, Perm.FUNDING_EDIT, batch.union)
    day = today or timezone.localdate()
    locked = (
        EnrollmentBatch.objects.select_for_update(of=("self",))
        .select_related("union", "plan_version")
        .get(pk=batch.pk)
    )
    existing = Invoice.objects.filter(batch=locked).first()
    if existing is not None:
        return existing
    if locked.status != BatchStatus.AWAITING_PAYMENT:
        raise _state(
            f"批次状态为“{locked.get_status_display()}”：只有确认参保后待缴费的批次才能生成缴费通知"
        )
    union = locked.union
    plan = plan_for(locked.plan_version)
    hardship_now = Exists(
        HardshipRecord.objects.filter(member_id=OuterRef("member_id"), valid_from__lte=day).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=day)
        )
    )
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in Enrollment.objects.filter(batch=locked, status=EnrollmentStatus.PENDING)
        .annotate(hardship_now=hardship_now)
        .order_by("pk")
        .values(
            "pk",
            "member_id",
            "unit_id",
            "product_set",
            "hardship_now",
            "member__name",
            "member__id_number_masked",
            "family_member__name",
            "family_member__id_number_masked",
        )
    ]
    if not rows:
        raise _state("该批次没有待缴费的参保人员")
    family_fee = plan.family_inpatient.contribution if plan.family_inpatient else None
    unit_ids = {r["unit_id"] for r in rows if r["unit_id"] is not None}
    by_unit, own = agreements_in_force(union, unit_ids, day)
    units = {u.pk: u for u in Unit.objects.filter(pk__in=unit_ids).only("pk", "name", "uscc")}
    errors = ErrorCollector()
    mismatched: set[int] = set()
    priced: list[tuple[dict[str, Any], SplitAgreement | None, funding_split.Parts]] = []
    for row in rows:
        agreement = by_unit.get(row["unit_id"]) if row["unit_id"] is not None else own
        rule = agreement.rule if agreement is not None else funding_split.DEFAULT_RULE
        person = funding_split.Person(
            key=row["pk"],
            unit_id=row["unit_id"],
            family=row["product_set"] == ProductSet.FAMILY,
            hardship=bool(row["hardship_now"]),
        )
        try:
            parts = funding_split.price_person(
                person,
                rule=rule,
                contribution_fen=plan.contribution,
                family_contribution_fen=family_fee,
                waiver_rate=plan.hardship.contribution_waiver,
            )
        except funding_split.SplitMismatch as exc:
            assert agreement is not None
            if agreement.pk not in mismatched:
                mismatched.add(agreement.pk)
                who = units[row["unit_id"]].name if row["unit_id"] is not None else union.name
                errors.add(
                    "agreement",
                    f"{who}的分担协议（{agreement.valid_from:%Y-%m-%d}起，按金额约定）{exc}"
                    f"（{locked.plan_version.code}），请先登记新的分担协议",
                )
            continue
        except ValueError as exc:
            errors.add("batch", str(exc))
            break
        priced.append((row, agreement, parts))
    errors.raise_if_any()
    totals = funding_split.payer_totals((row["unit_id"], parts) for row, _, parts in priced)
    total = sum(totals.values())
    invoice = Invoice.objects.create(
        batch=locked,
        union=union,
        union_path=union.path,
        plan_version=locked.plan_version,
        plan_year=locked.plan_year,
        issued_on=day,
        person_count=len(priced),
        total_fen=total,
        contribution_fen=plan.contribution,
        family_contribution_fen=family_fee,
        created_by=acting_user,
    )
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice,
                enrollment_id=row["pk"],
                member_id=row["member_id"],
                person_name=(row["family_member__name"] or row["member__name"])[:50],
                id_number_masked=row["family_member__id_number_masked"]
                or row["member__id_number_masked"],
                family=row["product_set"] == ProductSet.FAMILY,
                unit_id=row["unit_id"],
                hardship=bool(row["hardship_now"]) and row["product_set"] != ProductSet.FAMILY,
                agreement=agreement,
                contribution_fen=parts.total,
                individual_fen=parts.individual,
                employer_fen=parts.employer,
                union_fen=parts.union,
                waiver_fen=parts.waiver,
            )
            for row, agreement, parts in priced
        ],
        batch_size=1000,
    )
    order = {t: i for i, t in enumerate(funding_split.PAYER_TYPES)}
    payers = [
        InvoicePayer(
            invoice=invoice,
            payer_type=payer_type,
            unit_id=unit_id,
            name=payer_name(payer_type, union, units[unit_id].name if unit_id else ""),
            invoiced_fen=fen,
            owed_fen=fen,
        )
        for (payer_type, unit_id), fen in sorted(
            totals.items(),
            key=lambda kv: (order[kv[0][0]], units[kv[0][1]].name if kv[0][1] else ""),
        )
    ]
    InvoicePayer.objects.bulk_create(payers)
    shares = [
        PayerShare(
            party=_party(p, union),
            contribution_fen=0 if p.payer_type == PayerType.UNION_WAIVER else p.invoiced_fen,
            subsidy_fen=p.invoiced_fen if p.payer_type == PayerType.UNION_WAIVER else 0,
        )
        for p in payers
    ]
    entry = post_contribution_invoiced(
        acting_user=acting_user,
        organisation=union,
        date=day,
        invoice_id=f"invoice-{invoice.pk}",
        payers=shares,
        memo=(
            f"缴费通知 {invoice.number}：{union.name}{locked.plan_year}年度"
            f"{len(priced)}人应收互助金"
        )[:200],
    )
    invoice.ledger_entry = entry
    invoice.save(update_fields=["ledger_entry"])
    record_event(
        actor=acting_user,
        event=Event.FUNDING_INVOICE_CREATED,
        obj=invoice,
        organisation_id=union.pk,
        detail={
            "batch": locked.pk,
            "number": invoice.number,
            "persons": len(priced),
            "total_fen": total,
            "payers": {f"{t}:{u or ''}": fen for (t, u), fen in totals.items()},
            "entry": entry.display_number,
        },
    )
    return invoice


# --- payments ------------------------------------------------------------------------------------
def _receipt_item(payer: InvoicePayer, year: int) -> str:
    labels = {
        PayerType.INDIVIDUAL: "职工个人部分，工会代收",
        PayerType.EMPLOYER: "用人单位承担部分",
        PayerType.UNION: "工会承担部分",
        PayerType.UNION_WAIVER: "困难职工减免，工会承担",
    }
    return f"{year}年度职工互助保障互助金（{labels[PayerType(payer.payer_type)]}）"


def _receipt_payer(payer: InvoicePayer, union: Union) -> tuple[Unit | Union, str, str, str]:
    """(payer object, receipt payer kind, name, reference) of a payer's receipt: an employer is
    the unit; the individual total, the union's share and its waivers are the enrolling union's
    (it collects from its workers and pays on their behalf)."""
    if payer.payer_type == PayerType.EMPLOYER:
        assert payer.unit is not None
        return payer.unit, PayerKind.UNIT, payer.unit.name, payer.unit.uscc
    reference = union.uscc or (union.region_code if len(union.region_code) == 6 else "")
    return union, PayerKind.UNION, payer.name, reference


def _receipt_actor(acting_user: User | None, issuer: Union) -> User | None:
    """The receipt's 收款人: the registering finance user when they may issue for ``issuer``;
    otherwise the system issues on the union's behalf (the payment's audit names the person)."""
    if acting_user is None or acting_user.organisation is None:
        return None
    if acting_user.has_perm_code(Perm.RECEIPT_ISSUE) and issuer.path.startswith(
        acting_user.organisation.path
    ):
        return acting_user
    return None


def _issuer_for(union: Union, day: date) -> Union:
    issuer = receipt_issuer_for(union, day.year)
    if issuer is None:
        raise _state(
            f"{union.name}及其上级工会{day.year}年度没有可用的财政票据号段，无法开具电子票据；"
            "请先由开票单位登记财政部门分配的号段",
            "issuer",
        )
    return issuer


def _payers(invoice: Invoice) -> list[InvoicePayer]:
    return list(InvoicePayer.objects.filter(invoice=invoice).select_related("unit").order_by("pk"))


def _refresh_status(invoice: Invoice, payers: Sequence[InvoicePayer]) -> None:
    owed = sum(p.owed_fen for p in payers)
    if owed == 0:
        status = InvoiceStatus.CLOSED
    elif all(p.is_settled for p in payers):
        status = InvoiceStatus.PAID
    elif any(p.net_paid_fen > 0 for p in payers):
        status = InvoiceStatus.PARTIAL
    else:
        status = InvoiceStatus.OPEN
    if status != invoice.status:
        invoice.status = status
        invoice.save(update_fields=["status"])


def _activate_if_paid(
    acting_user: User | None, invoice: Invoice, payers: Sequence[InvoicePayer]
) -> None:
    """Every payer's share paid: coverage starts the day after the last payment (RULES.md §2)."""
    if invoice.status != InvoiceStatus.PAID:
        return
    last = (
        Payment.objects.filter(invoice=invoice, amount_fen__gt=F("refunded_fen"))
        .aggregate(last=Max("paid_on"))
        .get("last")
    )
    if last is None:
        return
    batch = EnrollmentBatch.objects.get(pk=invoice.batch_id)
    if batch.status == BatchStatus.AWAITING_PAYMENT:
        activate_batch_coverage(acting_user=acting_user, batch=batch, paid_on=last)
    if invoice.paid_on != last:
        invoice.paid_on = last
        invoice.save(update_fields=["paid_on"])


def _check_payment_input(
    errors: ErrorCollector, *, amount_fen: object, bank_reference: str, paid_on: object
) -> str:
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        errors.add("amount", "缴费金额必须大于零", ErrorCode.REQUIRED)
    reference = (bank_reference or "").strip()
    if not reference:
        errors.add("bank_reference", "请填写银行流水号（转账凭证号）", ErrorCode.REQUIRED)
    elif len(reference) > BANK_REFERENCE_MAX:
        errors.add("bank_reference", f"银行流水号不能超过{BANK_REFERENCE_MAX}个字符")
    if not isinstance(paid_on, date):
        errors.add("paid_on", "请填写到账日期", ErrorCode.REQUIRED)
    elif paid_on > timezone.localdate():
        errors.add("paid_on", "到账日期不能晚于今天")
    return reference


@transaction.atomic(durable=True)
def register_payment(
    *,
    acting_user: User | None,
    invoice: Invoice,
    payer: InvoicePayer,
    amount_fen: int,
    bank_reference: str,
    paid_on: date,
) -> Payment:
    """Register a confirmed bank payment of one payer (finance; audited with the responsible
    person, R15).

    Partial payments accumulate; paying more than the payer still owes is refused. Every payment
    gets its e-receipt (RULES.md §6: "for every confirmed payment"; issuer: the nearest union up
    the tree with a receipt range) and its ledger entry (Dr 1001 / Cr 1122). When every payer of
    the invoice has paid its share, the batch's coverage starts the day after the last payment's
    date (``activate_batch_coverage``). A retry with the same payer, bank reference, amount and
    date returns the payment already registered.
    """
    _require(acting_user, Perm.PAYMENT_REGISTER, invoice.union)
    errors = ErrorCollector()
    reference = _check_payment_input(
        errors, amount_fen=amount_fen, bank_reference=bank_reference, paid_on=paid_on
    )
    errors.raise_if_any()
    locked = _lock_invoice(invoice.pk)
    union = locked.union
    today = timezone.localdate()
    _settle_locked(acting_user, locked, None, today)
    current = (
        InvoicePayer.objects.filter(pk=payer.pk, invoice=locked).select_related("unit").first()
    )
    if current is None:
        raise InvalidInput([FieldError("payer", "该缴费方不属于这份缴费通知")])
    retry = Payment.objects.filter(payer=current, bank_reference=reference).first()
    if retry is not None:
        if retry.amount_fen == amount_fen and retry.paid_on == paid_on:
            return retry
        raise InvalidInput(
            [
                FieldError(
                    "bank_reference",
                    f"银行流水号“{reference}”已于{retry.registered_at:%Y-%m-%d}登记"
                    f"（{format_fen(retry.amount_fen)} 元），请核对后重新填写",
                    ErrorCode.DUPLICATE,
                )
            ]
        )
    batch = locked.batch
    if batch.status != BatchStatus.AWAITING_PAYMENT or locked.status in (
        InvoiceStatus.PAID,
        InvoiceStatus.CLOSED,
    ):
        errors.add(
            "status",
            f"缴费通知状态为“{locked.get_status_display()}”、参保批次状态为"
            f"“{batch.get_status_display()}”，不能再登记缴费",
            ErrorCode.STATE,
        )
    outstanding = current.outstanding_fen
    if outstanding <= 0:
        errors.add("payer", f"{current.name}的应缴金额已经缴清", ErrorCode.STATE)
    elif amount_fen > outstanding:
        errors.add(
            "amount",
            f"本次缴费 {format_fen(amount_fen)} 元超过{current.name}尚未缴纳的 "
            f"{format_fen(outstanding)} 元，不能多缴；请核对金额",
        )
    if paid_on < locked.issued_on:
        errors.add("paid_on", f"到账日期不能早于缴费通知日期 {locked.issued_on:%Y-%m-%d}")
    elif coverage_start_for(locked.plan_year, paid_on) > year_end(locked.plan_year):
        errors.add("paid_on", f"到账日期已过{locked.plan_year}年度，保障无法开始")
    errors.raise_if_any()
    issuer = _issuer_for(union, today)
    payment = Payment.objects.create(
        invoice=locked,
        payer=current,
        amount_fen=amount_fen,
        bank_reference=reference,
        paid_on=paid_on,
        registered_by=acting_user,
    )
    InvoicePayer.objects.filter(pk=current.pk).update(paid_fen=F("paid_fen") + amount_fen)
    record_event(
        actor=acting_user,
        event=Event.FUNDING_PAYMENT_REGISTERED,
        obj=payment,
        organisation_id=union.pk,
        detail={
            "invoice": locked.number,
            "payer": current.payer_type,
            "unit": current.unit_id,
            "amount_fen": amount_fen,
            "paid_on": paid_on.isoformat(),
            "outstanding_before_fen": outstanding,
        },
    )
    obj, kind, name, payer_reference = _receipt_payer(current, union)
    receipt = issue_receipt(
        acting_user=_receipt_actor(acting_user, issuer),
        issuer=issuer,
        payer_name=name,
        payer_kind=kind,
        payer_reference=payer_reference,
        items=[(_receipt_item(current, locked.plan_year), amount_fen)],
        total_fen=amount_fen,
        issued_on=today,
        source_type=RECEIPT_SOURCE,
        source_id=str(payment.pk),
        payer=obj,
    )
    entry = post_contribution_received(
        acting_user=acting_user,
        organisation=union,
        date=paid_on,
        payment_id=f"payment-{payment.pk}",
        payer=_party(current, union),
        amount_fen=amount_fen,
        memo=f"缴费通知 {locked.number}：{current.name}缴费到账（{reference}）"[:200],
    )
    payment.receipt = receipt
    payment.ledger_entry = entry
    payment.save(update_fields=["receipt", "ledger_entry"])
    payers = _payers(locked)
    _refresh_status(locked, payers)
    _activate_if_paid(acting_user, locked, payers)
    return payment


# --- withdrawals and refunds ---------------------------------------------------------------------
@dataclass(frozen=True)
class Settlement:
    """What settling one withdrawn person did."""

    line: InvoiceLine
    refunds: list[Refund]


def _withdrawn_by(enrollment_ids: list[int]) -> dict[int, int]:
    """Who withdrew each enrollment (the actor of its latest withdrawal audit event, R15)."""
    rows = AuditEvent.objects.filter(
        event=EVENT_WITHDRAWN,
        object_type="enrollment.enrollment",
        object_id__in=[str(i) for i in enrollment_ids],
        actor_id__isnull=False,
    ).values_list("object_id", "actor_id")
    found: dict[int, int] = {}
    for object_id, actor_id in rows.order_by("seq"):
        if actor_id is not None:
            found[int(object_id)] = int(actor_id)
    return found


def _reduce_receipts(
    payer: InvoicePayer, amount_fen: int, refund: Refund, union: Union, plan_year: int
) -> None:
    """Pay ``amount_fen`` back out of the payer's payments, newest first: each payment touched
    gets its receipt voided and, if money is left on it, reissued for the reduced amount."""
    remaining = amount_fen
    payments = (
        Payment.objects.filter(payer=payer, amount_fen__gt=F("refunded_fen"))
        .select_related("receipt__issuer")
        .order_by("-paid_on", "-id")
    )
    today = timezone.localdate()
    for payment in payments:
        if remaining <= 0:
            break
        take = min(remaining, payment.net_fen)
        payment.refunded_fen += take
        remaining -= take
        old: Receipt | None = payment.receipt
        if old is not None and old.status == ReceiptStatus.ISSUED:
            void_receipt(
                acting_user=None,
                receipt=old,
                reason=(
                    f"退保退费：参保人员退出参保（退费记录 #{refund.pk}），"
                    f"退还 {format_fen(take)} 元，按余额重开"
                ),
            )
        left = payment.net_fen
        if left > 0:
            issuer = old.issuer if old is not None else _issuer_for(union, today)
            obj, kind, name, reference = _receipt_payer(payer, union)
            payment.receipt = issue_receipt(
                acting_user=None,
                issuer=issuer,
                payer_name=name,
                payer_kind=kind,
                payer_reference=reference,
                items=[(_receipt_item(payer, plan_year), left)],
                total_fen=left,
                issued_on=today,
                source_type=RECEIPT_SOURCE,
                source_id=f"{payment.pk}-R{refund.pk}",
                payer=obj,
            )
        else:
            payment.receipt = None
        payment.save(update_fields=["refunded_fen", "receipt"])
    if remaining:
        raise ConflictError("退费金额超过该缴费方的已缴金额")  # the payer's amounts say otherwise


def _settle_locked(
    acting_user: User | None,
    invoice: Invoice,
    enrollment_ids: Sequence[int] | None,
    day: date,
) -> list[Settlement]:
    """Settle every withdrawn (or lapsed) person of a LOCKED invoice whose line is still on it."""
    lines_qs = InvoiceLine.objects.filter(
        invoice=invoice, removed_on__isnull=True, enrollment__status__in=GONE_STATUSES
    ).select_related("enrollment")
    if enrollment_ids is not None:
        lines_qs = lines_qs.filter(enrollment_id__in=list(enrollment_ids))
    lines = list(lines_qs.order_by("pk"))
    if not lines:
        return []
    union = invoice.union
    payers = _payers(invoice)
    by_key = {(p.payer_type, p.unit_id): p for p in payers}
    withdrawers = _withdrawn_by([line.enrollment_id for line in lines])
    users = User.objects.in_bulk(set(withdrawers.values()))
    settlements: list[Settlement] = []
    for line in lines:
        shares: list[tuple[InvoicePayer, int]] = []
        for payer_type, unit_id, fen in (
            (PayerType.INDIVIDUAL, None, line.individual_fen),
            (PayerType.EMPLOYER, line.unit_id, line.employer_fen),
            (PayerType.UNION, None, line.union_fen),
            (PayerType.UNION_WAIVER, None, line.waiver_fen),
        ):
            if fen:
                shares.append((by_key[(payer_type, unit_id)], fen))
        specs: list[LineSpec] = []
        own_share = line.contribution_fen - line.waiver_fen
        if own_share:
            specs.append(LineSpec.debit(CONTRIBUTION_INCOME, own_share))
        if line.waiver_fen:
            specs.append(LineSpec.debit(UNION_SUBSIDY_INCOME, line.waiver_fen))
        refunds_due: list[tuple[InvoicePayer, int]] = []
        for payer, fen in shares:
            new_owed = payer.owed_fen - fen
            refund = max(0, payer.net_paid_fen - new_owed)
            payer.owed_fen = new_owed
            payer.refunded_fen += refund
            if fen - refund:
                specs.append(LineSpec.credit(RECEIVABLE, fen - refund, _party(payer, union)))
            if refund:
                refunds_due.append((payer, refund))
        refunded_total = sum(fen for _, fen in refunds_due)
        if refunded_total:
            specs.append(LineSpec.credit(BANK, refunded_total))
        entry = post_entry(
            acting_user=acting_user,
            organisation=union,
            date=day,
            memo=(
                f"缴费通知 {invoice.number}：参保记录 #{line.enrollment_id} 退出参保，核减应收"
                + (f"并退费 {format_fen(refunded_total)} 元" if refunded_total else "")
            ),
            lines=specs,
            source_type=SourceType.CONTRIBUTION_INVOICE,
            source_id=f"invoice-{invoice.pk}/line-{line.pk}",
            purpose="withdraw",
        )
        for payer in {p.pk: p for p, _ in shares}.values():
            InvoicePayer.objects.filter(pk=payer.pk).update(
                owed_fen=payer.owed_fen, refunded_fen=payer.refunded_fen
            )
        line.removed_on = day
        line.removal_entry = entry
        line.save(update_fields=["removed_on", "removal_entry"])
        requested_by = users.get(withdrawers.get(line.enrollment_id, 0))
        refunds: list[Refund] = []
        for payer, fen in refunds_due:
            refund_row = Refund.objects.create(
                invoice=invoice,
                payer=payer,
                line=line,
                amount_fen=fen,
                refunded_on=day,
                ledger_entry=entry,
                requested_by=requested_by,
                processed_by=acting_user,
            )
            _reduce_receipts(payer, fen, refund_row, union, invoice.plan_year)
            refunds.append(refund_row)
        if line.enrollment.refund_due:
            Enrollment.objects.filter(pk=line.enrollment_id).update(refund_due=False)
        record_event(
            actor=acting_user,
            event=Event.FUNDING_WITHDRAWAL_SETTLED,
            obj=line,
            organisation_id=union.pk,
            detail={
                "invoice": invoice.number,
                "enrollment": line.enrollment_id,
                "withdrawn_by": requested_by.pk if requested_by is not None else None,
                "reduced_fen": line.contribution_fen,
                "refunds": {f"{p.payer_type}:{p.unit_id or ''}": fen for p, fen in refunds_due},
                "entry": entry.display_number,
            },
            actor_username="" if acting_user is not None else "系统（退保自动核减）",
        )
        settlements.append(Settlement(line=line, refunds=refunds))
    fresh = _payers(invoice)
    _refresh_status(invoice, fresh)
    _activate_if_paid(acting_user, invoice, fresh)
    return settlements


@transaction.atomic(durable=True)
def settle_withdrawals(
    *,
    acting_user: User | None,
    invoice: Invoice,
    enrollment_ids: Sequence[int] | None = None,
    today: date | None = None,
) -> list[Settlement]:
    """Take the persons withdrawn before coverage (or lapsed with a cancelled batch) off the
    invoice: each payer owes their share no more, and what a payer had already paid for them is
    refunded (Refund, ledger entry, receipts voided and reissued for the reduced amount, the
    enrollment's ``refund_due`` cleared). Idempotent: a person is settled once."""
    _require(acting_user, Perm.PAYMENT_REGISTER, invoice.union)
    locked = _lock_invoice(invoice.pk)
    return _settle_locked(acting_user, locked, enrollment_ids, today or timezone.localdate())


def on_enrollment_withdrawn(sender: Any, **kwargs: Any) -> None:
    """Receiver of ``huzhu.enrollment.services.enrollment_withdrawn`` (sent after the withdrawal
    committed). A failure (e.g. no receipt range left to reissue) is logged and leaves the person
    listed as "to settle" on the invoice page, where finance settles it again."""
    enrollment = kwargs.get("enrollment")
    if not isinstance(enrollment, Enrollment):
        return
    invoice = (
        Invoice.objects.filter(lines__enrollment_id=enrollment.pk, lines__removed_on__isnull=True)
        .select_related("union")
        .first()
    )
    if invoice is None:
        return
    try:
        settle_withdrawals(acting_user=None, invoice=invoice, enrollment_ids=[enrollment.pk])
    except (InvalidInput, ConflictError, DatabaseError) as exc:
        logger.warning(
            "缴费通知 %s：参保记录 #%s 退出后的核减与退费未能完成（%s），请在缴费通知页面重新处理",
            invoice.number,
            enrollment.pk,
            exc,
        )


@transaction.atomic
def record_invoice_export(
    *, acting_user: User, invoice: Invoice, file_format: str, rows: int
) -> None:
    """Audit a download of an invoice file (it lists persons, S8 "every export")."""
    record_event(
        actor=acting_user,
        event=Event.EXPORT,
        obj=invoice,
        organisation_id=invoice.union_id,
        detail={"what": "invoice", "number": invoice.number, "format": file_format, "rows": rows},
    )


def pending_withdrawals(invoice: Invoice) -> int:
    """Persons withdrawn (or lapsed) whose share is still on the invoice."""
    return InvoiceLine.objects.filter(
        invoice=invoice, removed_on__isnull=True, enrollment__status__in=GONE_STATUSES
    ).count()


__all__ = [
    "GONE_STATUSES",
    "Settlement",
    "SplitInput",
    "agreements_in_force",
    "create_invoice",
    "create_split_agreement",
    "on_enrollment_withdrawn",
    "pending_withdrawals",
    "plan_contribution_for",
    "record_invoice_export",
    "register_payment",
    "settle_withdrawals",
]
