"""The roster file (花名册), INTERFACES.md §2: reading, the downloadable template, the error report.

Reading: .xlsx / .xls with python-calamine (fast, read-only), CSV in UTF-8 (BOM tolerated) or GBK
as Excel and WPS save it (detected: UTF-8 is tried strictly first, then GB18030, GBK's superset).
The sheet 「花名册」 is read, else the first sheet; the header row is the first of the first ten
rows that names at least two of the contract's columns (a title line above it is tolerated);
headers in any order, extra columns ignored. Row numbers are the spreadsheet's own (the header
of a plain file is row 1), blank rows skipped.

Cells are kept as read (text, or a number when the file stored a number): an ID number stored as a
number has lost its last digits, so the validator reports it and never guesses (INTERFACES.md §2).

Nothing here asks about health, medical history or waiting periods (R2): the only columns are the
ten of the contract.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from python_calamine import CalamineWorkbook

#: Field name → header (INTERFACES.md §2), in template order.
COLUMNS: dict[str, str] = {
    "name": "姓名",
    "id_number": "身份证号码",
    "phone": "手机号码",
    "unit_uscc": "单位统一社会信用代码",
    "employment_type": "用工形式",
    "retirement_category": "退休类别",
    "hardship": "困难职工",
    "consent": "医保数据授权",
    "bank_account": "银行账号",
    "bank_name": "开户银行",
}
FIELDS: tuple[str, ...] = tuple(COLUMNS)
HEADER_TO_FIELD = {header: name for name, header in COLUMNS.items()}
#: Columns a roster cannot do without (``单位统一社会信用代码`` too, unless the enrolling union is
#: a federation: then the column may be absent and the federation is the enrolling organisation).
REQUIRED_FIELDS: tuple[str, ...] = ("name", "id_number", "employment_type")
TEXT_FIELDS = ("id_number", "phone", "unit_uscc", "bank_account")

EMPLOYMENT_CHOICES = {
    "在编": "established",
    "合同": "contract",
    "劳务派遣": "dispatched",
    "新就业形态": "new_employment",
}
RETIREMENT_CHOICES = {"男": "male", "女50": "female50", "女55": "female55"}
YES_NO = {"是": True, "否": False, "": False}

SHEET_NAME = "花名册"
INSTRUCTIONS_SHEET = "填写说明"
ERROR_COLUMN = "错误原因"
MAX_FILE_BYTES = 30 * 1024 * 1024
MAX_ROWS = 200_000
TEMPLATE_ROWS = 5000  # rows pre-formatted as text and given drop-down lists

Cell = Any  # str | float | int | bool | date | datetime | None, as the file stored it


class RosterFileError(Exception):
    """The file cannot be used at all (unreadable, no header, missing column): Chinese message."""


@dataclass(frozen=True, slots=True)
class RosterRow:
    row_number: int
    cells: tuple[Cell, ...]  # in FIELDS order; "" where the column is absent or empty

    def get(self, field: str) -> Cell:
        return self.cells[FIELDS.index(field)]


@dataclass(frozen=True)
class Roster:
    rows: list[RosterRow]
    present: frozenset[str]  # the fields whose column is in the file
    sheet: str
    headers: tuple[str, ...]  # the file's header row as read (for the error report)
    raw: dict[int, tuple[Cell, ...]]  # row number -> the row's raw cells (all columns)


def normalise_header(value: Cell) -> str:
    text = unicodedata.normalize("NFKC", str(value or ""))
    return "".join(text.split()).lstrip("*").rstrip("*")


def file_kind(content: bytes) -> str:
    if content[:4] == b"PK\x03\x04":
        return "xlsx"
    if content[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "xls"
    return "csv"


def decode_csv(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", errors="strict")
    try:
        return content.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030", errors="strict")
    except UnicodeDecodeError:
        raise RosterFileError("无法识别文件编码：CSV 文件应为 UTF-8 或 GBK 编码") from None


def _sheet_rows(content: bytes) -> tuple[str, list[list[Cell]]]:
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
    except Exception:  # calamine raises its own error types for broken files
        raise RosterFileError("无法读取该 Excel 文件（文件已损坏或不是 .xlsx/.xls 格式）") from None
    names = list(workbook.sheet_names)
    if not names:
        raise RosterFileError("Excel 文件中没有工作表")
    name = SHEET_NAME if SHEET_NAME in names else names[0]
    try:
        rows = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception:
        raise RosterFileError(f"无法读取工作表「{name}」") from None
    return name, rows


def _csv_rows(content: bytes) -> list[list[Cell]]:
    text = decode_csv(content)
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    return [list(r) for r in csv.reader(io.StringIO(text), delimiter=delimiter)]


def read_roster(
    content: bytes,
    *,
    require_unit_column: bool = True,
    max_rows: int = MAX_ROWS,
    keep_raw: bool = True,
) -> Roster:
    """Parse a roster file; ``RosterFileError`` when it is unusable as a whole."""
    if not content:
        raise RosterFileError("文件为空")
    if len(content) > MAX_FILE_BYTES:
        raise RosterFileError(f"文件过大（超过 {MAX_FILE_BYTES // 1024 // 1024} MB）")
    kind = file_kind(content)
    if kind == "csv":
        sheet, table = "CSV", _csv_rows(content)
    else:
        sheet, table = _sheet_rows(content)
    header_index = None
    for index, row in enumerate(table[:10]):
        if sum(1 for c in row if normalise_header(c) in HEADER_TO_FIELD) >= 2:
            header_index = index
            break
    if header_index is None:
        raise RosterFileError(
            f"工作表「{sheet}」中找不到表头行（应包含「姓名」「身份证号码」等列名）"
        )
    header = [normalise_header(c) for c in table[header_index]]
    positions: dict[str, int] = {}
    for position, title in enumerate(header):
        field = HEADER_TO_FIELD.get(title)
        if field is not None and field not in positions:
            positions[field] = position
    required = REQUIRED_FIELDS + (("unit_uscc",) if require_unit_column else ())
    missing = [COLUMNS[f] for f in required if f not in positions]
    if missing:
        raise RosterFileError("缺少必需的列：" + "、".join(missing))
    data = table[header_index + 1 :]
    if len(data) > max_rows:
        raise RosterFileError(f"数据行过多（超过 {max_rows} 行），请拆分为多个文件")
    getters = [positions.get(f) for f in FIELDS]
    rows: list[RosterRow] = []
    raw: dict[int, tuple[Cell, ...]] = {}
    first_number = header_index + 2  # spreadsheet rows count from 1
    width = max((p for p in getters if p is not None), default=0) + 1
    for offset, values in enumerate(data):
        if len(values) < width:
            values = [*values, *[""] * (width - len(values))]
        cells = tuple("" if p is None else _clean(values[p]) for p in getters)
        if not any(cells) and not any(_clean(v) not in ("", None) for v in values):
            continue  # a blank line (row numbers still count it)
        number = first_number + offset
        rows.append(RosterRow(number, cells))
        if keep_raw:
            raw[number] = tuple(data[offset])
    return Roster(
        rows=rows,
        present=frozenset(positions),
        sheet=sheet,
        headers=tuple(str(c or "") for c in table[header_index]),
        raw=raw,
    )


def _clean(value: Cell) -> Cell:
    if type(value) is str:
        return value.strip()
    if value is None:
        return ""
    return value


def cell_text(value: Cell) -> str:
    """A cell as the user would read it (numbers without a spurious ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def escape_formula(text: str) -> str:
    """S11: a cell that a spreadsheet would run as a formula is written as text."""
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


# --- the template ------------------------------------------------------------------------------
_INSTRUCTIONS: tuple[tuple[str, str, str], ...] = (
    ("姓名", "必填", "与身份证一致，不超过50个字。"),
    (
        "身份证号码",
        "必填",
        "18位居民身份证号码，最后一位可以是X。本列已设为文本格式，"
        "请勿改为数字格式（数字格式会丢失末尾数字，系统将拒收该行）。",
    ),
    ("手机号码", "选填", "11位手机号码。"),
    (
        "单位统一社会信用代码",
        "必填（工会联合会可留空）",
        "职工所在单位的18位统一社会信用代码，单位须已在本工会登记。通过行业性、区域性工会联合会参保的"
        "新就业形态劳动者可留空，由工会联合会作为参保组织。",
    ),
    ("用工形式", "必填", "在编、合同、劳务派遣、新就业形态，四选一。"),
    (
        "退休类别",
        "女职工必填",
        "男、女50、女55。男职工可留空（性别由身份证号码判断）；"
        "女职工须填写女50或女55（原法定退休年龄50周岁或55周岁），身份证号码无法区分。",
    ),
    (
        "困难职工",
        "选填",
        "是、否，留空视为否。填“是”的，登记为本保障年度的困难职工"
        "（已有困难职工认定记录的以认定记录为准）。",
    ),
    (
        "医保数据授权",
        "选填",
        "是、否，留空视为否。填“是”表示职工已签署工会提供的纸质授权书，"
        "同意共享医保结算数据，用于一站式结算。",
    ),
    ("银行账号", "选填", "本人银行卡号（12至30位数字），用于发放补助金。本列为文本格式。"),
    ("开户银行", "选填", "银行卡的开户银行名称。"),
)

_TEMPLATE_NOTES = (
    "参保不设职业、户籍限制，不设等待期，无需体检，不排除任何疾病或既往症；保障期按自然年度计算。",
    "参保年龄：参保日期当天年满最低参保年龄，且未超过法定退休年龄（按2024年渐进式延迟退休办法计算）。",
    "每人每个保障年度只能参保一份；已在其他工会参保的人员不能重复参保。",
    "上传后系统逐行校验，列出每个错误的行号、列名和原因；可以修改后重新上传，或只导入有效行。",
)


def template_workbook() -> bytes:
    """The downloadable roster template (.xlsx): text-formatted identifier columns, drop-down lists
    for the fixed values, and a 「填写说明」 sheet."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = SHEET_NAME
    headers = list(COLUMNS.values())
    sheet.append(headers)
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    widths = {
        "姓名": 12,
        "身份证号码": 22,
        "手机号码": 15,
        "单位统一社会信用代码": 24,
        "用工形式": 12,
        "退休类别": 10,
        "困难职工": 10,
        "医保数据授权": 13,
        "银行账号": 24,
        "开户银行": 20,
    }
    for index, title in enumerate(headers, start=1):
        cell = sheet.cell(row=1, column=index)
        cell.font = bold
        cell.fill = fill
        letter = cell.column_letter
        sheet.column_dimensions[letter].width = widths[title]
        if HEADER_TO_FIELD[title] in TEXT_FIELDS:
            sheet.column_dimensions[letter].number_format = "@"
            for row in range(2, TEMPLATE_ROWS + 2):
                sheet.cell(row=row, column=index).number_format = "@"
    sheet.freeze_panes = "A2"
    lists = {
        "用工形式": list(EMPLOYMENT_CHOICES),
        "退休类别": list(RETIREMENT_CHOICES),
        "困难职工": ["是", "否"],
        "医保数据授权": ["是", "否"],
    }
    for title, options in lists.items():
        letter = sheet.cell(row=1, column=headers.index(title) + 1).column_letter
        validation = DataValidation(
            type="list",
            formula1='"' + ",".join(options) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle="取值无效",
            error=f"{title}只能填写：" + "、".join(options),
        )
        validation.add(f"{letter}2:{letter}{TEMPLATE_ROWS + 1}")
        sheet.add_data_validation(validation)
    notes = workbook.create_sheet(INSTRUCTIONS_SHEET)
    notes.append(["职工互助保障参保花名册填写说明"])
    notes["A1"].font = Font(bold=True, size=14)
    notes.append([])
    notes.append(["列名", "是否必填", "填写要求"])
    for cell in notes[3]:
        cell.font = bold
        cell.fill = fill
    for instruction in _INSTRUCTIONS:
        notes.append(list(instruction))
    notes.append([])
    for note in _TEMPLATE_NOTES:
        notes.append([note])
    notes.column_dimensions["A"].width = 24
    notes.column_dimensions["B"].width = 22
    notes.column_dimensions["C"].width = 90
    for row in notes.iter_rows(min_row=4):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- the error report --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportError:
    row_number: int
    column: str
    message: str


def error_report(roster: Roster, errors: Iterable[ReportError]) -> bytes:
    """The bad rows as the clerk supplied them, with a 「错误原因」 column (the clerk's own data
    handed back, S11; every cell escaped against formula injection)."""
    by_row: dict[int, list[str]] = {}
    for error in errors:
        text = f"{error.column}：{error.message}" if error.column else error.message
        by_row.setdefault(error.row_number, []).append(text)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(SHEET_NAME)
    headers = list(roster.headers)
    sheet.append(["原行号", *[escape_formula(h) for h in headers], ERROR_COLUMN])
    for number in sorted(by_row):
        values: Sequence[Cell] = roster.raw.get(number, ())
        cells = [escape_formula(cell_text(v)) for v in values]
        cells += [""] * (len(headers) - len(cells))
        sheet.append([number, *cells[: len(headers)], escape_formula("；".join(by_row[number]))])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
