"""Request and response schemas of the staff API.

Inputs forbid undeclared fields (S7). Outputs follow the field matrix: a member is shown with the
minimum necessary fields and masked identifiers only (S11) — the plain ID number, phone and bank
account never leave the server through this API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from ninja import Field, Schema
from pydantic import ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from huzhu.core.ids import (
    InvalidIdentifier,
    parse_id_number,
    validate_bank_account,
    validate_mobile,
    validate_uscc,
)
from huzhu.members.models import EmploymentType, RetirementCategoryChoice, SexChoice
from huzhu.orgs.models import UnionKind


class InputSchema(Schema):
    model_config = ConfigDict(extra="forbid")


# Format checks run with the schema, so that one answer lists every malformed field at once;
# the services repeat them (they are the authority) and add the checks that need the database.
def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("required", "不能为空")
    return value


def _checked(check: Callable[[str], object], value: str | None) -> str | None:
    if value is None or not value.strip():
        return value
    try:
        check(value)
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None
    return value


# --- errors (documentation of the one error shape, see huzhu.api.errors) -----------------------
class ErrorItem(Schema):
    loc: list[str | int] = Field(..., description="值的来源（body/query/path）及字段路径")
    field: str = Field(..., description="字段路径（以点分隔）")
    msg: str = Field(..., description="中文错误说明")
    code: str = Field(..., description="错误代码：required、invalid、duplicate、extra_forbidden…")


class ValidationErrorOut(Schema):
    detail: list[ErrorItem]


class MessageOut(Schema):
    detail: str


ERRORS_READ = {401: MessageOut, 404: MessageOut, 422: ValidationErrorOut}
ERRORS_LIST = {401: MessageOut, 403: MessageOut, 422: ValidationErrorOut}
ERRORS_WRITE = {401: MessageOut, 403: MessageOut, 404: MessageOut, 422: ValidationErrorOut}


# --- organisations and units -------------------------------------------------------------------
class OrgRef(Schema):
    id: int
    name: str


class UnionOut(Schema):
    id: int
    name: str
    kind: UnionKind
    parent_id: int | None
    depth: int
    code: str
    region_code: str
    uscc: str | None
    address: str
    contact_name: str
    is_active: bool


class UnionPage(Schema):
    items: list[UnionOut]
    next: int | None = Field(..., description="下一页的 after 参数；null 表示没有更多")


class UnitOut(Schema):
    id: int
    name: str
    uscc: str
    union: OrgRef
    address: str
    contact_name: str
    contact_phone_masked: str
    industry: str
    is_active: bool


class UnitPage(Schema):
    items: list[UnitOut]
    next: int | None = Field(..., description="下一页的 after 参数；null 表示没有更多")


class UnitIn(InputSchema):
    """A unit as a whole (POST creates, PUT replaces: an omitted optional field is cleared)."""

    union_id: int = Field(..., description="所属基层工会或工会联合会")
    name: str = Field(..., max_length=100)
    uscc: str = Field(..., max_length=32, description="统一社会信用代码（18位）")
    address: str = Field("", max_length=200)
    contact_name: str = Field("", max_length=50)
    industry: str = Field("", max_length=50)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _not_blank(value)

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, value: str) -> str:
        _not_blank(value)
        return _checked(validate_uscc, value) or value


# --- members -----------------------------------------------------------------------------------
class MemberOut(Schema):
    id: int
    name: str
    id_number_masked: str = Field(..., description="脱敏身份证号码，如 430***********1234")
    sex: SexChoice
    age: int = Field(..., description="周岁（按今天计算）")
    unit: OrgRef | None
    union: OrgRef
    employment_type: EmploymentType
    retirement_category: RetirementCategoryChoice
    retirement_date: date = Field(..., description="法定退休日期（2024年渐进式延迟退休办法）")
    hardship_now: bool = Field(..., description="今天是否为困难职工")
    consent_active: bool = Field(..., description="是否有有效的医保数据授权")


class MemberDetailOut(MemberOut):
    phone_masked: str = Field(..., description="脱敏手机号码，如 138****5678；空表示未登记")
    bank_account_masked: str = Field(..., description="脱敏银行账号（仅后4位）；空表示未登记")
    bank_name: str


class MemberPage(Schema):
    items: list[MemberOut]
    next: int | None = Field(..., description="下一页的 after 参数；null 表示没有更多")


class _MemberFields(InputSchema):
    """The format checks shared by the member inputs (the fields are declared by each)."""

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, value: str) -> str:
        return _not_blank(value)

    @field_validator("id_number", check_fields=False)
    @classmethod
    def _id_number(cls, value: str) -> str:
        return _checked(parse_id_number, _not_blank(value)) or value

    @field_validator("phone", check_fields=False)
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return _checked(validate_mobile, value)

    @field_validator("bank_account", check_fields=False)
    @classmethod
    def _bank_account(cls, value: str | None) -> str | None:
        return _checked(validate_bank_account, value)


_ID_NUMBER = Field(..., max_length=32, description="18位身份证号码（明文仅用于登记，不会返回）")


class MemberCreateIn(_MemberFields):
    union_id: int | None = Field(
        None,
        description="登记工会（单位所属工会或其上级）；省略时为调用者所在组织",
    )
    unit_id: int | None = Field(None, description="所在单位；仅工会联合会可登记无单位的职工")
    name: str = Field(..., max_length=50)
    id_number: str = _ID_NUMBER
    employment_type: EmploymentType
    retirement_category: RetirementCategoryChoice | None = Field(
        None, description="女职工必填（female50 或 female55）；男职工可省略"
    )
    phone: str = Field("", max_length=20)
    bank_account: str = Field("", max_length=40)
    bank_name: str = Field("", max_length=60)


class MemberUpdateIn(_MemberFields):
    """The member as a whole: every field must be sent (null for "none"), because the API never
    returns the plain phone or bank account a client would need to send back unchanged."""

    unit_id: int | None = Field(..., description="所在单位（同一登记工会内）；null 表示不变")
    name: str = Field(..., max_length=50)
    id_number: str = _ID_NUMBER
    employment_type: EmploymentType
    retirement_category: RetirementCategoryChoice | None
    phone: str | None = Field(..., max_length=20, description="null 或空表示清除")
    bank_account: str | None = Field(..., max_length=40, description="null 或空表示清除")
    bank_name: str | None = Field(..., max_length=60)
