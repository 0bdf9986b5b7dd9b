"""Fixtures for the enrollment tests: the org tree, the Hunan plan of 2026 (and a 2027 copy)
active, roster files built in memory (xlsx with openpyxl, CSV in UTF-8 or GBK)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import Workbook

from huzhu.enrollment.roster import COLUMNS
from huzhu.plans.models import PlanVersion
from huzhu.plans.services import activate_plan, import_plan
from huzhu.rules.plan import load_plan_text
from tests import factories

REPO = Path(__file__).resolve().parents[2]
HUNAN = REPO / "huzhu/rules/plans/hunan-2026.yaml"
HEADERS = list(COLUMNS.values())


def plan_text(year: int = 2026, **changes: Any) -> str:
    plan, errors = load_plan_text(HUNAN.read_text(encoding="utf-8"))
    assert plan is not None, errors
    data = plan.to_dict(references=False)
    if year != 2026:
        data["code"] = f"HUNAN-{year}"
        data["name"] = f"湖南省在职职工互助保障计划（{year}年度）"
        data["year"] = year
        data["claim_deadline"] = f"{year + 1}-03-31"
    data.update(changes)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def active_plan(year: int = 2026, **changes: Any) -> PlanVersion:
    version = import_plan(acting_user=None, yaml_text=plan_text(year, **changes))
    if version.status != "active":
        activate_plan(acting_user=None, plan_version=version)
    version.refresh_from_db()
    return version


def row(
    name: str = "张伟",
    id_number: Any = "",
    phone: Any = "",
    uscc: Any = "",
    employment: str = "合同",
    category: str = "",
    hardship: str = "",
    consent: str = "",
    account: Any = "",
    bank: str = "",
) -> list[Any]:
    return [name, id_number, phone, uscc, employment, category, hardship, consent, account, bank]


def xlsx(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str] = HEADERS,
    sheet: str = "花名册",
    text_ids: bool = True,
) -> bytes:
    workbook = Workbook()
    ws = workbook.active
    assert ws is not None
    ws.title = sheet
    ws.append(list(headers))
    for values in rows:
        ws.append(list(values))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(
    rows: Sequence[Sequence[Any]], encoding: str = "utf-8", headers: Sequence[str] = HEADERS
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for values in rows:
        writer.writerow(values)
    return buffer.getvalue().encode(encoding)


def person(birth: date = date(1985, 3, 12), male: bool = True) -> str:
    return factories.id_number(birth, male=male)


@dataclass
class World:
    tree: factories.Tree
    plan: PlanVersion
    clerk: Any  # county clerk of 芙蓉区 (grassroots_1 is below)


@pytest.fixture
def world(tree: factories.Tree) -> World:
    plan = active_plan(2026)
    clerk = factories.staff(tree.county_a1, "clerk", username="enroll_clerk")
    return World(tree, plan, clerk)


@pytest.fixture
def make_rows() -> Callable[..., list[list[Any]]]:
    def make(n: int, uscc: str, start: int = 0) -> list[list[Any]]:
        return [
            row(
                name=f"职工{i:05d}",
                id_number=person(date(1970 + i % 30, 1 + i % 12, 1 + i % 28)),
                uscc=uscc,
            )
            for i in range(start, start + n)
        ]

    return make
