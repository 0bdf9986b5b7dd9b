"""Payments (RULES.md §2, §6, §7; R11, R15; S15): partial payments accumulate, overpayment is
refused, every payment gets its e-receipt and its ledger entry, and coverage starts the day after
the last payment once every payer has paid its share."""

from __future__ import annotations

from datetime import date

import pytest

from huzhu.contributions.funding_models import Invoice, Payment
from huzhu.contributions.funding_services import (
    SplitInput,
    create_invoice,
    create_split_agreement,
    register_payment,
)
from huzhu.contributions.receipt_models import Receipt, ReceiptRange
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.core.money import chinese_capital
from huzhu.enrollment.models import Enrollment
from huzhu.enrollment.selectors import is_covered
from huzhu.ledger.models import JournalEntry
from huzhu.orgs.access import NotPermitted
from tests import factories
from tests.contributions.conftest import DAY, FundingWorld, balance, owed, payer

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(world: FundingWorld) -> Invoice:
    """Three workers of 芙蓉某公司 (one a hardship member) on a 30/50/20 split."""
    create_split_agreement(
        acting_user=world.clerk,
        unit=world.tree.unit_1,
        data=SplitInput(valid_from=date(2026, 1, 1), mode="percent", individual="30", union="20"),
    )
    batch = world.enroll(world.people(3, hardship=[2]))
    return create_invoice(acting_user=world.clerk, batch=batch, today=DAY)


def pay(
    world: FundingWorld,
    invoice: Invoice,
    payer_type: str,
    fen: int,
    ref: str,
    on: date = date(2026, 3, 5),
    unit: object = None,
) -> Payment:
    target = payer(invoice, payer_type, unit)  # type: ignore[arg-type]
    return register_payment(
        acting_user=world.finance,
        invoice=invoice,
        payer=target,
        amount_fen=fen,
        bank_reference=ref,
        paid_on=on,
    )


def statuses(invoice: Invoice) -> set[tuple[str, date | None]]:
    return set(
        Enrollment.objects.filter(batch=invoice.batch).values_list("status", "coverage_start")
    )


def test_partial_payments_then_coverage_from_the_day_after_the_last(
    world: FundingWorld, invoice: Invoice
) -> None:
    unit = world.tree.unit_1
    assert owed(invoice) == {
        ("individual", None): (7200, 0, 0),
        ("employer", unit.pk): (18000, 0, 0),
        ("union", None): (7200, 0, 0),
        ("union_waiver", None): (3600, 0, 0),
    }
    first = pay(world, invoice, "employer", 10000, "ICBC-001", date(2026, 3, 5), unit)
    invoice.refresh_from_db()
    assert invoice.status == "partial"
    pay(world, invoice, "employer", 8000, "ICBC-002", date(2026, 3, 9), unit)
    pay(world, invoice, "individual", 7200, "ICBC-003", date(2026, 3, 6))
    pay(world, invoice, "union", 7200, "ICBC-004", date(2026, 3, 7))
    # every payer but one has paid: nobody is covered yet
    assert statuses(invoice) == {("pending", None)}
    assert not is_covered(
        Enrollment.objects.filter(batch=invoice.batch).first().person_index, date(2026, 6, 1)
    )
    last = pay(world, invoice, "union_waiver", 3600, "ICBC-005", date(2026, 3, 8))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_on) == ("paid", date(2026, 3, 9))
    # coverage from the day after the LAST payment's date (3-9, registered before 3-8's)
    assert statuses(invoice) == {("active", date(2026, 3, 10))}
    invoice.batch.refresh_from_db()
    assert (invoice.batch.status, invoice.batch.paid_on) == ("active", date(2026, 3, 9))
    assert all(v[0] == v[1] for v in owed(invoice).values())
    # one receipt per payment, with the payer, the item and the amount
    receipts = list(Receipt.objects.order_by("number"))
    assert [r.total_fen for r in receipts] == [10000, 8000, 7200, 7200, 3600]
    assert [r.number for r in receipts] == [1, 2, 3, 4, 5]  # gapless from the range
    assert receipts[0].payer_name == "芙蓉某公司" and receipts[0].payer_kind == "unit"
    assert receipts[0].payer_reference == unit.uscc
    assert receipts[0].items == [
        {"name": "2026年度职工互助保障互助金（用人单位承担部分）", "amount_fen": 10000}
    ]
    assert receipts[2].payer_name == "芙蓉区某公司工会（代收职工个人缴费）"
    assert receipts[2].payer_kind == "union" and receipts[2].payer_union_id == (
        world.tree.grassroots_1.pk
    )
    assert receipts[0].issuer_id == world.tree.city_a.pk  # the nearest union with a range
    assert receipts[0].issued_by_id == world.finance.pk  # the city's finance may issue
    first.refresh_from_db()
    assert first.receipt_id == receipts[0].pk
    assert chinese_capital(receipts[0].total_fen) == "壹佰元整"
    assert chinese_capital(receipts[2].total_fen) == "柒拾贰元整"
    assert last.receipt is not None and last.receipt.total_fen == 3600
    # the ledger: the bank holds every payment, nothing is receivable any more
    assert balance("1001") == 36000
    assert balance("1122") == 0
    assert balance("1122", "unit", unit.pk) == 0
    assert balance("4001") == -32400 and balance("4002") == -3600
    events = AuditEvent.objects.filter(event="funding.payment_register")
    assert events.count() == 5 and {e.actor_id for e in events} == {world.finance.pk}
    assert AuditEvent.objects.filter(event="enrollment.batch_activate").count() == 1


