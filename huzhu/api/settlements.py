"""One-stop settlement for partners (R12, INTERFACES.md §3, S14):

    POST /api/v1/settlements                    (scope ``settle``)
    POST /api/v1/settlements/{setl_id}/cancel   (scope ``cancel``)

Partners sign every request (``huzhu.claims.partner_signing``): the authentication reads the raw
body (``request.body``), so the signature covers exactly the bytes received. The body is then
parsed with ``huzhu.claims.intake.load_json`` (numbers as Decimal, never float) and validated by
the intake alone, so one 422 lists every field error in Chinese; the Pydantic models below only
document the shape in the OpenAPI schema (national field names, unknown fields rejected, money as
a number or a string).

Answers: 200 the settlement's answer (replayed verbatim for a repeat of the same content); 401 bad
signature, stale timestamp, replayed nonce, unknown or inactive partner; 403 an address outside the
partner's IP allow-list, a missing scope, or a member outside the partner's organisation subtree;
404 an unknown ``setl_id`` (cancel); 409 the same ``setl_id`` with different content; 413 a body
over the size limit; 422 an invalid body.

The hot path costs, beyond the settlement service's own queries, one statement (the nonce): the
partner comes from a per-process cache (``huzhu.claims.partners``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import Field, Path, Router, Schema, Status
from ninja.errors import HttpError
from ninja.security import APIKeyHeader
from pydantic import ConfigDict, WithJsonSchema, create_model

from huzhu.api.errors import QueryInvalid, error_item
from huzhu.api.schemas import MessageOut, ValidationErrorOut
from huzhu.claims import intake
from huzhu.claims.models import Partner, PartnerScope
from huzhu.claims.partners import PartnerDenied, authenticate_request, client_ip
from huzhu.claims.services import (
    OutOfScope,
    UnknownSettlement,
    cancel_settlement,
    receive_settlement,
)

router = Router(tags=["一站式结算（合作方）"])

SIGNING_HELP = (
    "合作方签名：每个请求带 `X-Partner-Id`、`X-Timestamp`（Unix 秒，与服务器相差不超过 300 秒）、"
    "`X-Nonce`（8–64 位字母数字、`_`、`-`，10 分钟内不得重复）和 `X-Signature`。"
    "待签名字符串为 `{timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n"
    "{请求体原始字节的 SHA-256 十六进制}`"
    "（path 不含主机和查询串，如 `/api/v1/settlements`）。HMAC 合作方：`X-Signature` 为以密钥"
    "十六进制解码后的字节为密钥的 HMAC-SHA256（十六进制）；SM2 合作方：SM3withSM2 签名"
    "（默认用户 ID 1234567812345678），编码为 r||s 共 128 位十六进制。"
    "命令 `huzhu partner sign` 可生成这些请求头。"
)


class PartnerSignature(APIKeyHeader):
    """The partner headers, checked over the raw body before anything else happens."""

    param_name = "X-Signature"
    openapi_description = SIGNING_HELP

    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, key: str | None) -> Partner:
        try:
            body = request.body
        except RequestDataTooBig:
            raise HttpError(413, "请求体过大") from None
        headers = request.headers
        try:
            return authenticate_request(
                partner_id=headers.get("X-Partner-Id", "").strip(),
                timestamp=headers.get("X-Timestamp", "").strip(),
                nonce=headers.get("X-Nonce", "").strip(),
                signature=(key or "").strip(),
                method=request.method or "",
                path=request.path,
                body=body,
                ip=client_ip(request),
                scope=self.scope,
            )
        except PartnerDenied as denied:
            raise HttpError(denied.status, denied.message) from None


# --- the documented shapes (validation is the intake's) ---------------------------------------
MONEY_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0, "exclusiveMaximum": 100000000000000},
        {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,2})?$"},
    ],
    "description": "金额（元）：JSON 数字或字符串，不小于 0，最多两位小数",
}
NUMBER_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
    ]
}
DATE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "description": "YYYY-MM-DD",
}
TIME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$",
    "description": "YYYY-MM-DD HH:MM:SS",
}
Money = Annotated[Decimal | str, WithJsonSchema(MONEY_SCHEMA)]
Number = Annotated[Decimal | str, WithJsonSchema(NUMBER_SCHEMA)]
Day = Annotated[str, WithJsonSchema(DATE_SCHEMA)]
Moment = Annotated[str, WithJsonSchema(TIME_SCHEMA)]

# The Chinese meaning of each 2304 field (reference/settlement-fields.md).
FIELD_LABELS = {
    "mdtrt_id": "就诊ID",
    "setl_id": "结算ID（与合作方一起构成幂等键）",
    "psn_no": "人员编号",
    "psn_name": "人员姓名",
    "psn_cert_type": "人员证件类型",
    "certno": "证件号码（18 位身份证号码，用于查找职工）",
    "gend": "性别",
    "naty": "民族",
    "brdy": "出生日期",
    "age": "年龄",
    "insutype": "险种类型",
    "psn_type": "人员类别",
    "cvlserv_flag": "公务员标志",
    "setl_time": "结算时间",
    "mdtrt_cert_type": "就诊凭证类型",
    "med_type": "医疗类别：11 普通门诊，14 门诊慢特病，21 普通住院，52 生育住院",
    "medfee_sumamt": "医疗费总额",
    "fulamt_ownpay_amt": "全自费金额",
    "overlmt_selfpay": "超限价自费费用",
    "preselfpay_amt": "先行自付金额",
    "inscp_scp_amt": "符合政策范围金额",
    "act_pay_dedc": "实际支付起付线",
    "hifp_pay": "基本医疗保险统筹基金支出",
    "pool_prop_selfpay": "基本医疗保险统筹基金支付比例",
    "cvlserv_pay": "公务员医疗补助资金支出",
    "hifes_pay": "企业补充医疗保险基金支出",
    "hifmi_pay": "居民大病保险资金支出",
    "hifob_pay": "职工大额医疗费用补助基金支出",
    "maf_pay": "医疗救助基金支出",
    "hosp_part_amt": "医院负担金额",
    "oth_pay": "其他支出",
    "fund_pay_sumamt": "基金支付总额",
    "psn_part_amt": "个人负担总金额",
    "acct_pay": "个人账户支出",
    "psn_cash_pay": "个人现金支出",
    "balc": "余额",
    "acct_mulaid_pay": "个人账户共济支付金额",
    "medins_setl_id": "医药机构结算ID",
    "clr_optins": "清算经办机构",
    "clr_way": "清算方式",
    "clr_type": "清算类别",
    "adm_date": "入院日期（4101A）",
    "dscg_date": "出院日期（4101A）",
}


def _setlinfo_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}

    def add(name: str, annotation: Any, **extra: Any) -> None:
        required = name in intake.REQUIRED_FIELDS
        if not required:
            annotation = annotation | None
        default = ... if required else None
        fields[name] = (annotation, Field(default, description=FIELD_LABELS.get(name), **extra))

    for name in intake.MONEY_FIELDS:
        add(name, Money)
    for name, limit in intake.TEXT_FIELDS.items():
        extra: dict[str, Any] = {"max_length": limit}
        if name == "setl_id":
            extra["pattern"] = r"^[0-9A-Za-z_\-]{1,30}$"
        add(name, str, **extra)
    for name in intake.DATE_FIELDS:
        add(name, Day)
    add("setl_time", Moment)
    add("age", Number)
    add("pool_prop_selfpay", Number)
    return fields


SetlInfoIn = create_model(
    "SetlInfoIn",
    __config__=ConfigDict(extra="forbid"),
    __doc__="2304 住院结算输出 setlinfo（国家医保平台字段代码；未列出的字段一律拒收）",
    **_setlinfo_fields(),
)


class DiseInfoIn(Schema):
    """诊断信息（4101A diseinfo）"""

    model_config = ConfigDict(extra="forbid")

    diag_code: str = Field(
        ...,
        max_length=100,
        description="诊断编码（ICD-10 医保版，如 K35.9）",
        pattern=r"^[A-Za-z][0-9]{2}",
    )
    diag_name: str | None = Field(None, max_length=100, description="诊断名称")
    maindiag_flag: str | None = Field(None, max_length=100, description="主诊断标志：1 是")
    diag_type: str | None = Field(None, max_length=100, description="诊断类别")


class SettleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    setlinfo: SetlInfoIn  # type: ignore[valid-type]
    diseinfo: list[DiseInfoIn] | None = Field(
        None, max_length=intake.MAX_DIAGNOSES, description="诊断（最多 30 条）"
    )


class CancelIn(Schema):
    model_config = ConfigDict(extra="forbid")

    cancel_time: Moment = Field(..., description="撤销时间 YYYY-MM-DD HH:MM:SS")


BENEFIT = Field(..., pattern=r"^-?[0-9]+\.[0-9]{2}$", description="补助金额（元，两位小数）")


class SettleOut(Schema):
    setl_id: str
    status: Literal["approved", "pending_review", "rejected", "quarantined"] = Field(
        ...,
        description="approved：已核准，医院出院时直接减免 benefit；pending_review：转人工审核，"
        "审核后支付给职工；rejected：不予给付（见 reason）；quarantined：职工尚未授权，"
        "数据已隔离保存，授权后自动处理",
    )
    product: str | None = Field(..., description="保障项目：inpatient、special_outpatient…")
    benefit: str = BENEFIT
    reason: str | None = Field(..., description="不予给付或为 0 的原因代码（RULES.md §4）")
    explanation: dict[str, Any] = Field(..., description="计算说明；text 为中文说明")


class CancelOut(Schema):
    setl_id: str
    status: Literal["cancelled"]
    benefit: str = Field(
        ...,
        pattern=r"^-?[0-9]+\.[0-9]{2}$",
        description="本年度补助合计的变动（元，通常为负数：冲回的补助）",
    )
    explanation: dict[str, Any]


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` substituted in place (a request body given
    literally, outside ninja's component registry, because the body is read and validated by
    the service — exactly, money included)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(dict(defs[ref.rsplit("/", 1)[-1]]))
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return dict(resolve(schema))


EXAMPLE_SETTLE: dict[str, Any] = {
    "setlinfo": {
        "setl_id": "S202603100001",
        "mdtrt_id": "M202603010001",
        "certno": "43010219850312001X",
        "psn_name": "张伟",
        "insutype": "310",
        "med_type": "21",
        "setl_time": "2026-03-10 10:00:00",
        "adm_date": "2026-03-01",
        "dscg_date": "2026-03-10",
        "medfee_sumamt": "30000.00",
        "fulamt_ownpay_amt": "3000.00",
        "overlmt_selfpay": "1000.00",
        "preselfpay_amt": "1000.00",
        "inscp_scp_amt": "25000.00",
        "fund_pay_sumamt": "13000.00",
        "hosp_part_amt": "0.00",
        "psn_part_amt": "17000.00",
    },
    "diseinfo": [{"diag_code": "K35.9", "diag_name": "急性阑尾炎", "maindiag_flag": "1"}],
}
EXAMPLE_CANCEL = {"cancel_time": "2026-03-11 09:00:00"}

_HEADERS = [
    {
        "in": "header",
        "name": "X-Partner-Id",
        "required": True,
        "description": "合作方编号（如 P430100001）",
        "schema": {"type": "string", "maxLength": 32},
    },
    {
        "in": "header",
        "name": "X-Timestamp",
        "required": True,
        "description": "Unix 时间戳（秒），与服务器时间相差不超过 300 秒",
        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
    },
    {
        "in": "header",
        "name": "X-Nonce",
        "required": True,
        "description": "随机数：8–64 位字母、数字、_ 或 -，同一合作方 10 分钟内不得重复",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
    },
]


def _request_body(model: type[Schema], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": inline_schema(model.model_json_schema()),
                    "example": example,
                }
            },
        },
        "parameters": _HEADERS,
    }


ERRORS: dict[int, Any] = {
    401: MessageOut,
    403: MessageOut,
    409: MessageOut,
    413: MessageOut,
    422: ValidationErrorOut,
}


def _body(request: HttpRequest) -> Any:
    try:
        return intake.load_json(request.body)
    except (ValueError, RecursionError):
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError: absurd nesting.
        raise QueryInvalid(
            [error_item(["body"], "请求体不是有效的 JSON", "json_invalid")]
        ) from None


def _forbidden(exc: Exception) -> Status[dict[str, str]]:
    return Status(403, {"detail": str(exc) or "该职工不在本合作方的服务范围内"})


@router.post(
    "",
    auth=PartnerSignature(PartnerScope.SETTLE),
    response={200: SettleOut, **ERRORS},
    url_name="settlements",
    summary="上传一笔住院结算（一站式结算，2304）",
    description=(
        "按国家医保平台 2304 字段上传一笔结算，答复本次应减免的互助补助金额。同一合作方同一 "
        "setl_id、相同内容（解析后比较，空格与键顺序无关）重复提交时答复相同且不作任何改动；"
        "内容不同答复 409。成员不在合作方所属组织范围内答复 403；请求体无效答复 422 并列出全部"
        "字段错误。\n\n" + SIGNING_HELP
    ),
    openapi_extra=_request_body(SettleIn, EXAMPLE_SETTLE),
)
def settle(request: HttpRequest) -> Status[dict[str, Any]]:
    partner: Partner = request.auth  # type: ignore[attr-defined]
    body = _body(request)
    try:
        answer = receive_settlement(partner=partner, body=body)
    except OutOfScope as exc:
        return _forbidden(exc)
    return Status(answer.status_code, answer.body)


@router.post(
    "/{setl_id}/cancel",
    auth=PartnerSignature(PartnerScope.CANCEL),
    response={200: CancelOut, 404: MessageOut, **ERRORS},
    url_name="settlement-cancel",
    summary="撤销一笔结算（2305）",
    description=(
        "撤销本合作方此前上传的结算：该笔记录退出年度计算，其余记录重新计算，答复年度补助合计的"
        "变动（RULES.md §4）。重复撤销答复相同；撤销内容不同答复 409；本合作方没有该 setl_id "
        "答复 404。\n\n" + SIGNING_HELP
    ),
    openapi_extra=_request_body(CancelIn, EXAMPLE_CANCEL),
)
def cancel(
    request: HttpRequest,
    setl_id: str = Path(
        ..., max_length=30, pattern=r"^[0-9A-Za-z_\-]{1,30}$", examples=["S202603100001"]
    ),
) -> Status[dict[str, Any]]:
    partner: Partner = request.auth  # type: ignore[attr-defined]
    cancel_time, body_hash = intake.parse_cancel_body(_body(request))
    try:
        answer = cancel_settlement(
            partner=partner, setl_id=setl_id, cancel_time=cancel_time, body_hash=body_hash
        )
    except UnknownSettlement:
        return Status(404, {"detail": f"本合作方没有结算ID为 {setl_id} 的结算记录"})
    except OutOfScope as exc:
        return _forbidden(exc)
    return Status(answer.status_code, answer.body)
