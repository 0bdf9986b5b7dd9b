"""Validation of settlement records as the medical-insurance side sends them (INTERFACES.md §3,
``reference/settlement-fields.md``): national field names only, unknown fields rejected, every
error named by its field, money exact (a JSON number is read from its text, never through a float).

Pure functions shared by the one-stop API and the batch feed, so both accept exactly the same
records. ``parse_settle_body`` returns a ``SettleRecord`` or raises ``InvalidInput`` with every
field error at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from huzhu.core.errors import ErrorCode, ErrorCollector
from huzhu.core.ids import is_valid_id_number
from huzhu.core.money import format_fen
from huzhu.rules.engine import Amounts, Settlement, amount_errors

#: 2304 output fields the API accepts (``reference/settlement-fields.md``), plus the 4101A dates.
MONEY_FIELDS = (
    "medfee_sumamt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "inscp_scp_amt",
    "act_pay_dedc",
    "hifp_pay",
    "cvlserv_pay",
    "hifes_pay",
    "hifmi_pay",
    "hifob_pay",
    "maf_pay",
    "hosp_part_amt",
    "oth_pay",
    "fund_pay_sumamt",
    "psn_part_amt",
    "acct_pay",
    "psn_cash_pay",
    "balc",
    "acct_mulaid_pay",
)
TEXT_FIELDS: dict[str, int] = {
    "mdtrt_id": 30,
    "setl_id": 30,
    "psn_no": 30,
    "psn_name": 50,
    "psn_cert_type": 6,
    "certno": 50,
    "gend": 6,
    "naty": 3,
    "insutype": 6,
    "psn_type": 6,
    "cvlserv_flag": 3,
    "mdtrt_cert_type": 3,
    "med_type": 6,
    "medins_setl_id": 30,
    "clr_optins": 6,
    "clr_way": 6,
    "clr_type": 6,
}
DATE_FIELDS = ("brdy", "adm_date", "dscg_date")
OTHER_FIELDS = ("setl_time", "age", "pool_prop_selfpay")
SETLINFO_FIELDS = frozenset((*MONEY_FIELDS, *TEXT_FIELDS, *DATE_FIELDS, *OTHER_FIELDS))
REQUIRED_FIELDS = (
    "setl_id",
    "certno",
    "setl_time",
    "med_type",
    "medfee_sumamt",
    "inscp_scp_amt",
    "fund_pay_sumamt",
    "hosp_part_amt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "psn_part_amt",
    "adm_date",
)
DISEINFO_FIELDS = frozenset({"diag_code", "diag_name", "maindiag_flag", "diag_type"})
MAX_DIAGNOSES = 30

_MONEY_RE = re.compile(r"[0-9]{1,14}(?:\.[0-9]{1,2})?")  # N16,2 (settlement-fields.md)
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_DIAG_RE = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?(?:[+*x×][0-9A-Z.]{0,8})?", re.IGNORECASE)
_SETL_ID_RE = re.compile(r"[0-9A-Za-z_\-]{1,30}")


@dataclass(frozen=True)
class SettleRecord:
    """A validated settle body: the engine's view, the normalized body, and its hash."""

    setl_id: str
    certno: str
    med_type: str
    adm_date: date
    dscg_date: date | None
    setl_time: datetime
    amounts: Amounts
    diagnoses: tuple[str, ...]
    normalized: dict[str, Any] = field(compare=False)
    body_hash: str = ""

    def engine_record(self) -> Settlement:
        return Settlement(
            setl_id=self.setl_id,
            med_type=self.med_type,
            adm_date=self.adm_date,
            setl_time=self.setl_time,
            amounts=self.amounts,
        )


def load_json(raw: bytes) -> Any:
    """Parse a request body; numbers keep their exact text (Decimal), never a float."""
    return json.loads(raw.decode("utf-8"), parse_float=Decimal)


