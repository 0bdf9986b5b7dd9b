"""Plan versions over the API: list, detail with parameters, and validation of a plan text.

``POST /plans/validate`` answers 200 with ``{"valid", "errors"}`` whatever the text holds: the
validation report is the resource here, and nothing is ever stored by it. Reads are scoped like the
web screens (``huzhu.plans.selectors.plans_for``); a version outside the caller's scope is 404.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from huzhu.api.auth import actor_of, staff
from huzhu.api.schemas import ERRORS_LIST, ERRORS_READ
from huzhu.core.errors import InvalidInput
from huzhu.orgs.roles import Perm
from huzhu.plans.access import access_plan_version
from huzhu.plans.models import PlanVersion
from huzhu.plans.selectors import list_plans
from huzhu.plans.services import MAX_PLAN_TEXT_CHARS, validate_plan_text

router = Router(tags=["保障方案"])


class PlanVersionOut(Schema):
    id: int
    code: str
    name: str
    region: str = Field(description="统筹地区 GB/T 2260 行政区划代码")
    year: int
    effective_from: date | None
    status: str = Field(description="draft 草稿 | active 已启用 | retired 已停用")
    used: bool = Field(description="是否已用于计算补助（已使用的版本永不修改）")
    parameters_hash: str
    previous_code: str | None
    imported_at: datetime
    activated_at: datetime | None
    used_at: datetime | None


class PlanVersionDetailOut(PlanVersionOut):
    parameters: dict[str, Any] = Field(description="规范化参数（金额为元，两位小数；比例为小数）")


class ValidateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    yaml: str = Field(max_length=MAX_PLAN_TEXT_CHARS, description="方案文件的 YAML 文本")


class PlanErrorOut(Schema):
    path: str = Field(description="键路径，如 products.inpatient.bands[2].rate；空为整个文件")
    message: str


class ValidateOut(Schema):
    valid: bool
    errors: list[PlanErrorOut]


def _summary(version: PlanVersion) -> dict[str, Any]:
    return {
        "id": version.pk,
        "code": version.code,
        "name": version.name,
        "region": version.region,
        "year": version.year,
        "effective_from": version.effective_from,
        "status": version.status,
        "used": version.used_at is not None,
        "parameters_hash": version.parameters_hash,
        "previous_code": version.previous.code if version.previous else None,
        "imported_at": version.imported_at,
        "activated_at": version.activated_at,
        "used_at": version.used_at,
    }


@router.get(
    "",
    response={200: list[PlanVersionOut], **ERRORS_LIST},
    summary="方案版本列表",
    **staff(Perm.PLAN_VIEW, collection=True),
)
def list_plan_versions(request: HttpRequest) -> list[dict[str, Any]]:
    actor = actor_of(request)
    return [_summary(version) for version in list_plans(actor)]


@router.get(
    "/{int:plan_id}",
    response={200: PlanVersionDetailOut, **ERRORS_READ},
    summary="方案版本详情（含全部参数）",
    **staff(Perm.PLAN_VIEW),
)
def get_plan_version(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    version = access_plan_version(actor_of(request), plan_id)
    return {**_summary(version), "parameters": json.loads(version.parameters)}


@router.post(
    "/validate",
    response={200: ValidateOut, **ERRORS_LIST},
    summary="校验方案文本（不保存）",
    **staff(Perm.PLAN_VIEW, collection=True),
)
def validate_plan(request: HttpRequest, payload: ValidateIn) -> dict[str, Any]:
    try:
        validate_plan_text(payload.yaml)
    except InvalidInput as exc:
        return {
            "valid": False,
            "errors": [{"path": e.field, "message": e.message} for e in exc.errors],
        }
    return {"valid": True, "errors": []}
