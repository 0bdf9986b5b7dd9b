"""Lump sums (RULES.md §5): critical-illness screening and payment, maternity."""

from __future__ import annotations

from datetime import date

import pytest

from huzhu.rules.engine import MemberInfo
from huzhu.rules.lumpsum import (
    CriticalIllnessState,
    MaternityState,
    Severity,
    birth_event_key,
    critical_illness,
    maternity,
    maternity_eligible,
    screen_diagnoses,
)
from huzhu.rules.plan import Plan
from huzhu.rules.reasons import Reason

MEMBER = MemberInfo("self", date(2026, 1, 1), date(2026, 12, 31))


@pytest.mark.parametrize(
    ("codes", "diseases"),
    [
        ("C00.000", [1]),
        ("C97.x00", [1]),
        ("c50.900", [1]),
        ("C34.900;C50.900", [1]),  # one candidate per disease
        ("D00.000", []),  # in situ: not a candidate
        ("D09.900;D10.000;D48.900", []),
        ("C98.000", []),
        ("I21.000", [2]),
        ("I20.000;I22.000", []),
        ("I60.900", [3]),
        ("I63.900;I10.x00", [3]),
        ("I69.300", [3]),
        ("I70.000", []),
        ("Z94.000", [4]),
        ("N18.5", [6]),
        ("N18.500", [6]),
        ("N18.4", []),
        ("N18", []),
        ("", []),
        (" ; ;J18.900", []),
        ("Z94.1;I21.9;C61", [1, 2, 4]),
    ],
)
def test_screening_raises_candidates_only(codes: str, diseases: list[int]) -> None:
    candidates = screen_diagnoses(codes)
    assert [c.disease for c in candidates] == diseases
    for candidate in candidates:
        assert candidate.documents  # always for a reviewer, with documents
        assert candidate.to_json()["name"]


def test_screening_severities() -> None:
    (cancer,) = screen_diagnoses(["C50.9"])
    assert cancer.severities == (Severity.SEVERE, Severity.MILD)
    assert cancer.to_json()["mild_name"] == "恶性肿瘤——轻度"
    (kidney,) = screen_diagnoses(["N18.5"])
    assert kidney.severities == (Severity.SEVERE,)


def test_critical_illness_mild_then_severe_pays_the_difference(demo_plan: Plan) -> None:
    mild, state = critical_illness(
        demo_plan, None, MEMBER, disease=1, severity=Severity.MILD, diagnosis_date=date(2026, 3, 1)
    )
    assert (mild.amount, mild.reason) == (300000, None)
    severe, state = critical_illness(
        demo_plan,
        state,
        MEMBER,
        disease=1,
        severity=Severity.SEVERE,
        diagnosis_date=date(2026, 8, 1),
    )
    assert severe.amount == 1000000 - 300000
    assert state.paid_total == 1000000
    again, state = critical_illness(
        demo_plan,
        state,
        MEMBER,
        disease=2,
        severity=Severity.SEVERE,
        diagnosis_date=date(2026, 9, 1),
    )
    assert (again.amount, again.reason) == (0, Reason.CAP_REACHED)
    assert CriticalIllnessState.from_json(state.to_json()) == state
    assert "7000.00" in severe.text()


def test_critical_illness_at_most_severe_in_total_and_once_per_disease(demo_plan: Plan) -> None:
    state = None
    amounts = []
    for disease in (1, 2, 3, 1):
        result, state = critical_illness(
            demo_plan,
            state,
            MEMBER,
            disease=disease,
            severity=Severity.MILD,
            diagnosis_date=date(2026, 3, 1),
        )
        amounts.append((result.amount, result.reason))
    assert amounts == [(300000, None), (300000, None), (300000, None), (0, Reason.DUPLICATE)]
    result, state = critical_illness(
        demo_plan,
        state,
        MEMBER,
        disease=4,
        severity=Severity.SEVERE,
        diagnosis_date=date(2026, 5, 1),
    )
    assert result.amount == 100000
    assert state is not None and state.paid_total == 1000000


def test_critical_illness_coverage_and_unknown_forms(demo_plan: Plan) -> None:
    result, _ = critical_illness(
        demo_plan,
        None,
        MEMBER,
        disease=1,
        severity=Severity.SEVERE,
        diagnosis_date=date(2027, 1, 2),
    )
    assert (result.amount, result.reason) == (0, Reason.NOT_COVERED)
    with pytest.raises(ValueError):
        critical_illness(
            demo_plan,
            None,
            MEMBER,
            disease=6,
            severity=Severity.MILD,
            diagnosis_date=date(2026, 1, 2),
        )


def test_maternity_per_child_once_per_birth(demo_plan: Plan) -> None:
    key = birth_event_key("43010319900708002x", date(2026, 5, 1))
    assert key == "43010319900708002X:2026-05-01"
    twins, state = maternity(
        demo_plan, None, MEMBER, event_key=key, newborns=2, birth_date=date(2026, 5, 1)
    )
    assert (twins.amount, twins.reason) == (200000, None)
    again, state = maternity(
        demo_plan, state, MEMBER, event_key=key, newborns=2, birth_date=date(2026, 5, 1)
    )
    assert (again.amount, again.reason) == (0, Reason.DUPLICATE)
    other, _ = maternity(
        demo_plan,
        MaternityState(),
        MEMBER,
        event_key="other",
        newborns=1,
        birth_date=date(2027, 1, 1),
    )
    assert other.reason == Reason.NOT_COVERED
    with pytest.raises(ValueError):
        maternity(demo_plan, None, MEMBER, event_key=key, newborns=0, birth_date=date(2026, 5, 1))
    assert maternity_eligible("52") and not maternity_eligible("21")
    assert maternity_eligible(None, birth_certificate=True)
