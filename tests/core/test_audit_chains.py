"""The audit log as N independent hash chains (ADR 0002): one chain per transaction, tamper
evidence per chain, and concurrent transactions that do not queue on one row (S16 style).

Several chains need several committed transactions, which a test inside pytest-django's
rolled-back transaction cannot give: those tests are transactional (``transaction=True``; the
flush at their end suspends the append-only triggers, see tests/conftest.py). The thread tests need
PostgreSQL (SQLite runs one writer at a time; its in-memory test database is not shared by
threads the way the application's file is).
"""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.apps import apps as global_apps
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test import Client
from django.utils import timezone

from huzhu.cli import main
from huzhu.core.audit import (
    Event,
    _connection_chain,
    chain_count,
    compute_hash,
    first_problem,
    iter_problems,
    lock_transaction_chain,
    record_event,
)
from huzhu.core.models import AuditChain, AuditEvent
from huzhu.core.triggers import ensure_sqlite_guards
from huzhu.ledger import services as ledger_services
from tests import factories
from tests.web.conftest import login_verified

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="threads with their own connections: PostgreSQL (SQLite runs one writer at a time)",
)
JOIN_TIMEOUT = 60  # seconds; only a failure signal (a thread stuck behind a lock), never a timing


def _event(label: str) -> AuditEvent:
    return record_event(actor=None, event=Event.EXPORT, object_type="test", object_id=label)


def _chains() -> dict[int, list[int]]:
    """chain -> its seqs in order."""
    result: dict[int, list[int]] = {}
    for chain, seq in AuditEvent.objects.order_by("chain", "seq").values_list("chain", "seq"):
        result.setdefault(chain, []).append(seq)
    return result


