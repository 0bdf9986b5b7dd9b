"""Fixtures for the plan tests: the three plan files, staff at every level, logged-in clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.orgs.models import User
from huzhu.rules.plan import load_plan_text
from tests import factories

REPO = Path(__file__).resolve().parents[2]
HUNAN = REPO / "huzhu/rules/plans/hunan-2026.yaml"
PINGDINGSHAN = REPO / "huzhu/rules/plans/pingdingshan-2026.yaml"
SHARED = Path("/work/shared/testdata/adjudicate/plan.yaml")
PLAN_FILES = [HUNAN, PINGDINGSHAN, SHARED]


def hunan_text() -> str:
    return HUNAN.read_text(encoding="utf-8")


def variant(text: str, changes: dict[str, Any], *, drop: tuple[str, ...] = ()) -> str:
    """The plan ``text`` with some keys changed or dropped (dotted paths; ``bands[0]`` indexes a
    list) — written from the canonical plain data (amounts stay quoted; citations are left out)."""
    plan, errors = load_plan_text(text)
    assert plan is not None, errors
    data = plan.to_dict(references=False)
    for path, value in changes.items():
        parent, key = _walk(data, path)
        parent[key] = value
    for path in drop:
        parent, key = _walk(data, path)
        del parent[key]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _walk(data: Any, path: str) -> tuple[Any, Any]:
    tokens: list[Any] = []
    for part in path.split("."):
        if "[" in part:
            name, _, index = part.partition("[")
            tokens += [name, int(index.rstrip("]"))]
        else:
            tokens.append(part)
    node = data
    for token in tokens[:-1]:
        node = node[token]
    return node, tokens[-1]


@dataclass
class People:
    tree: factories.Tree
    province_manager: User  # 湖南省总工会, plan_manager
    province_clerk: User  # 湖南省总工会, clerk (sees plans, cannot manage them)
    city_manager: User  # 长沙市总工会, plan_manager (may import 430100 drafts, never activate)
    city_clerk: User  # 长沙市总工会, clerk
    city_b_clerk: User  # 株洲市总工会, clerk
    county_clerk: User  # 芙蓉区总工会 (under 长沙), clerk
    secadmin: User  # 湖南省总工会, security administrator (no plan permission)


@pytest.fixture
def people(tree: factories.Tree) -> People:
    return People(
        tree=tree,
        province_manager=factories.staff(tree.province, "plan_manager", username="prov_plan"),
        province_clerk=factories.staff(tree.province, "clerk", username="prov_clerk"),
        city_manager=factories.staff(tree.city_a, "plan_manager", username="city_plan"),
        city_clerk=factories.staff(tree.city_a, "clerk", username="city_clerk"),
        city_b_clerk=factories.staff(tree.city_b, "clerk", username="city_b_clerk"),
        county_clerk=factories.staff(tree.county_a1, "clerk", username="county_clerk"),
        secadmin=factories.staff(tree.province, "secadmin", username="prov_secadmin"),
    )


def login(user: User) -> Client:
    """A client with a full staff session: password login plus a verified second factor."""
    device = TOTPDevice.objects.create(user=user, name="测试验证器", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
