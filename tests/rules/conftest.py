"""Fixtures of the engine tests: pure Python, no database, no Django import."""

from __future__ import annotations

from pathlib import Path

import pytest

from huzhu.rules.plan import Plan, load_plan_file

REPO = Path(__file__).resolve().parents[2]
#: /work/shared sits beside the repository as ../shared (the specification and golden cases).
TESTDATA = (REPO / ".." / "shared" / "testdata").resolve()
PLANS = REPO / "huzhu" / "rules" / "plans"


@pytest.fixture(scope="session")
def demo_plan() -> Plan:
    plan, errors = load_plan_file(TESTDATA / "adjudicate" / "plan.yaml")
    assert errors == []
    assert plan is not None
    return plan
