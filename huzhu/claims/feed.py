"""The batch settlement feed and the daily reconciliation (issue #5 item 2).

Formats and rules: docs/settlement-feed.md.

A partner that cannot call the one-stop API for every discharge sends the same records as a file —
CSV or JSON lines — with the record count and the amount total it declares. Every record is
validated with exactly the rules of the API (``huzhu.claims.intake.parse_settle_body``); the count
and the total are checked against the declaration; a record whose ``setl_id`` was already received
with different content is a conflict. Any problem rejects the whole file before anything else is
committed: the file row is kept, status ``rejected``, with every problem named by line and field.

An accepted file is processed in file order through ``receive_settlement`` / ``cancel_settlement``,
so a record answers exactly as it would through the API and is received exactly once per
(partner, ``setl_id``): a record already received (through the API or an earlier file) is a
replay and changes nothing. Files up to ``BACKGROUND_THRESHOLD`` records are processed in one
transaction; larger files by a background job (``huzhu.jobs``) in committed chunks, each chunk
together with its outcome lines and the import position — a killed import, run again, continues
after the last committed chunk, and every record still lands exactly once. The same file (by
SHA-256) sent again returns the earlier result and changes nothing.

``reconcile`` compares a partner's declared totals of a day (settlement time's date, local time)
with what was received and stores a ``ReconciliationReport`` listing every difference.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from huzhu.claims.intake import (
    _SETL_ID_RE,
    SETLINFO_FIELDS,
    SettleRecord,
    load_json,
    parse_cancel_body,
    parse_money,
    parse_settle_body,
)
from huzhu.claims.models import (
    Channel,
    FeedOutcome,
    Partner,
    ReconciliationReport,
    Settlement,
    SettlementFile,
    SettlementFileImport,
    SettlementFileLine,
    SettlementStatus,
)
from huzhu.claims.selectors import partners_for
from huzhu.claims.services import (
    OutOfScope,
    UnknownSettlement,
    cancel_settlement,
    receive_settlement,
)
from huzhu.core.audit import record_event, register_event_labels
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.money import format_fen
from huzhu.jobs.models import Job
from huzhu.jobs.selectors import latest_job_for
from huzhu.jobs.services import JobFailed, Listener, Progress, create_job, submit_job
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import scope_path

logger = logging.getLogger(__name__)

#: Files with more records than this are processed by a background job in committed chunks.
BACKGROUND_THRESHOLD = 2000
DEFAULT_CHUNK_SIZE = 500
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_RECORDS = 200_000
#: Problems kept on a rejected file's row: enough to correct a whole export, bounded for the row
#: (the command line prints every problem of the file it checked).
MAX_PROBLEMS = 20_000
_MAX_STORED_COUNT = 2_147_483_647  # the declared count column (PositiveIntegerField)

CSV_EXTRA_COLUMNS = ("diag_codes", "record_type", "cancel_time")
CSV_COLUMNS = frozenset(SETLINFO_FIELDS) | frozenset(CSV_EXTRA_COLUMNS)

FILE_OBJECT = "claims.settlementfile"
KIND_IMPORT = "claims.feed_import"

EVENT_FILE_ACCEPTED = "claims.settlement_file_accepted"
EVENT_FILE_REJECTED = "claims.settlement_file_rejected"
EVENT_RECONCILED = "claims.reconciliation"
register_event_labels(
    {
        EVENT_FILE_ACCEPTED: "接收结算批量文件",
        EVENT_FILE_REJECTED: "拒收结算批量文件",
        EVENT_RECONCILED: "结算对账",
    }
)


class FileStatus:
    """``SettlementFile.status`` values (a plain text column of the lead's model)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IMPORTING = "importing"  # accepted, a background import still running or to be resumed
    FAILED = "failed"  # a conflict appeared mid-import (a race with the API): see problems


FILE_STATUS_LABELS = {
    FileStatus.ACCEPTED: "已接收",
    FileStatus.REJECTED: "已拒收",
    FileStatus.IMPORTING: "处理中",
    FileStatus.FAILED: "处理中断",
}


# --- parsing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One reason a file is rejected: the physical line (None: the whole file), the field (the
    CSV column or the API field path) and a Chinese message. Never the value itself."""

    line: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}

    def text(self) -> str:
        where = f"第{self.line}行 " if self.line is not None else ""
        return f"{where}[{self.field}] {self.message}"


@dataclass
class FeedRecord:
    position: int  # 1-based record number
    line: int  # physical line where the record starts
    record_type: str  # settle | cancel
    setl_id: str
    settle: SettleRecord | None = None
    body: dict[str, Any] | None = None
    cancel_time: datetime | None = None
    cancel_hash: str = ""
    #: What a repeat must equal: the body hash (JSON lines, as the API) or the hash of the CSV
    #: projection (setlinfo and diagnosis codes; a CSV row carries no diagnosis names).
    compare_key: str = ""
    medfee_fen: int | None = None


@dataclass
class ParsedFile:
    file_format: str
    records: list[FeedRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: A record that could not be read at all still counts toward the declared count.
    record_count: int = 0
    total_fen: int = 0
    #: False when some settle record's medfee_sumamt could not be read (the total is then unknown).
    total_known: bool = True
    #: The file cannot be read as records at all (encoding, header): no declaration check then.
    unusable: bool = False


def detect_format(filename: str, content: bytes) -> str:
    """``csv`` or ``jsonl``: by the file name's suffix, else by the first character."""
    name = filename.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    head = content[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return "jsonl" if head.startswith(b"{") else "csv"


def _decode(content: bytes, problems: list[Problem]) -> str | None:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        problems.append(Problem(None, "file", "文件不是 UTF-8 编码的文本（请以 UTF-8 保存）"))
        return None
    if "\x00" in text:
        problems.append(Problem(None, "file", "文件含有不可见的二进制内容，不是文本文件"))
        return None
    return text


def _projection_hash(normalized: dict[str, Any]) -> str:
    """Hash of what a CSV row can carry: setlinfo and the diagnosis codes in order."""
    codes = [
        str(item.get("diag_code", "")).upper()
        for item in normalized.get("diseinfo") or []
        if isinstance(item, dict)
    ]
    data = {"setlinfo": normalized.get("setlinfo") or {}, "diag_codes": codes}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _csv_field(name: str) -> str:
    """An intake field path as the CSV column that holds it."""
    if name.startswith("setlinfo."):
        return name.removeprefix("setlinfo.")
    if name.startswith("diseinfo"):
        return "diag_codes"
    return name


def _cancel_fields(
    problems: list[Problem], line: int, setl_id: object, moment: object, csv_style: bool
) -> tuple[str, datetime | None, str]:
    where = "" if csv_style else "cancel."
    text = setl_id.strip() if isinstance(setl_id, str) else ""
    if not text:
        problems.append(Problem(line, f"{where}setl_id", "必填"))
    elif _SETL_ID_RE.fullmatch(text) is None:
        problems.append(
            Problem(
                line,
                f"{where}setl_id",
                "结算ID只能包含字母、数字、下划线和连字符，最长 30 位",
            )
        )
    try:
        when, digest = parse_cancel_body({"cancel_time": moment})
    except InvalidInput:
        problems.append(
            Problem(line, f"{where}cancel_time", "必填，时间格式应为 YYYY-MM-DD HH:MM:SS")
        )
        return text, None, ""
    return text, when, digest


def _parse_csv(text: str, parsed: ParsedFile) -> None:
    problems = parsed.problems
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        problems.append(Problem(None, "file", "文件为空（应有表头行和结算记录）"))
        return
    except csv.Error as exc:
        problems.append(Problem(1, "header", f"表头无法读取：{exc}"))
        return
    columns = [name.strip() for name in header]
    bad_header = False
    seen: set[str] = set()
    for name in columns:
        if not name:
            problems.append(Problem(1, "header", "表头有空白列名"))
            bad_header = True
        elif name not in CSV_COLUMNS:
            problems.append(Problem(1, name, f"不接受的列“{name}”（须使用国家医保平台字段代码）"))
            bad_header = True
        elif name in seen:
            problems.append(Problem(1, name, f"列“{name}”重复"))
            bad_header = True
        seen.add(name)
    missing = [n for n in ("setl_id",) if n not in seen]
    if missing:
        problems.append(Problem(1, "setl_id", "缺少必需的列 setl_id"))
        bad_header = True
    if bad_header:
        parsed.unusable = True
        return  # every row would repeat the header's problem: the header is the problem
    last_line = 1
    while True:
        start = last_line + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(start, "file", f"CSV 格式错误：{exc}"))
            break
        last_line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not records
        parsed.record_count += 1
        if parsed.record_count > MAX_RECORDS:
            problems.append(Problem(None, "file", f"记录数超过 {MAX_RECORDS} 条，请分为多个文件"))
            return
        position = parsed.record_count
        if len(row) != len(columns):
            problems.append(
                Problem(start, "file", f"本行有 {len(row)} 列，与表头的 {len(columns)} 列不一致")
            )
            parsed.total_known = False
            continue
        cells = {name: cell.strip() for name, cell in zip(columns, row, strict=True)}
        kind = cells.get("record_type", "") or "settle"
        if kind not in ("settle", "cancel"):
            problems.append(Problem(start, "record_type", "应为 settle（结算）或 cancel（撤销）"))
            continue
        if kind == "cancel":
            setl_id, when, digest = _cancel_fields(
                problems, start, cells.get("setl_id"), cells.get("cancel_time"), True
            )
            if setl_id and when is not None:
                parsed.records.append(
                    FeedRecord(position, start, "cancel", setl_id, None, None, when, digest)
                )
            continue
        if cells.get("cancel_time"):
            problems.append(Problem(start, "cancel_time", "结算记录不填写撤销时间"))
        info = {n: v for n, v in cells.items() if n in SETLINFO_FIELDS and v != ""}
        codes = [c.strip() for c in cells.get("diag_codes", "").split(";") if c.strip()]
        body = {"setlinfo": info, "diseinfo": [{"diag_code": c} for c in codes]}
        medfee = parse_money(info.get("medfee_sumamt"))
        _add_settle(parsed, position, start, body, medfee, from_csv=True)


