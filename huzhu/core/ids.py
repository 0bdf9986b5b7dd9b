"""Chinese identifiers: resident ID numbers (GB 11643-1999), unified social credit codes
(GB 32100-2015), region codes (GB/T 2260) and the statutory retirement date (2024 reform).

Pure Python, no Django import: the rules engine uses it too. See ../shared/reference/.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class InvalidIdentifier(ValueError):
    """An identifier failed its check; ``str(error)`` is a Chinese message for the user."""


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str
    region_code: str
    birth_date: date
    sex: Sex


def id_check_character(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def parse_id_number(value: str) -> ResidentId:
    """Validate an 18-character ID number; a lower-case ``x`` is accepted and stored upper-case.

    Legacy 15-digit numbers are rejected explicitly (they carry no check character). The region
    code is not checked against the GB/T 2260 list of the birth year: real IDs would fail that.
    """
    text = (value or "").strip().upper()
    if not text:
        raise InvalidIdentifier("身份证号码不能为空")
    if len(text) == 15 and text.isascii() and text.isdigit():
        raise InvalidIdentifier("不支持15位旧身份证号码，请使用18位身份证号码")
    if len(text) != 18:
        raise InvalidIdentifier(f"身份证号码应为18位，实际为{len(text)}位")
    if not _ID_RE.match(text):
        raise InvalidIdentifier("身份证号码只能包含数字，最后一位可以是X")
    try:
        birth = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise InvalidIdentifier("身份证号码中的出生日期不存在") from None
    if birth.year < 1900:
        raise InvalidIdentifier("身份证号码中的出生日期不合理")
    if id_check_character(text[:17]) != text[17]:
        raise InvalidIdentifier("身份证号码校验位不正确")
    sex = Sex.MALE if int(text[16]) % 2 == 1 else Sex.FEMALE
    return ResidentId(number=text, region_code=text[:6], birth_date=birth, sex=sex)


def is_valid_id_number(value: str) -> bool:
    try:
        parse_id_number(value)
    except InvalidIdentifier:
        return False
    return True


def make_id_number(region_code: str, birth: date, sequence: int) -> str:
    """Build a valid ID number (for synthetic demo and test data only)."""
    first17 = f"{region_code}{birth:%Y%m%d}{sequence:03d}"
    return first17 + id_check_character(first17)


# --- unified social credit code ----------------------------------------------------------------
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"^[0-9A-HJ-NP-RTUWXY]{18}$")


def uscc_check_character(first17: str) -> str:
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Return the normalised (upper-case) code or raise InvalidIdentifier (GB 32100-2015)."""
    text = (value or "").strip().upper()
    if not text:
        raise InvalidIdentifier("统一社会信用代码不能为空")
    if len(text) != 18:
        raise InvalidIdentifier(f"统一社会信用代码应为18位，实际为{len(text)}位")
    if not _USCC_RE.match(text):
        raise InvalidIdentifier("统一社会信用代码含有不允许的字符（不使用 I、O、Z、S、V）")
    if uscc_check_character(text[:17]) != text[17]:
        raise InvalidIdentifier("统一社会信用代码校验位不正确")
    return text


def make_uscc(first17: str) -> str:
    return first17 + uscc_check_character(first17)


_REGION_RE = re.compile(r"^[0-9]{6}$")


def validate_region_code(value: str) -> str:
    text = (value or "").strip()
    if not _REGION_RE.match(text) or text.startswith("00"):
        raise InvalidIdentifier("行政区划代码应为6位数字（GB/T 2260）")
    return text


# --- statutory retirement date (2024 gradual reform, reference/retirement.md) ----------------
class RetirementCategory(StrEnum):
    MALE = "male"
    FEMALE55 = "female55"
    FEMALE50 = "female50"


@dataclass(frozen=True, slots=True)
class _RetirementRule:
    original_age: int
    first_year: int
    first_month: int
    step_months: int
    max_delay_months: int


# 国务院关于渐进式提高职工法定退休年龄的办法, art. 1 and annexes 1–3.
_RETIREMENT_RULES = {
    RetirementCategory.MALE: _RetirementRule(60, 1965, 1, 4, 36),
    RetirementCategory.FEMALE55: _RetirementRule(55, 1970, 1, 4, 36),
    RetirementCategory.FEMALE50: _RetirementRule(50, 1975, 1, 2, 60),
}


def add_months(day: date, months: int) -> date:
    """Add calendar months keeping the day of month, clamped to the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def retirement_delay_months(birth: date, category: RetirementCategory) -> int:
    rule = _RETIREMENT_RULES[category]
    k = (birth.year - rule.first_year) * 12 + (birth.month - rule.first_month)
    return 0 if k < 0 else min(rule.max_delay_months, k // rule.step_months + 1)


def statutory_retirement_date(birth: date, category: RetirementCategory | str) -> date:
    category = RetirementCategory(category)
    rule = _RETIREMENT_RULES[category]
    months = rule.original_age * 12 + retirement_delay_months(birth, category)
    return add_months(birth, months)


def default_retirement_category(sex: Sex) -> RetirementCategory | None:
    """Men are always ``male``; for women the category must be recorded (None here)."""
    return RetirementCategory.MALE if sex == Sex.MALE else None


# --- masking (S11) -----------------------------------------------------------------------------
def mask_id_number(number: str) -> str:
    if len(number) < 8:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "****" + digits[-4:]


def mask_bank_account(account: str) -> str:
    digits = account.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    return "**** " + digits[-4:]


_PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")


def validate_mobile(value: str) -> str:
    text = (value or "").strip().replace(" ", "").replace("-", "")
    if text.startswith("+86"):
        text = text[3:]
    if not _PHONE_RE.match(text):
        raise InvalidIdentifier("手机号码应为11位，以1开头")
    return text


_BANK_RE = re.compile(r"^[0-9]{12,30}$")


def validate_bank_account(value: str) -> str:
    text = (value or "").strip().replace(" ", "")
    if not _BANK_RE.match(text):
        raise InvalidIdentifier("银行账号应为12至30位数字")
    return text
