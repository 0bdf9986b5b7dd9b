"""The plan API: list, detail with parameters, validation (200 with a report, never stored)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from huzhu.orgs.models import User
from huzhu.orgs.services import create_api_token
from huzhu.plans import services
from huzhu.plans.models import PlanVersion
from tests.plans.conftest import PINGDINGSHAN, People, hunan_text, variant

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, user: User | None) -> None:
        self.client = Client()
        self.headers = (
            {"Authorization": f"Bearer {create_api_token(acting_user=None, user=user)}"}
            if user is not None
            else {}
        )

    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.get("/api/v1" + path, headers=self.headers)
        return response.status_code, json.loads(response.content)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        response = self.client.post(
            "/api/v1" + path,
            json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            headers=self.headers,
        )
        return response.status_code, json.loads(response.content)


def test_list_is_scoped(people: People) -> None:
    hunan = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    services.activate_plan(acting_user=None, plan_version=hunan)
    services.import_plan(
        acting_user=None,
        yaml_text=variant(hunan_text(), {"code": "ZHUZHOU-2026", "region": "430200"}),
        filename="",
    )
    services.import_plan(
        acting_user=None, yaml_text=PINGDINGSHAN.read_text(encoding="utf-8"), filename=""
    )
    status, body = Api(people.province_manager).get("/plans")
    assert status == 200
    assert sorted(row["code"] for row in body) == ["HUNAN-2026", "ZHUZHOU-2026"]
    status, body = Api(people.city_clerk).get("/plans")
    assert status == 200
    [row] = body
    hunan.refresh_from_db()
    assert row == {
        "id": hunan.pk,
        "code": "HUNAN-2026",
        "name": "湖南省在职职工互助保障计划（2026年度）",
        "region": "430000",
        "year": 2026,
        "effective_from": None,
        "status": "active",
        "used": False,
        "parameters_hash": hunan.parameters_hash,
        "previous_code": None,
        "imported_at": row["imported_at"],
        "activated_at": row["activated_at"],
        "used_at": None,
    }
    assert row["activated_at"] is not None


def test_list_needs_token_and_permission(people: People) -> None:
    assert Api(None).get("/plans")[0] == 401
    status, body = Api(people.secadmin).get("/plans")
    assert status == 403
    assert "plan.view" in body["detail"]


def test_detail_with_parameters(people: People) -> None:
    version = services.import_plan(acting_user=None, yaml_text=hunan_text(), filename="")
    status, body = Api(people.county_clerk).get(f"/plans/{version.pk}")
    assert status == 200
    assert body["code"] == "HUNAN-2026"
    assert body["parameters"] == json.loads(version.parameters)
    assert body["parameters"]["products"]["inpatient"]["bands"][0] == {
        "upto": "5000.00",
        "rate": "0.50",
    }
    assert body["parameters"]["contribution"] == "120.00"


def test_detail_out_of_scope_is_404(people: People) -> None:
    zhuzhou = services.import_plan(
        acting_user=None,
        yaml_text=variant(hunan_text(), {"code": "ZHUZHOU-2026", "region": "430200"}),
        filename="",
    )
    status, out_of_scope = Api(people.city_clerk).get(f"/plans/{zhuzhou.pk}")
    assert status == 404
    status, missing = Api(people.city_clerk).get("/plans/999999")
    assert status == 404
    assert out_of_scope == missing  # the same answer: nothing learnt about existence
    assert Api(people.secadmin).get(f"/plans/{zhuzhou.pk}")[0] == 404


def test_validate_valid_and_invalid_stores_nothing(people: People) -> None:
    api = Api(people.city_clerk)
    status, body = api.post("/plans/validate", {"yaml": hunan_text()})
    assert (status, body) == (200, {"valid": True, "errors": []})

    bad = variant(hunan_text(), {"risk_reserve_rate": "0.04", "products.maternity.per_child": "-1"})
    status, body = api.post("/plans/validate", {"yaml": bad})
    assert status == 200
    assert body["valid"] is False
    assert [e["path"] for e in body["errors"]] == [
        "risk_reserve_rate",
        "products.maternity.per_child",
    ]
    assert "湘政办发〔2025〕58号（八）" in body["errors"][0]["message"]

    status, body = api.post("/plans/validate", {"yaml": "a: [1\n"})
    assert status == 200
    assert body["valid"] is False and body["errors"][0]["path"] == ""
    assert PlanVersion.objects.count() == 0


def test_validate_rejects_unknown_fields_and_needs_a_token(people: People) -> None:
    status, body = Api(people.city_clerk).post(
        "/plans/validate", {"yaml": hunan_text(), "store": True}
    )
    assert status == 422
    assert [item["field"] for item in body["detail"]] == ["store"]
    assert Api(None).post("/plans/validate", {"yaml": hunan_text()})[0] == 401
    assert PlanVersion.objects.count() == 0
