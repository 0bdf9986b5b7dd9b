"""``huzhu verify-ledger``: re-check the books from the stored rows (S15, INTERFACES.md §2).

Checks, each set-based (GROUP BY queries streamed in chunks, never a query per entry):
1. every line is > 0 on exactly one side;
2. every entry has ≥ 2 lines and debits = credits = its total; its year and period match its date;
3. every reversal mirrors its original line for line (same accounts and parties, sides swapped),
   in the same fund, not before it, and the original is not itself a reversal;
4. numbers run 1, 2, 3 … without gaps per fund and year, and the counter row agrees (a deleted
   last entry is found too);
5. no entry dated in a closed period was posted after the period was closed;
6. every stored account balance equals the recomputation from the lines;
7. the append-only triggers are present and enabled.

The first bad entry is the one that comes first in (fund, year, number) order among those that
fail checks 1–5; fund-level problems (6) and missing triggers (7) come after.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Count, Max, Q, Sum

from huzhu.core.money import format_fen
from huzhu.ledger.models import (
    AccountBalance,
    ClosedPeriod,
    EntrySequence,
    Fund,
    JournalEntry,
    JournalLine,
)

CHUNK = 5000

EXPECTED_TRIGGERS: dict[str, list[str]] = {
    "sqlite": [
        f"{table}_{what}"
        for table in ("ledger_journalentry", "ledger_journalline", "ledger_closedperiod")
        for what in ("no_update", "no_delete")
    ]
    + ["ledger_journalentry_period_open"],
    "postgresql": [
        "ledger_journalentry_append_only",
        "ledger_journalline_append_only",
        "ledger_closedperiod_append_only",
        "ledger_journalentry_balanced",
        "ledger_journalline_balanced",
        "ledger_journalentry_period_open",
    ],
}


@dataclass(frozen=True)
class LedgerProblem:
    message: str
    entry_id: int | None = None


@dataclass(frozen=True)
class LedgerSummary:
    funds: int
    entries: int
    reversals: int
    lines: int
    debit_fen: int
    credit_fen: int

    def text(self) -> str:
        return (
            f"账簿核对通过：{self.funds} 个基金，"
            f"{self.entries} 张凭证（其中冲销 {self.reversals} 张），"
            f"{self.lines} 条分录；借方合计 {format_fen(self.debit_fen)} 元 = "
            f"贷方合计 {format_fen(self.credit_fen)} 元；凭证号连续，冲销与原凭证一一对应，"
            "各科目余额与重算一致，防篡改触发器完好。"
        )


def _label(entry_id: int, fund_id: int, year: int, number: int) -> str:
    return f"凭证 {year}-{number:06d}（基金 {fund_id}，id={entry_id}）"


def _bad_lines() -> dict[int, str]:
    rows = (
        JournalLine.objects.exclude(
            Q(debit_fen__gt=0, credit_fen=0) | Q(credit_fen__gt=0, debit_fen=0)
        )
        .order_by("entry_id", "pk")
        .values_list("entry_id", "pk", "debit_fen", "credit_fen")
    )
    result: dict[int, str] = {}
    for entry_id, line_id, debit, credit in rows.iterator(chunk_size=CHUNK):
        result.setdefault(
            entry_id,
            f"分录 id={line_id} 金额无效（借 {format_fen(debit)}，贷 {format_fen(credit)}）："
            "每条分录必须且只能在一方大于零",
        )
    return result


def _line_keys(entry_ids: list[int]) -> dict[int, list[tuple[int, int, int, str, str]]]:
    keys: dict[int, list[tuple[int, int, int, str, str]]] = defaultdict(list)
    rows = JournalLine.objects.filter(entry_id__in=entry_ids).values_list(
        "entry_id", "account_id", "debit_fen", "credit_fen", "party_type", "party_id"
    )
    for entry_id, account_id, debit, credit, party_type, party_id in rows:
        keys[entry_id].append((account_id, debit, credit, party_type, party_id))
    return keys


def _bad_reversals() -> dict[int, str]:
    """Reversal entry id → problem, checked in chunks of pairs (two queries per chunk)."""
    result: dict[int, str] = {}
    pairs = (
        JournalEntry.objects.filter(reverses__isnull=False)
        .order_by("pk")
        .values_list(
            "pk",
            "fund_id",
            "date",
            "reverses_id",
            "reverses__fund_id",
            "reverses__date",
            "reverses__reverses_id",
        )
    )
    chunk: list[tuple[int, int, object, int, int, object, int | None]] = []

    def check(batch: list[tuple[int, int, object, int, int, object, int | None]]) -> None:
        keys = _line_keys([p[0] for p in batch] + [p[3] for p in batch])
        for rid, fund_id, day, oid, o_fund, o_day, o_reverses in batch:
            if o_reverses is not None:
                result[rid] = f"冲销的对象 id={oid} 本身是冲销凭证"
            elif fund_id != o_fund:
                result[rid] = f"与原凭证 id={oid} 不属于同一基金"
            elif day < o_day:  # type: ignore[operator]
                result[rid] = f"冲销日期早于原凭证 id={oid}"
            else:
                mirrored = sorted((a, c, d, pt, pi) for a, d, c, pt, pi in keys.get(rid, []))
                if mirrored != sorted(keys.get(oid, [])):
                    result[rid] = f"分录与原凭证 id={oid} 不是借贷互换的镜像"

    for row in pairs.iterator(chunk_size=CHUNK):
        chunk.append(row)
        if len(chunk) >= 500:
            check(chunk)
            chunk = []
    if chunk:
        check(chunk)
    return result


def _entry_problems(
    bad_lines: dict[int, str], bad_reversals: dict[int, str]
) -> Iterator[LedgerProblem]:
    """One pass over the entries in (fund, year, number) order with their line totals."""
    closed = {(c.fund_id, c.period): c.closed_at for c in ClosedPeriod.objects.all()}
    rows = (
        JournalEntry.objects.annotate(
            n=Count("lines"), debit=Sum("lines__debit_fen"), credit=Sum("lines__credit_fen")
        )
        .order_by("fund_id", "year", "number")
        .values_list(
            "pk",
            "fund_id",
            "year",
            "number",
            "date",
            "period",
            "total_fen",
            "posted_at",
            "n",
            "debit",
            "credit",
        )
    )
    current: tuple[int, int] | None = None
    expected = 1
    for pk, fund_id, year, number, day, period, total, posted_at, n, debit, credit in rows.iterator(
        chunk_size=CHUNK
    ):
        label = _label(pk, fund_id, year, number)
        if (fund_id, year) != current:
            current, expected = (fund_id, year), 1
        debit, credit = int(debit or 0), int(credit or 0)
        message: str | None = None
        if number != expected:
            message = f"凭证号不连续：应为 {year}-{expected:06d}" + (
                "（之前的凭证缺失）" if number > expected else "（重复）"
            )
        elif pk in bad_lines:
            message = bad_lines[pk]
        elif n < 2:
            message = f"只有 {n} 条分录（至少两条）"
        elif debit != credit:
            message = f"借贷不平衡：借方 {format_fen(debit)} 元，贷方 {format_fen(credit)} 元"
        elif debit != total:
            message = f"分录合计 {format_fen(debit)} 元与凭证金额 {format_fen(total)} 元不符"
        elif year != day.year or period != f"{day.year:04d}-{day.month:02d}":
            message = f"年度/会计期间（{year}，{period}）与记账日期 {day.isoformat()} 不符"
        elif pk in bad_reversals:
            message = bad_reversals[pk]
        else:
            closed_at: datetime | None = closed.get((fund_id, period))
            if closed_at is not None and posted_at > closed_at:
                message = f"记入已结账的会计期间 {period}（结账后才记账）"
        if message is not None:
            yield LedgerProblem(f"{label}：{message}", pk)
            return
        expected = number + 1


def _sequence_problems() -> Iterator[LedgerProblem]:
    """The counter of each (fund, year) against the entries that exist (a deleted last entry
    leaves no gap among the others, but the counter still remembers its number)."""
    found = {
        (fund_id, year): (int(count), int(top))
        for fund_id, year, count, top in JournalEntry.objects.values("fund_id", "year")
        .annotate(count=Count("pk"), top=Max("number"))
        .values_list("fund_id", "year", "count", "top")
        .order_by()
    }
    counters = {(s.fund_id, s.year): s.last_number for s in EntrySequence.objects.all()}
    for key in sorted(set(found) | set(counters)):
        count, top = found.get(key, (0, 0))
        last = counters.get(key)
        if last is None:
            yield LedgerProblem(f"基金 {key[0]} {key[1]} 年：凭证编号计数器缺失")
            return
        if last != top or count != top:
            yield LedgerProblem(
                f"基金 {key[0]} {key[1]} 年：已编号至 {key[1]}-{last:06d}，"
                f"但现存凭证 {count} 张、最大凭证号 {top}（有凭证被删除）"
            )
            return


def _balance_problems() -> Iterator[LedgerProblem]:
    recomputed: dict[tuple[int, int], tuple[int, int]] = {
        (row["entry__fund_id"], row["account_id"]): (int(row["d"] or 0), int(row["c"] or 0))
        for row in JournalLine.objects.values("entry__fund_id", "account_id")
        .annotate(d=Sum("debit_fen"), c=Sum("credit_fen"))
        .order_by()
    }
    stored = {
        (b.fund_id, b.account_id): b
        for b in AccountBalance.objects.select_related("account").order_by("fund_id", "account")
    }
    for key in sorted(set(recomputed) | set(stored)):
        debit, credit = recomputed.get(key, (0, 0))
        row = stored.get(key)
        if row is None:
            if debit or credit:
                yield LedgerProblem(f"基金 {key[0]} 科目 id={key[1]}：缺少余额记录")
                return
            continue
        expected = row.account.signed(debit, credit)
        if row.balance_fen != expected:
            yield LedgerProblem(
                f"基金 {key[0]} 科目 {row.account}：记录余额 {format_fen(row.balance_fen)} 元，"
                f"按分录重算为 {format_fen(expected)} 元"
            )
            return


def missing_triggers() -> list[str]:
    expected = EXPECTED_TRIGGERS.get(connection.vendor, [])
    if not expected:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgenabled <> 'D'")
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in expected if name not in present]


def iter_problems() -> Iterator[LedgerProblem]:
    yield from _entry_problems(_bad_lines(), _bad_reversals())
    yield from _sequence_problems()
    yield from _balance_problems()
    missing = missing_triggers()
    if missing:
        yield LedgerProblem("数据库防篡改触发器缺失或已停用：" + "、".join(missing))


def first_problem() -> LedgerProblem | None:
    return next(iter_problems(), None)


def summary() -> LedgerSummary:
    totals = JournalLine.objects.aggregate(n=Count("pk"), d=Sum("debit_fen"), c=Sum("credit_fen"))
    return LedgerSummary(
        funds=Fund.objects.count(),
        entries=JournalEntry.objects.count(),
        reversals=JournalEntry.objects.filter(reverses__isnull=False).count(),
        lines=int(totals["n"] or 0),
        debit_fen=int(totals["d"] or 0),
        credit_fen=int(totals["c"] or 0),
    )
