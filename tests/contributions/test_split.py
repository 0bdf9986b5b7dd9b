"""The co-funding arithmetic (RULES.md §6; R4, R8): percentages rounded half-up with the remainder
to the employer, amounts that must add up, the hardship waiver, family fees — and, as a property
over random splits and member sets, that every invoice adds up exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huzhu.contributions.funding_split import (
    BASIS_POINTS,
    DEFAULT_RULE,
    EMPLOYER,
    INDIVIDUAL,
    MODE_AMOUNT,
    MODE_PERCENT,
    UNION,
    UNION_WAIVER,
    Parts,
    Person,
    SplitMismatch,
    SplitRule,
    apply_waiver,
    format_bp,
    payer_totals,
    percent_to_bp,
    price_person,
    split_contribution,
)


def pct(individual: int, union: int) -> SplitRule:
    return SplitRule(mode=MODE_PERCENT, individual_bp=individual, union_bp=union)


@pytest.mark.parametrize(
    ("rule", "contribution", "expected"),
    [
        # 30 % / 20 % of 120.00: exact, the employer pays the remaining 50 %
        (pct(3000, 2000), 12000, Parts(3600, 6000, 2400)),
        # 33.33 % of 120.00 = 39.996 → 40.00 (half-up to the fen), twice; the employer 40.00
        (pct(3333, 3333), 12000, Parts(4000, 4000, 4000)),
        # 12.5 % of 0.99 = 0.12375 → 0.12; 37.5 % → 0.37125 → 0.37; employer the rest 0.50
        (pct(1250, 3750), 99, Parts(12, 50, 37)),
        # a half fen rounds up: 50 % of 1.01 = 0.505 → 0.51 (individual); 25 % → 0.2525 → 0.25
        (pct(5000, 2500), 101, Parts(51, 25, 25)),
        # the remainder to the employer even when the others round up: 1/3 each of 1.00
        (pct(3333, 3333), 100, Parts(33, 34, 33)),
        # employer 0 % and both halves round up: the union gives the fen back (no negative part)
        (pct(5000, 5000), 12345, Parts(6173, 0, 6172)),
        # individual only
        (DEFAULT_RULE, 12000, Parts(12000, 0, 0)),
        # employer only
        (pct(0, 0), 12000, Parts(0, 12000, 0)),
    ],
)
def test_percentage_examples(rule: SplitRule, contribution: int, expected: Parts) -> None:
    parts = split_contribution(rule, contribution)
    assert parts == expected
    assert parts.total == contribution


def test_amounts_must_add_up_to_the_contribution() -> None:
    rule = SplitRule(mode=MODE_AMOUNT, individual_fen=4000, employer_fen=6000, union_fen=2000)
    assert split_contribution(rule, 12000) == Parts(4000, 6000, 2000)
    with pytest.raises(SplitMismatch, match=r"分担金额合计 120\.00 元，与互助金 150\.00 元不符"):
        split_contribution(rule, 15000)


@pytest.mark.parametrize(
    ("individual", "rate", "waiver"),
    [
        (3600, Fraction(1), 3600),  # the demo plan: the union takes the whole individual part
        (3333, Fraction(1, 2), 1667),  # 16.665 → 16.67 (half-up)
        (3333, Fraction(0), 0),
        (1, Fraction(1, 2), 1),  # 0.005 → 0.01
    ],
)
def test_hardship_waiver(individual: int, rate: Fraction, waiver: int) -> None:
    parts = apply_waiver(Parts(individual, 6000, 2400), rate)
    assert parts == Parts(individual - waiver, 6000, 2400, waiver)


def test_person_pricing_hardship_family_and_units() -> None:
    rule = pct(3000, 2000)
    kwargs = {"rule": rule, "contribution_fen": 12000, "family_contribution_fen": 6000}
    worker = Person(key=1, unit_id=7, family=False, hardship=False)
    hardship = Person(key=2, unit_id=7, family=False, hardship=True)
    family = Person(key=3, unit_id=7, family=True, hardship=True)
    rate = Fraction(1)
    assert price_person(worker, waiver_rate=rate, **kwargs) == Parts(3600, 6000, 2400, 0)
    assert price_person(hardship, waiver_rate=rate, **kwargs) == Parts(0, 6000, 2400, 3600)
    # a family member's own fee is paid by the worker in full: no split, no waiver
    assert price_person(family, waiver_rate=rate, **kwargs) == Parts(6000, 0, 0, 0)
    with pytest.raises(ValueError, match="不含家庭成员"):
        price_person(
            family,
            rule=rule,
            contribution_fen=12000,
            family_contribution_fen=None,
            waiver_rate=rate,
        )
    with pytest.raises(ValueError, match="无单位人员"):
        price_person(
            Person(key=4, unit_id=None, family=False, hardship=False), waiver_rate=rate, **kwargs
        )


def test_payer_totals_per_payer() -> None:
    totals = payer_totals(
        [
            (7, Parts(3600, 6000, 2400)),
            (7, Parts(0, 6000, 2400, 3600)),
            (8, Parts(12000, 0, 0)),
            (None, Parts(6000, 0, 0)),
        ]
    )
    assert totals == {
        (INDIVIDUAL, None): 21600,
        (EMPLOYER, 7): 12000,
        (UNION, None): 4800,
        (UNION_WAIVER, None): 3600,
    }


@pytest.mark.parametrize(
    ("text", "bp"),
    [
        ("30", 3000),
        ("33.33", 3333),
        ("33.3", 3330),
        ("0", 0),
        ("100", 10000),
        ("50%", 5000),
        ("100.01", None),
        ("-1", None),
        ("33.333", None),
        ("３０", None),
        ("abc", None),
        ("", None),
        (".5", None),
    ],
)
def test_percent_parsing(text: str, bp: int | None) -> None:
    assert percent_to_bp(text) == bp
    if bp is not None:
        assert percent_to_bp(format_bp(bp)) == bp


# --- the property: every invoice adds up exactly -----------------------------------------------
rules = st.one_of(
    st.builds(
        lambda i, u: pct(i, u),
        st.integers(0, BASIS_POINTS),
        st.integers(0, BASIS_POINTS),
    ).filter(lambda r: r.individual_bp + r.union_bp <= BASIS_POINTS),
    st.tuples(st.integers(0, 20000), st.integers(0, 20000), st.integers(0, 20000)).map(
        lambda t: SplitRule(
            mode=MODE_AMOUNT, individual_fen=t[0], employer_fen=t[1], union_fen=t[2]
        )
    ),
)
people = st.lists(
    st.builds(
        Person,
        key=st.integers(1, 10**6),
        unit_id=st.sampled_from([1, 2, 3]),
        family=st.booleans(),
        hardship=st.booleans(),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    unit_rules=st.fixed_dictionaries({1: rules, 2: rules, 3: st.just(DEFAULT_RULE)}),
    persons=people,
    contribution=st.integers(1, 30000),
    family_fee=st.integers(1, 15000),
    waiver_num=st.integers(0, 10000),
)
def test_invoice_totals_equal_lines_equal_contribution_times_persons(
    unit_rules: dict[int, SplitRule],
    persons: list[Person],
    contribution: int,
    family_fee: int,
    waiver_num: int,
) -> None:
    waiver = Fraction(waiver_num, 10000)
    lines = []
    for person in persons:
        rule = unit_rules[person.unit_id or 3]
        if rule.mode == MODE_AMOUNT:
            # An amount agreement always adds up to the contribution it is invoiced against
            # (the service refuses the invoice otherwise): scale the drawn amounts to it.
            drawn = rule.individual_fen + rule.employer_fen + rule.union_fen or 1
            individual = rule.individual_fen * contribution // drawn
            employer = rule.employer_fen * contribution // drawn
            rule = SplitRule(
                mode=MODE_AMOUNT,
                individual_fen=individual,
                employer_fen=employer,
                union_fen=contribution - individual - employer,
            )
        parts = price_person(
            person,
            rule=rule,
            contribution_fen=contribution,
            family_contribution_fen=family_fee,
            waiver_rate=waiver,
        )
        assert min(parts.individual, parts.employer, parts.union, parts.waiver) >= 0
        assert parts.total == (family_fee if person.family else contribution)
        if not person.hardship or person.family:
            assert parts.waiver == 0
        lines.append((person.unit_id, parts))
    totals = payer_totals(lines)
    own = sum(1 for p in persons if not p.family)
    family = len(persons) - own
    assert sum(totals.values()) == sum(p.total for _, p in lines)
    assert sum(totals.values()) == contribution * own + family_fee * family
    assert all(value > 0 for value in totals.values())
    for unit_id in (1, 2, 3):
        assert totals.get((EMPLOYER, unit_id), 0) == sum(
            p.employer for u, p in lines if u == unit_id
        )