def _add_settle(
    parsed: ParsedFile, position: int, line: int, body: Any, medfee: int | None, *, from_csv: bool
) -> None:
    """One settle record of either format: its share of the declared total, then the record
    parsed as the real-time API would — kept, or its problems listed under the line."""
    if medfee is None:
        parsed.total_known = False
    else:
        parsed.total_fen += medfee
    try:
        record = parse_settle_body(body)
    except InvalidInput as exc:
        for error in exc.errors:
            field = _csv_field(error.field) if from_csv else error.field
            parsed.problems.append(Problem(line, field, error.message))
        return
    parsed.records.append(
        FeedRecord(
            position,
            line,
            "settle",
            record.setl_id,
            settle=record,
            body=body,
            # A CSV row is compared by what it says, a JSON line by its content.
            compare_key=_projection_hash(record.normalized) if from_csv else record.body_hash,
            medfee_fen=record.amounts.medfee_sumamt,
        )
    )


def _parse_jsonl(text: str, parsed: ParsedFile) -> None:
    problems = parsed.problems
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        parsed.record_count += 1
        if parsed.record_count > MAX_RECORDS:
            problems.append(Problem(None, "file", f"记录数超过 {MAX_RECORDS} 条，请分为多个文件"))
            return
        position = parsed.record_count
        try:
            data = load_json(raw.encode("utf-8"))
        except ValueError as exc:
            message = getattr(exc, "msg", "") or "格式错误"
            problems.append(Problem(number, "json", f"不是有效的 JSON（{message}）"))
            parsed.total_known = False
            continue
        if isinstance(data, dict) and "cancel" in data:
            extra = [k for k in data if k != "cancel"]
            for key in extra:
                problems.append(Problem(number, str(key), f"不接受的字段“{key}”"))
            body = data["cancel"]
            if not isinstance(body, dict):
                problems.append(Problem(number, "cancel", "应为 JSON 对象"))
                continue
            for key in body:
                if key not in ("setl_id", "cancel_time"):
                    problems.append(Problem(number, f"cancel.{key}", f"不接受的字段“{key}”"))
            setl_id, when, digest = _cancel_fields(
                problems, number, body.get("setl_id"), body.get("cancel_time"), False
            )
            if setl_id and when is not None and not extra:
                parsed.records.append(
                    FeedRecord(position, number, "cancel", setl_id, None, None, when, digest)
                )
            continue
        info = data.get("setlinfo") if isinstance(data, dict) else None
        medfee = parse_money(info.get("medfee_sumamt")) if isinstance(info, dict) else None
        _add_settle(parsed, position, number, data, medfee, from_csv=False)


