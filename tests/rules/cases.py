"""Loading the golden benefit cases (../shared/testdata/benefit-cases.yaml) for the engine tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml

from huzhu.core.money import parse_yuan
from huzhu.rules.engine import Amounts, MemberInfo, Row, Settlement
from huzhu.rules.plan import Plan, parse_plan
from tests.rules.conftest import TESTDATA

CERTNO = "430102198503120018"


@dataclass(frozen=True)
class Case:
    name: str
    plan: Plan
    member: MemberInfo
    rows: list[Row]
    expected: list[tuple[str, str, int, int, int, str]]


def _merge(base: Any, override: Any) -> Any:
    """Deep merge as the case file says: mappings key by key, lists (and scalars) replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return override


def _str_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _str_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_str_tree(v) for v in value]
    return value if value is None else str(value)


def load_cases() -> list[Case]:
    document = yaml.safe_load((TESTDATA / "benefit-cases.yaml").read_text(encoding="utf-8"))
    plan_text = (TESTDATA / document["plan"]).read_text(encoding="utf-8")
    base_plan = yaml.load(plan_text, Loader=yaml.BaseLoader)  # noqa: S506 - text only
    cases = []
    for raw in document["cases"]:
        data = _merge(base_plan, _str_tree(raw.get("plan_overrides") or {}))
        plan, errors = parse_plan(data)
        assert plan is not None, (raw["name"], errors)
        member_raw = raw["member"]
        hardship = member_raw.get("hardship")
        member = MemberInfo(
            member_type=member_raw["member_type"],
            coverage_start=date.fromisoformat(str(member_raw["coverage"][0])),
            coverage_end=date.fromisoformat(str(member_raw["coverage"][1])),
            hardship_periods=(
                ((date.fromisoformat(str(hardship[0])), date.fromisoformat(str(hardship[1]))),)
                if hardship
                else ()
            ),
        )
        rows: list[Row] = []
        expected = []
        for item in raw["records"]:
            record = item["record"]
            if record["record_type"] == "settle":
                settlement = Settlement(
                    setl_id=record["setl_id"],
                    med_type=str(record["med_type"]),
                    adm_date=date.fromisoformat(str(record["adm_date"])),
                    setl_time=datetime.strptime(record["setl_time"], "%Y-%m-%d %H:%M:%S"),
                    amounts=Amounts.of_base(parse_yuan(str(record["base"]))),
                )
                rows.append(Row(record["setl_id"], CERTNO, "settle", True, settlement))
            else:
                rows.append(Row(record["setl_id"], CERTNO, "cancel", True))
            expect = item["expect"]
            expected.append(
                (
                    record["record_type"],
                    expect["product"] or "",
                    parse_yuan(str(expect["base"])),
                    _signed_fen(str(expect["benefit"])),
                    parse_yuan(str(expect["cumulative_benefit"])),
                    expect["reason"] or "",
                )
            )
        cases.append(Case(raw["name"], plan, member, rows, expected))
    return cases


def _signed_fen(text: str) -> int:
    return -parse_yuan(text[1:]) if text.startswith("-") else parse_yuan(text)
