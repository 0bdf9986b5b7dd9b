"""Entry numbers under concurrency (S16): no gaps, no duplicates — and a control showing that
without the counter's row lock duplicates do happen.

PostgreSQL only: SQLite serializes writers (``transaction_mode=IMMEDIATE``), so there is no
interleaving to test. The threads need committed data, which a test inside pytest-django's
rolled-back transaction cannot give them, and a ``transaction=True`` test would flush every table
(the chart of accounts seeded by migration with it, and the audit table refuses TRUNCATE). So
these tests commit their own small province and remove exactly what they created afterwards,
with the append-only triggers suspended for that cleanup only (``session_replication_role``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.db import connection, transaction

from huzhu.core.models import AuditChain, AuditEvent
from huzhu.ledger import services
from huzhu.ledger.models import AccountBalance, EntrySequence, Fund, JournalEntry
from huzhu.ledger.services import LineSpec
from huzhu.ledger.verify import first_problem
from huzhu.orgs.models import Union
from tests import factories
from tests.ledger.conftest import DAY

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serializes writers (IMMEDIATE transactions): nothing interleaves",
)

THREADS = 8
POSTINGS = 25


@dataclass
class Committed:
    province: Union
    fund: Fund


@pytest.fixture
def committed(django_db_setup: None, django_db_blocker: object) -> Iterator[Committed]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        heads = list(AuditChain.objects.values_list("id", "last_seq", "last_hash"))
        last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        province = factories.union(None, "并发测试省总工会", "provincial", "460000")
        fund = services.fund_for(province)
        try:
            yield Committed(province, fund)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")
                try:
                    for sql in (
                        "DELETE FROM ledger_journalline WHERE entry_id IN"
                        " (SELECT id FROM ledger_journalentry WHERE fund_id = %(fund)s)",
                        "DELETE FROM ledger_journalentry WHERE fund_id = %(fund)s",
                        "DELETE FROM ledger_entrysequence WHERE fund_id = %(fund)s",
                        "DELETE FROM ledger_accountbalance WHERE fund_id = %(fund)s",
                        "DELETE FROM ledger_closedperiod WHERE fund_id = %(fund)s",
                        "DELETE FROM ledger_fund WHERE id = %(fund)s",
                        "DELETE FROM orgs_union WHERE id = %(org)s",
                        "DELETE FROM core_auditevent WHERE id > %(event)s",
                    ):
                        cursor.execute(
                            sql, {"fund": fund.pk, "org": province.pk, "event": last_event}
                        )
                    # Every audit chain head back to where it was (the postings used several).
                    cursor.execute(
                        "DELETE FROM core_auditchain WHERE NOT (id = ANY(%s))",
                        [[h[0] for h in heads]],
                    )
                    for chain, last_seq, last_hash in heads:
                        cursor.execute(
                            "UPDATE core_auditchain SET last_seq = %s, last_hash = %s"
                            " WHERE id = %s",
                            [last_seq, last_hash, chain],
                        )
                finally:
                    cursor.execute("SET session_replication_role = DEFAULT")
            connection.close()


def _run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            target(index)
        except BaseException as exc:  # collected and asserted by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def test_parallel_postings_are_numbered_without_gaps_or_duplicates(committed: Committed) -> None:
    def post(index: int) -> None:
        for i in range(POSTINGS):
            services.post_entry(
                acting_user=None,
                organisation=committed.province,
                date=DAY,
                memo=f"并发记账 {index}-{i}",
                lines=[LineSpec.debit("1001", 100), LineSpec.credit("4001", 100)],
                source_type="contribution_payment",
                source_id=f"concurrency-{index}-{i}",
            )

    assert _run_threads(THREADS, post) == []
    numbers = sorted(
        JournalEntry.objects.filter(fund=committed.fund, year=2025).values_list("number", flat=True)
    )
    assert numbers == list(range(1, THREADS * POSTINGS + 1))
    assert EntrySequence.objects.get(fund=committed.fund, year=2025).last_number == 200
    bank = AccountBalance.objects.get(fund=committed.fund, account__code="1001")
    assert bank.balance_fen == THREADS * POSTINGS * 100
    assert first_problem() is None


def test_parallel_retries_of_one_posting_post_once(committed: Committed) -> None:
    """S16 "parallel identical submissions create one": the idempotency key under concurrency."""
    entries: list[int] = []

    def post(index: int) -> None:
        entry = services.post_entry(
            acting_user=None,
            organisation=committed.province,
            date=DAY,
            memo="同一笔到账",
            lines=[LineSpec.debit("1001", 500), LineSpec.credit("4001", 500)],
            source_type="contribution_payment",
            source_id="same-payment",
        )
        entries.append(entry.pk)

    assert _run_threads(THREADS, post) == []
    assert len(set(entries)) == 1
    assert JournalEntry.objects.filter(fund=committed.fund).count() == 1
    assert AccountBalance.objects.get(fund=committed.fund, account__code="1001").balance_fen == 500


def _allocate_concurrently(
    committed: Committed, allocate: Callable[[Fund, int, threading.Barrier], int]
) -> list[int]:
    EntrySequence.objects.create(fund=committed.fund, year=2030)
    barrier = threading.Barrier(4, timeout=30)
    numbers: list[int] = []

    def run(index: int) -> None:
        with transaction.atomic():
            numbers.append(allocate(committed.fund, 2030, barrier))

    assert _run_threads(4, run) == []
    return sorted(numbers)


def test_locked_counter_hands_out_distinct_numbers(committed: Committed) -> None:
    """The counter as the service uses it: all four transactions start together."""

    def locked(fund: Fund, year: int, barrier: threading.Barrier) -> int:
        barrier.wait()
        return services.next_number(fund, year)

    assert _allocate_concurrently(committed, locked) == [1, 2, 3, 4]


def test_control_without_the_lock_numbers_collide(committed: Committed) -> None:
    """CONTROL TEST — the lock removed on purpose; this test passes only if numbering FAILS.

    The same counter read without ``select_for_update`` (read, then write back + 1): the four
    transactions all read before any writes (the barrier), so they hand out the same number.
    This is what the row lock in ``services.next_number`` prevents (see the test above)."""

    def unlocked(fund: Fund, year: int, barrier: threading.Barrier) -> int:
        sequence = EntrySequence.objects.get(fund=fund, year=year)  # no lock
        barrier.wait()
        EntrySequence.objects.filter(pk=sequence.pk).update(last_number=sequence.last_number + 1)
        return sequence.last_number + 1

    numbers = _allocate_concurrently(committed, unlocked)
    assert numbers == [1, 1, 1, 1]  # duplicates: the failure the lock exists to prevent
    assert EntrySequence.objects.get(fund=committed.fund, year=2030).last_number == 1