def canonical_hash(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_money(value: object) -> int | None:
    """Fen from a JSON number or string with at most two decimals; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 100 if 0 <= value < 10**14 else None
    if isinstance(value, Decimal):
        # N16,2 at most: a huge exponent must not be expanded into a huge string first.
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int) or value.adjusted() >= 14 or exponent < -2:
            return None
        text = format(value, "f")
    elif isinstance(value, float):
        text = repr(value)  # only reached by callers that parsed with floats; checked strictly
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    if _MONEY_RE.fullmatch(text) is None:
        return None
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int(frac.ljust(2, "0"))


def parse_date(value: object) -> date | None:
    if not isinstance(value, str) or _DATE_RE.fullmatch(value) is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or _TIME_RE.fullmatch(value) is None:
        return None
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    # Year 1 in local time is before year 1 in UTC: no database can store it (OverflowError).
    return moment if moment.year >= 1900 else None


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | Decimal):
        return str(value)
    return None


def parse_settle_body(body: object, *, prefix: str = "") -> SettleRecord:
    """Validate a settle body ``{"setlinfo": {...}, "diseinfo": [...]}`` (INTERFACES.md §3).

    Raises ``InvalidInput`` naming every bad field (``setlinfo.medfee_sumamt``…) in Chinese.
    """
    errors = ErrorCollector()
    if not isinstance(body, dict):
        errors.add(prefix or "body", "请求体应为 JSON 对象", ErrorCode.INVALID)
        errors.raise_if_any()
        raise AssertionError  # unreachable
    for key in body:
        if key not in ("setlinfo", "diseinfo"):
            errors.add(f"{prefix}{key}", f"不接受的字段“{key}”", ErrorCode.INVALID)
    info = body.get("setlinfo")
    if not isinstance(info, dict):
        errors.add(f"{prefix}setlinfo", "缺少结算信息 setlinfo（JSON 对象）", ErrorCode.REQUIRED)
        errors.raise_if_any()
        raise AssertionError
    where = f"{prefix}setlinfo."
    for key in info:
        if key not in SETLINFO_FIELDS:
            errors.add(f"{where}{key}", f"不接受的字段“{key}”（须使用国家医保平台字段代码）")
    for key in REQUIRED_FIELDS:
        if info.get(key) in (None, ""):
            errors.add(f"{where}{key}", "必填", ErrorCode.REQUIRED)

    normalized: dict[str, Any] = {}
    money: dict[str, int] = {}
    for key in MONEY_FIELDS:
        if info.get(key) in (None, ""):
            continue
        fen = parse_money(info[key])
        if fen is None:
            errors.add(f"{where}{key}", "金额应为不小于 0 的数，最多两位小数（数字或字符串）")
        else:
            money[key] = fen
            normalized[key] = format_fen(fen)
    for key, limit in TEXT_FIELDS.items():
        if info.get(key) in (None, ""):
            continue
        text = _text(info[key])
        if text is None:
            errors.add(f"{where}{key}", "应为字符串")
        elif len(text) > limit:
            errors.add(f"{where}{key}", f"长度不能超过 {limit}")
        else:
            normalized[key] = text
    for key in DATE_FIELDS:
        if info.get(key) in (None, ""):
            continue
        day = parse_date(info[key])
        if day is None:
            errors.add(f"{where}{key}", "日期格式应为 YYYY-MM-DD 且为真实日期")
        else:
            normalized[key] = day.isoformat()
    setl_time = None
    if info.get("setl_time") not in (None, ""):
        setl_time = parse_time(info["setl_time"])
        if setl_time is None:
            errors.add(f"{where}setl_time", "时间格式应为 YYYY-MM-DD HH:MM:SS")
        else:
            normalized["setl_time"] = setl_time.strftime("%Y-%m-%d %H:%M:%S")
    for key in ("age", "pool_prop_selfpay"):
        if info.get(key) in (None, ""):
            continue
        value = info[key]
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            errors.add(f"{where}{key}", "应为数字")
            continue
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            errors.add(f"{where}{key}", "应为数字")
            continue
        if not number.is_finite() or number < 0 or not -20 <= number.adjusted() <= 20:
            errors.add(f"{where}{key}", "应为不小于 0 的数字")
        else:
            normalized[key] = format(number.normalize(), "f")

    setl_id = normalized.get("setl_id", "")
    if setl_id and _SETL_ID_RE.fullmatch(setl_id) is None:
        errors.add(f"{where}setl_id", "结算ID只能包含字母、数字、下划线和连字符，最长 30 位")
    certno = normalized.get("certno", "").upper()
    if certno:
        normalized["certno"] = certno
        if not is_valid_id_number(certno):
            errors.add(f"{where}certno", "身份证号码无效（18 位，校验码与出生日期须正确）")
    adm = parse_date(info.get("adm_date"))
    dscg = parse_date(info.get("dscg_date"))
    if adm and dscg and dscg < adm:
        errors.add(f"{where}dscg_date", "出院日期不能早于入院日期")

    diagnoses: list[str] = []
    dise = body.get("diseinfo", [])
    if dise is None:
        dise = []
    if not isinstance(dise, list):
        errors.add(f"{prefix}diseinfo", "诊断信息 diseinfo 应为数组")
        dise = []
    if len(dise) > MAX_DIAGNOSES:
        errors.add(f"{prefix}diseinfo", f"诊断不能超过 {MAX_DIAGNOSES} 条")
    normalized_dise = []
    for index, item in enumerate(dise[:MAX_DIAGNOSES]):
        at = f"{prefix}diseinfo[{index}]"
        if not isinstance(item, dict):
            errors.add(at, "应为 JSON 对象")
            continue
        entry: dict[str, str] = {}
        for key, value in item.items():
            if key not in DISEINFO_FIELDS:
                errors.add(f"{at}.{key}", f"不接受的字段“{key}”")
                continue
            text = _text(value)
            if text is None or len(text) > 100:
                errors.add(f"{at}.{key}", "应为不超过 100 个字符的字符串")
                continue
            entry[key] = text
        code = entry.get("diag_code", "")
        if not code:
            errors.add(f"{at}.diag_code", "必填", ErrorCode.REQUIRED)
        elif _DIAG_RE.fullmatch(code) is None:
            errors.add(f"{at}.diag_code", "诊断编码应为 ICD-10 编码（如 C34.9）")
        else:
            diagnoses.append(code.upper())
        normalized_dise.append(entry)

    amounts = None
    if not errors.errors and setl_time is not None and adm is not None:
        amounts = Amounts(
            medfee_sumamt=money["medfee_sumamt"],
            inscp_scp_amt=money["inscp_scp_amt"],
            fund_pay_sumamt=money["fund_pay_sumamt"],
            hosp_part_amt=money["hosp_part_amt"],
            fulamt_ownpay_amt=money["fulamt_ownpay_amt"],
            overlmt_selfpay=money["overlmt_selfpay"],
            preselfpay_amt=money["preselfpay_amt"],
            psn_part_amt=money["psn_part_amt"],
        )
        for name, message in amount_errors(amounts):
            errors.add(f"{where}{name}", message)
    errors.raise_if_any()
    assert amounts is not None and setl_time is not None and adm is not None
    canonical = {"setlinfo": normalized, "diseinfo": normalized_dise}
    return SettleRecord(
        setl_id=setl_id,
        certno=certno,
        med_type=normalized["med_type"],
        adm_date=adm,
        dscg_date=dscg,
        setl_time=setl_time,
        amounts=amounts,
        diagnoses=tuple(diagnoses),
        normalized=canonical,
        body_hash=canonical_hash(canonical),
    )


def parse_cancel_body(body: object) -> tuple[datetime, str]:
    """``{"cancel_time": "YYYY-MM-DD HH:MM:SS"}`` → (time, canonical hash)."""
    errors = ErrorCollector()
    if not isinstance(body, dict):
        errors.add("body", "请求体应为 JSON 对象")
        errors.raise_if_any()
        raise AssertionError
    for key in body:
        if key != "cancel_time":
            errors.add(key, f"不接受的字段“{key}”")
    moment = parse_time(body.get("cancel_time"))
    if moment is None:
        errors.add("cancel_time", "必填，时间格式应为 YYYY-MM-DD HH:MM:SS", ErrorCode.REQUIRED)
    errors.raise_if_any()
    assert moment is not None
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment, canonical_hash({"cancel_time": text})
