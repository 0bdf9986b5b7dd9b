"""One error shape for the whole API (ARCHITECTURE convention 7).

- 401 ``{"detail": "…"}`` — missing, unknown, revoked or expired token (with
  ``WWW-Authenticate: Bearer``).
- 403 ``{"detail": "…"}`` — a missing permission on a collection-level action (list, create).
- 404 ``{"detail": "…"}`` — the object does not exist *or* lies outside the caller's subtree, or
  the caller may not see that kind of object: the body is the same in every case (S5).
- 409 ``{"detail": "…"}`` — the request conflicts with the current state.
- 422 ``{"detail": [{"loc": [...], "field": "…", "msg": "中文…", "code": "…"}, …]}`` — every field
  error at once, both from schema validation (pydantic) and from the services' ``InvalidInput``.

``loc`` starts with where the value came from (``body``, ``query``, ``path``) followed by the field
path; ``field`` is that path joined with dots. ``code`` is ``required`` for a missing value, the
service's ``ErrorCode`` for a service error, and pydantic's error type otherwise
(``extra_forbidden``, ``string_too_long``, ``int_parsing``, ``enum``…). The submitted value is
never echoed back (it may be an ID number).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from huzhu.core.errors import ConflictError, ErrorCode, InvalidInput

if TYPE_CHECKING:
    from ninja import NinjaAPI

logger = logging.getLogger(__name__)

NOT_FOUND_MESSAGE = "对象不存在，或不在您的管辖范围内"
UNAUTHORIZED_MESSAGE = "未认证：请在请求头中提供有效的令牌（Authorization: Bearer <token>）"
SERVER_ERROR_MESSAGE = "系统暂时无法处理您的请求，请稍后再试"

# Parameter names under which ninja nests a JSON body; dropped from ``loc`` so that a body field
# is reported as ["body", "name"] whether pydantic or a service found the error.
BODY_PARAMETER_NAMES = frozenset({"payload"})

# Services name some fields after the model ("unit"); the API schemas use the id ("unit_id").
SERVICE_FIELD_ALIASES: Mapping[str, str] = {"unit": "unit_id", "union": "union_id"}


def _expected(ctx: Mapping[str, Any]) -> str:
    text = str(ctx.get("expected", ""))
    return text.replace(" or ", "、").replace(", ", "、")


def _string_too_short(ctx: Mapping[str, Any]) -> str:
    minimum = ctx.get("min_length", 1)
    return "不能为空" if minimum == 1 else f"至少{minimum}个字符"


def _value_error(ctx: Mapping[str, Any]) -> str:
    return str(ctx.get("error", "")) or "取值无效"


_MESSAGES: dict[str, Any] = {
    "missing": "必填",
    "required": "不能为空",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为文本",
    "string_too_short": _string_too_short,
    "string_too_long": lambda c: f"不能超过{c.get('max_length')}个字符",
    "string_pattern_mismatch": "格式不正确",
    "string_unicode": "应为有效的文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_parsing_size": "数值超出范围",
    "int_from_float": "应为整数（不能有小数）",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "finite_number": "应为有限的数字",
    "decimal_type": "应为数字",
    "decimal_parsing": "应为数字",
    "decimal_max_digits": lambda c: f"最多{c.get('max_digits')}位数字",
    "decimal_max_places": lambda c: f"最多{c.get('decimal_places')}位小数",
    "decimal_whole_digits": lambda c: f"整数部分最多{c.get('whole_digits')}位",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "greater_than": lambda c: f"应大于{c.get('gt')}",
    "greater_than_equal": lambda c: f"不能小于{c.get('ge')}",
    "less_than": lambda c: f"应小于{c.get('lt')}",
    "less_than_equal": lambda c: f"不能大于{c.get('le')}",
    "multiple_of": lambda c: f"应为{c.get('multiple_of')}的倍数",
    "enum": lambda c: f"取值无效，应为以下之一：{_expected(c)}",
    "literal_error": lambda c: f"取值无效，应为以下之一：{_expected(c)}",
    "date_type": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "date_from_datetime_inexact": "应为日期（YYYY-MM-DD），不含时间",
    "datetime_type": "应为日期时间（YYYY-MM-DDTHH:MM:SS）",
    "datetime_parsing": "应为日期时间（YYYY-MM-DDTHH:MM:SS）",
    "datetime_from_date_parsing": "应为日期时间（YYYY-MM-DDTHH:MM:SS）",
    "time_type": "应为时间（HH:MM:SS）",
    "time_parsing": "应为时间（HH:MM:SS）",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "list_type": "应为列表",
    "tuple_type": "应为列表",
    "set_type": "应为列表",
    "too_short": lambda c: f"至少{c.get('min_length')}项",
    "too_long": lambda c: f"最多{c.get('max_length')}项",
    "json_invalid": "不是有效的 JSON",
    "json_type": "应为 JSON 文本",
    "uuid_type": "应为 UUID",
    "uuid_parsing": "应为 UUID",
    "url_type": "应为网址",
    "url_parsing": "应为网址",
    "none_required": "应为空（null）",
    "value_error": _value_error,
    "assertion_error": _value_error,
}


# Pydantic types that mean the same as a service ErrorCode are reported with that code.
_CODES: dict[str, str] = {
    "missing": ErrorCode.REQUIRED.value,
    "value_error": ErrorCode.INVALID.value,
    "assertion_error": ErrorCode.INVALID.value,
    # Where a JSON object was expected: one code whatever pydantic's internal path was.
    "model_attributes_type": "model_type",
    "dict_type": "model_type",
}


def translate(error_type: str, ctx: Mapping[str, Any] | None = None) -> str:
    """The Chinese message for one pydantic error type (``输入无效`` for a type not listed)."""
    message = _MESSAGES.get(error_type)
    if message is None:
        return "输入无效"
    if callable(message):
        return str(message(ctx or {}))
    return str(message)


def error_item(loc: Iterable[str | int], msg: str, code: str) -> dict[str, Any]:
    path = list(loc)
    return {"loc": path, "field": ".".join(str(p) for p in path[1:]), "msg": msg, "code": code}


def _clean_loc(loc: Iterable[Any]) -> list[str | int]:
    parts: list[str | int] = [p if isinstance(p, int) else str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "body" and parts[1] in BODY_PARAMETER_NAMES:
        del parts[1]
    return parts


def from_pydantic(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    items = []
    for error in errors:
        loc = _clean_loc(error.get("loc", ()))
        error_type = str(error.get("type", ""))
        ctx = error.get("ctx") or {}
        if loc == ["body"] and error_type == "missing":
            items.append(error_item(loc, "缺少请求体（JSON 对象）", ErrorCode.REQUIRED.value))
            continue
        code = _CODES.get(error_type, error_type)
        items.append(error_item(loc, translate(error_type, ctx), code))
    return items


def from_invalid_input(exc: InvalidInput, source: str = "body") -> list[dict[str, Any]]:
    return [
        error_item(
            [source, *SERVICE_FIELD_ALIASES.get(e.field, e.field).split(".")],
            e.message,
            e.code.value if isinstance(e.code, ErrorCode) else str(e.code),
        )
        for e in exc.errors
    ]


class QueryInvalid(ValidationError):
    """Raised by the API layer itself for query parameters (unknown names, bad cursors)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(items)
        self.items = items