def _assert_every_chain_gapless() -> None:
    heads = dict(AuditChain.objects.values_list("id", "last_seq"))
    for chain, seqs in _chains().items():
        assert seqs == list(range(1, len(seqs) + 1)), chain
        assert heads[chain] == len(seqs)
    assert first_problem() is None


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["verify-audit"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@contextmanager
def _tampering() -> Iterator[None]:
    """The attacker with owner rights: append-only triggers off (outside any transaction here, so
    they are put back explicitly, not by a rollback)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER core_auditevent_no_update")
            cursor.execute("DROP TRIGGER core_auditevent_no_delete")
        else:
            cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        if connection.vendor == "sqlite":
            ensure_sqlite_guards(using=connection.alias)
        else:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")


# --- configuration and heads -------------------------------------------------------------------
def test_chain_count_comes_from_the_setting_then_the_environment(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUZHU_AUDIT_CHAINS", raising=False)
    if hasattr(settings, "HUZHU_AUDIT_CHAINS"):
        del settings.HUZHU_AUDIT_CHAINS
    assert chain_count() == 16
    monkeypatch.setenv("HUZHU_AUDIT_CHAINS", "5")
    assert chain_count() == 5
    settings.HUZHU_AUDIT_CHAINS = 3
    assert chain_count() == 3
    for bad in (0, -1, 1025, "sixteen", ""):
        settings.HUZHU_AUDIT_CHAINS = bad
        with pytest.raises(ImproperlyConfigured, match="HUZHU_AUDIT_CHAINS"):
            chain_count()


@pytest.mark.django_db
def test_the_migration_creates_the_heads_idempotently(settings: Any) -> None:
    migration = importlib.import_module("huzhu.core.migrations.0003_audit_chains")
    AuditChain.objects.all().delete()  # (no events yet in this test: the heads only)
    AuditChain.objects.create(id=2, last_seq=7, last_hash="a" * 64)
    settings.HUZHU_AUDIT_CHAINS = 4

    class Editor:
        connection = connection

    migration.create_heads(global_apps, Editor())
    migration.create_heads(global_apps, Editor())
    assert list(AuditChain.objects.order_by("id").values_list("id", "last_seq", "last_hash")) == [
        (0, 0, "0" * 64),
        (1, 0, "0" * 64),
        (2, 7, "a" * 64),  # an existing head is left as it is
        (3, 0, "0" * 64),
    ]


@pytest.mark.django_db
def test_missing_heads_are_created_when_needed(settings: Any) -> None:
    AuditChain.objects.all().delete()
    settings.HUZHU_AUDIT_CHAINS = 4
    event = _event("first")
    assert 0 <= event.chain < 4 and event.seq == 1 and event.prev_hash == "0" * 64
    head = AuditChain.objects.get(id=event.chain)
    assert (head.last_seq, head.last_hash) == (1, event.hash)
    assert first_problem() is None


def test_locking_a_chain_needs_a_transaction() -> None:
    assert not connection.in_atomic_block
    with pytest.raises(TransactionManagementError):
        lock_transaction_chain()


# --- one transaction, one chain ----------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_transaction_with_several_events_uses_one_chain(settings: Any) -> None:
    settings.HUZHU_AUDIT_CHAINS = 4
    with transaction.atomic():
        first = _event("a")
        with transaction.atomic():  # a savepoint: same transaction, same chain
            second = _event("b")
        locked = lock_transaction_chain()
        ledger_services._lock_audit_chain()  # the ledger's lock is this transaction's chain too
        third = _event("c")
    assert first.chain == second.chain == third.chain == locked
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert (second.prev_hash, third.prev_hash) == (first.hash, second.hash)
    # The connection's next transaction starts at the next chain: one connection spreads too.
    following = _event("d")
    assert following.chain == (first.chain + 1) % 4 and following.seq == 1
    _assert_every_chain_gapless()


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transactions_leave_no_gap(settings: Any) -> None:
    settings.HUZHU_AUDIT_CHAINS = 2
    kept: list[str] = []
    for i in range(9):  # one connection alternates the chains: rollbacks hit both of them
        label = f"t{i}"
        if i % 3 == 1:
            with pytest.raises(ZeroDivisionError), transaction.atomic():
                _event(label + "-1")
                _event(label + "-2")
                1 / 0  # noqa: B018
        else:
            with transaction.atomic():
                _event(label + "-1")
                _event(label + "-2")
            kept += [label + "-1", label + "-2"]
    assert sorted(AuditEvent.objects.values_list("object_id", flat=True)) == sorted(kept)
    assert len(_chains()) == 2  # the rollbacks hit both chains, and neither has a gap
    _assert_every_chain_gapless()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_that_picked_the_chain_gives_it_up(settings: Any) -> None:
    settings.HUZHU_AUDIT_CHAINS = 2
    with transaction.atomic():
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            gone = _event("gone")
            1 / 0  # noqa: B018
        kept = _event("kept")  # a fresh pick: the rolled-back savepoint took its chain with it
        again = _event("kept-too")
    assert kept.chain == again.chain == (gone.chain + 1) % 2
    assert list(AuditEvent.objects.values_list("object_id", "seq")) == [
        ("kept", 1),
        ("kept-too", 2),
    ]
    _assert_every_chain_gapless()


# --- tamper evidence per chain -----------------------------------------------------------------
def _forge(chain: int, seq: int, prev_hash: str) -> AuditEvent:
    row = AuditEvent(
        chain=chain,
        seq=seq,
        occurred_at=timezone.now(),
        actor_username="mallory",
        event=Event.EXPORT,
        object_type="test",
        object_id="forged",
        prev_hash=prev_hash,
    )
    row.hash = compute_hash(row)
    row.save(force_insert=True)  # INSERT is allowed: the log is append-only
    return row


@pytest.fixture
def three_chains(settings: Any, transactional_db: None) -> dict[int, list[AuditEvent]]:
    """Twelve committed one-event transactions over three chains: four events on each."""
    settings.HUZHU_AUDIT_CHAINS = 3
    for i in range(12):
        _event(f"e{i}")
    chains: dict[int, list[AuditEvent]] = {}
    for row in AuditEvent.objects.order_by("chain", "seq"):
        chains.setdefault(row.chain, []).append(row)
    assert sorted(chains) == [0, 1, 2] and {len(rows) for rows in chains.values()} == {4}
    _assert_every_chain_gapless()
    return chains


def _tamper(kind: str, chain: int, rows: list[AuditEvent]) -> str:
    """Do ``kind`` to ``chain`` (rows: its events by seq); the line verify-audit must print."""
    with _tampering(), connection.cursor() as cursor:
        if kind == "edit":
            cursor.execute(
                "UPDATE core_auditevent SET actor_username = 'mallory' WHERE id = %s", [rows[1].pk]
            )
            return f"第 {chain} 号链第 2 条（事件 id={rows[1].pk}）：内容与哈希不一致（该条被修改）"
        if kind == "edit_with_recomputed_hash":
            rows[1].outcome = "failure"
            cursor.execute(
                "UPDATE core_auditevent SET outcome = 'failure', hash = %s WHERE id = %s",
                [compute_hash(rows[1]), rows[1].pk],
            )
            return (
                f"第 {chain} 号链第 3 条（事件 id={rows[2].pk}）："
                "前序哈希不一致（前一条被修改或删除）"
            )
        if kind == "edit_last_with_recomputed_hash":
            rows[3].outcome = "failure"
            cursor.execute(
                "UPDATE core_auditevent SET outcome = 'failure', hash = %s WHERE id = %s",
                [compute_hash(rows[3]), rows[3].pk],
            )
            return (
                f"第 {chain} 号链第 4 条（事件 id={rows[3].pk}）："
                "与链头记录的哈希不一致（最新的事件被修改，或链头被改动）"
            )
        if kind == "delete_middle":
            cursor.execute("DELETE FROM core_auditevent WHERE id = %s", [rows[1].pk])
            return (
                f"第 {chain} 号链第 3 条（事件 id={rows[2].pk}）：第 2 条审计事件缺失（已被删除）"
            )
        if kind == "delete_last":
            cursor.execute("DELETE FROM core_auditevent WHERE id = %s", [rows[3].pk])
            return f"第 {chain} 号链第 4 条（链尾）：链尾与链头记录不一致（最新的事件被删除）"
        if kind == "insert_after_last":
            forged = _forge(chain, 5, rows[3].hash)
            return (
                f"第 {chain} 号链第 5 条（事件 id={forged.pk}）："
                "链头记录之后多出的事件（被插入，或链头被改回）"
            )
        if kind == "insert_in_the_middle":
            # Make room at seq 3 (highest first: the unique (chain, seq) is checked per row),
            # insert a well-formed row there and move the head on: the old third row's link
            # still points at the second.
            for row in reversed(rows[2:]):
                cursor.execute("UPDATE core_auditevent SET seq = seq + 1 WHERE id = %s", [row.pk])
            _forge(chain, 3, rows[1].hash)
            cursor.execute(
                "UPDATE core_auditchain SET last_seq = last_seq + 1 WHERE id = %s", [chain]
            )
            return (
                f"第 {chain} 号链第 4 条（事件 id={rows[2].pk}）："
                "前序哈希不一致（前一条被修改或删除）"
            )
        if kind == "insert_before_first":
            forged = _forge(chain, 0, "0" * 64)
            return f"第 {chain} 号链第 0 条（事件 id={forged.pk}）：序号不在链内（该条被插入）"
        if kind == "delete_head":
            cursor.execute("DELETE FROM core_auditchain WHERE id = %s", [chain])
            return (
                f"第 {chain} 号链第 1 条（事件 id={rows[0].pk}）："
                "该链没有链头记录（链头被删除，或事件被插入）"
            )
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "edit",
        "edit_with_recomputed_hash",
        "edit_last_with_recomputed_hash",
        "delete_middle",
        "delete_last",
        "insert_after_last",
        "insert_in_the_middle",
        "insert_before_first",
        "delete_head",
    ],
)
@pytest.mark.parametrize("chain", [0, 1, 2])
def test_verify_audit_names_the_first_bad_row_of_the_tampered_chain(
    three_chains: dict[int, list[AuditEvent]],
    capsys: pytest.CaptureFixture[str],
    kind: str,
    chain: int,
) -> None:
    expected = _tamper(kind, chain, three_chains[chain])
    status, out, err = _verify(capsys)
    # Only the tampered chain is reported: the two others still verify.
    assert (status, out, err) == (1, "", f"审计链异常：{expected}\n")
    assert [p.chain for p in iter_problems()] == [chain]


def test_verify_audit_reports_every_broken_chain_in_order(
    three_chains: dict[int, list[AuditEvent]], capsys: pytest.CaptureFixture[str]
) -> None:
    deleted = _tamper("delete_last", 2, three_chains[2])
    edited = _tamper("edit", 0, three_chains[0])
    status, out, err = _verify(capsys)
    assert (status, out) == (1, "")
    assert err == f"审计链异常：{edited}\n审计链异常：{deleted}\n"
    problem = first_problem()
    assert problem is not None
    assert (problem.chain, problem.seq, problem.event_id) == (0, 2, three_chains[0][1].pk)


def test_verify_audit_counts_the_chains_when_intact(
    three_chains: dict[int, list[AuditEvent]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _verify(capsys) == (0, "审计链完整：3 条链，共 12 条事件\n", "")


def test_an_event_on_a_chain_without_a_head_is_reported(
    three_chains: dict[int, list[AuditEvent]], capsys: pytest.CaptureFixture[str]
) -> None:
    forged = _forge(7, 1, "0" * 64)
    status, _, err = _verify(capsys)
    assert status == 1
    assert err == (
        f"审计链异常：第 7 号链第 1 条（事件 id={forged.pk}）："
        "该链没有链头记录（链头被删除，或事件被插入）\n"
    )


def test_the_triggers_refuse_edits_on_every_chain(
    three_chains: dict[int, list[AuditEvent]],
) -> None:
    for rows in three_chains.values():
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=rows[-1].pk).update(outcome="failure")
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=rows[-1].pk).delete()
    _assert_every_chain_gapless()


@pytest.mark.django_db
def test_the_log_page_shows_each_events_chain() -> None:
    tree = factories.tree()
    auditadmin = factories.staff(tree.province, "auditadmin", username="auditadmin")
    event = _event("shown")
    response = login_verified(Client(), auditadmin).get("/audit/", {"event": Event.EXPORT})
    rows = response.context["rows"]
    assert [r["event"].pk for r in rows] == [event.pk]
    assert f"审计链 {event.chain} · 第 {event.seq} 条" in response.content.decode()


# --- PostgreSQL: concurrent transactions -------------------------------------------------------
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
        thread.join(timeout=JOIN_TIMEOUT * 2)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_write_fifty_events_each_on_independent_chains(settings: Any) -> None:
    settings.HUZHU_AUDIT_CHAINS = 16
    threads, per_thread = 16, 50
    sizes = [1, 2, 3] * 8 + [2]  # transactions of 1–3 events: 50 events a thread
    assert sum(sizes) == per_thread
    start = threading.Barrier(threads)
    transactions: list[list[tuple[int, int]]] = []
    lock = threading.Lock()

    def write(index: int) -> None:
        start.wait(timeout=JOIN_TIMEOUT)
        for n, size in enumerate(sizes):
            with transaction.atomic():
                rows = [_event(f"{index}-{n}-{k}") for k in range(size)]
            with lock:
                transactions.append([(r.chain, r.seq) for r in rows])

    assert _run_threads(threads, write) == []
    assert AuditEvent.objects.count() == threads * per_thread
    for rows in transactions:  # one chain per transaction, its events consecutive on it
        assert len({chain for chain, _ in rows}) == 1
        assert [seq for _, seq in rows] == list(range(rows[0][1], rows[0][1] + len(rows)))
    pairs = list(AuditEvent.objects.values_list("chain", "seq"))
    assert [pair for pair, n in Counter(pairs).items() if n > 1] == []
    assert len({chain for chain, _ in pairs}) > 1
    _assert_every_chain_gapless()


def _sixty_events(index: int) -> None:
    for n in range(60):
        _event(f"{index}-{n}")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_verification_while_events_are_written_finds_nothing(settings: Any) -> None:
    settings.HUZHU_AUDIT_CHAINS = 4
    done = threading.Event()
    results: list[object] = []

    def verify_meanwhile() -> None:
        try:
            while not done.is_set():
                results.append(first_problem())
        finally:
            connection.close()

    checker = threading.Thread(target=verify_meanwhile)
    checker.start()
    try:
        errors = _run_threads(4, _sixty_events)
    finally:
        done.set()
        checker.join(timeout=JOIN_TIMEOUT)
    assert errors == [] and not checker.is_alive()
    assert results and set(results) == {None}
    _assert_every_chain_gapless()


def _hold_a_chain(
    holding: threading.Event, release: threading.Event, out: dict[str, Any]
) -> Callable[[], None]:
    def run() -> None:
        try:
            with transaction.atomic():
                out["first"] = _event("first")
                holding.set()
                if not release.wait(timeout=JOIN_TIMEOUT * 2):
                    raise TimeoutError("never released")
        except BaseException as exc:
            out["error_first"] = exc
            holding.set()
        finally:
            connection.close()

    return run


def _second_writer(out: dict[str, Any], started: threading.Event) -> Callable[[], None]:
    def run() -> None:
        try:
            connection.ensure_connection()
            out["pid"] = connection.connection.info.backend_pid
            # Start looking exactly at the chain the first transaction holds: the pick must skip
            # it rather than wait (without this, different start offsets could hide a wait).
            _connection_chain(transaction.get_connection()).next_start = out["first"].chain
            started.set()
            with transaction.atomic():
                out["second"] = _event("second")
        except BaseException as exc:
            out["error_second"] = exc
            started.set()
        finally:
            connection.close()

    return run


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_second_transaction_does_not_wait_for_the_first(settings: Any) -> None:
    """S16: with several chains, a transaction that holds its chain does not hold up another."""
    settings.HUZHU_AUDIT_CHAINS = 16
    _event("setup")  # heads committed before the race
    holding, release, started = threading.Event(), threading.Event(), threading.Event()
    out: dict[str, Any] = {}
    first = threading.Thread(target=_hold_a_chain(holding, release, out))
    first.start()
    try:
        assert holding.wait(timeout=JOIN_TIMEOUT) and "error_first" not in out
        second = threading.Thread(target=_second_writer(out, started))
        second.start()
        second.join(timeout=JOIN_TIMEOUT)
        # The second committed while the first still holds its chain (it waits for `release`).
        assert not second.is_alive(), "the second transaction waited for the first"
        assert first.is_alive() and "error_second" not in out
    finally:
        release.set()
        first.join(timeout=JOIN_TIMEOUT)
    assert not first.is_alive() and "error_first" not in out
    assert out["first"].chain != out["second"].chain
    _assert_every_chain_gapless()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_control_with_one_chain_the_second_transaction_waits(settings: Any) -> None:
    """The control: with HUZHU_AUDIT_CHAINS=1 the same second transaction is seen waiting for a
    lock (pg_stat_activity) until the first ends — so the test above can fail."""
    settings.HUZHU_AUDIT_CHAINS = 1
    _event("setup")
    holding, release, started = threading.Event(), threading.Event(), threading.Event()
    out: dict[str, Any] = {}
    first = threading.Thread(target=_hold_a_chain(holding, release, out))
    first.start()
    second = None
    try:
        assert holding.wait(timeout=JOIN_TIMEOUT) and "error_first" not in out
        second = threading.Thread(target=_second_writer(out, started))
        second.start()
        assert started.wait(timeout=JOIN_TIMEOUT) and "pid" in out
        assert _wait_until_blocked(out["pid"]), "the second transaction never waited for the lock"
        assert second.is_alive() and "second" not in out
    finally:
        release.set()
        first.join(timeout=JOIN_TIMEOUT)
        if second is not None:
            second.join(timeout=JOIN_TIMEOUT)
    assert second is not None and not second.is_alive() and not first.is_alive()
    assert "error_first" not in out and "error_second" not in out
    assert (out["first"].chain, out["second"].chain) == (0, 0)
    assert out["second"].seq == out["first"].seq + 1
    _assert_every_chain_gapless()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_savepoint_releases_the_chain_lock_and_a_new_pick_relocks(
    settings: Any,
) -> None:
    """What the per-transaction memory relies on: PostgreSQL releases a row lock taken inside a
    savepoint that is rolled back, and the next pick locks the chain again."""
    settings.HUZHU_AUDIT_CHAINS = 1
    _event("setup")

    def try_lock(results: list[str]) -> Callable[[int], None]:
        def run(_: int) -> None:
            try:
                with transaction.atomic():
                    AuditChain.objects.select_for_update(nowait=True).get(id=0)
                results.append("locked")
            except DatabaseError:
                results.append("busy")

        return run

    results: list[str] = []
    with transaction.atomic():
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            _event("gone")
            1 / 0  # noqa: B018
        assert _run_threads(1, try_lock(results)) == []  # released with the savepoint
        assert lock_transaction_chain() == 0
        assert _run_threads(1, try_lock(results)) == []  # held again by this transaction
        _event("kept")
    assert results == ["locked", "busy"]
    assert list(AuditEvent.objects.order_by("seq").values_list("object_id", "seq")) == [
        ("setup", 1),
        ("kept", 2),
    ]
    _assert_every_chain_gapless()


def _wait_until_blocked(pid: int) -> bool:
    """Whether backend ``pid`` is seen waiting for a lock (polled; the bound only ends failures)."""
    seen = threading.Event()
    for _ in range(JOIN_TIMEOUT * 20):
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
        if row is not None and row[0] == "Lock":
            return True
        seen.wait(timeout=0.05)
    return False


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_when_every_chain_is_held_a_transaction_queues_on_one_and_then_proceeds(
    settings: Any,
) -> None:
    settings.HUZHU_AUDIT_CHAINS = 2
    _event("setup")
    holders = [
        (threading.Event(), threading.Event(), {}) for _ in range(2)
    ]  # (holding, release, out) for each chain
    threads = [threading.Thread(target=_hold_a_chain(*h)) for h in holders]
    started = threading.Event()
    out: dict[str, Any] = {}
    third = None
    try:
        threads[0].start()
        assert holders[0][0].wait(timeout=JOIN_TIMEOUT)
        threads[1].start()
        assert holders[1][0].wait(timeout=JOIN_TIMEOUT)
        held = {h[2]["first"].chain for h in holders}
        assert held == {0, 1}  # both chains are held now
        out["first"] = holders[0][2]["first"]  # (where the third starts looking)
        third = threading.Thread(target=_second_writer(out, started))
        third.start()
        assert started.wait(timeout=JOIN_TIMEOUT) and "pid" in out
        assert _wait_until_blocked(out["pid"]), "the third transaction did not queue"
        assert third.is_alive() and "second" not in out
    finally:
        for _, release, _ in holders:
            release.set()
        for thread in threads:
            thread.join(timeout=JOIN_TIMEOUT)
        if third is not None:
            third.join(timeout=JOIN_TIMEOUT)
    assert third is not None and not third.is_alive()
    assert not any(t.is_alive() for t in threads) and "error_second" not in out
    assert out["second"].chain == out["pid"] % 2  # the chain its backend pid names
    _assert_every_chain_gapless()
