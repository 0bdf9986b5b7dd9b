"""Hypothesis strategies: random valid plans, members and ordered settlement rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from huzhu.core.money import format_fen
from huzhu.rules.engine import Amounts, MemberInfo, Row, Settlement
from huzhu.rules.plan import Plan, parse_plan

YEAR_START = date(2026, 1, 1)
CERTNOS = ("M1", "M2", "M3", "UNKNOWN")


def _rate(units: int) -> str:
    return f"{units // 10000}.{units % 10000:04d}"


@st.composite
def schedules(draw: st.DrawFn, med_types: list[str], own_contribution: bool) -> dict[str, Any]:
    mode = draw(st.sampled_from(["progressive", "whole"]))
    scope = "admission" if mode == "whole" else draw(st.sampled_from(["year", "admission"]))
    count = draw(st.integers(1, 4))
    uppers = sorted(
        draw(st.sets(st.integers(1, 3_000_000), min_size=count - 1, max_size=count - 1))
    )
    rate_pool = st.one_of(st.sampled_from([0, 2000, 5000, 10000]), st.integers(0, 10000))
    rates = [draw(rate_pool) for _ in range(count)]
    if mode == "whole":
        rates.sort()  # RULES.md §1 rule 7
    bands: list[dict[str, str]] = [
        {"upto": format_fen(upper), "rate": _rate(rate)}
        for upper, rate in zip(uppers, rates[:-1], strict=True)
    ]
    bands.append({"rate": _rate(rates[-1])})
    data: dict[str, Any] = {
        "med_types": med_types,
        "deductible": format_fen(draw(st.sampled_from([0, 100000, draw(st.integers(0, 500_000))]))),
        "deductible_scope": scope,
        "threshold": format_fen(draw(st.sampled_from([0, 0, draw(st.integers(0, 200_000))]))),
        "band_mode": mode,
        "bands": bands,
        "annual_cap": format_fen(draw(st.integers(0, 5_000_000))),
    }
    if own_contribution:
        data = {"contribution": "60.00", **data}
    return data


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    products: dict[str, Any] = {"inpatient": draw(schedules(["21", "52"], False))}
    if draw(st.booleans()):
        products["special_outpatient"] = draw(schedules(["14"], False))
    if draw(st.booleans()):
        products["family_inpatient"] = draw(schedules(["21"], True))
    data = {
        "code": "P",
        "name": "随机计划",
        "region": "430000",
        "year": "2026",
        "resident_individual_contribution": "400.00",
        "contribution": "120.00",
        "risk_reserve_rate": "0.08",
        "operating_cost_cap_rate": "0.05",
        "claim_deadline": "2027-03-31",
        "min_age": "16",
        "flexible_extension_months": "0",
        "hardship": {
            "contribution_waiver": "1.00",
            "rate_bonus": _rate(draw(st.integers(0, 5000))),
            "cap_multiplier": _rate(draw(st.integers(10000, 20000))),
        },
        "products": products,
    }
    plan, errors = parse_plan(data)
    assert plan is not None, errors
    return plan


def _day(offset: int) -> date:
    return YEAR_START + timedelta(days=offset)


@st.composite
def members(draw: st.DrawFn) -> dict[str, MemberInfo]:
    result = {}
    for certno in CERTNOS[:-1]:
        start = draw(st.sampled_from([0, 0, draw(st.integers(0, 300))]))
        end = draw(st.integers(start, 364))
        periods: tuple[tuple[date | None, date | None], ...] = ()
        kind = draw(st.sampled_from(["none", "all", "from", "until", "window", "window"]))
        if kind == "all":
            periods = ((None, None),)
        elif kind == "from":
            periods = ((_day(draw(st.integers(0, 364))), None),)
        elif kind == "until":
            periods = ((None, _day(draw(st.integers(0, 364)))),)
        elif kind == "window":
            a = draw(st.integers(0, 364))
            periods = ((_day(a), _day(draw(st.integers(a, 364)))),)
        result[certno] = MemberInfo(
            member_type=draw(st.sampled_from(["self", "self", "self", "family"])),
            coverage_start=_day(start),
            coverage_end=_day(end),
            hardship_periods=periods,
        )
    return result


BASES = st.one_of(
    st.integers(0, 300_000),
    st.integers(0, 3_000_000),
    st.sampled_from([0, 1, 2, 99_999, 100_000, 100_001, 500_000, 1_000_000]),
)


@st.composite
def settlement_rows(draw: st.DrawFn) -> list[Row]:
    rows: list[Row] = []
    count = draw(st.integers(1, 40))
    for _ in range(count):
        setl_id = f"S{draw(st.integers(0, 30))}"
        # Most rows go to one member so that years hold several records (cancels re-price,
        # hardship changes inside the year).
        certno = draw(st.sampled_from(CERTNOS[:1] * 5 + CERTNOS))
        kind = draw(st.sampled_from(["settle"] * 6 + ["cancel"] * 2 + ["invalid"]))
        if kind == "invalid":
            rows.append(Row(setl_id, certno, draw(st.sampled_from(["settle", "cancel"])), False))
            continue
        if kind == "cancel":
            rows.append(Row(setl_id, certno, "cancel", True))
            continue
        adm = _day(draw(st.integers(-10, 370)))
        setl = adm + timedelta(days=draw(st.sampled_from([0, 3, draw(st.integers(0, 500))])))
        amounts = Amounts.of_base(draw(BASES))
        if draw(st.integers(0, 9)) == 0:
            extra = draw(st.integers(0, 50_000))
            amounts = Amounts(
                medfee_sumamt=amounts.medfee_sumamt + 2 * extra,
                inscp_scp_amt=amounts.inscp_scp_amt,
                fund_pay_sumamt=extra,
                hosp_part_amt=0,
                other_reimbursed=draw(st.integers(0, 10_000)),
            )
        settlement = Settlement(
            setl_id=setl_id,
            med_type=draw(st.sampled_from(["21", "21", "21", "52", "14", "14", "11"])),
            adm_date=adm,
            setl_time=datetime.combine(setl, datetime.min.time()),
            amounts=amounts,
        )
        rows.append(Row(setl_id, certno, "settle", True, settlement))
    return rows
