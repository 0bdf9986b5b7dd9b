"""Row-by-row validation of a roster against the rules (RULES.md §2, INTERFACES.md §2), set-based:
the rows are checked in memory and the database is asked a fixed number of questions per 900
identifiers (units by code, members and live enrollments by blind index), never one per row.

Each problem names the row number, the column (its Chinese header) and a Chinese reason. Rules:
ID check character and birth date; an ID stored as a number is reported, never guessed; a person
twice in the file; a person already holding this plan year's share (one share per person, whatever
union enrolled them); the age rule on the enrollment date (at least ``min_age``; not past the
statutory retirement date of the 2024 reform plus ``flexible_extension_months``); the unit
registered and under the enrolling union; the retirement category of women; phone, bank account
and the fixed-value columns. Nothing about health (R2).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from operator import mul

from huzhu.core.ids import (
    InvalidIdentifier,
    ResidentId,
    Sex,
    add_months,
    mask_id_number,
    parse_id_number,
    statutory_retirement_date,
    validate_bank_account,
    validate_mobile,
    validate_uscc,
)
from huzhu.enrollment.fastwrite import lookup_in
from huzhu.enrollment.models import LIVE_STATUSES, Enrollment, EnrollmentBatch
from huzhu.enrollment.roster import (
    COLUMNS,
    EMPLOYMENT_CHOICES,
    RETIREMENT_CHOICES,
    YES_NO,
    Roster,
    cell_text,
)
from huzhu.members.models import Member
from huzhu.members.services import id_number_index
from huzhu.orgs.models import Union, UnionKind, Unit

QUERY_CHUNK = 900
_SCIENTIFIC = re.compile(r"^[0-9](\.[0-9]+)?[eE][+]?[0-9]+$")
_RETIREMENT_LABEL = {"male": "男", "female50": "女50", "female55": "女55"}


@dataclass(frozen=True, slots=True)
class RowIssue:
    row_number: int
    column: str
    message: str
    name: str = ""
    id_number_masked: str = ""


@dataclass(slots=True)
class ValidRow:
    row_number: int
    name: str
    resident: ResidentId
    index: str
    employment_type: str
    retirement_category: str  # "" when the file left it empty (an existing member's is kept)
    effective_category: str
    phone: str
    bank_account: str
    bank_name: str
    unit: Unit | None
    home: Union
    hardship: bool
    consent: bool
    member_id: int | None = None


@dataclass
class ValidationResult:
    valid: list[ValidRow] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    row_count: int = 0

    @property
    def error_rows(self) -> int:
        return len({i.row_number for i in self.issues})


@dataclass(frozen=True)
class AgeRule:
    """RULES.md §2 (湘政办发〔2025〕58号（九）): the age limit on the enrollment date."""

    min_age: int
    flexible_extension_months: int
    on: date

    def problem(self, birth: date, category: str) -> str | None:
        if _months_later(birth, 12 * self.min_age) > self.on:
            return f"参保日期（{self.on:%Y-%m-%d}）时未满{self.min_age}周岁，不能参保"
        limit = retirement_limit(birth, category, self.flexible_extension_months)
        if self.on > limit:
            label = _RETIREMENT_LABEL.get(category, category)
            extension = (
                f"（含弹性延长{self.flexible_extension_months}个月）"
                if self.flexible_extension_months
                else ""
            )
            return (
                f"已超过参保年龄上限：按退休类别“{label}”，法定退休日期{extension}为"
                f"{limit:%Y-%m-%d}，早于参保日期{self.on:%Y-%m-%d}"
            )
        return None


def _enum(value: object) -> str:
    return unicodedata.normalize("NFKC", cell_text(value)).strip()


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), QUERY_CHUNK):
        yield items[start : start + QUERY_CHUNK]


def units_by_uscc(codes: set[str]) -> dict[str, Unit]:
    found: dict[str, Unit] = {}
    for chunk in _chunks(sorted(codes)):
        for unit in Unit.objects.filter(uscc__in=chunk).select_related("union"):
            found[unit.uscc] = unit
    return found


@dataclass(frozen=True, slots=True)
class ExistingMember:
    pk: int
    retirement_category: str


def existing_members(indexes: list[str]) -> dict[str, ExistingMember]:
    table = Member._meta.db_table
    rows = lookup_in(
        f"SELECT id, id_number_index, retirement_category FROM {table} "  # noqa: S608
        "WHERE id_number_index IN ({marks})",
        indexes,
    )
    return {index: ExistingMember(pk, category) for pk, index, category in rows}


def enrolled_elsewhere(indexes: list[str], year: int, batch: EnrollmentBatch | None) -> set[str]:
    """The people (blind indexes) holding a live share of ``year`` outside ``batch``."""
    table = Enrollment._meta.db_table
    rows = lookup_in(
        f"SELECT person_index, batch_id FROM {table} "  # noqa: S608
        "WHERE person_index IN ({marks}) AND plan_year = %s AND status IN (%s, %s)",
        indexes,
        year,
        *LIVE_STATUSES,
    )
    own = batch.pk if batch is not None else None
    return {index for index, batch_id in rows if batch_id != own}


@lru_cache(maxsize=65536)
def _months_later(day: date, months: int) -> date:
    return add_months(day, months)


@lru_cache(maxsize=65536)
def retirement_limit(birth: date, category: str, extension_months: int) -> date:
    """The statutory retirement date plus the plan's flexible extension (memoised: a roster has
    far fewer distinct birth dates than rows)."""
    return add_months(statutory_retirement_date(birth, category), extension_months)


_ID_TEXT = re.compile(r"^[0-9]{17}[0-9X]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_BANK = re.compile(r"^[0-9]{12,30}$")


def _resident(text: str) -> ResidentId:
    """``parse_id_number`` with a fast path for the valid case (most rows of a roster); any
    problem falls back to it for the exact Chinese message."""
    number = text.strip().upper()
    if _ID_TEXT.match(number):
        total = sum(map(mul, map(int, number[:17]), _ID_WEIGHTS))
        if _ID_CHECK[total % 11] == number[17]:
            try:
                birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
            except ValueError:
                birth = None
            if birth is not None and birth.year >= 1900:
                sex = Sex.MALE if int(number[16]) % 2 == 1 else Sex.FEMALE
                return ResidentId(number, number[:6], birth, sex)
    return parse_id_number(number)


@dataclass(slots=True)
class ParsedRow:
    """One row after the checks that need nothing but the row itself."""

    row_number: int
    name: str
    raw_id: str
    resident: ResidentId | None
    index: str
    clean: bool
    employment_type: str
    retirement_category: str
    hardship: bool
    consent: bool
    phone: str
    bank_account: str
    bank_name: str
    uscc: str

    @property
    def masked(self) -> str:
        return mask_id_number(self.raw_id) if self.raw_id else ""


_MSG_ID_NUMBER = (
    "身份证号码被存为数字，末尾几位已经丢失；请将该列设为文本格式后重新填写（系统不会猜测）"
)
_MSG_ID_SCIENTIFIC = (
    "身份证号码显示为科学计数法（如4.30102E+17），原号码已丢失；请将该列设为文本格式后"
    "重新填写（系统不会猜测）"
)
_MSG_BANK_NUMBER = "银行账号被存为数字，末尾几位已经丢失；请将该列设为文本格式后重新填写"
_MSG_EMPLOYMENT = "应为在编、合同、劳务派遣或新就业形态"


def parse_rows(roster: Roster, *, federation: bool) -> tuple[list[ParsedRow], list[RowIssue]]:
    """Stage 1: every check a row can pass or fail on its own, and duplicates inside the file.
    Pure (no database): the result depends only on the file and whether the enrolling union is a
    federation, so it may be reused for the same file (``parse_cached``)."""
    parsed: list[ParsedRow] = []
    issues: list[RowIssue] = []
    first_row_of: dict[str, int] = {}
    usccs: dict[str, str | InvalidIdentifier] = {}  # a roster names few units, many times
    c_name, c_id, c_phone, c_unit = (
        COLUMNS[k] for k in ("name", "id_number", "phone", "unit_uscc")
    )
    c_emp, c_cat, c_hard, c_cons = (
        COLUMNS[k] for k in ("employment_type", "retirement_category", "hardship", "consent")
    )
    c_acct, c_bank = COLUMNS["bank_account"], COLUMNS["bank_name"]
    for row in roster.rows:
        cells = row.cells
        number = row.row_number
        found: list[tuple[str, str]] = []
        name = cells[0] if type(cells[0]) is str else cell_text(cells[0]).strip()
        if not name:
            found.append((c_name, "姓名不能为空"))
        elif len(name) > 50:
            found.append((c_name, "姓名不能超过50个字"))
        raw_id = cells[1]
        resident: ResidentId | None = None
        id_text = ""
        if type(raw_id) is str:
            id_text = raw_id.upper()
            if _SCIENTIFIC.match(raw_id):
                found.append((c_id, _MSG_ID_SCIENTIFIC))
            else:
                try:
                    resident = _resident(raw_id)
                except InvalidIdentifier as exc:
                    found.append((c_id, str(exc)))
        elif isinstance(raw_id, (int, float)) and not isinstance(raw_id, bool):
            id_text = cell_text(raw_id)
            found.append((c_id, _MSG_ID_NUMBER))
        else:
            id_text = cell_text(raw_id)
            found.append((c_id, "身份证号码格式不正确（应为18位文本）"))
        employment = cells[4] if type(cells[4]) is str else _enum(cells[4])
        employment_type = EMPLOYMENT_CHOICES.get(employment, "")
        if not employment_type:
            employment = _enum(employment)
            employment_type = EMPLOYMENT_CHOICES.get(employment, "")
            if not employment:
                found.append((c_emp, "用工形式不能为空，" + _MSG_EMPLOYMENT))
            elif not employment_type:
                found.append((c_emp, f"用工形式“{employment[:20]}”无效，" + _MSG_EMPLOYMENT))
        category_text = cells[5] if type(cells[5]) is str else _enum(cells[5])
        category = ""
        if category_text:
            category = RETIREMENT_CHOICES.get(category_text) or RETIREMENT_CHOICES.get(
                _enum(category_text), ""
            )
            if not category:
                found.append(
                    (c_cat, f"退休类别“{_enum(category_text)[:20]}”无效，应为男、女50或女55")
                )
            elif resident is not None:
                if resident.sex == Sex.MALE and category != "male":
                    found.append((c_cat, "身份证号码显示为男性，退休类别应为“男”或留空"))
                elif resident.sex == Sex.FEMALE and category == "male":
                    found.append((c_cat, "身份证号码显示为女性，退休类别应为“女50”或“女55”"))
        flags: list[bool] = []
        for position, column in ((6, c_hard), (7, c_cons)):
            value = cells[position]
            flag = YES_NO.get(value) if type(value) is str else None
            if flag is None:
                flag = YES_NO.get(_enum(value))
                if flag is None:
                    found.append((column, f"{column}只能填写“是”或“否”（留空视为否）"))
                    flag = False
            flags.append(flag)
        phone = ""
        phone_cell = cells[2]
        if phone_cell != "":
            text = phone_cell if type(phone_cell) is str else cell_text(phone_cell)
            if _MOBILE.match(text):
                phone = text
            else:
                try:
                    phone = validate_mobile(text)
                except InvalidIdentifier as exc:
                    found.append((c_phone, str(exc)))
        account = ""
        account_cell = cells[8]
        if isinstance(account_cell, float) and abs(account_cell) >= 1e15:
            found.append((c_acct, _MSG_BANK_NUMBER))
        elif account_cell != "":
            text = account_cell if type(account_cell) is str else cell_text(account_cell)
            if _BANK.match(text):
                account = text
            else:
                try:
                    account = validate_bank_account(text)
                except InvalidIdentifier as exc:
                    found.append((c_acct, str(exc)))
        bank_name = cells[9] if type(cells[9]) is str else cell_text(cells[9]).strip()
        if len(bank_name) > 60:
            found.append((c_bank, "开户银行名称不能超过60个字"))
        uscc_cell = cells[3]
        uscc_text = (uscc_cell if type(uscc_cell) is str else cell_text(uscc_cell)).upper()
        uscc = ""
        if not uscc_text:
            if not federation:
                found.append(
                    (c_unit, "单位统一社会信用代码不能为空（只有通过工会联合会参保时可以留空）")
                )
        else:
            checked = usccs.get(uscc_text)
            if checked is None:
                try:
                    checked = validate_uscc(uscc_text)
                except InvalidIdentifier as exc:
                    checked = InvalidIdentifier(str(exc))
                usccs[uscc_text] = checked
            if isinstance(checked, InvalidIdentifier):
                found.append((c_unit, str(checked)))
            else:
                uscc = checked
        index = ""
        if resident is not None:
            index = id_number_index(resident.number)
            first = first_row_of.get(index)
            if first is not None:
                found.append((c_id, f"与第{first}行的身份证号码重复（同一人在文件中只能出现一次）"))
                resident = None  # a duplicate is not checked further
            else:
                first_row_of[index] = number
        item = ParsedRow(
            number,
            name,
            id_text.strip(),
            resident,
            index,
            not found,
            employment_type,
            category,
            flags[0],
            flags[1],
            phone,
            account,
            bank_name,
            uscc,
        )
        if found:
            masked = item.masked
            issues.extend(RowIssue(number, col, msg, name[:50], masked) for col, msg in found)
        if resident is not None:
            parsed.append(item)
    return parsed, issues


_PARSE_CACHE: dict[tuple[str, bool], tuple[list[ParsedRow], list[RowIssue], int]] = {}


def parse_cached(
    digest: str, federation: bool, load: Callable[[], Roster]
) -> tuple[list[ParsedRow], list[RowIssue], int]:
    """``parse_rows`` of a file identified by its SHA-256, kept for the last file of the process:
    the preview and the confirmation of one import (the command line, one worker) parse it once.
    Only stage 1 is kept — the database checks always run again."""
    key = (digest, federation)
    cached = _PARSE_CACHE.get(key)
    if cached is None:
        roster = load()
        parsed, issues = parse_rows(roster, federation=federation)
        cached = (parsed, issues, len(roster.rows))
        _PARSE_CACHE.clear()
        _PARSE_CACHE[key] = cached
    return cached


def validate_roster(
    roster: Roster | None,
    *,
    union: Union,
    plan_year: int,
    age_rule: AgeRule,
    batch: EnrollmentBatch | None = None,
    progress: object = None,
    parsed: tuple[list[ParsedRow], list[RowIssue], int] | None = None,
) -> ValidationResult:
    """Check every row; the valid rows carry everything the confirmation writes. ``parsed``:
    stage 1 already done (``parse_cached``), else ``roster`` is parsed here."""
    federation = union.kind == UnionKind.FEDERATION
    if parsed is None:
        assert roster is not None
        rows, row_issues, row_count = *parse_rows(roster, federation=federation), len(roster.rows)
    else:
        rows, row_issues, row_count = parsed
    result = ValidationResult(row_count=row_count)
    issues = result.issues
    issues.extend(row_issues)
    report = getattr(progress, "update", None)
    if report is not None:
        report(row_count // 2)
    # --- stage 2: set-based look-ups ---------------------------------------------------------
    units = units_by_uscc({r.uscc for r in rows if r.uscc})
    indexes = [r.index for r in rows]
    members = existing_members(indexes)
    taken = enrolled_elsewhere(indexes, plan_year, batch)
    c_unit, c_cat, c_id = COLUMNS["unit_uscc"], COLUMNS["retirement_category"], COLUMNS["id_number"]
    for row in rows:
        resident = row.resident
        assert resident is not None
        found: list[tuple[str, str]] = []
        unit: Unit | None = None
        home = union
        if row.uscc:
            unit = units.get(row.uscc)
            if unit is None:
                found.append(
                    (c_unit, "该统一社会信用代码的单位尚未登记，请先在「单位」中登记该单位")
                )
            elif not unit.union_path.startswith(union.path):
                found.append((c_unit, f"该单位不属于{union.name}及其下级工会，不能由本工会参保"))
                unit = None
            else:
                home = unit.union
        existing = members.get(row.index)
        category = row.retirement_category
        effective = category
        if resident.sex == Sex.MALE:
            effective = "male"
        elif not category:
            if existing is not None and existing.retirement_category in ("female50", "female55"):
                effective = existing.retirement_category
            else:
                found.append((c_cat, "女职工须填写退休类别（女50或女55），身份证号码无法区分"))
        if row.index in taken:
            found.append(
                (c_id, f"该职工已参加{plan_year}年度互助保障（每人每年限参保一份），不能重复参保")
            )
        if effective:
            problem = age_rule.problem(resident.birth_date, effective)
            if problem:
                found.append((c_id, problem))
        if found:
            masked = row.masked
            issues.extend(
                RowIssue(row.row_number, col, msg, row.name[:50], masked) for col, msg in found
            )
            continue
        if not row.clean:
            continue
        result.valid.append(
            ValidRow(
                row_number=row.row_number,
                name=row.name,
                resident=resident,
                index=row.index,
                employment_type=row.employment_type,
                retirement_category=category,
                effective_category=effective,
                phone=row.phone,
                bank_account=row.bank_account,
                bank_name=row.bank_name,
                unit=unit,
                home=home,
                hardship=row.hardship,
                consent=row.consent,
                member_id=existing.pk if existing is not None else None,
            )
        )
    issues.sort(key=lambda i: i.row_number)
    if report is not None:
        report(row_count)
    return result