def reject_unknown_query(request: HttpRequest, allowed: Iterable[str]) -> None:
    """Inputs accept only declared fields (S7): a misspelt filter must not silently list all."""
    known = set(allowed)
    unknown = sorted(set(request.GET.keys()) - known)
    if unknown:
        raise QueryInvalid(
            [
                error_item(["query", name], translate("extra_forbidden"), "extra_forbidden")
                for name in unknown
            ]
        )


# --- handlers ---------------------------------------------------------------------------------
def _validation_error(api: NinjaAPI, request: HttpRequest, exc: ValidationError) -> HttpResponse:
    items = exc.items if isinstance(exc, QueryInvalid) else from_pydantic(exc.errors)
    return api.create_response(request, {"detail": items}, status=422)


def _invalid_input(api: NinjaAPI, request: HttpRequest, exc: InvalidInput) -> HttpResponse:
    return api.create_response(request, {"detail": from_invalid_input(exc)}, status=422)


def _not_found(api: NinjaAPI, request: HttpRequest, exc: Http404) -> HttpResponse:
    # The same body whether the object is missing, out of scope or not viewable by the role.
    return api.create_response(request, {"detail": NOT_FOUND_MESSAGE}, status=404)


def _authentication(api: NinjaAPI, request: HttpRequest, exc: Exception) -> HttpResponse:
    response = api.create_response(request, {"detail": UNAUTHORIZED_MESSAGE}, status=401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="huzhu"'
    return response


def _http_error(api: NinjaAPI, request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
        # ninja could not parse the JSON body (JSONDecodeError and UnicodeDecodeError are
        # ValueErrors); answered in the one 422 shape like any other bad input.
        item = error_item(["body"], "请求体不是有效的 JSON", "json_invalid")
        return api.create_response(request, {"detail": [item]}, status=422)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


def _conflict(api: NinjaAPI, request: HttpRequest, exc: ConflictError) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "与当前状态冲突"}, status=409)


def _unexpected(api: NinjaAPI, request: HttpRequest, exc: Exception) -> HttpResponse:
    # Logged (through the PII-masking filter) and answered without a stack trace (S18).
    logger.exception("API error on %s %s", request.method, request.path)
    return api.create_response(request, {"detail": SERVER_ERROR_MESSAGE}, status=500)


def install(api: NinjaAPI) -> None:
    def bind(handler: Any) -> Any:
        def handle(request: HttpRequest, exc: Any) -> HttpResponse:
            return handler(api, request, exc)

        return handle

    api.add_exception_handler(Exception, bind(_unexpected))
    api.add_exception_handler(HttpError, bind(_http_error))
    api.add_exception_handler(AuthenticationError, bind(_authentication))
    api.add_exception_handler(Http404, bind(_not_found))
    api.add_exception_handler(ValidationError, bind(_validation_error))
    api.add_exception_handler(InvalidInput, bind(_invalid_input))
    api.add_exception_handler(ConflictError, bind(_conflict))
