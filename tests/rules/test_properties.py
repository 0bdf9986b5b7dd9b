"""Properties of RULES.md §4 and the promise of two paths, one answer.

Random valid plans and random record sequences (cancels, duplicates, hardship periods, several
members, unknown members, invalid rows) go through the single-record path (``run_sequential``,
built on ``settle``/``cancel``) and the vectorized batch path; the results must be identical.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huzhu.rules import batch
from huzhu.rules.engine import (
    Amounts,
    MemberInfo,
    Result,
    Row,
    Settlement,
    YearState,
    results_as_rows,
    run_sequential,
    settle,
)
from huzhu.rules.plan import Plan
from huzhu.rules.pricing import price_list, terms_for
from huzhu.rules.reasons import Reason
from tests.rules.strategies import BASES, members, plans, settlement_rows

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(plan=plans(), people=members(), rows=settlement_rows())
def test_batch_and_single_record_paths_agree(
    plan: Plan, people: dict[str, MemberInfo], rows: list[Row]
) -> None:
    single = results_as_rows(run_sequential(plan, people, rows))
    settlements, member_table = batch.tables_from_records(people, rows)
    vectorized = batch.compute(plan, settlements, member_table).rows()
    assert [row[1:] for row in vectorized] == [row[1:] for row in single]


def _groups(
    plan: Plan, people: dict[str, MemberInfo], rows: list[Row], results: list[Result]
) -> dict[tuple[str, str, int], list[tuple[Row, Result]]]:
    """Rows with a product, by the (certno, product, year) whose total they change or show."""
    originals: dict[str, Row] = {}
    groups: dict[tuple[str, str, int], list[tuple[Row, Result]]] = defaultdict(list)
    for row, result in zip(rows, results, strict=True):
        if row.valid and row.record_type == "settle" and row.setl_id not in originals:
            originals[row.setl_id] = row
        if result.product is None or result.year is None:
            continue
        owner = row
        if row.record_type == "cancel":
            owner = originals[row.setl_id]
        groups[(owner.certno, result.product, result.year)].append((row, result))
    return groups


@PROPERTY
@given(plan=plans(), people=members(), rows=settlement_rows())
def test_year_invariants(plan: Plan, people: dict[str, MemberInfo], rows: list[Row]) -> None:
    results = run_sequential(plan, people, rows)
    for row, result in zip(rows, results, strict=True):
        if result.record_type == "settle":
            # No settle benefit above its record's base, and never negative.
            assert 0 <= result.benefit <= result.base
        if result.reason is not None and result.record_type == "settle":
            assert result.benefit == 0
        if result.reason is None:
            assert result.benefit > 0
        del row
    for (certno, product, _year), items in _groups(plan, people, rows, results).items():
        total = 0
        for _row, result in items:
            total += result.benefit
            # The running total shown is the net sum of the benefits so far.
            assert result.cumulative_benefit == total
        # ... and it equals the entitlement of the surviving records, priced afresh.
        cancelled = {row.setl_id for row, r in items if r.reason is Reason.CANCELLED}
        surviving = [
            (row, r)
            for row, r in items
            if r.counted and r.record_type == "settle" and row.setl_id not in cancelled
        ]
        member = people[certno]
        priced = price_list(
            [
                (
                    terms_for(plan, product, member.hardship_on(row.settlement.adm_date)),
                    r.base,
                )
                for row, r in surviving
                if row.settlement is not None
            ]
        )
        assert total == sum(priced)
        # The net total never exceeds the cap (the hardship cap where a record had it — any
        # counted record, also one cancelled later: before its cancellation it was in the list).
        caps = [terms_for(plan, product, False).cap]
        counted = [row for row, r in items if r.counted and r.record_type == "settle"]
        if any(member.hardship_on(row.settlement.adm_date) for row in counted if row.settlement):
            caps.append(terms_for(plan, product, True).cap)
        assert all(r.cumulative_benefit <= max(caps) for _, r in items)


@PROPERTY
@given(
    plan=plans(),
    people=members(),
    rows=settlement_rows(),
    first=BASES,
    second=BASES,
    hardship=st.booleans(),
    med_type=st.sampled_from(["21", "14"]),
)
def test_a_larger_base_never_lowers_a_benefit(
    plan: Plan,
    people: dict[str, MemberInfo],
    rows: list[Row],
    first: int,
    second: int,
    hardship: bool,
    med_type: str,
) -> None:
    """Monotonicity of one record's benefit in its base, whatever the year before it."""
    low, high = sorted((first, second))
    member = MemberInfo(
        "self",
        date(2026, 1, 1),
        date(2026, 12, 31),
        ((None, None),) if hardship else (),
    )
    state: YearState | None = None
    product = plan.route("self", med_type)
    if product is None:
        return
    for row in rows:
        if row.valid and row.settlement is not None and row.settlement.med_type == med_type:
            record = row.settlement
            if record.adm_date.year == 2026 and record.setl_time.date() <= plan.claim_deadline:
                _, state = settle(plan, state, record, member)

    def benefit(base: int) -> int:
        record = Settlement(
            "NEW", med_type, date(2026, 6, 1), datetime(2026, 6, 2), Amounts.of_base(base)
        )
        result, _ = settle(plan, state, record, member)
        return result.benefit

    assert benefit(low) <= benefit(high)