def parse_file(filename: str, content: bytes) -> ParsedFile:
    """Read and validate every record of a feed file (pure: no database)."""
    file_format = detect_format(filename, content)
    parsed = ParsedFile(file_format)
    if not content.strip():
        parsed.problems.append(Problem(None, "file", "文件为空"))
        return parsed
    if len(content) > MAX_FILE_BYTES:
        parsed.problems.append(
            Problem(None, "file", f"文件过大（不能超过 {MAX_FILE_BYTES // 1024 // 1024} MB）")
        )
        return parsed
    text = _decode(content, parsed.problems)
    if text is None:
        return parsed
    if file_format == "csv":
        _parse_csv(text, parsed)
    else:
        _parse_jsonl(text, parsed)
    if parsed.record_count == 0 and not parsed.problems:
        parsed.problems.append(Problem(None, "file", "文件中没有结算记录"))
    if any(p.line is None and p.field == "file" for p in parsed.problems):
        parsed.unusable = True
    return parsed


def parse_declared_total(value: object) -> int | None:
    """The declared amount total (yuan, at most two decimals) in fen; None when unreadable."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return parse_money(value)
    if isinstance(value, str):
        return parse_money(value.strip())
    return None


def _check_declaration(
    parsed: ParsedFile, declared_count: int | None, declared_total: int | None
) -> list[Problem]:
    problems = []
    if declared_count is None or declared_count < 0:
        problems.append(Problem(None, "declared_count", "声明记录数应为不小于 0 的整数"))
    elif declared_count != parsed.record_count:
        problems.append(
            Problem(
                None,
                "declared_count",
                f"声明记录数 {declared_count} 与文件中的记录数 {parsed.record_count} 不符",
            )
        )
    if declared_total is None:
        problems.append(
            Problem(None, "declared_total", "声明金额合计应为不小于 0 的金额，最多两位小数")
        )
    elif parsed.total_known and declared_total != parsed.total_fen:
        problems.append(
            Problem(
                None,
                "declared_total",
                f"声明金额合计 {format_fen(declared_total)} 元与文件中医疗费总额"
                f"（medfee_sumamt）合计 {format_fen(parsed.total_fen)} 元不符",
            )
        )
    return problems


# --- checks against what was received -----------------------------------------------------------
def _existing(partner: Partner, setl_ids: Iterable[str]) -> dict[str, Settlement]:
    """This partner's settlements with these ``setl_id``s, one query per 1,000."""
    ids = sorted(set(setl_ids))
    found: dict[str, Settlement] = {}
    for start in range(0, len(ids), 1000):
        for row in Settlement.objects.filter(
            partner=partner, setl_id__in=ids[start : start + 1000]
        ).only(
            "id",
            "setl_id",
            "body_hash",
            "body_enc",
            "status",
            "reason",
            "channel",
            "received_at",
            "cancel_body_hash",
            "cancel_response",
            "file_id",
        ):
            found[row.setl_id] = row
    return found


def _key_of(settlement: Settlement, file_format: str) -> str:
    if file_format == "jsonl":
        return settlement.body_hash
    return _projection_hash(json.loads(str(settlement.body_enc)))


def _channel_text(settlement: Settlement) -> str:
    return "实时接口" if settlement.channel == Channel.API else "批量文件"


def check_against_received(partner: Partner, parsed: ParsedFile) -> list[Problem]:
    """Conflicts of the file's records with each other and with what this partner already sent:
    a ``setl_id`` received with other content, a cancel of nothing, a cancel with another time.
    Exactly-once is per (partner, ``setl_id``): a conflict rejects the whole file."""
    problems: list[Problem] = []
    existing = _existing(partner, (r.setl_id for r in parsed.records))
    keys: dict[str, str] = {}
    settled_at: dict[str, int] = {}  # setl_id -> line of its settle record in this file
    cancelled: dict[str, tuple[int, str]] = {}
    for record in parsed.records:
        found = existing.get(record.setl_id)
        if record.record_type == "settle":
            if record.setl_id in settled_at:
                if keys[record.setl_id] != record.compare_key:
                    problems.append(
                        Problem(
                            record.line,
                            "setl_id",
                            f"结算ID {record.setl_id} 与第{settled_at[record.setl_id]}行相同"
                            "但内容不同；同一结算ID只能接收一次",
                        )
                    )
                continue
            settled_at[record.setl_id] = record.line
            keys[record.setl_id] = record.compare_key
            if found is not None and _key_of(found, parsed.file_format) != record.compare_key:
                problems.append(
                    Problem(
                        record.line,
                        "setl_id",
                        f"结算ID {record.setl_id} 已于"
                        f"{timezone.localtime(found.received_at):%Y-%m-%d %H:%M}通过"
                        f"{_channel_text(found)}接收，内容与本行不同；同一结算ID只接收一次"
                        "（如需更正请先撤销）",
                    )
                )
            continue
        if record.setl_id in cancelled:
            first_line, digest = cancelled[record.setl_id]
            if digest != record.cancel_hash:
                problems.append(
                    Problem(
                        record.line,
                        "cancel_time",
                        f"结算ID {record.setl_id} 已在第{first_line}行撤销，撤销时间不同",
                    )
                )
            continue
        cancelled[record.setl_id] = (record.line, record.cancel_hash)
        if record.setl_id not in settled_at and found is None:
            problems.append(
                Problem(
                    record.line,
                    "setl_id",
                    f"要撤销的结算ID {record.setl_id} 不存在"
                    "（本文件此前各行与已接收的结算中均没有）",
                )
            )
        elif (
            found is not None
            and found.cancel_response is not None
            and found.cancel_body_hash != record.cancel_hash
        ):
            problems.append(
                Problem(
                    record.line,
                    "cancel_time",
                    f"结算ID {record.setl_id} 已撤销，撤销时间与本行不同（撤销内容不能更改）",
                )
            )
    return problems


