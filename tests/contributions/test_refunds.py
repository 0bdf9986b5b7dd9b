"""Withdrawal before coverage (RULES.md §2, §6, §7; S15): the person leaves the invoice, what each
payer had paid for them is refunded, the ledger records it (income reduced, receivable or bank
credited), and the payers' receipts are voided and reissued for the reduced amount."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from huzhu.contributions.funding_models import Invoice, InvoiceLine, Payment, Refund
from huzhu.contributions.funding_selectors import unsettled_withdrawals
from huzhu.contributions.funding_services import (
    SplitInput,
    create_invoice,
    create_split_agreement,
    register_payment,
    settle_withdrawals,
)
from huzhu.contributions.receipt_models import Receipt, ReceiptRange
from huzhu.core.models import AuditEvent
from huzhu.enrollment.models import Enrollment
from huzhu.enrollment.services import cancel_batch, withdraw_enrollment
from huzhu.ledger.cli import cmd_verify_ledger
from huzhu.ledger.models import JournalLine
from tests.contributions.conftest import FundingWorld, balance, enrollment_of, owed, payer

pytestmark = pytest.mark.django_db
DECEMBER = date(2025, 12, 1)  # confirmed and invoiced before the plan year: paid → covered Jan 1


@pytest.fixture
def invoice(world: FundingWorld) -> Invoice:
    create_split_agreement(
        acting_user=world.clerk,
        unit=world.tree.unit_1,
        data=SplitInput(valid_from=date(2025, 1, 1), mode="percent", individual="30", union="20"),
    )
    batch = world.enroll(world.people(3), today=DECEMBER)
    return create_invoice(acting_user=world.clerk, batch=batch, today=DECEMBER)


def pay_all(world: FundingWorld, invoice: Invoice, on: date = date(2025, 12, 10)) -> None:
    for index, target in enumerate(invoice.payers.order_by("pk")):
        register_payment(
            acting_user=world.finance,
            invoice=invoice,
            payer=target,
            amount_fen=target.outstanding_fen,
            bank_reference=f"B-{index}",
            paid_on=on,
        )


def test_refund_of_a_paid_share_before_coverage(
    world: FundingWorld,
    invoice: Invoice,
    django_capture_on_commit_callbacks: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    unit = world.tree.unit_1
    # the individual total is paid in two transfers, the others in one
    individual = payer(invoice, "individual")
    register_payment(
        acting_user=world.finance,
        invoice=invoice,
        payer=individual,
        amount_fen=5000,
        bank_reference="IND-1",
        paid_on=date(2025, 12, 5),
    )
    register_payment(
        acting_user=world.finance,
        invoice=invoice,
        payer=individual,
        amount_fen=5800,
        bank_reference="IND-2",
        paid_on=date(2025, 12, 8),
    )
    for target in invoice.payers.exclude(pk=individual.pk):
        register_payment(
            acting_user=world.finance,
            invoice=invoice,
            payer=target,
            amount_fen=target.outstanding_fen,
            bank_reference=f"B-{target.pk}",
            paid_on=date(2025, 12, 10),
        )
    leaving = enrollment_of(invoice.batch, "职工001")
    assert (leaving.status, leaving.coverage_start) == ("active", date(2026, 1, 1))
    assert balance("1001") == 36000
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_enrollment(
            acting_user=world.clerk,
            enrollment=leaving,
            reason="调离本单位",
            today=date(2025, 12, 20),
        )
    leaving.refresh_from_db()
    assert (leaving.status, leaving.refund_due) == ("refunded", False)
    line = InvoiceLine.objects.get(enrollment=leaving)
    assert line.removed_on is not None
    # each payer gets its share for that person back: 36.00 / 60.00 / 24.00
    refunds = {(r.payer.payer_type, r.amount_fen) for r in Refund.objects.select_related("payer")}
    assert refunds == {("individual", 3600), ("employer", 6000), ("union", 2400)}
    assert owed(invoice) == {
        ("individual", None): (7200, 10800, 3600),
        ("employer", unit.pk): (12000, 18000, 6000),
        ("union", None): (4800, 7200, 2400),
    }
    refund = Refund.objects.filter(payer__payer_type="individual").get()
    assert refund.requested_by_id == world.clerk.pk and refund.processed_by_id is None
    # the ledger: Dr 4001 120.00 / Cr 1001 120.00 (all of it had been paid)
    lines = sorted(
        JournalLine.objects.filter(entry=line.removal_entry).values_list(
            "account__code", "debit_fen", "credit_fen"
        )
    )
    assert lines == [("1001", 0, 12000), ("4001", 12000, 0)]
    assert refund.ledger_entry_id == line.removal_entry_id
    assert balance("1001") == 24000 and balance("1122") == 0 and balance("4001") == -24000
    # receipts: the newest payment of the individual total (58.00) is voided and reissued for
    # 22.00; the employer's 180.00 → 120.00, the union's 72.00 → 48.00
    newest = Payment.objects.get(bank_reference="IND-2")
    assert (newest.refunded_fen, newest.receipt.total_fen) == (3600, 2200)
    older = Payment.objects.get(bank_reference="IND-1")
    assert (older.refunded_fen, older.receipt.total_fen, older.receipt.status) == (
        0,
        5000,
        "issued",
    )
    voided = Receipt.objects.filter(status="voided").order_by("number")
    assert [r.total_fen for r in voided] == [5800, 18000, 7200]
    assert all("退保退费" in r.void_reason for r in voided)
    valid = Receipt.objects.filter(status="issued")
    assert sum(r.total_fen for r in valid) == 24000 == balance("1001")
    event = AuditEvent.objects.get(event="funding.withdrawal_settle")
    assert event.detail["withdrawn_by"] == world.clerk.pk
    assert event.detail["refunds"] == {
        "individual:": 3600,
        f"employer:{unit.pk}": 6000,
        "union:": 2400,
    }
    # settling again changes nothing
    assert settle_withdrawals(acting_user=world.finance, invoice=invoice) == []
    assert Refund.objects.count() == 3
    # ``huzhu verify-ledger`` finds the books sound (invoice, 5 payments, the withdrawal)
    assert cmd_verify_ledger(argparse.Namespace()) == 0
    assert "账簿核对通过" in capsys.readouterr().out


def test_withdrawal_of_an_unpaid_person_reduces_what_is_owed_then_coverage(
    world: FundingWorld, invoice: Invoice, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    unit = world.tree.unit_1
    # the workers' total is paid in full; the employer and the union have not paid yet
    register_payment(
        acting_user=world.finance,
        invoice=invoice,
        payer=payer(invoice, "individual"),
        amount_fen=10800,
        bank_reference="IND",
        paid_on=date(2025, 12, 5),
    )
    leaving = enrollment_of(invoice.batch, "职工000")
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_enrollment(
            acting_user=world.clerk, enrollment=leaving, reason="本人放弃", today=date(2025, 12, 6)
        )
    # the workers' 36.00 for that person is refunded; the others simply owe less
    assert owed(invoice) == {
        ("individual", None): (7200, 10800, 3600),
        ("employer", unit.pk): (12000, 0, 0),
        ("union", None): (4800, 0, 0),
    }
    line = InvoiceLine.objects.get(enrollment=leaving)
    lines = sorted(
        JournalLine.objects.filter(entry=line.removal_entry).values_list(
            "account__code", "debit_fen", "credit_fen", "party_type"
        )
    )
    assert lines == [
        ("1001", 0, 3600, ""),
        ("1122", 0, 2400, "union"),
        ("1122", 0, 6000, "unit"),
        ("4001", 12000, 0, ""),
    ]
    assert balance("1122") == 12000 + 4800
    # the rest pay what they owe now; the two remaining workers are covered
    for target in invoice.payers.filter(payer_type__in=["employer", "union"]):
        register_payment(
            acting_user=world.finance,
            invoice=invoice,
            payer=target,
            amount_fen=target.outstanding_fen,
            bank_reference=f"B{target.pk}",
            paid_on=date(2025, 12, 12),
        )
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert set(
        Enrollment.objects.filter(batch=invoice.batch).values_list("status", "coverage_start")
    ) == {("withdrawn", None), ("active", date(2026, 1, 1))}
    assert balance("1122") == 0 and balance("1001") == 7200 + 12000 + 4800


def test_a_withdrawal_can_complete_the_payment(
    world: FundingWorld, invoice: Invoice, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    # every payer paid two persons' worth; the third person then withdraws
    for index, target in enumerate(invoice.payers.order_by("pk")):
        register_payment(
            acting_user=world.finance,
            invoice=invoice,
            payer=target,
            amount_fen=target.owed_fen * 2 // 3,
            bank_reference=f"P{index}",
            paid_on=date(2025, 12, 9),
        )
    assert statuses_of(invoice) == {"pending"}
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_enrollment(
            acting_user=world.clerk,
            enrollment=enrollment_of(invoice.batch, "职工002"),
            reason="本人放弃",
            today=date(2025, 12, 10),
        )
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_on) == ("paid", date(2025, 12, 9))
    assert statuses_of(invoice) == {"withdrawn", "active"}
    assert not Refund.objects.exists()


def statuses_of(invoice: Invoice) -> set[str]:
    return set(Enrollment.objects.filter(batch=invoice.batch).values_list("status", flat=True))


def test_failed_automatic_settlement_is_listed_and_settled_by_finance(
    world: FundingWorld,
    invoice: Invoice,
    django_capture_on_commit_callbacks: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pay_all(world, invoice)
    ReceiptRange.objects.filter(pk=world.range_.pk).update(next_number=501)  # numbers used up
    leaving = enrollment_of(invoice.batch, "职工001")
    with django_capture_on_commit_callbacks(execute=True):
        withdraw_enrollment(
            acting_user=world.clerk, enrollment=leaving, reason="调离", today=date(2025, 12, 20)
        )
    assert "退出后的核减与退费未能完成" in caplog.text
    assert list(unsettled_withdrawals(invoice)) == [InvoiceLine.objects.get(enrollment=leaving)]
    leaving.refresh_from_db()
    assert leaving.refund_due and not Refund.objects.exists()
    from django.utils import timezone

    from huzhu.contributions.receipt_services import allocate_range

    year = timezone.localdate().year
    allocate_range(
        acting_user=world.finance,
        issuer=world.tree.city_a,
        code=f"430301{year % 100:02d}",
        year=year,
        first_number="1001",
        last_number="1100",
    )
    done = settle_withdrawals(acting_user=world.finance, invoice=invoice)
    assert len(done) == 1 and sum(r.amount_fen for r in done[0].refunds) == 12000
    assert Refund.objects.get(payer__payer_type="employer").processed_by_id == world.finance.pk
    leaving.refresh_from_db()
    assert not leaving.refund_due and not unsettled_withdrawals(invoice).exists()


def test_a_cancelled_batch_is_settled_and_its_money_refunded(
    world: FundingWorld, invoice: Invoice
) -> None:
    register_payment(
        acting_user=world.finance,
        invoice=invoice,
        payer=payer(invoice, "individual"),
        amount_fen=5000,
        bank_reference="IND",
        paid_on=date(2025, 12, 5),
    )
    cancel_batch(acting_user=world.clerk, batch=invoice.batch, reason="整批重报")
    done = settle_withdrawals(acting_user=world.finance, invoice=invoice)
    assert len(done) == 3
    invoice.refresh_from_db()
    assert invoice.status == "closed"
    assert sum(r.amount_fen for r in Refund.objects.all()) == 5000
    assert all(owed_fen == 0 for owed_fen, *_ in owed(invoice).values())
    assert balance("1001") == 0 and balance("1122") == 0 and balance("4001") == 0
    assert not Receipt.objects.filter(status="issued").exists()
    assert Payment.objects.get().receipt is None
