"""The batch settlement feed and the daily reconciliation for partners (issue #5 item 2;
docs/settlement-feed.md):

    POST /api/v1/settlement-files              a CSV or JSON lines file as the raw body
    GET  /api/v1/settlement-files/{file_id}    its status, outcome counts and per-record outcomes
    POST /api/v1/reconciliations               the partner's totals of a day → the report

Signed exactly like the one-stop settlement API (``huzhu.api.settlements.PartnerSignature``: the
signature covers the raw body), with the partner scope ``batch``. The declared record count and
amount total come as the headers ``X-Record-Count`` and ``X-Amount-Total`` (yuan); the body's
SHA-256 is signed, so the file cannot change in transit — the declaration is the partner's own
check that its export is complete.

Answers: 200 the file accepted (or the same file accepted before: ``duplicate: true``, nothing
new) with an outcome per record; 202 a large file accepted and being processed in the background
(poll the GET); 422 the file rejected — nothing imported — with every problem (line and field);
401/403/413 as for the settlement API.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict

from huzhu.api.errors import QueryInvalid, error_item
from huzhu.api.schemas import MessageOut, ValidationErrorOut
from huzhu.api.settlements import SIGNING_HELP, PartnerSignature, inline_schema
from huzhu.claims import feed, intake
from huzhu.claims.models import Partner, PartnerScope, SettlementFile, SettlementFileLine
from huzhu.core.errors import ErrorCode, FieldError, InvalidInput
from huzhu.core.money import format_fen

router = Router(tags=["结算批量文件与对账（合作方）"])
reconciliation_router = Router(tags=["结算批量文件与对账（合作方）"])

LINES_PER_PAGE = 5000
CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json-seq": "jsonl",
}


class FileSignature(PartnerSignature):
    """The partner signature over a feed file's raw body. Django keeps ordinary request bodies
    under ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB); a feed file may be up to
    ``feed.MAX_FILE_BYTES``, so this route reads its body itself, with that limit, before the
    signature is checked over it."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Partner:
        if not hasattr(request, "_body"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > feed.MAX_FILE_BYTES:
                raise HttpError(
                    413, f"文件过大（不能超过 {feed.MAX_FILE_BYTES // 1024 // 1024} MB）"
                )
            request._body = request.read(feed.MAX_FILE_BYTES + 1)
            if len(request._body) > feed.MAX_FILE_BYTES:
                raise HttpError(413, "文件过大")
        return super().authenticate(request, key)


# --- schemas -----------------------------------------------------------------------------------
class ProblemOut(Schema):
    loc: list[str | int] = Field(..., description="body、行号（整个文件的问题没有行号）、字段")
    field: str = Field(..., description="字段：CSV 的列名或 JSON 字段路径；文件级问题为 file 等")
    line: int | None = Field(..., description="文件中的物理行号（CSV 表头为第 1 行）")
    msg: str = Field(..., description="中文说明")
    code: str


class FileLineOut(Schema):
    line: int
    setl_id: str
    record_type: str = Field(..., description="settle 结算 | cancel 撤销")
    outcome: str = Field(
        ...,
        description="approved 已核准 | pending_review 待审核 | rejected 不予给付 | quarantined "
        "待授权（已隔离，授权后自动处理） | cancelled 已撤销 | duplicate 此前已接收（未变更） | "
        "out_of_scope 职工不在本合作方服务范围（未接收） | not_found 撤销的结算不存在",
    )
    reason: str | None = Field(..., description="原因代码（RULES.md §4）")
    benefit: str = Field(..., description="补助金额（元；撤销为年度补助合计的变动）")


class FileOut(Schema):
    file_id: int
    filename: str
    format: str = Field(..., description="csv | jsonl")
    status: str = Field(..., description="accepted 已接收 | importing 处理中 | failed 处理中断")
    duplicate: bool = Field(..., description="同一文件此前已接收：未重复导入，答复此前的结果")
    record_count: int
    total: str
    declared_count: int
    declared_total: str
    processed: int = Field(..., description="已处理的记录数")
    outcomes: dict[str, int]
    benefit: str = Field(..., description="已核准补助金额合计（元）")
    problems: list[dict[str, Any]]
    lines: list[FileLineOut]
    next_offset: int | None = Field(..., description="更多逐条结果：以此作为 offset 再次查询")


class FileRejectedOut(Schema):
    detail: list[ProblemOut]
    file_id: int
    status: str = Field(..., description="rejected：文件已拒收，未导入任何记录")


class TheirRecordIn(Schema):
    model_config = ConfigDict(extra="forbid")

    setl_id: str = Field(..., max_length=30, pattern=r"^[0-9A-Za-z_\-]{1,30}$")
    status: str | None = Field(None, description="settled 已结算（默认） | cancelled 已撤销")
    medfee_sumamt: str | None = Field(None, description="医疗费总额（元）")
    benefit: str | None = Field(None, description="医院已减免的补助金额（元）")


class ReconcileIn(Schema):
    model_config = ConfigDict(extra="forbid")

    date: str = Field(..., description="对账日期 YYYY-MM-DD（按结算时间 setl_time 的日期）")
    count: int = Field(..., ge=0, description="当日结算笔数（不含已撤销）")
    medfee_sumamt: str = Field(..., description="当日医疗费总额合计（元，两位小数）")
    benefit: str = Field(..., description="当日医院已减免的补助金额合计（元）")
    records: list[TheirRecordIn] | None = Field(
        None, description="可选：当日逐笔清单，用于列出缺失、金额和状态差异"
    )


class TotalsOut(Schema):
    count: int
    medfee_sumamt: str
    benefit: str


class DifferenceOut(Schema):
    kind: str = Field(
        ...,
        description="count | medfee_total | benefit_total | missing_ours 我方未收到 | "
        "missing_theirs 对方未列出 | other_day 结算日期不同 | status 状态不同 | amount 医疗费不同 "
        "| benefit 补助金额不同",
    )
    label: str
    setl_id: str | None
    theirs: str
    ours: str
    message: str


class ReportOut(Schema):
    report_id: int
    partner_id: str
    date: str
    theirs: TotalsOut
    ours: TotalsOut
    balanced: bool
    differences: list[DifferenceOut]


ERRORS: dict[int, Any] = {401: MessageOut, 403: MessageOut, 413: MessageOut}

_SIGNED_HEADERS = [
    {
        "in": "header",
        "name": name,
        "required": True,
        "description": description,
        "schema": schema,
    }
    for name, description, schema in (
        ("X-Partner-Id", "合作方编号", {"type": "string", "maxLength": 32}),
        ("X-Timestamp", "Unix 时间戳（秒）", {"type": "string", "pattern": "^[0-9]{1,12}$"}),
        (
            "X-Nonce",
            "随机数（10 分钟内不重复）",
            {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
        ),
    )
]
_FILE_HEADERS = [
    {
        "in": "header",
        "name": "X-Record-Count",
        "required": True,
        "description": "声明的记录数（结算与撤销记录合计）",
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
    },
    {
        "in": "header",
        "name": "X-Amount-Total",
        "required": True,
        "description": "声明的金额合计：全部结算记录 medfee_sumamt 之和（元，两位小数）",
        "schema": {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,2})?$"},
    },
    {
        "in": "header",
        "name": "X-File-Name",
        "required": False,
        "description": "文件名（.csv 或 .jsonl；不提供时按 Content-Type 或内容判断）",
        "schema": {"type": "string", "maxLength": 200},
    },
]


# --- files -------------------------------------------------------------------------------------
def _filename(request: HttpRequest) -> str:
    given = request.headers.get("X-File-Name", "").strip()
    if given:
        return given[-200:]
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return f"settlements.{CONTENT_TYPES.get(content_type, 'dat')}"


def _declared_count(request: HttpRequest) -> int | None:
    text = request.headers.get("X-Record-Count", "").strip()
    return int(text) if text.isdigit() and len(text) <= 9 else None


def _problem(item: dict[str, Any]) -> dict[str, Any]:
    line = item.get("line")
    loc: list[str | int] = ["body", line, item["field"]] if line else ["body", item["field"]]
    message = f"第{line}行：{item['message']}" if line else item["message"]
    return {"loc": loc, "field": item["field"], "line": line, "msg": message, "code": "invalid"}


def _file_answer(
    settlement_file: SettlementFile, *, duplicate: bool = False, offset: int = 0
) -> dict[str, Any]:
    summary = feed.file_summary(settlement_file)
    rows = list(
        SettlementFileLine.objects.filter(file=settlement_file, position__gt=offset)
        .order_by("position")
        .values("position", "line", "setl_id", "record_type", "outcome", "reason", "benefit_fen")[
            : LINES_PER_PAGE + 1
        ]
    )
    more = len(rows) > LINES_PER_PAGE
    rows = rows[:LINES_PER_PAGE]
    return {
        **summary,
        "duplicate": duplicate,
        "lines": [
            {
                "line": r["line"],
                "setl_id": r["setl_id"],
                "record_type": r["record_type"],
                "outcome": r["outcome"],
                "reason": r["reason"] or None,
                "benefit": format_fen(r["benefit_fen"]),
            }
            for r in rows
        ],
        "next_offset": rows[-1]["position"] if more and rows else None,
    }


@router.post(
    "",
    auth=FileSignature(PartnerScope.BATCH),
    response={200: FileOut, 202: FileOut, 422: FileRejectedOut, **ERRORS},
    url_name="settlement-files",
    summary="上传结算批量文件（CSV 或 JSON lines）",
    description=(
        "请求体为文件原始内容（UTF-8）；Content-Type 为 text/csv 或 application/x-ndjson。"
        "声明的记录数与金额合计分别放在 X-Record-Count、X-Amount-Total 请求头中。逐条校验"
        "（与实时接口相同的规则）并核对声明，有任何问题整份文件拒收（422，列出每个问题的行号和"
        "字段），不导入任何记录；通过后按文件顺序逐条处理，每个 setl_id 只接收一次，已接收过的"
        "相同记录视为重复、不作改动。同一文件再次上传答复此前的结果（duplicate: true）。超过 "
        f"{feed.BACKGROUND_THRESHOLD} 条记录的文件在后台处理，答复 202，请用 GET 查询进度。"
        "格式说明见 docs/settlement-feed.md。\n\n" + SIGNING_HELP
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        "parameters": [*_SIGNED_HEADERS, *_FILE_HEADERS],
    },
)
def upload_file(request: HttpRequest) -> Status[dict[str, Any]]:
    partner: Partner = request.auth  # type: ignore[attr-defined]
    outcome = feed.import_settlement_file(
        acting_user=None,
        partner=partner,
        filename=_filename(request),
        content=request.body,
        declared_count=_declared_count(request),
        declared_total=request.headers.get("X-Amount-Total", ""),
    )
    settlement_file = outcome.file
    if settlement_file.status == feed.FileStatus.REJECTED:
        return Status(
            422,
            {
                "detail": [_problem(p) for p in settlement_file.problems],
                "file_id": settlement_file.pk,
                "status": settlement_file.status,
            },
        )
    answer = _file_answer(settlement_file, duplicate=outcome.duplicate)
    return Status(200 if settlement_file.status == feed.FileStatus.ACCEPTED else 202, answer)


@router.get(
    "/{file_id}",
    auth=PartnerSignature(PartnerScope.BATCH),
    response={200: FileOut, 404: MessageOut, **ERRORS},
    url_name="settlement-file",
    summary="查询结算批量文件的处理结果",
    description=(
        "本合作方上传的文件：状态、处理进度、各类结果的笔数和逐条结果（每次最多 "
        f"{LINES_PER_PAGE} 条，next_offset 不为 null 时以其为 offset 继续查询）。被拒收的文件"
        "在 problems 中列出全部问题。签名时 GET 请求体为空。\n\n" + SIGNING_HELP
    ),
    openapi_extra={"parameters": _SIGNED_HEADERS},
)
def file_detail(
    request: HttpRequest,
    file_id: int = Path(..., ge=1, le=2_147_483_647),
    offset: int = Query(0, ge=0, le=2_147_483_647),
) -> Status[dict[str, Any]]:
    partner: Partner = request.auth  # type: ignore[attr-defined]
    settlement_file = SettlementFile.objects.filter(partner=partner, pk=file_id).first()
    if settlement_file is None:
        return Status(404, {"detail": "本合作方没有该结算文件"})
    return Status(200, _file_answer(settlement_file, offset=offset))


# --- reconciliation ----------------------------------------------------------------------------
def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = intake.load_json(request.body)
    except (ValueError, RecursionError):
        raise QueryInvalid(
            [error_item(["body"], "请求体不是有效的 JSON", "json_invalid")]
        ) from None
    if not isinstance(data, dict):
        raise QueryInvalid([error_item(["body"], "请求体应为 JSON 对象", "invalid")])
    return data


@reconciliation_router.post(
    "",
    auth=PartnerSignature(PartnerScope.BATCH),
    response={200: ReportOut, 422: ValidationErrorOut, **ERRORS},
    url_name="reconciliations",
    summary="按日对账：提交本方当日合计，答复差异报告",
    description=(
        "提交某一日（按结算时间 setl_time 的日期，北京时间）本合作方的结算笔数、医疗费总额和"
        "医院已减免的补助金额合计（均不含已撤销的结算），可附逐笔清单；答复我方同日的合计及"
        "全部差异：我方未收到、对方未列出、结算日期不同、金额不同、状态不同（如对方认为已结算"
        "而我方已撤销）。报告保存在平台，可在“结算对账”页面查阅历史。\n\n" + SIGNING_HELP
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": inline_schema(ReconcileIn.model_json_schema()),
                    "example": {
                        "date": "2026-03-10",
                        "count": 2,
                        "medfee_sumamt": "60000.00",
                        "benefit": "6200.00",
                        "records": [
                            {"setl_id": "S202603100001", "medfee_sumamt": "30000.00"},
                            {"setl_id": "S202603100002", "status": "cancelled"},
                        ],
                    },
                }
            },
        },
        "parameters": _SIGNED_HEADERS,
    },
)
def reconcile(request: HttpRequest) -> Status[dict[str, Any]]:
    partner: Partner = request.auth  # type: ignore[attr-defined]
    data = _json_body(request)
    errors = [
        FieldError(str(key), f"不接受的字段“{key}”")
        for key in data
        if key not in ("date", "count", "medfee_sumamt", "benefit", "records")
    ]
    day = None
    text = data.get("date")
    try:
        day = date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        errors.append(FieldError("date", "必填，格式为 YYYY-MM-DD 的真实日期", ErrorCode.REQUIRED))
    records = data.get("records")
    if records is not None and not isinstance(records, list):
        errors.append(FieldError("records", "应为数组"))
        records = None
    try:
        totals = feed.partner_totals(
            count=data.get("count"),
            medfee=data.get("medfee_sumamt"),
            benefit=data.get("benefit"),
            records=records,
        )
    except InvalidInput as exc:
        errors += exc.errors
        totals = None
    if errors or totals is None or day is None:
        raise InvalidInput(errors)
    report = feed.reconcile(acting_user=None, partner=partner, day=day, totals=totals, source="api")
    return Status(200, feed.report_answer(report))
