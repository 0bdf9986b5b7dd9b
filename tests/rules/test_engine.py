"""The single-record engine (RULES.md §3–§4) on every golden case, both paths, plus its API."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime

import pytest

from huzhu.core.money import parse_yuan
from huzhu.rules import batch
from huzhu.rules.engine import (
    Amounts,
    InvalidSettlement,
    MemberInfo,
    Result,
    Settlement,
    YearState,
    amount_errors,
    cancel,
    compute_base,
    duplicate,
    locate,
    results_as_rows,
    run_sequential,
    settle,
)
from huzhu.rules.explain import render_explanation
from huzhu.rules.plan import Plan, PlanVersions, parse_plan
from huzhu.rules.reasons import Reason
from tests.rules.cases import Case, load_cases

CASES = load_cases()
NORMAL = MemberInfo("self", date(2026, 1, 1), date(2026, 12, 31))
HARDSHIP = MemberInfo(
    "self", date(2026, 1, 1), date(2026, 12, 31), ((date(2026, 1, 1), date(2026, 12, 31)),)
)


def test_the_case_file_has_cases() -> None:
    assert len(CASES) >= 25
    assert {case.name for case in CASES} >= {f"worked-example-{n}" for n in (1, 2)}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_benefit_case_single_record_path(case: Case) -> None:
    results = run_sequential(case.plan, {case.rows[0].certno: case.member}, case.rows)
    assert results_as_rows(results) == case.expected


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_benefit_case_batch_path(case: Case) -> None:
    members = {case.rows[0].certno: case.member}
    settlements, member_table = batch.tables_from_records(members, case.rows)
    got = batch.compute(case.plan, settlements, member_table).rows()
    assert [row[1:] for row in got] == [row[1:] for row in case.expected]


def _record(setl_id: str, base_yuan: str, adm: date, med_type: str = "21") -> Settlement:
    return Settlement(
        setl_id=setl_id,
        med_type=med_type,
        adm_date=adm,
        setl_time=datetime.combine(adm, datetime.min.time()),
        amounts=Amounts.of_base(parse_yuan(base_yuan)),
    )


def _settle_all(
    plan: Plan, member: MemberInfo, records: list[Settlement]
) -> tuple[list[Result], YearState | None]:
    state: YearState | None = None
    results = []
    for record in records:
        result, state = settle(plan, state, record, member)
        results.append(result)
    return results, state


# RULES.md §4 worked examples, numbers copied from the text (independent of the case file).
def test_worked_example_1_and_2(demo_plan: Plan) -> None:
    results, _ = _settle_all(
        demo_plan,
        NORMAL,
        [_record("A", "12000", date(2026, 2, 3)), _record("B", "3000", date(2026, 4, 20))],
    )
    assert [r.benefit for r in results] == [620000, 210000]
    assert results[1].cumulative_benefit == 830000


def test_worked_example_3_hardship(demo_plan: Plan) -> None:
    (result,), _ = _settle_all(demo_plan, HARDSHIP, [_record("A", "12000", date(2026, 3, 1))])
    assert result.benefit == 730000
    bands = result.explanation["schedule"]["bands"]
    assert [(b["rate"], b["amount_exact"]) for b in bands] == [
        ("0.60", "3000.00"),
        ("0.70", "3500.00"),
        ("0.80", "800.00"),
    ]


def test_worked_example_4_deductible(demo_plan: Plan) -> None:
    results, _ = _settle_all(
        demo_plan,
        NORMAL,
        [_record("A", "800", date(2026, 1, 15)), _record("B", "700", date(2026, 3, 8), "52")],
    )
    assert [(r.benefit, r.reason) for r in results] == [(0, Reason.DEDUCTIBLE), (25000, None)]


def test_worked_example_5_threshold(demo_plan: Plan) -> None:
    results, _ = _settle_all(
        demo_plan,
        NORMAL,
        [
            _record("A", "999.99", date(2026, 2, 10), "14"),
            _record("B", "1500", date(2026, 3, 10), "14"),
        ],
    )
    assert [(r.benefit, r.reason) for r in results] == [
        (0, Reason.BELOW_THRESHOLD),
        (30000, None),
    ]
    assert not results[0].counted


def test_worked_example_6_cap(demo_plan: Plan) -> None:
    results, state = _settle_all(
        demo_plan,
        NORMAL,
        [
            _record("A", "100000", date(2026, 5, 10)),
            _record("B", "80000", date(2026, 6, 6)),
            _record("C", "1", date(2026, 7, 1)),
        ],
    )
    assert [(r.benefit, r.reason) for r in results] == [
        (6780000, None),
        (1220000, None),
        (0, Reason.CAP_REACHED),
    ]
    assert state is not None and state.total == 8000000


def test_state_round_trips_through_json_at_every_step(demo_plan: Plan) -> None:
    """The database stores the state as JSON between calls: that must change nothing."""
    records = [
        _record("A", "200000", date(2026, 2, 1)),
        _record("B", "10000", date(2026, 3, 1)),
        _record("C", "700", date(2026, 4, 1)),
    ]
    direct, _ = _settle_all(demo_plan, NORMAL, records)
    state: YearState | None = None
    stored = []
    for record in records:
        result, state = settle(demo_plan, state, record, NORMAL)
        assert state is not None
        state = YearState.from_json(json.loads(json.dumps(state.to_json())))
        stored.append(result)
    assert [r.benefit for r in stored] == [r.benefit for r in direct]
    assert state is not None
    result, after = cancel(demo_plan, state, "A")
    # Left: bases 10000 and 700, B = 10700 → S(9700) = 2500 + 4700 × 0.60 = 5320.00.
    assert result.benefit == 532000 - 8000000
    assert after is not None
    assert after.total == sum(r.price for r in after.records)
    assert result.cumulative_benefit == after.total


def test_cancel_of_a_record_that_never_counted_changes_nothing(demo_plan: Plan) -> None:
    _, state = _settle_all(demo_plan, NORMAL, [_record("A", "5000", date(2026, 2, 1))])
    result, after = cancel(demo_plan, state, "ZZ", base=123)
    assert (result.benefit, result.base, result.reason) == (0, 123, Reason.CANCELLED)
    assert after == state


def test_settle_reasons_and_products(demo_plan: Plan) -> None:
    late = replace(_record("L", "3000", date(2026, 11, 20)), setl_time=datetime(2027, 4, 1, 0, 0))
    on_time = replace(
        _record("T", "3000", date(2026, 11, 20)), setl_time=datetime(2027, 3, 31, 23, 59, 59)
    )
    result, _ = settle(demo_plan, None, late, NORMAL)
    assert (result.reason, result.product) == (Reason.LATE_CLAIM, "inpatient")
    result, _ = settle(demo_plan, None, on_time, NORMAL)
    assert result.reason is None and result.benefit == 100000
    result, _ = settle(demo_plan, None, _record("N", "3000", date(2026, 2, 1)), None)
    assert (result.reason, result.product) == (Reason.NOT_FOUND, None)
    result, _ = settle(demo_plan, None, _record("C", "3000", date(2025, 12, 31)), NORMAL)
    assert (result.reason, result.product) == (Reason.NOT_COVERED, "inpatient")
    result, _ = settle(demo_plan, None, _record("M", "3000", date(2026, 2, 1), "11"), NORMAL)
    assert (result.reason, result.product) == (Reason.MED_TYPE_NOT_COVERED, None)
    family = replace(NORMAL, member_type="family")
    result, _ = settle(demo_plan, None, _record("F", "3000", date(2026, 2, 1), "14"), family)
    assert (result.reason, result.product) == (Reason.MED_TYPE_NOT_COVERED, None)
    result, _ = settle(demo_plan, None, _record("Z", "0", date(2026, 2, 1)), NORMAL)
    assert result.reason == Reason.ZERO_BASE and not result.counted


def test_duplicate_changes_nothing(demo_plan: Plan) -> None:
    record = _record("A", "12000", date(2026, 2, 3))
    _, state = settle(demo_plan, None, record, NORMAL)
    result = duplicate(demo_plan, state, record, NORMAL)
    assert (result.reason, result.benefit, result.cumulative_benefit) == (
        Reason.DUPLICATE,
        0,
        620000,
    )


def test_base_and_rejections() -> None:
    amounts = Amounts(
        medfee_sumamt=3117000,
        inscp_scp_amt=3000000,
        fund_pay_sumamt=1800000,
        hosp_part_amt=0,
        fulamt_ownpay_amt=85000,
        preselfpay_amt=32000,
    )
    assert compute_base(amounts) == 1200000
    assert compute_base(replace(amounts, other_reimbursed=5000000)) == 0
    assert amount_errors(amounts) == []
    errors = dict(amount_errors(replace(amounts, hosp_part_amt=1400000)))
    assert "fund_pay_sumamt" in errors
    errors = dict(amount_errors(replace(amounts, inscp_scp_amt=4000000)))
    assert "inscp_scp_amt" in errors
    errors = dict(amount_errors(replace(amounts, overlmt_selfpay=-1)))
    assert "overlmt_selfpay" in errors
    bad = Settlement(
        "X", "21", date(2026, 2, 1), datetime(2026, 2, 1), replace(amounts, hosp_part_amt=-1)
    )
    with pytest.raises(InvalidSettlement) as caught:
        settle(Plan.__new__(Plan), None, bad, NORMAL)  # rejected before the plan is looked at
    assert caught.value.errors[0][0] == "hosp_part_amt"


def test_state_must_match_the_record(demo_plan: Plan) -> None:
    record = _record("A", "12000", date(2026, 2, 3))
    assert locate(demo_plan, record, NORMAL) == ("inpatient", 2026)
    with pytest.raises(ValueError, match="状态"):
        settle(demo_plan, YearState.empty("special_outpatient", 2026), record, NORMAL)


def test_plan_revision_keeps_the_running_state(demo_plan: Plan) -> None:
    """RULES.md §1: a revision prices later admissions; deductible and cap keep running."""
    data = demo_plan.to_dict()
    data["code"] = "HUNAN-2026-R1"
    data["effective_from"] = "2026-07-01"
    data["products"]["inpatient"]["bands"] = [{"rate": "0.90"}]
    revision, errors = parse_plan(data)
    assert errors == [] and revision is not None
    versions = PlanVersions([demo_plan, revision])
    first, state = settle(versions, None, _record("A", "1500", date(2026, 3, 1)), NORMAL)
    assert (first.benefit, first.plan_code) == (25000, "HUNAN-2026")
    second, state = settle(versions, state, _record("B", "1000", date(2026, 7, 2)), NORMAL)
    # Deductible already used: the revision's 90% applies to B_i − d over [500, 1500] → 1350 − 450.
    assert (second.benefit, second.plan_code) == (90000, "HUNAN-2026-R1")
    result, state = cancel(versions, state, "A")
    # Left alone, B is priced by its own version from 0: S(0) = 0 under the deductible of 1000.
    assert result.benefit == -(25000 + 90000)
    assert state is not None and state.total == 0


def test_explanations_render_as_chinese_sentences(demo_plan: Plan) -> None:
    (result,), _ = _settle_all(demo_plan, NORMAL, [_record("A", "12000", date(2026, 2, 3))])
    explanation = result.explanation
    assert json.loads(json.dumps(explanation)) == explanation  # JSON-able
    assert explanation["deductible"]["used_by_this_record"] == "1000.00"
    assert explanation["schedule"]["total_rounded"] == "6200.00"
    assert [b["amount_exact"] for b in explanation["schedule"]["bands"]] == [
        "2500.00",
        "3000.00",
        "700.00",
    ]
    text = render_explanation(explanation)
    assert "起付线 1000.00 元" in text
    assert "5000.00 元 × 50% = 2500.00 元" in text
    assert "本次补助 6200.00 元" in text
    (zero,), _ = _settle_all(demo_plan, NORMAL, [_record("Z", "999.99", date(2026, 2, 3), "14")])
    assert "门槛" in render_explanation(zero.explanation)


def test_explanation_shows_exact_band_amounts_and_one_rounding(demo_plan: Plan) -> None:
    data = demo_plan.to_dict()
    data["products"]["inpatient"]["bands"] = [
        {"upto": "0.01", "rate": "0.3333"},
        {"rate": "0.3333"},
    ]
    data["products"]["inpatient"]["deductible"] = "0.00"
    plan, errors = parse_plan(data)
    assert errors == [] and plan is not None
    (result,), _ = _settle_all(plan, NORMAL, [_record("A", "0.05", date(2026, 2, 3))])
    schedule = result.explanation["schedule"]
    # 1 fen × 0.3333 + 4 fen × 0.3333 = 1.6665 fen → rounds once to 2 fen (each band alone: 0 + 1).
    assert [b["amount_exact"] for b in schedule["bands"]] == ["0.003333", "0.013332"]
    assert schedule["total_exact"] == "0.016665"
    assert result.benefit == 2


def test_cap_effect_is_explained(demo_plan: Plan) -> None:
    results, _ = _settle_all(
        demo_plan,
        NORMAL,
        [_record("A", "100000", date(2026, 5, 10)), _record("B", "80000", date(2026, 6, 6))],
    )
    cap = results[1].explanation["cap"]
    assert cap["limited"] is True
    assert cap["room"] == "12200.00"
    assert "封顶线" in render_explanation(results[1].explanation)
    cancelled, _ = cancel(
        demo_plan, _settle_all(demo_plan, NORMAL, [_record("A", "12000", date(2026, 2, 3))])[1], "A"
    )
    assert "撤销" in render_explanation(cancelled.explanation)


def test_a_refused_record_shows_its_year_and_changes_nothing(demo_plan: Plan) -> None:
    from huzhu.rules.engine import rejected

    _, state = settle(demo_plan, None, _record("A", "12000", date(2026, 2, 3)), NORMAL)
    record = _record("B", "3000", date(2026, 4, 1))
    result = rejected(demo_plan, state, record, NORMAL, Reason.NO_CONSENT)
    assert (result.reason, result.product, result.benefit, result.cumulative_benefit) == (
        Reason.NO_CONSENT,
        "inpatient",
        0,
        620000,
    )
    assert result.explanation["reason"]["code"] == "NO_CONSENT"
    assert "授权" in render_explanation(result.explanation)
