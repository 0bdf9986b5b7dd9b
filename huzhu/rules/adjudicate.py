"""``huzhu adjudicate``: batch benefit computation from files, no database (INTERFACES.md §2).

Reading and validation are vectorized with Polars (every column read as text, cells trimmed,
formats checked with anchored regular expressions on ASCII digits); amounts are converted to
integer fen with integer operations only. Rows are ordered by ``setl_time`` text, ``setl_id`` text
and file order, and priced by ``huzhu.rules.batch`` (or, when amounts are too large for int64, by
the sequential engine, which has no bound).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

import numpy as np
import polars as pl

from huzhu.rules import batch
from huzhu.rules.engine import Amounts, MemberInfo, Result, Row, Settlement, run_sequential
from huzhu.rules.plan import Plan, load_plan_file
from huzhu.rules.reasons import Reason

__all__ = [
    "EXIT_INVALID_ROWS",
    "EXIT_OK",
    "EXIT_UNUSABLE",
    "MEMBER_COLUMNS",
    "RESULT_COLUMNS",
    "SETTLEMENT_COLUMNS",
    "Adjudication",
    "RowError",
    "UnusableInput",
    "adjudicate_files",
    "prepare",
    "read_members",
    "read_settlements",
    "run",
    "write_results",
]

EXIT_OK = 0
EXIT_UNUSABLE = 2
EXIT_INVALID_ROWS = 3

MEMBER_COLUMNS = (
    "certno",
    "name",
    "member_type",
    "coverage_start",
    "coverage_end",
    "hardship_start",
    "hardship_end",
)
SETTLEMENT_COLUMNS = (
    "setl_id",
    "certno",
    "record_type",
    "med_type",
    "adm_date",
    "dscg_date",
    "setl_time",
    "medfee_sumamt",
    "inscp_scp_amt",
    "fund_pay_sumamt",
    "hosp_part_amt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "psn_part_amt",
    "other_reimbursed",
    "diag_codes",
)
MONEY_COLUMNS = (
    "medfee_sumamt",
    "inscp_scp_amt",
    "fund_pay_sumamt",
    "hosp_part_amt",
    "fulamt_ownpay_amt",
    "overlmt_selfpay",
    "preselfpay_amt",
    "psn_part_amt",
    "other_reimbursed",
)
#: The amounts that enter the base or the checks of RULES.md §3 (the others are only validated).
PRICED_MONEY_COLUMNS = (
    "medfee_sumamt",
    "inscp_scp_amt",
    "fund_pay_sumamt",
    "hosp_part_amt",
    "other_reimbursed",
)
RESULT_COLUMNS = (
    "setl_id",
    "certno",
    "record_type",
    "product",
    "base",
    "benefit",
    "cumulative_benefit",
    "reason",
)

# Anchored, ASCII only ([0-9], not \d, which also matches full-width digits).
MONEY_RE = r"^[0-9]+(\.[0-9]{1,2})?$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIME_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
#: The shape of a time, whatever its values: texts of this shape sort like their 14 digits.
TIME_FORMAT_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
ID_RE = r"^[0-9]{17}[0-9X]$"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_FIELD_LABELS = {
    "setl_id": "结算ID",
    "certno": "证件号码",
    "record_type": "记录类型",
    "med_type": "医疗类别",
    "adm_date": "入院日期",
    "setl_time": "结算时间",
    "medfee_sumamt": "医疗费总额",
    "inscp_scp_amt": "符合政策范围金额",
    "fund_pay_sumamt": "基金支付总额",
    "hosp_part_amt": "医院负担金额",
    "fulamt_ownpay_amt": "全自费金额",
    "overlmt_selfpay": "超限价自费费用",
    "preselfpay_amt": "先行自付金额",
    "psn_part_amt": "个人负担总金额",
    "other_reimbursed": "其他已报销金额",
    "member_type": "人员类型",
    "coverage_start": "保障开始日期",
    "coverage_end": "保障结束日期",
    "hardship_start": "困难职工开始日期",
    "hardship_end": "困难职工结束日期",
}


class UnusableInput(Exception):
    """Missing file, missing column, undecodable text or an invalid plan (exit 2)."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = list(messages)