def test_coverage_not_before_january_first(world: FundingWorld) -> None:
    batch = world.enroll(world.people(1), today=date(2025, 12, 1))
    invoice = create_invoice(acting_user=world.clerk, batch=batch, today=date(2025, 12, 1))
    pay(world, invoice, "individual", 12000, "B-1", date(2025, 12, 10))
    assert statuses(invoice) == {("active", date(2026, 1, 1))}


def test_overpayment_is_refused_and_changes_nothing(world: FundingWorld, invoice: Invoice) -> None:
    unit = world.tree.unit_1
    pay(world, invoice, "employer", 10000, "B-1", unit=unit)
    before = (
        owed(invoice),
        Payment.objects.count(),
        Receipt.objects.count(),
        JournalEntry.objects.count(),
        AuditEvent.objects.count(),
    )
    with pytest.raises(InvalidInput) as caught:
        pay(world, invoice, "employer", 8001, "B-2", unit=unit)
    assert caught.value.errors[0].field == "amount"
    assert caught.value.errors[0].message == (
        "本次缴费 80.01 元超过芙蓉某公司尚未缴纳的 80.00 元，不能多缴；请核对金额"
    )
    after = (
        owed(invoice),
        Payment.objects.count(),
        Receipt.objects.count(),
        JournalEntry.objects.count(),
        AuditEvent.objects.count(),
    )
    assert after == before
    pay(world, invoice, "employer", 8000, "B-2", unit=unit)
    with pytest.raises(InvalidInput, match="芙蓉某公司的应缴金额已经缴清"):
        pay(world, invoice, "employer", 1, "B-3", unit=unit)


def test_payment_input_errors_all_at_once(world: FundingWorld, invoice: Invoice) -> None:
    target = payer(invoice, "individual")
    with pytest.raises(InvalidInput) as caught:
        register_payment(
            acting_user=world.finance,
            invoice=invoice,
            payer=target,
            amount_fen=0,
            bank_reference=" ",
            paid_on=date(2099, 1, 1),
        )
    assert caught.value.by_field() == {
        "amount": ["缴费金额必须大于零"],
        "bank_reference": ["请填写银行流水号（转账凭证号）"],
        "paid_on": ["到账日期不能晚于今天"],
    }
    with pytest.raises(InvalidInput, match="到账日期不能早于缴费通知日期 2026-03-02"):
        register_payment(
            acting_user=world.finance,
            invoice=invoice,
            payer=target,
            amount_fen=1,
            bank_reference="X",
            paid_on=date(2026, 3, 1),
        )
    assert not Payment.objects.exists()


def test_a_retry_returns_the_payment_and_a_reused_reference_is_refused(
    world: FundingWorld, invoice: Invoice
) -> None:
    first = pay(world, invoice, "individual", 3000, "SAME")
    again = pay(world, invoice, "individual", 3000, "SAME")
    assert again.pk == first.pk and Payment.objects.count() == 1 and Receipt.objects.count() == 1
    with pytest.raises(InvalidInput, match="银行流水号“SAME”已于"):
        pay(world, invoice, "individual", 1000, "SAME")


def test_only_finance_in_scope_registers(world: FundingWorld, invoice: Invoice) -> None:
    target = payer(invoice, "individual")
    for user in (
        world.clerk,
        factories.staff(world.tree.city_b, "finance"),
        factories.staff(world.tree.county_a1, "auditor"),
    ):
        with pytest.raises(NotPermitted):
            register_payment(
                acting_user=user,
                invoice=invoice,
                payer=target,
                amount_fen=100,
                bank_reference="X",
                paid_on=DAY,
            )
    # a county's finance officer registers; the city issues the receipt (on the system's name:
    # the county may not issue in the city's range), the audit names the county officer
    county = factories.staff(world.tree.county_a1, "finance")
    payment = register_payment(
        acting_user=county,
        invoice=invoice,
        payer=target,
        amount_fen=100,
        bank_reference="X",
        paid_on=DAY,
    )
    assert payment.registered_by_id == county.pk
    assert payment.receipt is not None and payment.receipt.issued_by_id is None
    assert AuditEvent.objects.get(event="funding.payment_register").actor_id == county.pk


def test_no_receipt_range_no_payment(world: FundingWorld, invoice: Invoice) -> None:
    ReceiptRange.objects.filter(pk=world.range_.pk).update(next_number=501)  # used up
    with pytest.raises(InvalidInput, match="没有可用的财政票据号段"):
        pay(world, invoice, "individual", 100, "X")
    assert not Payment.objects.exists() and owed(invoice)[("individual", None)] == (7200, 0, 0)


def test_a_cancelled_batch_takes_no_payment(world: FundingWorld, invoice: Invoice) -> None:
    from huzhu.enrollment.services import cancel_batch

    cancel_batch(acting_user=world.clerk, batch=invoice.batch, reason="整批重报")
    with pytest.raises(InvalidInput, match="不能再登记缴费"):
        pay(world, invoice, "individual", 100, "X")
