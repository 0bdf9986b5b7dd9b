"""``huzhu verify-ledger`` (S15, INTERFACES.md §2): exit 0 with a summary on sound books, exit 1
naming the first bad entry when a row was tampered with behind the triggers' back."""

from __future__ import annotations

import pytest
from django.db import connection

from huzhu.cli import main
from huzhu.ledger import services
from huzhu.ledger.models import AccountBalance, JournalEntry
from huzhu.ledger.services import LineSpec, Party, PayerShare
from tests import factories
from tests.ledger.conftest import DAY, drop_append_only_triggers, fire_deferred_checks


def _books(tree: factories.Tree) -> list[JournalEntry]:
    unit = Party.unit(tree.unit_1)
    entries = [
        services.post_contribution_invoiced(
            acting_user=None,
            organisation=tree.grassroots_1,
            date=DAY,
            invoice_id="i1",
            payers=[PayerShare(unit, 10_000)],
        ),
        services.post_contribution_received(
            acting_user=None,
            organisation=tree.grassroots_1,
            date=DAY,
            payment_id="p1",
            payer=unit,
            amount_fen=10_000,
        ),
        services.post_entry(
            acting_user=None,
            organisation=tree.province,
            date=DAY,
            memo="运维费",
            lines=[LineSpec.debit("5101", 300), LineSpec.credit("1001", 300)],
            source_type="operating_cost",
            source_id="c1",
        ),
    ]
    entries.append(
        services.reverse_entry(acting_user=None, entry=entries[2], reason="重复", date=DAY)
    )
    fire_deferred_checks()
    return entries


def _run(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify-ledger"])
    out, err = capsys.readouterr()
    return code, out, err


def _sql(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_sound_books_pass_with_a_summary(
    tree: factories.Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    _books(tree)
    code, out, err = _run(capsys)
    assert (code, err) == (0, "")
    assert out.startswith(
        "账簿核对通过：1 个基金，4 张凭证（其中冲销 1 张），8 条分录；"
        "借方合计 206.00 元 = 贷方合计 206.00 元；"
    )


def test_empty_books_pass(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys)
    assert code == 0
    assert "0 张凭证" in out


def test_tampered_amount_names_the_entry(
    tree: factories.Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _books(tree)
    drop_append_only_triggers("ledger_journalline")
    _sql(
        "UPDATE ledger_journalline SET debit_fen = 9000 WHERE entry_id = %s AND debit_fen > 0",
        [entries[1].pk],
    )
    code, out, err = _run(capsys)
    assert code == 1 and out == ""
    assert err.strip() == (
        f"账簿异常：凭证 2025-000002（基金 {entries[1].fund_id}，id={entries[1].pk}）："
        "借贷不平衡：借方 90.00 元，贷方 100.00 元"
    )


def test_a_zero_line_is_found(tree: factories.Tree, capsys: pytest.CaptureFixture[str]) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite cannot drop a check constraint without rebuilding the table")
    entries = _books(tree)
    drop_append_only_triggers("ledger_journalline")
    _sql("ALTER TABLE ledger_journalline DROP CONSTRAINT ledger_line_one_side_positive", [])
    _sql(
        "UPDATE ledger_journalline SET credit_fen = 0, debit_fen = 0 WHERE entry_id = %s",
        [entries[0].pk],
    )
    code, _, err = _run(capsys)
    assert code == 1
    assert f"凭证 2025-000001（基金 {entries[0].fund_id}，id={entries[0].pk}）：分录 id=" in err
    assert "每条分录必须且只能在一方大于零" in err


def test_a_reversal_that_no_longer_mirrors_is_found(
    tree: factories.Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _books(tree)
    drop_append_only_triggers("ledger_journalline")
    # move the reversal's debit from the bank to another asset: still balanced, not a mirror
    _sql(
        "UPDATE ledger_journalline SET account_id = (SELECT id FROM ledger_account"
        " WHERE code = '1122'), party_type = 'unit', party_id = '1'"
        " WHERE entry_id = %s AND debit_fen > 0",
        [entries[3].pk],
    )
    code, _, err = _run(capsys)
    assert code == 1
    assert err.strip() == (
        f"账簿异常：凭证 2025-000004（基金 {entries[3].fund_id}，id={entries[3].pk}）："
        f"分录与原凭证 id={entries[2].pk} 不是借贷互换的镜像"
    )


def test_a_deleted_entry_is_found(tree: factories.Tree, capsys: pytest.CaptureFixture[str]) -> None:
    entries = _books(tree)
    drop_append_only_triggers("ledger_journalline")
    drop_append_only_triggers("ledger_journalentry")
    _sql("DELETE FROM ledger_journalline WHERE entry_id = %s", [entries[1].pk])
    _sql("DELETE FROM ledger_journalentry WHERE id = %s", [entries[1].pk])
    code, _, err = _run(capsys)
    assert code == 1
    assert err.strip() == (
        f"账簿异常：凭证 2025-000003（基金 {entries[2].fund_id}，id={entries[2].pk}）："
        "凭证号不连续：应为 2025-000002（之前的凭证缺失）"
    )


def test_a_deleted_last_entry_is_found_by_the_counter(
    tree: factories.Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _books(tree)
    drop_append_only_triggers("ledger_journalline")
    drop_append_only_triggers("ledger_journalentry")
    _sql("DELETE FROM ledger_journalline WHERE entry_id = %s", [entries[3].pk])
    _sql("DELETE FROM ledger_journalentry WHERE id = %s", [entries[3].pk])
    code, _, err = _run(capsys)
    assert code == 1
    assert err.strip() == (
        f"账簿异常：基金 {entries[0].fund_id} 2025 年：已编号至 2025-000004，"
        "但现存凭证 3 张、最大凭证号 3（有凭证被删除）"
    )


def test_a_changed_period_is_found(
    tree: factories.Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _books(tree)
    drop_append_only_triggers("ledger_journalentry")
    _sql("UPDATE ledger_journalentry SET period = '2025-02' WHERE id = %s", [entries[0].pk])
    code, _, err = _run(capsys)
    assert code == 1
    assert "凭证 2025-000001" in err
    assert "年度/会计期间（2025，2025-02）与记账日期 2025-03-10 不符" in err


def test_a_drifted_stored_balance_is_found(
    tree: factories.Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _books(tree)
    AccountBalance.objects.filter(fund=entries[0].fund, account__code="1001").update(balance_fen=1)
    code, _, err = _run(capsys)
    assert code == 1
    assert err.strip() == (
        f"账簿异常：基金 {entries[0].fund_id} 科目 1001 互助金专户存款：记录余额 0.01 元，"
        "按分录重算为 100.00 元"
    )


def test_a_missing_trigger_is_reported(
    tree: factories.Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    _books(tree)
    drop_append_only_triggers("ledger_journalentry")
    code, _, err = _run(capsys)
    assert code == 1
    assert "数据库防篡改触发器缺失或已停用：ledger_journalentry_" in err
