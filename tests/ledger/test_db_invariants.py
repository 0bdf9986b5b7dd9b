"""The database itself refuses what the services never do (S15): raw SQL that bypasses them.

Both databases: UPDATE and DELETE of entries, lines and closed periods; an entry dated in a closed
period; a line that is zero, negative or on both sides. PostgreSQL also: an unbalanced entry or one
with a single line, at commit (the deferred constraint trigger; ``SET CONSTRAINTS ALL IMMEDIATE``
fires it inside the test's transaction).
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError

from huzhu.ledger import services
from huzhu.ledger.models import Account, ClosedPeriod, Fund, JournalEntry, JournalLine
from huzhu.ledger.services import LineSpec
from tests import factories
from tests.ledger.conftest import DAY

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="deferred constraint triggers are PostgreSQL's"
)


def _post(tree: factories.Tree, source: str = "s1", amount: int = 500) -> JournalEntry:
    return services.post_entry(
        acting_user=None,
        organisation=tree.province,
        date=DAY,
        memo="测试凭证",
        lines=[LineSpec.debit("1001", amount), LineSpec.credit("4001", amount)],
        source_type="contribution_payment",
        source_id=source,
    )


@pytest.mark.parametrize(
    ("sql", "target"),
    [
        ("UPDATE ledger_journalentry SET memo = 'x' WHERE id = %s", "entry"),
        ("DELETE FROM ledger_journalentry WHERE id = %s", "entry"),
        ("UPDATE ledger_journalline SET debit_fen = debit_fen + 1 WHERE entry_id = %s", "entry"),
        ("DELETE FROM ledger_journalline WHERE entry_id = %s", "entry"),
    ],
)
def test_entries_and_lines_are_append_only(tree: factories.Tree, sql: str, target: str) -> None:
    entry = _post(tree)
    with pytest.raises(DatabaseError) as exc, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [entry.pk])
    assert "append-only" in str(exc.value)
    assert JournalEntry.objects.get(pk=entry.pk).memo == "测试凭证"
    assert sorted(JournalLine.objects.filter(entry=entry).values_list("debit_fen", flat=True)) == [
        0,
        500,
    ]


def test_closed_periods_cannot_be_reopened_or_posted_into(tree: factories.Tree, fund: Fund) -> None:
    entry = _post(tree)
    closed = ClosedPeriod.objects.create(fund=fund, period="2025-03")
    for sql in (
        "DELETE FROM ledger_closedperiod WHERE id = %s",
        "UPDATE ledger_closedperiod SET period = '2099-01' WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError) as exc,
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [closed.pk])
        assert "append-only" in str(exc.value)
    # an entry dated in the closed period, inserted behind the service's back
    with pytest.raises(DatabaseError) as exc, transaction.atomic():
        JournalEntry.objects.create(
            fund=fund,
            organisation=tree.province,
            organisation_path=tree.province.path,
            year=2025,
            number=99,
            date=DAY,
            period="2025-03",
            memo="补记",
            source_type="operating_cost",
            source_id="late",
            total_fen=1,
        )
    assert "closed" in str(exc.value)
    assert JournalEntry.objects.filter(pk__gt=entry.pk).count() == 0


@pytest.mark.parametrize(("debit", "credit"), [(0, 0), (-5, 0), (0, -5), (5, 5)])
def test_line_amounts_are_checked(tree: factories.Tree, debit: int, credit: int) -> None:
    entry = _post(tree)
    account = Account.objects.get(code="5101")
    with pytest.raises(IntegrityError), transaction.atomic():
        JournalLine.objects.create(entry=entry, account=account, debit_fen=debit, credit_fen=credit)


def test_a_reversal_is_linked_and_unique(tree: factories.Tree, fund: Fund) -> None:
    entry = _post(tree)
    services.reverse_entry(acting_user=None, entry=entry, reason="测试", date=DAY)
    base = {
        "fund": fund,
        "organisation": tree.province,
        "organisation_path": tree.province.path,
        "year": 2025,
        "date": DAY,
        "period": "2025-03",
        "memo": "x",
        "total_fen": 500,
    }
    with pytest.raises(IntegrityError), transaction.atomic():  # a second reversal
        JournalEntry.objects.create(
            **base, number=50, source_type="reversal", source_id="other", reverses=entry
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # a reversal without its link
        JournalEntry.objects.create(**base, number=51, source_type="reversal", source_id="y")
    with pytest.raises(IntegrityError), transaction.atomic():  # the same number twice
        JournalEntry.objects.create(
            **base, number=entry.number, source_type="operating_cost", source_id="z"
        )


def _raw_entry(fund: Fund, tree: factories.Tree, total: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journalentry (fund_id, organisation_id, organisation_path, year,"
            " number, date, period, memo, source_type, source_id, purpose, total_fen, posted_at)"
            " VALUES (%s, %s, %s, 2025, 900, '2025-03-10', '2025-03', 'raw', 'operating_cost',"
            " 'raw', '', %s, CURRENT_TIMESTAMP) RETURNING id",
            [fund.pk, tree.province.pk, tree.province.path, total],
        )
        return int(cursor.fetchone()[0])


def _raw_line(entry_id: int, code: str, debit: int, credit: int) -> None:
    account_id = Account.objects.get(code=code).pk
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journalline (entry_id, account_id, debit_fen, credit_fen,"
            " party_type, party_id, party_name) VALUES (%s, %s, %s, %s, '', '', '')",
            [entry_id, account_id, debit, credit],
        )


@postgres_only
@pytest.mark.parametrize(
    ("lines", "total", "message"),
    [
        ([("5101", 100, 0), ("1001", 0, 90)], 100, "unbalanced"),
        ([("5101", 100, 0)], 100, "at least 2"),
        ([], 100, "at least 2"),
        ([("5101", 100, 0), ("1001", 0, 100)], 101, "entry total"),
    ],
)
def test_postgres_refuses_unbalanced_entries_at_commit(
    tree: factories.Tree,
    fund: Fund,
    lines: list[tuple[str, int, int]],
    total: int,
    message: str,
) -> None:
    with pytest.raises(IntegrityError) as exc, transaction.atomic():
        entry_id = _raw_entry(fund, tree, total)
        for code, debit, credit in lines:
            _raw_line(entry_id, code, debit, credit)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # what COMMIT does
    assert message in str(exc.value)
    assert not JournalEntry.objects.filter(number=900).exists()


@postgres_only
def test_postgres_accepts_a_balanced_raw_entry(tree: factories.Tree, fund: Fund) -> None:
    """The control for the test above: the same raw SQL, balanced, passes the trigger."""
    with transaction.atomic():
        entry_id = _raw_entry(fund, tree, 100)
        _raw_line(entry_id, "5101", 100, 0)
        _raw_line(entry_id, "1001", 0, 100)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert JournalEntry.objects.filter(pk=entry_id).exists()
