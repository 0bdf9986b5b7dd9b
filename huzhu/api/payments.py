"""Benefit payment batches over the API (/payments): finance pays approved benefits by bank
transfer and clears one-stop amounts with hospitals (R15, S6, S15).

- ``GET /payments/batches`` — the caller's batches, newest first (keyset: ``after``);
- ``GET /payments/preview`` — what a new batch would take and leave out, and why;
- ``POST /payments/batches`` — a new batch (``member``, or ``hospital`` with ``hospital_code``);
- ``GET /payments/batches/{payment_batch_id}`` — a batch with its lines (masked accounts);
- ``POST /payments/batches/{payment_batch_id}/export`` — the bank transfer file (CSV; it holds the
  members' full account numbers: a stated reason is required and the call is audited);
- ``POST /payments/batches/{payment_batch_id}/results`` — the bank's result per line (all or
  nothing; the lines paid post one ledger entry);
- ``POST /payments/batches/{payment_batch_id}/cancel`` — cancel a batch without results.

Reads need ``claim.view``, writes ``claim.pay`` (finance). Amounts are strings of yuan with two
decimals. A batch outside the caller's subtree answers 404 (S5).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field, field_validator

from huzhu.api.auth import actor_of, staff
from huzhu.api.errors import reject_unknown_query
from huzhu.api.schemas import ERRORS_LIST, ERRORS_READ, ERRORS_WRITE
from huzhu.claims import payments
from huzhu.claims.access import access_payment_batch
from huzhu.claims.models import (
    PaymentBatch,
    PaymentBatchKind,
    PaymentBatchStatus,
    PaymentLine,
    PaymentLineResult,
)
from huzhu.claims.selectors import payment_batches_for
from huzhu.core.money import format_fen, parse_yuan
from huzhu.orgs.access import access_union
from huzhu.orgs.roles import Perm

router = Router(tags=["补助金支付"])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_RESULT_ROWS = 10_000


# --- schemas ------------------------------------------------------------------------------------
class UnionRef(Schema):
    id: int
    name: str


class PaymentBatchOut(Schema):
    id: int
    number: str = Field(description="批次号")
    kind: PaymentBatchKind = Field(description="member 补助金支付（职工）| hospital 一站式结算清算")
    union: UnionRef
    status: PaymentBatchStatus = Field(
        description="draft 草稿 | exported 已导出银行文件 | completed 已完成 | cancelled 已作废"
    )
    line_count: int
    total: str = Field(description="合计（元）")
    succeeded: str = Field(description="支付成功合计（元）")
    failed: str = Field(description="支付失败或作废合计（元）")
    pending: str = Field(description="待银行回执合计（元）")
    created_by: str
    created_at: datetime
    exported_at: datetime | None
    completed_at: datetime | None


class BatchPage(Schema):
    items: list[PaymentBatchOut]
    next: int | None = Field(description="下一页的 after 参数；null 表示没有更多")


class PaymentLineOut(Schema):
    line_no: int
    reference: str = Field(description="业务参考号（银行结果文件据此对应）")
    claim_id: int
    claim_number: str
    payee_name: str
    bank_account_masked: str = Field(description="脱敏银行账号；医疗机构清算为空")
    amount: str
    result: str = Field(description="pending 待银行回执 | succeeded 支付成功 | failed 支付失败")
    bank_reference: str
    failure_reason: str
    recorded_at: datetime | None


class PaymentBatchDetailOut(PaymentBatchOut):
    lines: list[PaymentLineOut]


class ExclusionOut(Schema):
    claim_id: int
    claim_number: str
    payee_name: str
    amount: str
    code: str = Field(
        description="no_bank_account 未登记银行账号 | separation_of_duties 职责分离"
        " | other_fund 属于下级统筹基金 | taken 已被另一批次纳入"
    )
    reason: str


class CandidateOut(Schema):
    claim_id: int
    claim_number: str
    payee_name: str
    bank_account_masked: str
    amount: str


class PreviewOut(Schema):
    kind: PaymentBatchKind
    union: UnionRef
    hospital_code: str
    count: int
    total: str
    included: list[CandidateOut]
    excluded: list[ExclusionOut]


class CreatedOut(Schema):
    batch: PaymentBatchOut
    excluded: list[ExclusionOut] = Field(description="因故未纳入的补助及原因")


class BatchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: PaymentBatchKind = Field(description="member 或 hospital")
    union_id: int = Field(description="工会（批次含其下级）")
    hospital_code: str = Field("", max_length=40, description="hospital 批次的医疗机构编码")


class ExportIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=4, max_length=200, description="导出原因（文件含完整银行账号，记入审计日志）"
    )
    encoding: Literal["utf-8", "gbk"] = Field("utf-8", description="utf-8（带 BOM）或 gbk")


class ResultIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=40, description="业务参考号")
    result: Literal["succeeded", "failed"] = Field(description="succeeded 成功 | failed 失败")
    bank_reference: str = Field("", max_length=64, description="银行流水号（成功时必填）")
    failure_reason: str = Field("", max_length=200, description="失败原因（失败时必填）")
    amount: str | None = Field(None, max_length=16, description="金额（元），给出时与明细核对")

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str | None) -> str | None:
        if value is not None:
            parse_yuan(value.strip())  # ValueError → 422 with the Chinese message
            return value.strip()
        return value


class ResultsIn(Schema):
    model_config = ConfigDict(extra="forbid")

    rows: list[ResultIn] = Field(min_length=1, max_length=MAX_RESULT_ROWS)


class ResultsOut(Schema):
    succeeded: int
    failed: int
    skipped: int = Field(description="此前已登记且相同的结果（未重复处理）")
    paid: str = Field(description="本次支付成功合计（元）")
    ledger_entry: str | None = Field(description="本次记账凭证号")
    completed: bool
    batch: PaymentBatchOut


class BatchCancelIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=200, description="作废原因")


# --- answers ------------------------------------------------------------------------------------
def batch_out(batch: PaymentBatch) -> dict[str, Any]:
    if hasattr(batch, "pending_sum"):  # annotated by payments.with_line_sums (lists)
        sums = {r: getattr(batch, f"{r}_sum") for r in PaymentLineResult.values}
    else:
        summary = payments.line_summary(batch)
        sums = {r: summary[f"{r}_fen"] for r in PaymentLineResult.values}
    user = batch.created_by
    return {
        "id": batch.pk,
        "number": batch.number,
        "kind": batch.kind,
        "union": {"id": batch.union.pk, "name": batch.union.name},
        "status": batch.status,
        "line_count": batch.line_count,
        "total": format_fen(batch.total_fen),
        "succeeded": format_fen(sums["succeeded"]),
        "failed": format_fen(sums["failed"]),
        "pending": format_fen(sums["pending"]),
        "created_by": user.full_name or user.username,
        "created_at": batch.created_at,
        "exported_at": batch.exported_at,
        "completed_at": batch.completed_at,
    }


def line_out(batch: PaymentBatch, line: PaymentLine) -> dict[str, Any]:
    member = batch.kind == PaymentBatchKind.MEMBER
    return {
        "line_no": line.line_no,
        "reference": payments.line_reference(batch, line),
        "claim_id": line.claim_id,
        "claim_number": line.claim.number,
        "payee_name": line.payee_name,
        "bank_account_masked": line.claim.member.bank_account_masked if member else "",
        "amount": format_fen(line.amount_fen),
        "result": line.result,
        "bank_reference": line.bank_reference,
        "failure_reason": line.failure_reason,
        "recorded_at": line.recorded_at,
    }


def exclusion_out(e: payments.Exclusion) -> dict[str, Any]:
    return {
        "claim_id": e.claim_id,
        "claim_number": e.claim_number,
        "payee_name": e.payee_name,
        "amount": format_fen(e.amount_fen),
        "code": e.code,
        "reason": e.reason,
    }


def _fresh(actor: Any, batch_id: int) -> PaymentBatch:
    return access_payment_batch(actor, batch_id)


# --- operations ---------------------------------------------------------------------------------
@router.get(
    "/batches",
    response={200: BatchPage, **ERRORS_LIST},
    url_name="payment-batch-list",
    summary="支付批次列表（本组织及下级，最新在前）",
    **staff(Perm.CLAIM_VIEW, collection=True),
)
def list_batches(
    request: HttpRequest,
    status: PaymentBatchStatus | None = None,
    kind: PaymentBatchKind | None = None,
    after: int | None = Query(None, ge=1, description="上一页答复中的 next"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    reject_unknown_query(request, {"status", "kind", "after", "limit"})
    qs = payments.with_line_sums(
        payment_batches_for(actor_of(request)).select_related("union", "created_by")
    )
    if status is not None:
        qs = qs.filter(status=status.value)
    if kind is not None:
        qs = qs.filter(kind=kind.value)
    if after is not None:
        qs = qs.filter(pk__lt=after)
    rows = list(qs.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [batch_out(b) for b in rows], "next": rows[-1].pk if more else None}


@router.get(
    "/preview",
    response={200: PreviewOut, **ERRORS_WRITE},
    url_name="payment-batch-preview",
    summary="预览新批次：将纳入的补助，以及因故未纳入的补助和原因",
    **staff(Perm.CLAIM_PAY, collection=True),
)
def preview(
    request: HttpRequest,
    union_id: int | None = Query(None, ge=1, description="工会（含下级）；省略时为调用者所在组织"),
    kind: PaymentBatchKind = PaymentBatchKind.MEMBER,
    hospital_code: str = Query("", max_length=40),
) -> dict[str, Any]:
    reject_unknown_query(request, {"union_id", "kind", "hospital_code"})
    actor = actor_of(request)
    union = access_union(actor, union_id or actor.organisation_id or 0, Perm.CLAIM_PAY)
    found = payments.preview_batch(
        acting_user=actor, union=union, kind=kind.value, hospital_code=hospital_code
    )
    member = kind == PaymentBatchKind.MEMBER
    return {
        "kind": found.kind,
        "union": {"id": union.pk, "name": union.name},
        "hospital_code": found.hospital_code,
        "count": len(found.included),
        "total": format_fen(found.total_fen),
        "included": [
            {
                "claim_id": c.claim.pk,
                "claim_number": c.claim.number,
                "payee_name": c.payee_name,
                "bank_account_masked": c.claim.member.bank_account_masked if member else "",
                "amount": format_fen(c.amount_fen),
            }
            for c in found.included
        ],
        "excluded": [exclusion_out(e) for e in found.excluded],
    }


@router.post(
    "/batches",
    response={201: CreatedOut, **ERRORS_WRITE},
    url_name="payment-batch-list",
    summary="生成支付批次（财务）：纳入该工会及下级所有已核准、尚未支付的补助",
    **staff(Perm.CLAIM_PAY, collection=True),
)
def create_batch(request: HttpRequest, payload: BatchIn) -> Status:
    actor = actor_of(request)
    union = access_union(actor, payload.union_id, Perm.CLAIM_PAY)
    if payload.kind == PaymentBatchKind.HOSPITAL:
        created = payments.create_hospital_batch(
            acting_user=actor, union=union, hospital_code=payload.hospital_code
        )
    else:
        created = payments.create_member_batch(acting_user=actor, union=union)
    return Status(
        201,
        {
            "batch": batch_out(_fresh(actor, created.batch.pk)),
            "excluded": [exclusion_out(e) for e in created.excluded],
        },
    )


@router.get(
    "/batches/{int:payment_batch_id}",
    response={200: PaymentBatchDetailOut, **ERRORS_READ},
    url_name="payment-batch-detail",
    summary="支付批次及其明细（银行账号脱敏）",
    **staff(Perm.CLAIM_VIEW),
)
def get_batch(request: HttpRequest, payment_batch_id: int) -> dict[str, Any]:
    batch = access_payment_batch(actor_of(request), payment_batch_id)
    return {
        **batch_out(batch),
        "lines": [line_out(batch, line) for line in payments.batch_lines(batch)],
    }


_CSV = staff(Perm.CLAIM_PAY)
_CSV["openapi_extra"] = {
    **_CSV["openapi_extra"],
    "responses": {
        "200": {
            "description": "银行批量代发文件（CSV，列："
            + "、".join(payments.BANK_FILE_COLUMNS)
            + "）；含职工完整银行账号",
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
}


@router.post(
    "/batches/{int:payment_batch_id}/export",
    response={**ERRORS_WRITE},
    url_name="payment-batch-export",
    summary="导出银行文件（财务；含完整银行账号，须填写原因，记入审计日志）",
    **_CSV,
)
def export_batch(request: HttpRequest, payment_batch_id: int, payload: ExportIn) -> HttpResponse:
    actor = actor_of(request)
    batch = access_payment_batch(actor, payment_batch_id, Perm.CLAIM_PAY)
    bank_file = payments.export_bank_file(
        acting_user=actor, batch=batch, reason=payload.reason, encoding=payload.encoding
    )
    response = HttpResponse(bank_file.content, content_type=bank_file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{bank_file.filename}"'
    response["Cache-Control"] = "no-store"
    # A necessary, audited export of full account numbers for the bank (S11).
    response["X-Huzhu-Reveal"] = "1"
    return response


@router.post(
    "/batches/{int:payment_batch_id}/results",
    response={200: ResultsOut, **ERRORS_WRITE},
    url_name="payment-batch-results",
    summary="登记银行支付结果（财务；全部校验通过才登记，成功的合并记一张凭证）",
    **staff(Perm.CLAIM_PAY),
)
def record_results(
    request: HttpRequest, payment_batch_id: int, payload: ResultsIn
) -> dict[str, Any]:
    actor = actor_of(request)
    batch = access_payment_batch(actor, payment_batch_id, Perm.CLAIM_PAY)
    rows = [
        payments.ResultRow(
            where=f"第 {index} 条",
            reference=row.reference,
            outcome=row.result,
            bank_reference=row.bank_reference,
            failure_reason=row.failure_reason,
            amount_fen=parse_yuan(row.amount) if row.amount is not None else None,
        )
        for index, row in enumerate(payload.rows, start=1)
    ]
    done = payments.record_bank_results(acting_user=actor, batch=batch, rows=rows)
    return {
        "succeeded": done.succeeded,
        "failed": done.failed,
        "skipped": done.skipped,
        "paid": format_fen(done.paid_fen),
        "ledger_entry": done.entry.display_number if done.entry is not None else None,
        "completed": done.completed,
        "batch": batch_out(_fresh(actor, batch.pk)),
    }


@router.post(
    "/batches/{int:payment_batch_id}/cancel",
    response={200: PaymentBatchOut, **ERRORS_WRITE},
    url_name="payment-batch-cancel",
    summary="作废支付批次（财务；尚无银行结果的批次）",
    **staff(Perm.CLAIM_PAY),
)
def cancel(request: HttpRequest, payment_batch_id: int, payload: BatchCancelIn) -> dict[str, Any]:
    actor = actor_of(request)
    batch = access_payment_batch(actor, payment_batch_id, Perm.CLAIM_PAY)
    payments.cancel_batch(acting_user=actor, batch=batch, reason=payload.reason)
    return batch_out(_fresh(actor, batch.pk))
