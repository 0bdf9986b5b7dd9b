"""Group enrollment over the API (/enrollment): batches, roster upload with the row-by-row
preview as JSON, confirmation as a background job with progress, a member's enrollments.

Uploading a roster validates it at once and answers every bad row (row number, column, Chinese
reason); the same file uploaded again creates nothing new (``duplicate: true`` and the earlier
batch). Confirming answers 202 with the job; poll ``GET /enrollment/batches/{id}`` for progress.
Everything is scoped to the caller's subtree (S5): a batch or member outside it answers 404.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import ConfigDict, Field

from huzhu.api.auth import actor_of, staff
from huzhu.api.orgs import union_in_scope
from huzhu.api.schemas import ERRORS_LIST, ERRORS_READ, ERRORS_WRITE
from huzhu.core.errors import ErrorCode, FieldError, InvalidInput
from huzhu.enrollment import selectors, services
from huzhu.enrollment.access import access_batch
from huzhu.enrollment.jobs import batch_job, submit_confirmation
from huzhu.enrollment.models import Enrollment, EnrollmentBatch, RosterRowError
from huzhu.enrollment.roster import MAX_FILE_BYTES, RosterFileError
from huzhu.jobs.models import Job
from huzhu.members.access import access_member
from huzhu.orgs.roles import Perm

router = Router(tags=["参保登记"])


class JobOut(Schema):
    id: int
    label: str
    status: str = Field(description="queued | running | succeeded | failed")
    done: int
    total: int
    percent: int
    message: str
    error: str
    stalled: bool = Field(description="超过 90 秒没有进展（后台进程可能已停止，可重新确认以继续）")


class BatchOut(Schema):
    id: int
    union: dict[str, Any]
    plan_code: str
    plan_year: int
    status: str = Field(
        description="draft 草稿 | validated 已校验 | confirming 确认中 | awaiting_payment 待缴费"
        " | active 已生效 | cancelled 已作废"
    )
    source: str = Field(description="roster 花名册 | renewal 续保")
    file_name: str
    file_sha256: str
    row_count: int
    valid_count: int
    error_count: int
    enrolled_count: int
    last_row_done: int
    enrollment_date: date | None
    paid_on: date | None
    created_at: datetime
    job: JobOut | None


class RowErrorOut(Schema):
    row: int | None = Field(description="文件中的行号（表头为第1行）；续保未纳入人员为空")
    column: str = Field(description="列名（中文表头）")
    message: str
    name: str
    id_number_masked: str


class UploadOut(Schema):
    duplicate: bool = Field(description="同一文件已上传过：返回的是先前的批次，未重复导入")
    batch: BatchOut
    errors: list[RowErrorOut]


class BatchCreateIn(Schema):
    model_config = ConfigDict(extra="forbid")

    union_id: int = Field(description="参保工会（基层工会或工会联合会）")
    plan_year: int = Field(ge=2000, le=2100)


class ConfirmIn(Schema):
    model_config = ConfigDict(extra="forbid")

    accept_invalid_rows: bool = Field(False, description="跳过有错误的行，只导入有效行")
    include_family: bool = Field(
        False, description="同时为已登记的家庭成员参保（方案须含家庭成员互助）"
    )


class ConfirmOut(Schema):
    batch: BatchOut
    job: JobOut


class EnrollmentOut(Schema):
    id: int
    batch_id: int
    plan_year: int
    product_set: str = Field(description="self 职工本人 | family 家庭成员")
    family_member_name: str | None
    union: dict[str, Any]
    status: str = Field(
        description="pending 待缴费 | active 保障中 | withdrawn 已退出 | refunded 已退保"
        " | lapsed 已失效"
    )
    hardship: bool
    enrollment_date: date
    coverage_start: date | None
    coverage_end: date | None
    left_unit_on: date | None
    refund_due: bool


def _job(job: Job | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {
        "id": job.pk,
        "label": job.label,
        "status": job.status,
        "done": job.done,
        "total": job.total,
        "percent": job.percent,
        "message": job.message,
        "error": job.error,
        "stalled": job.stalled,
    }


def _batch(batch: EnrollmentBatch, job: Job | None = None) -> dict[str, Any]:
    return {
        "id": batch.pk,
        "union": {"id": batch.union.pk, "name": batch.union.name, "code": batch.union.code},
        "plan_code": batch.plan_version.code,
        "plan_year": batch.plan_year,
        "status": batch.status,
        "source": batch.source,
        "file_name": batch.file_name,
        "file_sha256": batch.file_sha256,
        "row_count": batch.row_count,
        "valid_count": batch.valid_count,
        "error_count": batch.error_count,
        "enrolled_count": batch.enrolled_count,
        "last_row_done": batch.last_row_done,
        "enrollment_date": batch.enrollment_date,
        "paid_on": batch.paid_on,
        "created_at": batch.created_at,
        "job": _job(job if job is not None else batch_job(batch)),
    }


def _error(error: RosterRowError) -> dict[str, Any]:
    return {
        "row": error.row_number,
        "column": error.column,
        "message": error.message,
        "name": error.name,
        "id_number_masked": error.id_number_masked,
    }


@router.get(
    "/batches",
    response={200: list[BatchOut], **ERRORS_LIST},
    summary="参保批次列表",
    **staff(Perm.ENROLLMENT_VIEW, collection=True),
)
def list_batches(request: HttpRequest, year: int | None = None) -> list[dict[str, Any]]:
    actor = actor_of(request)
    return [_batch(b) for b in selectors.list_batches(actor, year=year)[:200]]


@router.post(
    "/batches",
    response={201: BatchOut, **ERRORS_WRITE},
    summary="新建参保批次（草稿）",
    **staff(Perm.ENROLLMENT_EDIT, collection=True),
)
def create_batch(request: HttpRequest, payload: BatchCreateIn) -> Status:
    actor = actor_of(request)
    union = union_in_scope(actor, payload.union_id)
    batch = services.create_batch(acting_user=actor, union=union, plan_year=payload.plan_year)
    return Status(201, _batch(batch))


@router.get(
    "/batches/{int:batch_id}",
    response={200: BatchOut, **ERRORS_READ},
    summary="参保批次状态与进度",
    **staff(Perm.ENROLLMENT_VIEW),
)
def get_batch(request: HttpRequest, batch_id: int) -> dict[str, Any]:
    return _batch(access_batch(actor_of(request), batch_id))


@router.get(
    "/batches/{int:batch_id}/errors",
    response={200: list[RowErrorOut], **ERRORS_READ},
    summary="批次的全部错误行（及续保未纳入人员）",
    **staff(Perm.ENROLLMENT_VIEW),
)
def batch_errors(request: HttpRequest, batch_id: int) -> list[dict[str, Any]]:
    batch = access_batch(actor_of(request), batch_id)
    return [_error(e) for e in selectors.batch_errors(batch)]


@router.post(
    "/batches/{int:batch_id}/roster",
    response={200: UploadOut, **ERRORS_WRITE},
    summary="上传花名册并逐行校验（multipart，字段名 file）",
    **staff(Perm.ENROLLMENT_EDIT),
)
def upload_roster(
    request: HttpRequest,
    batch_id: int,
    file: UploadedFile = File(...),  # noqa: B008
) -> dict[str, Any]:
    actor = actor_of(request)
    batch = access_batch(actor, batch_id, Perm.ENROLLMENT_EDIT)
    if (file.size or 0) > MAX_FILE_BYTES:
        raise InvalidInput(
            [FieldError("file", f"文件过大（不能超过 {MAX_FILE_BYTES // 1024 // 1024} MB）")]
        )
    outcome = services.attach_roster(
        acting_user=actor, batch=batch, file_name=file.name or "", content=file.read()
    )
    if not outcome.duplicate:
        try:
            services.validate_batch(batch=outcome.batch)
        except RosterFileError as exc:
            raise InvalidInput([FieldError("file", str(exc), ErrorCode.INVALID)]) from None
    target = access_batch(actor, outcome.batch.pk)
    return {
        "duplicate": outcome.duplicate,
        "batch": _batch(target),
        "errors": [_error(e) for e in selectors.batch_errors(target)],
    }


@router.post(
    "/batches/{int:batch_id}/confirm",
    response={202: ConfirmOut, **ERRORS_WRITE},
    summary="确认参保（后台任务；完成后批次为待缴费）",
    **staff(Perm.ENROLLMENT_EDIT),
)
def confirm(request: HttpRequest, batch_id: int, payload: ConfirmIn) -> Status:
    actor = actor_of(request)
    batch = access_batch(actor, batch_id, Perm.ENROLLMENT_EDIT)
    job = submit_confirmation(
        acting_user=actor,
        batch=batch,
        accept_invalid_rows=payload.accept_invalid_rows,
        include_family=payload.include_family,
    )
    job.refresh_from_db()
    batch = access_batch(actor, batch_id)
    return Status(202, {"batch": _batch(batch, job), "job": _job(job)})


@router.get(
    "/members/{int:member_id}/enrollments",
    response={200: list[EnrollmentOut], **ERRORS_READ},
    summary="职工的参保记录（各年度，含家庭成员）",
    **staff(Perm.MEMBER_VIEW),
)
def member_enrollments(request: HttpRequest, member_id: int) -> list[dict[str, Any]]:
    member = access_member(actor_of(request), member_id)
    rows: list[Enrollment] = list(selectors.member_enrollments(member))
    return [
        {
            "id": e.pk,
            "batch_id": e.batch_id,
            "plan_year": e.plan_year,
            "product_set": e.product_set,
            "family_member_name": e.family_member.name if e.family_member else None,
            "union": {"id": e.union.pk, "name": e.union.name},
            "status": e.status,
            "hardship": e.hardship,
            "enrollment_date": e.enrollment_date,
            "coverage_start": e.coverage_start,
            "coverage_end": e.coverage_end,
            "left_unit_on": e.left_unit_on,
            "refund_due": e.refund_due,
        }
        for e in rows
    ]