# --- import -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileOutcome:
    file: SettlementFile
    #: The same file was accepted before: ``file`` is that earlier file, nothing new happened.
    duplicate: bool = False
    #: The background job processing a large file (not yet finished when returned).
    job: Job | None = None
    #: Every problem found by this check (the file row keeps at most ``MAX_PROBLEMS``).
    found: tuple[Problem, ...] = ()

    @property
    def problems(self) -> list[Problem]:
        if self.found:
            return list(self.found)
        return [Problem(p.get("line"), p["field"], p["message"]) for p in self.file.problems]


def _actor_label(acting_user: User | None, partner: Partner) -> str:
    return acting_user.username if acting_user is not None else f"partner:{partner.partner_id}"


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _same_file(partner: Partner, digest: str) -> SettlementFile | None:
    return (
        SettlementFile.objects.filter(
            partner=partner,
            sha256=digest,
            status__in=(FileStatus.ACCEPTED, FileStatus.IMPORTING),
        )
        .order_by("pk")
        .first()
    )


def import_settlement_file(
    *,
    acting_user: User | None,
    partner: Partner,
    filename: str,
    content: bytes,
    declared_count: int | None,
    declared_total: object,
    run_inline: bool = False,
    listener: Listener | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> FileOutcome:
    """Check and import a feed file (module docstring). ``acting_user``: the staff member
    uploading on the partner's behalf, None when the partner (API) or the command line sends it.

    Small files are processed before this returns. A file over ``BACKGROUND_THRESHOLD`` records
    is accepted (status ``importing``) and processed by a job: queued for the worker, or run here
    when ``run_inline`` (the command line). Returns the file; a rejected file carries its problems.
    """
    filename = (filename or "settlements").strip()[-200:]
    digest = _sha256(content)
    earlier = _same_file(partner, digest)
    if earlier is not None and earlier.status == FileStatus.ACCEPTED:
        return FileOutcome(earlier, duplicate=True)
    if earlier is not None:
        return _resume(
            acting_user, earlier, run_inline=run_inline, listener=listener, chunk_size=chunk_size
        )
    parsed = parse_file(filename, content)
    total = parse_declared_total(declared_total)
    problems = list(parsed.problems)
    if not parsed.unusable:
        problems += _check_declaration(parsed, declared_count, total)
    problems += check_against_received(partner, parsed)
    # The file's own problems first, then line by line (a stable sort keeps each line's order).
    problems.sort(key=lambda p: (p.line is not None, p.line or 0))
    if problems:
        rejected = _reject(
            acting_user, partner, filename, digest, parsed, declared_count, total, problems
        )
        return FileOutcome(rejected, found=tuple(problems))
    assert declared_count is not None and total is not None
    if len(parsed.records) > BACKGROUND_THRESHOLD:
        return _start_background(
            acting_user,
            partner,
            filename,
            digest,
            parsed,
            content,
            declared_count,
            total,
            run_inline=run_inline,
            listener=listener,
            chunk_size=chunk_size,
        )
    try:
        with transaction.atomic(durable=True):
            Partner.objects.select_for_update().filter(pk=partner.pk).first()
            earlier = _same_file(partner, digest)
            if earlier is not None:  # the same file accepted meanwhile (a concurrent upload)
                return FileOutcome(earlier, duplicate=True)
            settlement_file = _new_file(
                acting_user,
                partner,
                filename,
                digest,
                parsed,
                declared_count,
                total,
                FileStatus.ACCEPTED,
            )
            feed_import = SettlementFileImport.objects.create(file=settlement_file)
            _process(feed_import, parsed.records, progress=None, chunk_size=chunk_size)
            _finish(acting_user, feed_import)
            return FileOutcome(settlement_file)
    except IntegrityError:
        earlier = _same_file(partner, digest)
        if earlier is None:
            raise
        return FileOutcome(earlier, duplicate=True)
    except _RecordConflict as conflict:
        # A conflicting record arrived through the API between the check and the commit.
        return FileOutcome(
            _reject(
                acting_user,
                partner,
                filename,
                digest,
                parsed,
                declared_count,
                total,
                [conflict.problem],
            )
        )


def _new_file(
    acting_user: User | None,
    partner: Partner,
    filename: str,
    digest: str,
    parsed: ParsedFile,
    declared_count: int | None,
    total: int | None,
    status: str,
    problems: Sequence[Problem] = (),
) -> SettlementFile:
    return SettlementFile.objects.create(
        partner=partner,
        filename=filename,
        sha256=digest,
        file_format=parsed.file_format,
        declared_count=min(max(declared_count or 0, 0), _MAX_STORED_COUNT),
        declared_total_fen=total or 0,
        record_count=parsed.record_count,
        total_fen=parsed.total_fen,
        status=status,
        problems=_stored_problems(problems),
        uploaded_by=acting_user,
    )


def _stored_problems(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    kept = [p.as_dict() for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS
        kept.append(
            Problem(None, "file", f"另有 {more} 个问题未列出：请先改正以上问题后重新检查").as_dict()
        )
    return kept


def _reject(
    acting_user: User | None,
    partner: Partner,
    filename: str,
    digest: str,
    parsed: ParsedFile,
    declared_count: int | None,
    total: int | None,
    problems: list[Problem],
) -> SettlementFile:
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        rejected = _new_file(
            acting_user,
            partner,
            filename,
            digest,
            parsed,
            declared_count,
            total,
            FileStatus.REJECTED,
            problems,
        )
        record_event(
            actor=acting_user,
            actor_username=_actor_label(acting_user, partner),
            event=EVENT_FILE_REJECTED,
            obj=rejected,
            organisation_id=partner.organisation_id,
            outcome="denied",
            detail={
                "partner": partner.partner_id,
                "records": parsed.record_count,
                "problems": len(problems),
            },
        )
    return rejected


def _start_background(
    acting_user: User | None,
    partner: Partner,
    filename: str,
    digest: str,
    parsed: ParsedFile,
    content: bytes,
    declared_count: int,
    total: int,
    *,
    run_inline: bool,
    listener: Listener | None,
    chunk_size: int,
) -> FileOutcome:
    with transaction.atomic(durable=True):
        Partner.objects.select_for_update().filter(pk=partner.pk).first()
        earlier = _same_file(partner, digest)
        if earlier is None:
            settlement_file = _new_file(
                acting_user,
                partner,
                filename,
                digest,
                parsed,
                declared_count,
                total,
                FileStatus.IMPORTING,
            )
            SettlementFileImport.objects.create(
                file=settlement_file,
                # Only while the worker needs it; dropped when the import finishes.
                content_enc=_decode(content, []) or "",
            )
        elif earlier.status == FileStatus.ACCEPTED:
            return FileOutcome(earlier, duplicate=True)
        else:
            settlement_file = earlier
    return _resume(
        acting_user,
        settlement_file,
        run_inline=run_inline,
        listener=listener,
        chunk_size=chunk_size,
    )


def import_job(settlement_file: SettlementFile) -> Job | None:
    return latest_job_for(FILE_OBJECT, settlement_file.pk)


def _resume(
    acting_user: User | None,
    settlement_file: SettlementFile,
    *,
    run_inline: bool,
    listener: Listener | None = None,
    chunk_size: int,
) -> FileOutcome:
    """Start (or, after a crash, continue) the background import of an accepted large file."""
    from huzhu.jobs.services import run_job

    job = import_job(settlement_file)
    if job is not None and not job.finished and not job.stalled and not run_inline:
        return FileOutcome(settlement_file, job=job)  # already on its way
    with transaction.atomic():
        job = create_job(
            acting_user=acting_user,
            kind=KIND_IMPORT,
            label=f"导入结算文件 {settlement_file.filename}（#{settlement_file.pk}）",
            handler="huzhu.claims.feed.import_handler",
            params={"file_id": settlement_file.pk, "chunk_size": chunk_size},
            organisation=settlement_file.partner.organisation,
            object_type=FILE_OBJECT,
            object_id=settlement_file.pk,
        )
        if not run_inline:
            submit_job(job)
    if run_inline:
        job = run_job(job.pk, listener=listener)
    settlement_file.refresh_from_db()
    return FileOutcome(settlement_file, job=job)


def import_handler(job: Job, progress: Progress) -> dict[str, Any]:
    """The job: process the file's records after its committed position, in chunks."""
    settlement_file = SettlementFile.objects.select_related("partner").get(pk=job.params["file_id"])
    if settlement_file.status == FileStatus.ACCEPTED:
        return file_summary(settlement_file)
    if settlement_file.status != FileStatus.IMPORTING:
        raise JobFailed(f"文件状态为“{FILE_STATUS_LABELS.get(settlement_file.status)}”，不能导入")
    feed_import = SettlementFileImport.objects.get(file=settlement_file)
    parsed = parse_file(settlement_file.filename, str(feed_import.content_enc or "").encode())
    if parsed.problems:  # the stored bytes were checked on upload: this cannot be
        raise JobFailed("保存的文件内容无法读取，请重新上传")
    try:
        _process(
            feed_import,
            parsed.records,
            progress=progress,
            chunk_size=int(job.params.get("chunk_size") or DEFAULT_CHUNK_SIZE),
        )
    except _RecordConflict as conflict:
        with transaction.atomic():
            SettlementFile.objects.filter(pk=settlement_file.pk).update(
                status=FileStatus.FAILED, problems=[conflict.problem.as_dict()]
            )
            SettlementFileImport.objects.filter(pk=feed_import.pk).update(
                content_enc=None, finished_at=timezone.now()
            )
        raise JobFailed(f"导入中断：{conflict.problem.text()}；此前各行已接收") from None
    with transaction.atomic():
        locked = SettlementFileImport.objects.select_for_update().get(pk=feed_import.pk)
        if locked.finished_at is None:
            _finish(job.created_by, locked)
    settlement_file.refresh_from_db()
    return file_summary(settlement_file)


class _RecordConflict(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.text())
        self.problem = problem


def _benefit_fen(text: object) -> int:
    try:
        return int(Decimal(str(text)) * 100)
    except (InvalidOperation, ValueError):
        return 0


def _process(
    feed_import: SettlementFileImport,
    records: list[FeedRecord],
    *,
    progress: Progress | None,
    chunk_size: int,
) -> None:
    """Process the records after the committed position, ``chunk_size`` per transaction (a
    savepoint when the caller holds a transaction); each chunk commits its outcome lines, the
    position and the counts with its settlements."""
    settlement_file = feed_import.file
    partner = settlement_file.partner
    total = len(records)
    if progress is not None:
        progress.begin(total, "写入结算记录", done=min(feed_import.position, total))
    pending = [r for r in records if r.position > feed_import.position]
    for offset in range(0, len(pending), max(chunk_size, 1)):
        chunk = pending[offset : offset + chunk_size]
        with transaction.atomic():
            locked = SettlementFileImport.objects.select_for_update().get(pk=feed_import.pk)
            todo = [r for r in chunk if r.position > locked.position]
            if not todo:
                continue
            lines = _process_chunk(settlement_file, partner, todo)
            SettlementFileLine.objects.bulk_create(lines)
            counts = Counter(locked.outcomes)
            counts.update(line.outcome for line in lines)
            locked.outcomes = dict(sorted(counts.items()))
            locked.benefit_fen += sum(
                line.benefit_fen for line in lines if line.outcome == FeedOutcome.APPROVED
            )
            locked.position = todo[-1].position
            locked.save(update_fields=["outcomes", "benefit_fen", "position"])
            feed_import.position = locked.position
            feed_import.outcomes = locked.outcomes
            feed_import.benefit_fen = locked.benefit_fen
            if progress is not None:
                # In the chunk's transaction: the progress seen is the progress committed.
                progress.update(locked.position, force=True)


def _process_chunk(
    settlement_file: SettlementFile, partner: Partner, records: list[FeedRecord]
) -> list[SettlementFileLine]:
    existing = _existing(partner, (r.setl_id for r in records))
    lines: list[SettlementFileLine] = []
    for record in records:
        line = SettlementFileLine(
            file=settlement_file,
            position=record.position,
            line=record.line,
            setl_id=record.setl_id,
            record_type=record.record_type,
            outcome=FeedOutcome.DUPLICATE,
        )
        if record.record_type == "settle":
            _settle(settlement_file, partner, record, existing, line)
        else:
            _cancel(partner, record, existing, line)
        lines.append(line)
    return lines


def _settle(
    settlement_file: SettlementFile,
    partner: Partner,
    record: FeedRecord,
    existing: dict[str, Settlement],
    line: SettlementFileLine,
) -> None:
    assert record.settle is not None
    found = existing.get(record.setl_id)
    if found is not None:
        if _key_of(found, settlement_file.file_format) != record.compare_key:
            raise _RecordConflict(
                Problem(
                    record.line,
                    "setl_id",
                    f"结算ID {record.setl_id} 已以不同内容接收；同一结算ID只接收一次",
                )
            )
        line.outcome = FeedOutcome.DUPLICATE
        line.reason = found.reason
        line.settlement = found
        return
    try:
        answer = receive_settlement(
            partner=partner,
            body=record.body,
            channel=Channel.FILE,
            file=settlement_file,
            record=record.settle,
        )
    except OutOfScope:
        line.outcome = FeedOutcome.OUT_OF_SCOPE
        line.reason = "OUT_OF_SCOPE"
        return
    except ConflictError:
        raise _RecordConflict(
            Problem(
                record.line,
                "setl_id",
                f"结算ID {record.setl_id} 已以不同内容接收；同一结算ID只接收一次",
            )
        ) from None
    stored = (
        Settlement.objects.filter(partner=partner, setl_id=record.setl_id)
        .only("id", "setl_id", "body_hash", "body_enc", "status", "reason", "file_id")
        .get()
    )
    existing[record.setl_id] = stored
    line.settlement = stored
    if answer.replayed:
        line.outcome = FeedOutcome.DUPLICATE
        line.reason = stored.reason
        return
    line.outcome = str(answer.body["status"])
    line.reason = str(answer.body.get("reason") or "")
    line.benefit_fen = _benefit_fen(answer.body.get("benefit"))


def _cancel(
    partner: Partner,
    record: FeedRecord,
    existing: dict[str, Settlement],
    line: SettlementFileLine,
) -> None:
    assert record.cancel_time is not None
    try:
        answer = cancel_settlement(
            partner=partner,
            setl_id=record.setl_id,
            cancel_time=record.cancel_time,
            body_hash=record.cancel_hash,
        )
    except UnknownSettlement:
        # Its settle record was refused (out of scope): nothing to cancel.
        line.outcome = FeedOutcome.NOT_FOUND
        line.reason = "NOT_FOUND"
        return
    except ConflictError:
        raise _RecordConflict(
            Problem(record.line, "cancel_time", f"结算ID {record.setl_id} 已以不同撤销时间撤销")
        ) from None
    line.settlement = existing.get(record.setl_id) or (
        Settlement.objects.filter(partner=partner, setl_id=record.setl_id).only("id").first()
    )
    line.outcome = FeedOutcome.DUPLICATE if answer.replayed else FeedOutcome.CANCELLED
    line.benefit_fen = 0 if answer.replayed else _benefit_fen(answer.body.get("benefit"))


def _finish(acting_user: User | None, feed_import: SettlementFileImport) -> None:
    """The file accepted: status, the bytes dropped, the audit event (in the caller's
    transaction)."""
    settlement_file = feed_import.file
    partner = settlement_file.partner
    now = timezone.now()
    SettlementFileImport.objects.filter(pk=feed_import.pk).update(content_enc=None, finished_at=now)
    SettlementFile.objects.filter(pk=settlement_file.pk).update(status=FileStatus.ACCEPTED)
    settlement_file.status = FileStatus.ACCEPTED
    record_event(
        actor=acting_user,
        actor_username=_actor_label(acting_user, partner),
        event=EVENT_FILE_ACCEPTED,
        obj=settlement_file,
        organisation_id=partner.organisation_id,
        detail={
            "partner": partner.partner_id,
            "records": settlement_file.record_count,
            "total_fen": settlement_file.total_fen,
            "outcomes": feed_import.outcomes,
        },
    )


# --- summaries ----------------------------------------------------------------------------------
def file_summary(settlement_file: SettlementFile) -> dict[str, Any]:
    """What the API answers and the command line prints (no personal data)."""
    feed_import = SettlementFileImport.objects.filter(file=settlement_file).first()
    return {
        "file_id": settlement_file.pk,
        "filename": settlement_file.filename,
        "format": settlement_file.file_format,
        "status": settlement_file.status,
        "record_count": settlement_file.record_count,
        "total": format_fen(settlement_file.total_fen),
        "declared_count": settlement_file.declared_count,
        "declared_total": format_fen(settlement_file.declared_total_fen),
        "processed": feed_import.position if feed_import else 0,
        "outcomes": dict(feed_import.outcomes) if feed_import else {},
        "benefit": format_fen(feed_import.benefit_fen if feed_import else 0),
        "problems": list(settlement_file.problems),
    }


def file_lines(settlement_file: SettlementFile) -> list[dict[str, Any]]:
    return [
        {
            "line": line.line,
            "setl_id": line.setl_id,
            "record_type": line.record_type,
            "outcome": line.outcome,
            "reason": line.reason or None,
            "benefit": format_fen(line.benefit_fen),
        }
        for line in SettlementFileLine.objects.filter(file=settlement_file).order_by("position")
    ]


# --- reconciliation -----------------------------------------------------------------------------
THEIR_STATUSES = {"settled": "已结算", "cancelled": "已撤销"}

DIFFERENCE_LABELS = {
    "count": "笔数不符",
    "medfee_total": "医疗费总额合计不符",
    "benefit_total": "补助金额合计不符",
    "missing_ours": "我方未收到",
    "missing_theirs": "对方未列出",
    "other_day": "结算日期不同",
    "status": "状态不同",
    "amount": "医疗费金额不同",
    "benefit": "补助金额不同",
}
_KIND_ORDER = {kind: index for index, kind in enumerate(DIFFERENCE_LABELS)}


@dataclass(frozen=True)
class TheirRecord:
    setl_id: str
    status: str = "settled"
    medfee_fen: int | None = None
    benefit_fen: int | None = None


@dataclass(frozen=True)
class PartnerTotals:
    count: int
    medfee_fen: int
    benefit_fen: int
    records: tuple[TheirRecord, ...] | None = None


def partner_totals(
    *,
    count: object,
    medfee: object,
    benefit: object,
    records: Sequence[object] | None = None,
) -> PartnerTotals:
    """Validate a partner's declared totals (text or numbers from the API, the CLI or a form);
    ``InvalidInput`` names every bad field in Chinese."""
    errors = ErrorCollector()
    number: int | None = None
    if isinstance(count, int) and not isinstance(count, bool):
        number = count
    elif isinstance(count, str) and count.strip().isdigit():
        number = int(count.strip())
    if number is None or number < 0:
        errors.add("count", "笔数应为不小于 0 的整数")
    medfee_fen = parse_declared_total(medfee)
    if medfee_fen is None:
        errors.add("medfee_sumamt", "医疗费总额应为不小于 0 的金额，最多两位小数")
    benefit_fen = parse_declared_total(benefit)
    if benefit_fen is None:
        errors.add("benefit", "补助金额合计应为不小于 0 的金额，最多两位小数")
    parsed_records: list[TheirRecord] | None = None
    if records is not None:
        parsed_records = []
        seen: set[str] = set()
        for index, item in enumerate(records):
            where = f"records[{index}]"
            if isinstance(item, str):
                item = {"setl_id": item}
            if not isinstance(item, dict):
                errors.add(where, "应为结算ID或 JSON 对象")
                continue
            for key in item:
                if key not in ("setl_id", "status", "medfee_sumamt", "benefit"):
                    errors.add(f"{where}.{key}", f"不接受的字段“{key}”")
            setl_id = item.get("setl_id")
            if not isinstance(setl_id, str) or _SETL_ID_RE.fullmatch(setl_id.strip()) is None:
                errors.add(f"{where}.setl_id", "结算ID必填，只能包含字母、数字、下划线和连字符")
                continue
            setl_id = setl_id.strip()
            if setl_id in seen:
                errors.add(f"{where}.setl_id", f"结算ID {setl_id} 重复")
                continue
            seen.add(setl_id)
            status = item.get("status") or "settled"
            if not isinstance(status, str) or status not in THEIR_STATUSES:
                errors.add(f"{where}.status", "应为 settled（已结算）或 cancelled（已撤销）")
                continue
            amounts: dict[str, int | None] = {}
            for key in ("medfee_sumamt", "benefit"):
                value = item.get(key)
                if value in (None, ""):
                    amounts[key] = None
                    continue
                fen = parse_declared_total(value)
                if fen is None:
                    errors.add(f"{where}.{key}", "金额应为不小于 0 的数，最多两位小数")
                amounts[key] = fen
            parsed_records.append(
                TheirRecord(setl_id, status, amounts["medfee_sumamt"], amounts["benefit"])
            )
    errors.raise_if_any()
    assert number is not None and medfee_fen is not None and benefit_fen is not None
    return PartnerTotals(
        number,
        medfee_fen,
        benefit_fen,
        tuple(parsed_records) if parsed_records is not None else None,
    )


def day_bounds(day: date) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class _Ours:
    setl_id: str
    status: str
    medfee_fen: int
    benefit_fen: int  # what the one-stop answer let the hospital deduct at discharge, else 0

    @property
    def cancelled(self) -> bool:
        return self.status == SettlementStatus.CANCELLED


def _difference(
    kind: str, message: str, *, setl_id: str | None = None, theirs: str = "", ours: str = ""
) -> dict[str, Any]:
    return {
        "kind": kind,
        "label": DIFFERENCE_LABELS[kind],
        "setl_id": setl_id,
        "theirs": theirs,
        "ours": ours,
        "message": message,
    }


def _ours_for_day(partner: Partner, day: date) -> dict[str, _Ours]:
    start, end = day_bounds(day)
    rows = Settlement.objects.filter(
        partner=partner, setl_time__gte=start, setl_time__lt=end
    ).values_list("setl_id", "status", "channel", "medfee_sumamt", "response")
    ours = {}
    for setl_id, status, channel, medfee, response in rows.iterator(chunk_size=5000):
        # What the hospital deducted at discharge: the one-stop answer said approved. A file
        # record, or a quarantined one approved after consent, is paid to the member instead.
        deducted = (
            _benefit_fen(response.get("benefit"))
            if channel == Channel.API
            and isinstance(response, dict)
            and response.get("status") == SettlementStatus.APPROVED
            else 0
        )
        ours[setl_id] = _Ours(setl_id, status, medfee, deducted)
    return ours


def _our_status_text(status: str) -> str:
    return "已撤销" if status == SettlementStatus.CANCELLED else "已结算"


def compare(
    partner: Partner, day: date, totals: PartnerTotals
) -> tuple[tuple[int, int, int], list[dict[str, Any]]]:
    """Our totals of the day and every difference with the partner's (read only)."""
    ours = _ours_for_day(partner, day)
    standing = [o for o in ours.values() if not o.cancelled]
    our_totals = (
        len(standing),
        sum(o.medfee_fen for o in standing),
        sum(o.benefit_fen for o in standing),
    )
    differences: list[dict[str, Any]] = []
    if totals.count != our_totals[0]:
        differences.append(
            _difference(
                "count",
                f"对方 {totals.count} 笔，我方 {our_totals[0]} 笔（不含已撤销）",
                theirs=str(totals.count),
                ours=str(our_totals[0]),
            )
        )
    for kind, theirs_fen, ours_fen, what in (
        ("medfee_total", totals.medfee_fen, our_totals[1], "医疗费总额合计"),
        ("benefit_total", totals.benefit_fen, our_totals[2], "补助金额（已核准，医院减免）合计"),
    ):
        if theirs_fen != ours_fen:
            differences.append(
                _difference(
                    kind,
                    f"{what}：对方 {format_fen(theirs_fen)} 元，我方 {format_fen(ours_fen)} 元，"
                    f"相差 {format_fen(theirs_fen - ours_fen)} 元",
                    theirs=format_fen(theirs_fen),
                    ours=format_fen(ours_fen),
                )
            )
    if totals.records is not None:
        differences += _record_differences(partner, day, ours, totals.records)
    differences.sort(key=lambda d: (_KIND_ORDER[d["kind"]], d["setl_id"] or ""))
    return our_totals, differences


def _record_differences(
    partner: Partner, day: date, ours: dict[str, _Ours], records: Sequence[TheirRecord]
) -> list[dict[str, Any]]:
    differences: list[dict[str, Any]] = []
    listed = {r.setl_id for r in records}
    elsewhere = {
        s.setl_id: s
        for s in _existing(partner, (r.setl_id for r in records if r.setl_id not in ours)).values()
    }
    for theirs in records:
        mine = ours.get(theirs.setl_id)
        if mine is None:
            other = elsewhere.get(theirs.setl_id)
            if other is None:
                differences.append(
                    _difference(
                        "missing_ours",
                        f"对方有结算 {theirs.setl_id}（{THEIR_STATUSES[theirs.status]}），"
                        "我方没有收到",
                        setl_id=theirs.setl_id,
                        theirs=THEIR_STATUSES[theirs.status],
                    )
                )
            else:
                other_time = Settlement.objects.filter(pk=other.pk).values_list(
                    "setl_time", flat=True
                )[0]
                other_day = timezone.localtime(other_time).date()
                differences.append(
                    _difference(
                        "other_day",
                        f"结算 {theirs.setl_id} 我方记录的结算时间在 {other_day:%Y-%m-%d}，"
                        f"不在 {day:%Y-%m-%d}",
                        setl_id=theirs.setl_id,
                        theirs=f"{day:%Y-%m-%d}",
                        ours=f"{other_day:%Y-%m-%d}",
                    )
                )
            continue
        their_cancelled = theirs.status == "cancelled"
        if their_cancelled != mine.cancelled:
            differences.append(
                _difference(
                    "status",
                    f"结算 {theirs.setl_id}：对方为“{THEIR_STATUSES[theirs.status]}”，"
                    f"我方为“{_our_status_text(mine.status)}”",
                    setl_id=theirs.setl_id,
                    theirs=THEIR_STATUSES[theirs.status],
                    ours=_our_status_text(mine.status),
                )
            )
            continue
        if theirs.medfee_fen is not None and theirs.medfee_fen != mine.medfee_fen:
            differences.append(
                _difference(
                    "amount",
                    f"结算 {theirs.setl_id} 医疗费总额：对方 {format_fen(theirs.medfee_fen)} 元，"
                    f"我方 {format_fen(mine.medfee_fen)} 元",
                    setl_id=theirs.setl_id,
                    theirs=format_fen(theirs.medfee_fen),
                    ours=format_fen(mine.medfee_fen),
                )
            )
        if (
            not mine.cancelled
            and theirs.benefit_fen is not None
            and theirs.benefit_fen != mine.benefit_fen
        ):
            differences.append(
                _difference(
                    "benefit",
                    f"结算 {theirs.setl_id} 补助金额（医院减免）：对方 "
                    f"{format_fen(theirs.benefit_fen)} 元，我方 {format_fen(mine.benefit_fen)} 元",
                    setl_id=theirs.setl_id,
                    theirs=format_fen(theirs.benefit_fen),
                    ours=format_fen(mine.benefit_fen),
                )
            )
    for mine in ours.values():
        if mine.setl_id not in listed and not mine.cancelled:
            differences.append(
                _difference(
                    "missing_theirs",
                    f"我方收到结算 {mine.setl_id}（医疗费 {format_fen(mine.medfee_fen)} 元），"
                    "对方清单中没有",
                    setl_id=mine.setl_id,
                    ours=_our_status_text(mine.status),
                )
            )
    return differences


def reconcile(
    *,
    acting_user: User | None,
    partner: Partner,
    day: date,
    totals: PartnerTotals,
    source: str,
) -> ReconciliationReport:
    """Compare the partner's totals of ``day`` (the settlement time's date, local time) with what
    was received, and keep the report (every difference listed)."""
    if day > timezone.localdate():
        raise InvalidInput([FieldError("date", "对账日期不能晚于今天", ErrorCode.INVALID)])
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        (our_count, our_medfee, our_benefit), differences = compare(partner, day, totals)
        report = ReconciliationReport.objects.create(
            partner=partner,
            day=day,
            their_count=totals.count,
            their_medfee_fen=totals.medfee_fen,
            their_benefit_fen=totals.benefit_fen,
            their_records=(
                [
                    {
                        "setl_id": r.setl_id,
                        "status": r.status,
                        "medfee_sumamt": None if r.medfee_fen is None else format_fen(r.medfee_fen),
                        "benefit": None if r.benefit_fen is None else format_fen(r.benefit_fen),
                    }
                    for r in totals.records
                ]
                if totals.records is not None
                else None
            ),
            our_count=our_count,
            our_medfee_fen=our_medfee,
            our_benefit_fen=our_benefit,
            differences=differences,
            difference_count=len(differences),
            source=source,
            created_by=acting_user,
            created_by_label=_actor_label(acting_user, partner),
        )
        record_event(
            actor=acting_user,
            actor_username=_actor_label(acting_user, partner),
            event=EVENT_RECONCILED,
            obj=report,
            organisation_id=partner.organisation_id,
            detail={
                "partner": partner.partner_id,
                "day": day.isoformat(),
                "differences": len(differences),
            },
        )
    return report


def report_answer(report: ReconciliationReport) -> dict[str, Any]:
    """The report as the API answers it and the command line prints it."""
    return {
        "report_id": report.pk,
        "partner_id": report.partner.partner_id,
        "date": report.day.isoformat(),
        "theirs": {
            "count": report.their_count,
            "medfee_sumamt": format_fen(report.their_medfee_fen),
            "benefit": format_fen(report.their_benefit_fen),
        },
        "ours": {
            "count": report.our_count,
            "medfee_sumamt": format_fen(report.our_medfee_fen),
            "benefit": format_fen(report.our_benefit_fen),
        },
        "balanced": report.difference_count == 0,
        "differences": list(report.differences),
    }


__all__ = [
    "BACKGROUND_THRESHOLD",
    "FileOutcome",
    "FileStatus",
    "PartnerTotals",
    "Problem",
    "TheirRecord",
    "file_summary",
    "import_settlement_file",
    "parse_file",
    "partner_totals",
    "reconcile",
    "report_answer",
]


# --- reads for the screens (scoped to the actor's subtree, S5) -----------------------------------
def reports_for(actor: User) -> QuerySet[ReconciliationReport]:
    path = scope_path(actor)
    if path is None:
        return ReconciliationReport.objects.none()
    return ReconciliationReport.objects.filter(subtree_q(path, "partner__organisation_path"))


def access_report(
    actor: User, report_id: int, perm: Perm = Perm.CLAIM_VIEW
) -> ReconciliationReport:
    require(actor, perm)
    found = reports_for(actor).select_related("partner", "created_by").filter(pk=report_id).first()
    if found is None:
        raise NotPermitted("对账报告不存在")
    return found


def upload_partners(actor: User) -> QuerySet[Partner]:
    """The active partners a staff member may upload a file or a reconciliation for."""
    return partners_for(actor).filter(is_active=True).order_by("organisation_path", "partner_id")
