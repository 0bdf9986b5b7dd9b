"""S16: receipt numbers have no gaps and no duplicates under concurrent issuing, on SQLite and
PostgreSQL; a rolled-back issue gives its number back; concurrent retries of one payment give one
receipt; and a control test shows that without the range lock concurrent issuers are handed the
same number (PostgreSQL, where that lock is what serialises issuers — SQLite serialises every
write transaction anyway, ``transaction_mode=IMMEDIATE``).

Real threads with their own connections. On PostgreSQL they run against the test database
(transactional tests: committed data, flushed afterwards). SQLite's in-memory test database is a
shared-cache database whose table locks are not waited for — not how the application runs — so on
SQLite the same workloads run in a process on a database file with the application's settings
(``tests/receipts/workload.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F

from huzhu.contributions import receipt_services
from huzhu.contributions.receipt_models import Receipt, ReceiptRange
from huzhu.core.audit import first_problem
from tests import factories
from tests.receipts import workload
from tests.receipts.workload import FIRST, PER_THREAD, THREADS

TOTAL = THREADS * PER_THREAD
ROLLED_BACK = THREADS * (PER_THREAD // 4)  # every 4th payment of each thread fails
REPO = Path(__file__).resolve().parents[2]


def _check_gapless(run: dict[str, Any]) -> None:
    assert run["errors"] == []
    assert sorted(run["committed"]) == run["stored"] == list(range(FIRST, FIRST + TOTAL))
    assert run["next_number"] == FIRST + TOTAL


def _check_rollback(run: dict[str, Any]) -> None:
    assert run["errors"] == []
    assert run["rolled_back"] == ROLLED_BACK
    committed = TOTAL - ROLLED_BACK
    assert sorted(run["committed"]) == run["stored"] == list(range(FIRST, FIRST + committed))
    assert run["next_number"] == FIRST + committed


def _check_retries(run: dict[str, Any]) -> None:
    assert run["errors"] == []
    assert len(run["results"]) == THREADS and len(set(run["results"])) == 1
    assert run["stored"] == [FIRST] and run["next_number"] == FIRST + 1


# --- PostgreSQL: in-process threads on the test database ------------------------------------
postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="in-process threads need PostgreSQL (SQLite: see test_sqlite_file_database)",
)


@pytest.fixture
def pg_world(transactional_db: None) -> tuple[Any, Any]:
    tree = factories.tree()
    return tree, factories.staff(tree.province, "finance")


@postgres_only
def test_concurrent_issuing_is_gapless_and_unique(pg_world: tuple[Any, Any]) -> None:
    tree, finance = pg_world
    run = workload.run_threads(workload.allocate(tree.city_a, finance, TOTAL + 50, tree.unit_1))
    _check_gapless(run.__dict__)
    assert first_problem() is None  # the audit chain stayed linear under concurrency


@postgres_only
def test_rolled_back_issues_leave_no_gap(pg_world: tuple[Any, Any]) -> None:
    tree, finance = pg_world
    setup = workload.allocate(tree.city_a, finance, TOTAL, tree.unit_1)
    run = workload.run_threads(setup, fail_every=4)
    _check_rollback(run.__dict__)
    assert not Receipt.objects.filter(source_id__endswith="-p3").exists()


@postgres_only
def test_concurrent_retries_of_one_payment_give_one_receipt(pg_world: tuple[Any, Any]) -> None:
    tree, finance = pg_world
    run = workload.run_retries(workload.allocate(tree.city_a, finance, 100, tree.unit_1))
    _check_retries(run.__dict__)


def _unlocked_open_ranges(seen: list[int], lock: threading.Lock) -> Callable[[int, int], Any]:
    """``_open_ranges`` without ``select_for_update``: read the counter, then (as any real work
    between a read and a write would) take a moment before using it."""

    def open_ranges(issuer_id: int, year: int) -> list[ReceiptRange]:
        ranges = list(
            ReceiptRange.objects.filter(
                issuer_id=issuer_id, year=year, next_number__lte=F("last_number")
            ).order_by("id")
        )
        if ranges:
            with lock:
                seen.append(ranges[0].next_number)
        time.sleep(0.005)
        return ranges

    return open_ranges


@postgres_only
def test_control_without_the_lock_numbers_collide(
    pg_world: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: the same workload with the lock removed must show the problem, or the tests
    above would prove nothing. Issuers are handed numbers that another issuer holds too."""
    tree, finance = pg_world
    setup = workload.allocate(tree.city_a, finance, TOTAL + 50, tree.unit_1)
    seen: list[int] = []
    monkeypatch.setattr(
        receipt_services, "_open_ranges", _unlocked_open_ranges(seen, threading.Lock())
    )
    run = workload.run_threads(setup)
    handed_twice = len(seen) - len(set(seen))
    assert handed_twice > 0, "without the lock, no two issuers were handed the same number"
    # The unique constraint turned each duplicate into a failed issue: those payments are left
    # without a receipt — exactly what the lock prevents.
    assert run.collisions > 0
    assert all("receipt_code_number_unique" in e for e in run.errors)
    assert len(run.committed) < TOTAL


# --- SQLite: the same workloads on a database file, in a process -----------------------------
@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
    reason="the SQLite variant (PostgreSQL runs the in-process tests above)",
)
def test_sqlite_file_database(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HUZHU_DATABASE_URL": f"sqlite:///{tmp_path / 'receipts.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "huzhu.settings.test",
        "HUZHU_TESTING": "1",
        "HUZHU_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.receipts.workload"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["vendor"] == "sqlite"
    _check_gapless(data["gapless"])
    _check_rollback(data["rollback"])
    _check_retries(data["retries"])
    assert data["audit_problem"] is None


def test_workload_checks_can_fail() -> None:
    """The checks above reject a gap, a duplicate and a lost rollback (they are not vacuous)."""
    good = list(range(FIRST, FIRST + TOTAL))
    run = {"errors": [], "committed": good, "stored": good, "next_number": FIRST + TOTAL}
    _check_gapless(run)
    for broken in (
        {**run, "stored": [*good[:10], *good[11:], FIRST + TOTAL]},  # a gap
        {**run, "stored": [*good[:-1], good[-2]]},  # a duplicate
        {**run, "errors": ["OperationalError: database is locked"]},
    ):
        with pytest.raises(AssertionError):
            _check_gapless(broken)
    assert connection.vendor in {"sqlite", "postgresql"}
