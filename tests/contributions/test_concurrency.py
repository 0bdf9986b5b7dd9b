"""S16: two finance officers registering payments on the same invoice at once never overpay a
payer. Real threads with their own connections on PostgreSQL (SQLite serialises every write
transaction anyway, ``transaction_mode=IMMEDIATE``; its in-memory test database is not how the
application runs). The control removes the invoice lock: the race then reaches the database,
whose check constraint turns it into errors instead of the clean Chinese refusal."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, connection

from huzhu.contributions import funding_services
from huzhu.contributions.funding_models import Invoice, InvoicePayer, Payment
from huzhu.contributions.funding_services import create_invoice, register_payment
from huzhu.contributions.receipt_models import Receipt
from huzhu.core.audit import first_problem as audit_problem
from huzhu.core.errors import InvalidInput
from tests import factories
from tests.contributions.conftest import DAY, FundingWorld, build_world

pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="in-process threads need PostgreSQL",
    ),
    pytest.mark.django_db(transaction=True),
]
THREADS = 6
AMOUNT = 10000  # each thread pays 100.00; the workers owe 240.00 → two fit, not three


@dataclass
class Run:
    ok: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def pg(transactional_db: None) -> tuple[FundingWorld, Invoice, list[Any]]:
    world = build_world(factories.tree())
    batch = world.enroll(world.people(2))
    invoice = create_invoice(acting_user=world.clerk, batch=batch, today=DAY)
    officers = [world.finance, factories.staff(world.tree.city_a, "finance")]
    return world, invoice, officers


def _race(invoice: Invoice, officers: list[Any], start: threading.Barrier | None) -> Run:
    run = Run()
    payer = InvoicePayer.objects.get(invoice=invoice, payer_type="individual")

    def work(index: int) -> None:
        try:
            if start is not None:
                start.wait()
            payment = register_payment(
                acting_user=officers[index % len(officers)],
                invoice=invoice,
                payer=payer,
                amount_fen=AMOUNT,
                bank_reference=f"RACE-{index}",
                paid_on=date(2026, 3, 5),
            )
            with run.lock:
                run.ok.append(payment.pk)
        except InvalidInput as exc:
            with run.lock:
                run.refused.append(str(exc))
        except DatabaseError as exc:
            with run.lock:
                run.errors.append(type(exc).__name__ + ": " + str(exc).splitlines()[0])
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return run


def test_parallel_registrations_never_overpay(pg: tuple[FundingWorld, Invoice, list[Any]]) -> None:
    _world, invoice, officers = pg
    run = _race(invoice, officers, threading.Barrier(THREADS))
    assert run.errors == []
    assert len(run.ok) == 2 and len(run.refused) == THREADS - 2
    assert all("不能多缴" in text for text in run.refused)
    payer = InvoicePayer.objects.get(invoice=invoice, payer_type="individual")
    assert payer.paid_fen == 2 * AMOUNT == sum(p.amount_fen for p in Payment.objects.all())
    assert payer.paid_fen <= payer.owed_fen
    numbers = sorted(Receipt.objects.values_list("number", flat=True))
    assert numbers == [1, 2]  # one receipt per payment, gapless
    assert audit_problem() is None


def test_control_without_the_invoice_lock_the_race_reaches_the_database(
    pg: tuple[FundingWorld, Invoice, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``select_for_update`` every officer reads the payer before anyone has written: all
    pass the Python check, and only the database's check constraint stops the overpayment, as
    errors (a 500 for the user) instead of the refusal the lock gives."""
    _world, invoice, officers = pg
    aligned = threading.Barrier(THREADS)
    original: Callable[[int], Invoice] = funding_services._lock_invoice

    def unlocked(invoice_id: int) -> Invoice:
        found = Invoice.objects.select_related("union", "batch", "plan_version").get(pk=invoice_id)
        aligned.wait()  # everybody has "locked" (read) before anybody writes
        return found

    monkeypatch.setattr(funding_services, "_lock_invoice", unlocked)
    run = _race(invoice, officers, None)
    monkeypatch.setattr(funding_services, "_lock_invoice", original)
    assert run.errors, "without the lock no registration ever raced"
    assert all("invoice_payer_not_overpaid" in e for e in run.errors)
    payer = InvoicePayer.objects.get(invoice=invoice, payer_type="individual")
    assert payer.paid_fen <= payer.owed_fen  # the database's backstop held