@dataclass(frozen=True, slots=True, order=True)
class RowError:
    """One invalid row field, reported on standard error (INTERFACES.md §2)."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        label = _FIELD_LABELS.get(self.field)
        name = f"{self.field}（{label}）" if label else self.field
        return f"{self.file}:{self.line}: {name}: {self.message}"


# ---------------------------------------------------------------------------------------------
# Reading CSV files


def _check_utf8(data: bytes, path: str) -> None:
    """Fail (exit 2) on bytes that are not UTF-8, without holding a decoded copy of the file."""
    if data.isascii():
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 24
    try:
        for offset in range(0, len(data), step):
            decoder.decode(data[offset : offset + step])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise UnusableInput([f"{path}: 文件不是 UTF-8 编码（{exc.reason}）"]) from None


def _is_blank(line: bytes) -> bool:
    return not line.strip()


def _read_table(
    path: str, required: Sequence[str], used: Sequence[str] | None = None
) -> tuple[pl.DataFrame, np.ndarray]:
    """Read a CSV file as text columns (cells trimmed) and the file line number of each row.

    UTF-8 with an optional BOM; columns found by header name (extra columns ignored); blank lines
    skipped while line numbers still count them. Every ``required`` column must be in the header;
    only the ``used`` ones (default: all required) are read.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UnusableInput([f"{path}: 文件不存在"]) from None
    except OSError as exc:
        raise UnusableInput([f"{path}: 无法读取文件（{exc.strerror or exc}）"]) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    _check_utf8(data, path)

    # Skip blank lines before the header (they still count as lines).
    header_line = 1
    start = 0
    while True:
        end = data.find(b"\n", start)
        line = data[start:] if end < 0 else data[start:end]
        if not _is_blank(line) or end < 0:
            break
        start = end + 1
        header_line += 1
    header_end = data.find(b"\n", start)
    header_bytes = data[start:] if header_end < 0 else data[start:header_end]
    if _is_blank(header_bytes):
        raise UnusableInput([f"{path}: 文件为空，缺少表头行"])
    header = next(csv.reader([header_bytes.decode("utf-8").rstrip("\r")]))
    names = [name.strip() for name in header]
    missing = [column for column in required if column not in names]
    if missing:
        raise UnusableInput([f"{path}: 缺少列 {', '.join(missing)}"])
    columns = list(used if used is not None else required)
    quoted = header_end >= 0 and data.find(b'"', header_end + 1) >= 0
    source = data if start == 0 else data[start:]
    plain = _read_plain(source, names, columns, header_line, quoted)
    if plain is None:
        # A quoted cell spans lines: only a record-aware reader can number the lines.
        body = b"" if header_end < 0 else data[header_end + 1 :]
        frame, lines = _read_quoted(body, names, columns, header_line)
    else:
        frame, lines = plain
    trim = _columns_to_trim(frame, source, columns, quoted)
    frame = frame.with_columns(
        [
            pl.col(column).fill_null("").str.strip_chars()
            if column in trim
            else pl.col(column).fill_null("")
            for column in columns
        ]
    )
    if plain is not None and frame.height:
        frame, lines = _drop_blank_lines(frame, lines, source, columns)
    return frame, lines


def _columns_to_trim(
    frame: pl.DataFrame, source: bytes, columns: Sequence[str], quoted: bool
) -> set[str]:
    """The columns whose cells may start or end with whitespace (the others need no trimming,
    which spares a copy of a million cells per column).

    Exact for ASCII files without quotes: there a cell can only carry spaces, tabs, vertical
    tabs, form feeds or a CR that is not part of a CRLF line end (which the reader removes).
    Any other file is trimmed everywhere (Unicode has many more spaces, such as U+3000).
    """
    if quoted or not source.isascii():
        return set(columns)
    if any(source.find(char) >= 0 for char in (b"\t", b"\x0b", b"\x0c")):
        return set(columns)
    if source.find(b"\r") >= 0 and source.count(b"\r") != source.count(b"\r\n"):
        return set(columns)
    spaced = frame.select(
        [
            (pl.col(column).str.starts_with(" ") | pl.col(column).str.ends_with(" ")).any()
            for column in columns
        ]
    ).row(0)
    return {column for column, has in zip(columns, spaced, strict=True) if has}


def _drop_blank_lines(
    frame: pl.DataFrame, lines: np.ndarray, source: bytes, columns: Sequence[str]
) -> tuple[pl.DataFrame, np.ndarray]:
    """Drop the rows that come from blank lines (Polars reads them as rows of empty cells).

    A row whose cells are all empty is either a blank line (skipped, INTERFACES.md §2) or a line
    of empty fields such as ",,," (an invalid row): the line itself tells.
    """
    empty = pl.all_horizontal([pl.col(column) == "" for column in columns])
    candidates = np.flatnonzero(frame.select(empty).to_series().to_numpy())
    if candidates.size == 0:
        return frame, lines
    body_start = source.find(b"\n") + 1
    view = np.frombuffer(source, dtype=np.uint8, offset=body_start)
    newlines = np.flatnonzero(view == 10) + body_start
    starts = np.concatenate(([body_start], newlines + 1))
    blank = []
    for row in candidates.tolist():
        begin = int(starts[row])
        end = int(newlines[row]) if row < newlines.size else len(source)
        if _is_blank(source[begin:end]):
            blank.append(row)
    if not blank:
        return frame, lines
    keep = np.ones(frame.height, dtype=bool)
    keep[blank] = False
    return frame.filter(pl.Series(keep)), lines[keep]


def _read_plain(
    header_and_body: bytes,
    names: list[str],
    required: Sequence[str],
    header_line: int,
    quoted: bool,
) -> tuple[pl.DataFrame, np.ndarray] | None:
    """One record per physical line, read by Polars (the fast case); None when a quoted cell
    spans lines (then row numbers cannot be told from the row index).

    The header line is parsed again by Polars so that it fixes the number of columns (a short
    first data row must not); columns get positional names and the required ones are selected.
    """
    indices = [names.index(column) for column in required]
    frame = pl.read_csv(
        header_and_body,
        has_header=True,
        columns=indices,  # only what is used: Polars returns them in this order
        infer_schema=False,
        truncate_ragged_lines=True,
        quote_char='"' if quoted else None,
        raise_if_empty=False,
    )
    frame.columns = list(required)
    body_start = header_and_body.find(b"\n") + 1
    if body_start == 0:
        body_start = len(header_and_body)
    body_size = len(header_and_body) - body_start
    physical_lines = header_and_body.count(b"\n", body_start) + (
        0 if body_size == 0 or header_and_body.endswith(b"\n") else 1
    )
    if quoted and frame.height != physical_lines:
        return None
    # Polars gives one row per physical line (a blank line is a row of empty cells), so row i is
    # line header_line + 1 + i; the trailing newline of the last line makes no row.
    return frame, np.arange(frame.height, dtype=np.int64) + header_line + 1


