"""Concurrent issuing workloads for the S16 tests (no pytest import: also run as a process).

In-process (PostgreSQL test database) ``test_concurrency`` calls ``run_threads`` directly. SQLite's
in-memory test database is a shared-cache database whose table locks are not waited for, which is
not how the application runs; for SQLite the test runs this module as a process on a real database
file with the application's settings (WAL, IMMEDIATE transactions, busy timeout):

    HUZHU_DATABASE_URL=sqlite:////tmp/x.sqlite3 python -m tests.receipts.workload

which migrates the database, runs every scenario and prints the results as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

THREADS = 10
PER_THREAD = 30
FIRST = 1_000_001


class PaymentFailed(Exception):
    """Raised inside a payment's transaction after its receipt was issued: all of it rolls back."""


@dataclass
class Run:
    committed: list[int] = field(default_factory=list)
    rolled_back: int = 0
    collisions: int = 0
    errors: list[str] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)
    next_number: int = 0
    results: list[int] = field(default_factory=list)  # receipt ids (retry scenario)


@dataclass
class Setup:
    issuer: Any  # huzhu.orgs.models.Union
    finance: Any  # huzhu.orgs.models.User
    range_id: int
    payer_name: str
    payer_uscc: str


def allocate(issuer: Any, finance: Any, size: int, payer: Any, *, kind: str = "0301") -> Setup:
    """A range of ``size`` numbers from FIRST for ``issuer``; ``kind`` (class and kind digits of
    the receipt code) keeps ranges of different scenarios apart."""
    from django.utils import timezone

    from huzhu.contributions.receipt_services import allocate_range

    year = timezone.localdate().year
    range_ = allocate_range(
        acting_user=finance,
        issuer=issuer,
        code=f"43{kind}{year % 100:02d}",
        year=year,
        first_number=str(FIRST),
        last_number=str(FIRST + size - 1),
    )
    return Setup(issuer, finance, range_.pk, payer.name, payer.uscc)


def issue(setup: Setup, source_id: str) -> Any:
    from django.utils import timezone

    from huzhu.contributions.receipt_models import PayerKind
    from huzhu.contributions.receipt_services import issue_receipt

    return issue_receipt(
        acting_user=setup.finance,
        issuer=setup.issuer,
        payer_name=setup.payer_name,
        payer_kind=PayerKind.UNIT,
        payer_reference=setup.payer_uscc,
        items=[("单位承担互助金", 12000)],
        total_fen=12000,
        issued_on=timezone.localdate(),
        source_type="test.concurrency",
        source_id=f"{setup.range_id}:{source_id}",
    )


def _finish(setup: Setup, run: Run) -> Run:
    from huzhu.contributions.receipt_models import Receipt, ReceiptRange

    run.stored = list(
        Receipt.objects.filter(receipt_range_id=setup.range_id)
        .order_by("number")
        .values_list("number", flat=True)
    )
    run.next_number = ReceiptRange.objects.get(pk=setup.range_id).next_number
    return run


def run_threads(
    setup: Setup, *, threads: int = THREADS, per_thread: int = PER_THREAD, fail_every: int = 0
) -> Run:
    """``threads`` × ``per_thread`` issues, each in its own transaction; with ``fail_every`` every
    n-th payment of a thread fails after its receipt was issued (everything rolls back)."""
    from django.db import IntegrityError, OperationalError, connection, transaction

    run = Run()
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                try:
                    with transaction.atomic():
                        receipt = issue(setup, f"t{index}-p{n}")
                        if fail_every and n % fail_every == fail_every - 1:
                            raise PaymentFailed
                    with lock:
                        run.committed.append(receipt.number)
                except PaymentFailed:
                    with lock:
                        run.rolled_back += 1
                except IntegrityError as exc:
                    with lock:
                        run.collisions += 1
                        run.errors.append(str(exc).splitlines()[0])
                except OperationalError as exc:  # a lock timeout: must never happen
                    with lock:
                        run.errors.append(f"OperationalError: {exc}")
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=300)
    if any(t.is_alive() for t in workers):
        run.errors.append("a worker hung")
    return _finish(setup, run)


def run_retries(setup: Setup, *, threads: int = THREADS) -> Run:
    """``threads`` concurrent issues for the same payment: one receipt, the same for all."""
    from django.db import connection

    run = Run()
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker() -> None:
        try:
            barrier.wait()
            receipt = issue(setup, "same-payment")
            with lock:
                run.results.append(receipt.pk)
                run.committed.append(receipt.number)
        except Exception as exc:  # reported, and the test fails on it
            with lock:
                run.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    return _finish(setup, run)


def main() -> int:
    """Run every scenario on the database of ``HUZHU_DATABASE_URL``; print JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huzhu.settings.test")
    os.environ.setdefault("HUZHU_TESTING", "1")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    from huzhu.core.audit import first_problem
    from tests import factories

    tree = factories.tree()
    finance = factories.staff(tree.province, "finance")
    total = THREADS * PER_THREAD
    gapless = run_threads(allocate(tree.city_a, finance, total + 50, tree.unit_1))
    rollback = run_threads(
        allocate(tree.city_b, finance, total, tree.unit_3, kind="0302"), fail_every=4
    )
    retries = run_retries(allocate(tree.county_a1, finance, 100, tree.unit_1, kind="0303"))
    problem = first_problem()
    result = {
        "vendor": connection.vendor,
        "gapless": asdict(gapless),
        "rollback": asdict(rollback),
        "retries": asdict(retries),
        "audit_problem": problem.message if problem else None,
    }
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
