"""The enrollment API: create a batch, upload a roster (multipart) → every bad row as JSON,
confirm (202 + job), batch progress, a member's enrollments; scoping and the error shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from huzhu.enrollment.models import Enrollment, EnrollmentBatch
from huzhu.orgs.models import User
from huzhu.orgs.services import create_api_token
from tests import factories
from tests.enrollment.conftest import World, csv_bytes, person, row, xlsx

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, user: User) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {create_api_token(acting_user=None, user=user)}"}

    def get(self, path: str) -> tuple[int, Any]:
        response = self.client.get("/api/v1/enrollment" + path, headers=self.headers)
        return response.status_code, json.loads(response.content)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        response = self.client.post(
            "/api/v1/enrollment" + path,
            json.dumps(body),
            content_type="application/json",
            headers=self.headers,
        )
        return response.status_code, json.loads(response.content)

    def upload(self, path: str, name: str, content: bytes) -> tuple[int, Any]:
        from django.core.files.uploadedfile import SimpleUploadedFile

        response = self.client.post(
            "/api/v1/enrollment" + path,
            {"file": SimpleUploadedFile(name, content)},
            headers=self.headers,
        )
        return response.status_code, json.loads(response.content)


def test_upload_preview_confirm_and_member_enrollments(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    api = Api(world.clerk)
    year = timezone.localdate().year
    status, batch = api.post(
        "/batches", {"union_id": world.tree.grassroots_1.pk, "plan_year": year}
    )
    assert status == 201 and batch["status"] == "draft" and batch["plan_code"] == "HUNAN-2026"
    uscc = world.tree.unit_1.uscc
    content = csv_bytes(
        [row(id_number=person(), uscc=uscc), row(name="坏", id_number="4301", uscc=uscc)],
        encoding="gbk",
    )
    status, body = api.upload(f"/batches/{batch['id']}/roster", "r.csv", content)
    assert status == 200
    assert body["duplicate"] is False
    assert body["batch"]["status"] == "validated"
    assert body["errors"] == [
        {
            "row": 3,
            "column": "身份证号码",
            "message": "身份证号码应为18位，实际为4位",
            "name": "坏",
            "id_number_masked": "****",
        }
    ]
    status, again = api.upload(f"/batches/{batch['id']}/roster", "r.csv", content)
    assert status == 200 and again["duplicate"] is True and again["batch"]["id"] == batch["id"]
    status, body = api.post(f"/batches/{batch['id']}/confirm", {})
    assert status == 422
    assert body["detail"][0]["field"] == "accept_invalid_rows"
    with django_capture_on_commit_callbacks(execute=True):
        status, body = api.post(f"/batches/{batch['id']}/confirm", {"accept_invalid_rows": True})
    assert status == 202 and body["job"]["label"].startswith("确认参保")
    status, state = api.get(f"/batches/{batch['id']}")
    assert status == 200
    assert (
        state["status"],
        state["enrolled_count"],
        state["job"]["status"],
        state["job"]["percent"],
    ) == ("awaiting_payment", 1, "succeeded", 100)
    member_id = Enrollment.objects.get().member_id
    status, rows = api.get(f"/members/{member_id}/enrollments")
    assert status == 200 and [(r["plan_year"], r["status"], r["product_set"]) for r in rows] == [
        (year, "pending", "self")
    ]
    status, errors = api.get(f"/batches/{batch['id']}/errors")
    assert status == 200 and [e["row"] for e in errors] == [3]


def test_file_level_errors_scope_and_permissions(world: World) -> None:
    api = Api(world.clerk)
    year = timezone.localdate().year
    _, batch = api.post("/batches", {"union_id": world.tree.grassroots_1.pk, "plan_year": year})
    status, body = api.upload(
        f"/batches/{batch['id']}/roster", "r.xlsx", xlsx([], headers=["姓名", "身份证号码"])
    )
    assert status == 422
    assert body["detail"] == [
        {
            "loc": ["body", "file"],
            "field": "file",
            "msg": "缺少必需的列：用工形式、单位统一社会信用代码",
            "code": "invalid",
        }
    ]
    status, body = api.post(
        "/batches", {"union_id": world.tree.grassroots_1.pk, "plan_year": year, "extra": 1}
    )
    assert status == 422 and body["detail"][0]["code"] == "extra_forbidden"
    other = Api(factories.staff(world.tree.county_a2, "clerk"))
    assert other.get(f"/batches/{batch['id']}")[0] == 404
    assert other.post(f"/batches/{batch['id']}/confirm", {})[0] == 404
    status, _ = other.post("/batches", {"union_id": world.tree.grassroots_1.pk, "plan_year": year})
    assert status == 422
    reviewer = Api(factories.staff(world.tree.county_a1, "reviewer"))
    assert reviewer.get(f"/batches/{batch['id']}")[0] == 200
    assert (
        reviewer.post("/batches", {"union_id": world.tree.grassroots_1.pk, "plan_year": year})[0]
        == 403
    )
    assert reviewer.post(f"/batches/{batch['id']}/confirm", {})[0] == 404
    assert EnrollmentBatch.objects.count() == 1