def _read_quoted(
    body: bytes, names: list[str], required: Sequence[str], header_line: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """Files with quoted cells (which may span lines): Python's csv module, exact line numbers."""
    indices = [names.index(column) for column in required]
    text = body.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    columns: list[list[str]] = [[] for _ in required]
    lines: list[int] = []
    line_before = 0
    for record in reader:
        first_line = header_line + 1 + line_before
        line_before = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # a blank line
        lines.append(first_line)
        for slot, index in enumerate(indices):
            columns[slot].append(record[index] if index < len(record) else "")
    frame = pl.DataFrame(
        dict(zip(required, columns, strict=True)),
        schema=dict.fromkeys(required, pl.String),
    )
    return frame, np.asarray(lines, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Validation helpers (Polars expressions)


def _valid_date(column: str) -> pl.Expr:
    """Exactly YYYY-MM-DD and a day that exists (year 0000 does not)."""
    text = pl.col(column)
    return (
        text.str.contains(DATE_RE)
        & (text.str.slice(0, 4) != "0000")
        & text.str.strptime(pl.Date, "%Y-%m-%d", strict=False).is_not_null()
    ).fill_null(False)


def _seconds(time: pl.Expr) -> pl.Expr:
    """Seconds since 1970 of a valid ``YYYY-MM-DD HH:MM:SS`` text, else null."""
    return (
        pl.when(time.str.contains(TIME_RE))
        .then(
            time.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
            .cast(pl.Int64)
            .floordiv(1_000_000)
        )
        .otherwise(None)
    )


def _day_number_of(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _day_number(column: str) -> pl.Expr:
    return pl.col(column).str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Int32)


def _date_message(column: str) -> Callable[[dict[str, str]], str]:
    return lambda row: f"日期“{row[column]}”应为 YYYY-MM-DD 格式的有效日期"


def _errors_from(
    frame: pl.DataFrame, file: str, flag: str, field: str, message: Callable[[dict[str, str]], str]
) -> list[RowError]:
    rows = frame.filter(pl.col(flag))
    return [
        RowError(file, int(row["_line"]), field, message(row)) for row in rows.iter_rows(named=True)
    ]


# ---------------------------------------------------------------------------------------------
# Members


@dataclass(slots=True)
class MembersRead:
    table: batch.MemberTable
    errors: list[RowError]


def read_members(path: str) -> MembersRead:
    """Read and validate the members file (INTERFACES.md §2: invalid rows reported and skipped)."""
    frame, lines = _read_table(path, MEMBER_COLUMNS)
    frame = frame.with_columns(
        pl.Series("_line", lines, dtype=pl.Int64),
        pl.col("certno").str.to_uppercase(),  # a lower-case x is read as X
    )
    certno = pl.col("certno")
    id_format = certno.str.contains(ID_RE)
    birth = certno.str.slice(6, 4) + "-" + certno.str.slice(10, 2) + "-" + certno.str.slice(12, 2)
    birth_ok = (certno.str.slice(6, 4) != "0000") & birth.str.strptime(
        pl.Date, "%Y-%m-%d", strict=False
    ).is_not_null()
    weighted = pl.sum_horizontal(
        [certno.str.slice(i, 1).cast(pl.Int64, strict=False) * w for i, w in enumerate(_ID_WEIGHTS)]
    )
    check = (weighted % 11).replace_strict(dict(enumerate(_ID_CHECK)), return_dtype=pl.String)
    has_hs_start = pl.col("hardship_start") != ""
    has_hs_end = pl.col("hardship_end") != ""
    frame = frame.with_columns(
        _e_empty=certno == "",
        _e_format=(certno != "") & ~id_format,
        _e_check=id_format & (certno.str.slice(17, 1) != check).fill_null(True),
        _e_birth=id_format & ~birth_ok.fill_null(False),
        _e_type=~pl.col("member_type").is_in(["self", "family"]),
        _e_cov_start=~_valid_date("coverage_start"),
        _e_cov_end=~_valid_date("coverage_end"),
        _e_hs_start=has_hs_start & ~_valid_date("hardship_start"),
        _e_hs_end=has_hs_end & ~_valid_date("hardship_end"),
    )
    frame = frame.with_columns(
        _e_cov_order=~pl.col("_e_cov_start")
        & ~pl.col("_e_cov_end")
        & (pl.col("coverage_start") > pl.col("coverage_end")),
        _e_hs_order=has_hs_start
        & has_hs_end
        & ~pl.col("_e_hs_start")
        & ~pl.col("_e_hs_end")
        & (pl.col("hardship_start") > pl.col("hardship_end")),
    )
    flags = [column for column in frame.columns if column.startswith("_e_")]
    frame = frame.with_columns(_bad=pl.any_horizontal(flags))
    # "repeats an earlier accepted row's certno": only rows otherwise valid can be accepted.
    accepted_first = pl.col("certno").is_first_distinct().over(pl.col("_bad"))
    frame = frame.with_columns(_e_repeat=~pl.col("_bad") & ~accepted_first)
    frame = frame.with_columns(_accepted=~pl.col("_bad") & ~pl.col("_e_repeat"))

    errors: list[RowError] = []
    errors += _errors_from(frame, path, "_e_empty", "certno", lambda _r: "证件号码不能为空")
    errors += _errors_from(
        frame,
        path,
        "_e_format",
        "certno",
        lambda r: f"身份证号码“{r['certno']}”应为18位（17位数字加1位校验码，15位旧号码不适用）",
    )
    errors += _errors_from(
        frame,
        path,
        "_e_check",
        "certno",
        lambda r: f"身份证号码“{r['certno']}”校验码不正确（GB 11643）",
    )
    errors += _errors_from(
        frame,
        path,
        "_e_birth",
        "certno",
        lambda r: f"身份证号码“{r['certno']}”中的出生日期不存在",
    )
    errors += _errors_from(
        frame,
        path,
        "_e_type",
        "member_type",
        lambda r: f"人员类型“{r['member_type']}”应为 self 或 family",
    )
    for flag, column in (
        ("_e_cov_start", "coverage_start"),
        ("_e_cov_end", "coverage_end"),
        ("_e_hs_start", "hardship_start"),
        ("_e_hs_end", "hardship_end"),
    ):
        errors += _errors_from(
            frame,
            path,
            flag,
            column,
            _date_message(column),
        )
    errors += _errors_from(
        frame,
        path,
        "_e_cov_order",
        "coverage_start",
        lambda r: f"保障开始日期 {r['coverage_start']} 晚于结束日期 {r['coverage_end']}",
    )
    errors += _errors_from(
        frame,
        path,
        "_e_hs_order",
        "hardship_start",
        lambda r: f"困难职工开始日期 {r['hardship_start']} 晚于结束日期 {r['hardship_end']}",
    )
    errors += _errors_from(
        frame,
        path,
        "_e_repeat",
        "certno",
        lambda r: f"证件号码“{r['certno']}”与前面已接受的行重复",
    )
    accepted = frame.filter(pl.col("_accepted"))
    table = accepted.select(
        pl.col("certno"),
        pl.when(pl.col("member_type") == "self")
        .then(0)
        .otherwise(1)
        .cast(pl.Int8)
        .alias("member_type"),
        _day_number("coverage_start").alias("cov_start"),
        _day_number("coverage_end").alias("cov_end"),
        pl.when(pl.col("hardship_start") != "")
        .then(_day_number("hardship_start"))
        .otherwise(pl.lit(int(batch.OPEN_START)))
        .cast(pl.Int32)
        .alias("hs_start"),
        pl.when(pl.col("hardship_end") != "")
        .then(_day_number("hardship_end"))
        .otherwise(pl.lit(int(batch.OPEN_END)))
        .cast(pl.Int32)
        .alias("hs_end"),
        ((pl.col("hardship_start") != "") | (pl.col("hardship_end") != "")).alias("has_hardship"),
    )
    return MembersRead(batch.MemberTable(table), sorted(errors))


# ---------------------------------------------------------------------------------------------
# Settlements


@dataclass(slots=True)
class SettlementsRead:
    """Settlement rows in processing order: the typed table, the output text columns, errors."""

    table: batch.SettlementTable
    output: pl.DataFrame  # setl_id, certno, record_type as written back
    errors: list[RowError]
    #: Whether every amount fits the int64 path (else the sequential engine prices the file).
    fits_int64: bool
    max_amount: int
    total_base: int
    #: Every column as read and validated, in file order (``order`` puts it in processing order).
    raw: pl.DataFrame = field(repr=False)
    order: np.ndarray = field(repr=False)
    path: str = ""


def read_settlements(path: str) -> SettlementsRead:
    """Read, validate and order the settlements file (INTERFACES.md §2)."""
    used = [c for c in SETTLEMENT_COLUMNS if c not in ("dscg_date", "diag_codes")]
    frame, lines = _read_table(path, SETTLEMENT_COLUMNS, used)
    # Validation is row by row, so it runs in file order; only the few columns the pricing and
    # the output need are put in processing order (gathering strings at random is costly).
    settle = pl.col("record_type") == "settle"
    time = pl.col("setl_time")
    # Line numbers stay beside the frame: a column of another chunk layout would make Polars
    # copy every string column at the next with_columns.
    year_one = _day_number_of(date(1, 1, 1))  # year 0000 parses but does not exist
    checks: dict[str, pl.Expr] = {
        "certno": pl.col("certno").str.to_uppercase(),  # a lower-case x is read as X
        "_e_setl_id": pl.col("setl_id") == "",
        "_e_certno": pl.col("certno") == "",
        "_e_record_type": ~pl.col("record_type").is_in(["settle", "cancel"]),
        "_e_med_type": settle & (pl.col("med_type") == ""),
        # Dates: exactly the shape, and a day that exists (parsed once, checked by its result).
        "_adm_day": pl.when(pl.col("adm_date").str.contains(DATE_RE)).then(_day_number("adm_date")),
        "_setl_second": _seconds(time),
    }
    for column in MONEY_COLUMNS:
        well_formed = pl.col(column).str.contains(MONEY_RE)
        if column == "other_reimbursed":
            well_formed = well_formed | (pl.col(column) == "")  # empty means 0
        checks[f"_e_{column}"] = settle & ~well_formed
    for column in PRICED_MONEY_COLUMNS:
        # Exact fen from the digits: a Decimal(18, 2) is an integer of fen underneath (no float).
        # Texts longer than 16 characters may not fit; they send the file to the exact path.
        checks[f"_fen_{column}"] = (
            pl.col(column).cast(pl.Decimal(18, 2), strict=False).to_physical().cast(pl.Int64)
        )
    checks["_longest"] = pl.max_horizontal(
        [pl.col(column).str.len_bytes() for column in PRICED_MONEY_COLUMNS]
    )
    frame = frame.with_columns(**checks)
    adm_day, second = pl.col("_adm_day"), pl.col("_setl_second")
    frame = frame.with_columns(
        _e_adm_date=settle & (adm_day.is_null() | (adm_day < year_one)),
        _setl_day=second.floordiv(86400).cast(pl.Int32),
        _e_setl_time=second.is_null() | (second < year_one * 86400),
    )
    longest = frame["_longest"].max()
    fast = longest is None or int(longest) <= 16  # type: ignore[arg-type]
    money_ok = {column: settle & ~pl.col(f"_e_{column}") for column in MONEY_COLUMNS}
    if fast:
        fen = {column: pl.col(f"_fen_{column}") for column in MONEY_COLUMNS}
        frame = frame.with_columns(
            _e_sum=money_ok["medfee_sumamt"]
            & money_ok["fund_pay_sumamt"]
            & money_ok["hosp_part_amt"]
            & (fen["fund_pay_sumamt"] + fen["hosp_part_amt"] > fen["medfee_sumamt"]),
            _e_inscp=money_ok["medfee_sumamt"]
            & money_ok["inscp_scp_amt"]
            & (fen["inscp_scp_amt"] > fen["medfee_sumamt"]),
        )
    else:
        frame = _exact_amount_checks(frame)
    flags = [column for column in frame.columns if column.startswith("_e_")]
    valid = ~pl.any_horizontal(flags)
    base = pl.max_horizontal(
        pl.lit(0, dtype=pl.Int64),
        pl.col("_fen_inscp_scp_amt")
        - pl.col("_fen_fund_pay_sumamt")
        - pl.col("_fen_hosp_part_amt")
        - pl.col("_fen_other_reimbursed").fill_null(0),
    )
    frame = frame.with_columns(
        _valid=valid,
        _base=pl.when(valid & settle).then(base).otherwise(0) if fast else pl.lit(0, pl.Int64),
    )
    if fast:
        stats = frame.select(
            pl.max_horizontal(
                [
                    pl.when(money_ok[column]).then(pl.col(f"_fen_{column}")).max()
                    for column in PRICED_MONEY_COLUMNS
                ]
            ).alias("max"),
            pl.col("_base").cast(pl.Int128).sum().alias("total"),  # exact, cannot overflow
        ).row(0)
        max_amount = int(stats[0] or 0)
        total_base = int(stats[1] or 0)
    else:
        max_amount = batch.SAFE_AMOUNT
        total_base = batch.SAFE_AMOUNT
    errors = _settlement_errors(frame, lines, path)
    order = processing_order(frame)
    table = batch.SettlementTable(
        frame.select(
            pl.col("record_type"),
            pl.col("setl_id"),
            pl.col("certno"),
            pl.col("_valid").alias("valid"),
            (pl.col("record_type") == "cancel").alias("is_cancel"),
            pl.col("med_type"),
            pl.when(pl.col("_valid") & settle)
            .then(pl.col("_adm_day"))
            .otherwise(0)
            .cast(pl.Int32)
            .alias("adm_day"),
            pl.when(pl.col("_valid"))
            .then(pl.col("_setl_day"))
            .otherwise(0)
            .cast(pl.Int32)
            .alias("setl_day"),
            pl.col("_base").alias("base"),
        )
        # Contiguous first: gathering at random across the reader's chunks is much slower.
        .rechunk()[order]
        .with_columns(pl.Series("_line", lines[order], dtype=pl.Int64))
    )
    return SettlementsRead(
        table=table,
        output=table.frame.select("setl_id", "certno", "record_type"),
        errors=errors,
        fits_int64=fast,
        max_amount=max_amount,
        total_base=total_base,
        raw=frame,
        order=order,
        path=path,
    )


def processing_order(frame: pl.DataFrame) -> np.ndarray:
    """Row order of INTERFACES.md §2: ``setl_time`` as text, then ``setl_id`` as text, ties in
    file order (``frame`` is in file order).

    Sorting a million strings on three keys is slow, so: well-formed times (fixed width, so their
    text order is the order of their 14 digits) are sorted as integers, the rows that share a time
    are ordered by ``setl_id`` among themselves, and the few invalid times are merged in by text.
    """
    n = frame.height
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if "_setl_second" in frame.columns:
        seconds = frame["_setl_second"]
    else:
        seconds = frame.select(_seconds(pl.col("setl_time"))).to_series()
    ok = seconds.is_not_null().to_numpy()
    well = np.flatnonzero(ok)
    values = seconds.fill_null(0).to_numpy().astype(np.int64)[well]
    # Unique keys (time, then file position), so that any sort gives the stable order; a time in
    # seconds (|t| < 3·10^11 up to year 9999) times the row count stays far inside int64.
    permutation = np.argsort(values * n + well)
    order = well[permutation]
    sorted_keys = values[permutation]
    tied = np.zeros(order.size, dtype=bool)
    if order.size > 1:
        same = sorted_keys[1:] == sorted_keys[:-1]
        tied[1:] |= same
        tied[:-1] |= same
    if tied.any():
        # Rows sharing one time occupy consecutive slots; order them by setl_id, then file order.
        slots = np.flatnonzero(tied)
        rows = order[slots]
        sub = pl.DataFrame(
            {
                "key": sorted_keys[slots],
                "setl_id": frame["setl_id"].gather(rows),
                "row": rows,
            }
        ).sort(["key", "setl_id", "row"], maintain_order=True)
        order[slots] = sub["row"].to_numpy()
    odd = np.flatnonzero(~ok)
    if odd.size:
        # Malformed times (INVALID rows) still take their place by text among all the others.
        odd_sorted = pl.DataFrame(
            {
                "setl_time": frame["setl_time"].gather(odd),
                "setl_id": frame["setl_id"].gather(odd),
                "row": odd,
            }
        ).sort(["setl_time", "setl_id", "row"], maintain_order=True)
        texts = frame["setl_time"].gather(order).to_numpy()
        places = np.searchsorted(texts, odd_sorted["setl_time"].to_numpy(), side="left")
        order = np.insert(order, places, odd_sorted["row"].to_numpy())
    return order.astype(np.int64)


def _exact_amount_checks(frame: pl.DataFrame) -> pl.DataFrame:
    """Amounts too long for int64: parse them exactly in Python (rare; correctness over speed)."""
    from huzhu.core.money import parse_yuan

    values: dict[str, list[int]] = {column: [] for column in PRICED_MONEY_COLUMNS}
    sums: list[bool] = []
    inscp: list[bool] = []
    rows = frame.select(
        [*MONEY_COLUMNS, *(f"_e_{c}" for c in MONEY_COLUMNS), "record_type"]
    ).iter_rows(named=True)
    for row in rows:
        settle = row["record_type"] == "settle"
        parsed: dict[str, int | None] = {}
        for column in MONEY_COLUMNS:
            text = row[column]
            ok = settle and not row[f"_e_{column}"]
            parsed[column] = (parse_yuan(text) if text else 0) if ok else None
        for column in PRICED_MONEY_COLUMNS:
            values[column].append(0)  # placeholders: the sequential path re-parses exactly
        medfee, fund, hosp, scope = (
            parsed["medfee_sumamt"],
            parsed["fund_pay_sumamt"],
            parsed["hosp_part_amt"],
            parsed["inscp_scp_amt"],
        )
        sums.append(
            medfee is not None and fund is not None and hosp is not None and fund + hosp > medfee
        )
        inscp.append(medfee is not None and scope is not None and scope > medfee)
    return frame.with_columns(
        *(
            pl.Series(f"_fen_{column}", values[column], dtype=pl.Int64)
            for column in PRICED_MONEY_COLUMNS
        ),
        pl.Series("_e_sum", sums, dtype=pl.Boolean),
        pl.Series("_e_inscp", inscp, dtype=pl.Boolean),
    )


def _settlement_errors(frame: pl.DataFrame, lines: np.ndarray, path: str) -> list[RowError]:
    errors: list[RowError] = []
    bad_rows = np.flatnonzero(~frame["_valid"].to_numpy())
    if bad_rows.size == 0:
        return errors
    bad = frame[bad_rows]
    for line, row in zip(lines[bad_rows].tolist(), bad.iter_rows(named=True), strict=True):

        def add(field_name: str, message: str, line: int = int(line)) -> None:
            errors.append(RowError(path, line, field_name, message))

        if row["_e_setl_id"]:
            add("setl_id", "结算ID不能为空")
        if row["_e_certno"]:
            add("certno", "证件号码不能为空")
        if row["_e_record_type"]:
            add("record_type", f"记录类型“{row['record_type']}”应为 settle 或 cancel")
        if row["_e_setl_time"]:
            add("setl_time", f"结算时间“{row['setl_time']}”应为 YYYY-MM-DD HH:MM:SS 格式的有效时间")
        if row["_e_med_type"]:
            add("med_type", "医疗类别不能为空")
        if row["_e_adm_date"]:
            add("adm_date", f"入院日期“{row['adm_date']}”应为 YYYY-MM-DD 格式的有效日期")
        for column in MONEY_COLUMNS:
            if row[f"_e_{column}"]:
                text = row[column]
                if text == "":
                    add(column, "金额不能为空")
                else:
                    add(column, f"金额“{text}”应为不带符号的数字，最多两位小数（如 1234.50）")
        if row["_e_sum"]:
            add(
                "fund_pay_sumamt",
                f"基金支付总额 {row['fund_pay_sumamt']} 与医院负担金额 {row['hosp_part_amt']} 之和"
                f"大于医疗费总额 {row['medfee_sumamt']}",
            )
        if row["_e_inscp"]:
            add(
                "inscp_scp_amt",
                f"符合政策范围金额 {row['inscp_scp_amt']} 大于医疗费总额 {row['medfee_sumamt']}",
            )
    return errors


# ---------------------------------------------------------------------------------------------
# Pricing and output


@dataclass(slots=True)
class Adjudication:
    """The outcome of a run: result rows (processing order), row errors, the exit status."""

    results: pl.DataFrame
    errors: list[RowError]
    exit_status: int
    path_used: str  # "batch" or "sequential"


def _format_fen(column: str) -> pl.Expr:
    """Integer fen as yuan text with two decimals, never "-0.00" (vectorized ``format_fen``).

    Exact: the fen become a Decimal with scale 2 (an integer underneath) divided by 100, whose
    quotient has at most two decimals; the Decimal prints them as ``format_fen`` does.
    """
    return (pl.col(column).cast(pl.Decimal(38, 2)) / 100).cast(pl.String)


def _result_frame(
    output: pl.DataFrame,
    product: np.ndarray,
    base: np.ndarray,
    benefit: np.ndarray,
    cumulative: np.ndarray,
    reason: np.ndarray,
) -> pl.DataFrame:
    # Empty cells are nulls: Polars writes a null as nothing and an empty string as "".
    product_names = pl.Series(list(batch.PRODUCT_NAMES), dtype=pl.String)
    reason_names = pl.Series(
        [code.value if code else None for code in batch.REASON_CODES], dtype=pl.String
    )
    frame = output.with_columns(
        pl.Series("_base", base.astype(np.int64)),
        pl.Series("_benefit", benefit.astype(np.int64)),
        pl.Series("_cumulative", cumulative.astype(np.int64)),
    )
    return frame.select(
        "setl_id",
        "certno",
        "record_type",
        product_names.gather(product.astype(np.int64)).alias("product"),
        _format_fen("_base").alias("base"),
        _format_fen("_benefit").alias("benefit"),
        _format_fen("_cumulative").alias("cumulative_benefit"),
        reason_names.gather(reason.astype(np.int64)).alias("reason"),
    )


def sequential_inputs(
    members: batch.MemberTable, settlements: SettlementsRead
) -> tuple[dict[str, MemberInfo], list[Row]]:
    """Python objects for the sequential engine, amounts parsed exactly from their text."""
    from huzhu.core.money import parse_yuan

    infos: dict[str, MemberInfo] = {}
    for row in members.frame.iter_rows(named=True):
        periods: tuple[tuple[date | None, date | None], ...] = ()
        if row["has_hardship"]:
            start = None if row["hs_start"] == batch.OPEN_START else _from_day(row["hs_start"])
            end = None if row["hs_end"] == batch.OPEN_END else _from_day(row["hs_end"])
            periods = ((start, end),)
        infos[row["certno"]] = MemberInfo(
            member_type=batch.MEMBER_TYPES[row["member_type"]],
            coverage_start=_from_day(row["cov_start"]),
            coverage_end=_from_day(row["cov_end"]),
            hardship_periods=periods,
        )
    rows: list[Row] = []
    raw = settlements.raw[settlements.order]
    for row in raw.iter_rows(named=True):
        record_type = "cancel" if row["record_type"] == "cancel" else "settle"
        settlement = None
        if row["_valid"] and record_type == "settle":
            amounts = {
                column: (parse_yuan(row[column]) if row[column] else 0) for column in MONEY_COLUMNS
            }
            settlement = Settlement(
                setl_id=row["setl_id"],
                med_type=row["med_type"],
                adm_date=date.fromisoformat(row["adm_date"]),
                setl_time=datetime.strptime(row["setl_time"], "%Y-%m-%d %H:%M:%S"),
                amounts=Amounts(**amounts),
            )
        rows.append(
            Row(
                setl_id=row["setl_id"],
                certno=row["certno"],
                record_type=record_type,  # type: ignore[arg-type]
                valid=bool(row["_valid"]),
                settlement=settlement,
            )
        )
    return infos, rows


def _from_day(day: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + int(day))


def results_from_sequential(results: Sequence[Result]) -> tuple[np.ndarray, ...]:
    product = np.array(
        [batch.PRODUCT_NAMES.index(result.product) for result in results], dtype=np.int64
    )
    base = np.array([result.base for result in results], dtype=object)
    benefit = np.array([result.benefit for result in results], dtype=object)
    cumulative = np.array([result.cumulative_benefit for result in results], dtype=object)
    reason = np.array(
        [batch.REASON_CODES.index(result.reason) for result in results], dtype=np.int64
    )
    return product, base, benefit, cumulative, reason


def _format_object_fen(values: np.ndarray) -> pl.Series:
    from huzhu.core.money import format_fen

    return pl.Series([format_fen(int(value)) for value in values], dtype=pl.String)


def prepare(
    plan_path: str, members_path: str, settlements_path: str
) -> tuple[Plan, MembersRead, SettlementsRead]:
    """Read and validate the three inputs; raises ``UnusableInput`` (exit 2)."""
    plan, plan_errors = load_plan_file(plan_path)
    if plan is None:
        raise UnusableInput([f"{plan_path}: 计划文件无效：{error}" for error in plan_errors])
    members = read_members(members_path)
    settlements = read_settlements(settlements_path)
    return plan, members, settlements


def run(
    plan: Plan, members: MembersRead, settlements: SettlementsRead, *, force: str | None = None
) -> Adjudication:
    """Price every row; ``force`` ("batch"/"sequential") overrides the automatic choice."""
    use_batch = settlements.fits_int64 and batch.fits_int64(
        plan, settlements.max_amount, settlements.total_base
    )
    if force is not None:
        use_batch = force == "batch"
    if use_batch:
        result = batch.compute(plan, settlements.table, members.table)
        reason_codes = result.reason.astype(np.int64)
        frame = _result_frame(
            settlements.output,
            result.product,
            result.base,
            result.benefit,
            result.cumulative,
            result.reason,
        )
    else:
        infos, rows = sequential_inputs(members.table, settlements)
        sequential = run_sequential(plan, infos, rows)
        product, base, benefit, cumulative, reason = results_from_sequential(sequential)
        reason_codes = reason
        frame = _result_frame(
            settlements.output,
            product,
            np.zeros(len(sequential), dtype=np.int64),
            np.zeros(len(sequential), dtype=np.int64),
            np.zeros(len(sequential), dtype=np.int64),
            reason,
        ).with_columns(
            _format_object_fen(base).alias("base"),
            _format_object_fen(benefit).alias("benefit"),
            _format_object_fen(cumulative).alias("cumulative_benefit"),
        )
    # A cancel row whose setl_id has no earlier valid settle row with the same certno is INVALID
    # too (found while pricing, not while reading): report it like any other invalid row.
    invalid_code = batch.REASON_CODES.index(Reason.INVALID)
    orphan = (
        settlements.table.frame.select("_line", "setl_id", "certno", "valid")
        .with_columns(pl.Series("_reason", reason_codes))
        .filter(pl.col("valid") & (pl.col("_reason") == invalid_code))
    )
    cancel_errors = [
        RowError(
            settlements.path,
            int(row["_line"]),
            "setl_id",
            f"撤销记录的结算ID“{row['setl_id']}”之前没有同一证件号码“{row['certno']}”的有效结算记录",
        )
        for row in orphan.iter_rows(named=True)
    ]
    errors = members.errors + sorted(settlements.errors + cancel_errors)
    status = EXIT_INVALID_ROWS if errors else EXIT_OK
    return Adjudication(frame, errors, status, "batch" if use_batch else "sequential")


def write_results(frame: pl.DataFrame, out_path: str) -> None:
    """Write the results CSV atomically: UTF-8 without BOM, LF, quoting only where needed.

    Empty cells are written empty (Polars would quote an empty string, so they go as nulls).
    """
    target = Path(out_path)
    cleaned = frame.with_columns(
        [
            pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column)).alias(column)
            for column in ("setl_id", "certno", "record_type", "product", "reason")
        ]
    ).select(RESULT_COLUMNS)
    directory = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            cleaned.write_csv(stream, line_terminator="\n", quote_style="necessary")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def adjudicate_files(
    plan_path: str,
    members_path: str,
    settlements_path: str,
    out_path: str,
    *,
    stderr: TextIO | None = None,
    progress: Callable[[str], None] | None = None,
) -> int:
    """The whole command: returns the exit status (0, 2 or 3) after writing ``out_path``.

    Standard error gets one line per problem: file, line, field and a Chinese reason.
    """
    err = stderr if stderr is not None else sys.stderr
    step = progress or (lambda _stage: None)
    try:
        step("读取计划")
        plan, plan_errors = load_plan_file(plan_path)
        if plan is None:
            for error in plan_errors:
                print(f"{plan_path}: 计划文件无效：{error}", file=err)
            return EXIT_UNUSABLE
        step("读取参保人员")
        # The two files are read at once: each has stretches where one core would idle.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(read_members, members_path)
            step("读取结算记录")
            problems: list[str] = []
            try:
                settlements = read_settlements(settlements_path)
            except UnusableInput as exc:
                problems += exc.messages
            try:
                members = pending.result()
            except UnusableInput as exc:
                problems = exc.messages + problems
            if problems:
                raise UnusableInput(problems)
        step("计算补助")
        outcome = run(plan, members, settlements)
        step("写出结果")
        write_results(outcome.results, out_path)
    except UnusableInput as exc:
        for message in exc.messages:
            print(message, file=err)
        return EXIT_UNUSABLE
    except OSError as exc:
        print(f"{out_path}: 无法写出结果文件（{exc.strerror or exc}）", file=err)
        return EXIT_UNUSABLE
    _print_errors(outcome.errors, err)
    return outcome.exit_status


def _print_errors(errors: Iterable[RowError], stream: TextIO) -> None:
    lines = "".join(f"{error}\n" for error in errors)
    if lines:
        stream.write(lines)
