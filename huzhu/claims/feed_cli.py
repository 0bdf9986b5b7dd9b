"""``huzhu settlement import`` and ``huzhu settlement reconcile`` (docs/settlement-feed.md).

``huzhu settlement import FILE --partner PID --count N --total YUAN`` checks and imports a batch
feed file for a partner. Exit 0: accepted (or the same file was accepted before: nothing new);
2: unusable input (missing file, unknown partner, a declaration that does not match, a file that
cannot be read) and nothing imported; 3: some records invalid or conflicting — every problem is
printed on standard error with its line and field, and nothing is imported. A large file runs as a
job with a progress bar; killed and run again, it continues where it stopped.

``huzhu settlement reconcile --partner PID --date YYYY-MM-DD --count N --medfee YUAN --benefit
YUAN [--records FILE.csv]`` prints the report of the day: exit 0 when everything agrees, 1 when
differences are listed, 2 on unusable input.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_ROWS_INVALID = 3


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _partner(partner_id: str) -> Any:
    from huzhu.claims.models import Partner

    return Partner.objects.select_related("organisation").filter(partner_id=partner_id).first()


class _LazyBar:
    """The tqdm progress bar, opened at the first progress report: only a large file runs as a
    job and reports progress; a small one prints nothing but its result."""

    def __init__(self) -> None:
        self._context: Any = None
        self._listen: Any = None

    def __call__(self, done: int, total: int, message: str) -> None:
        if self._listen is None:
            from huzhu.jobs.cli import tqdm_listener

            self._context = tqdm_listener("写入结算记录", unit="条")
            self._listen = self._context.__enter__()
        self._listen(done, total, message)

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)


def cmd_import(args: argparse.Namespace) -> int:
    from huzhu.claims.feed import FileStatus, file_summary, import_settlement_file
    from huzhu.core.context import RequestInfo, current_request

    path = Path(args.file)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        _err(f"文件不存在：{path}")
        return EXIT_UNUSABLE
    except OSError as exc:
        _err(f"无法读取文件 {path}：{exc.strerror or exc}")
        return EXIT_UNUSABLE
    partner = _partner(args.partner)
    if partner is None:
        _err(f"找不到合作方编号为 {args.partner} 的结算合作方")
        return EXIT_UNUSABLE
    if not partner.is_active:
        _err(f"结算合作方 {args.partner} 已停用")
        return EXIT_UNUSABLE
    token = current_request.set(RequestInfo(channel="cli"))
    bar = _LazyBar()
    try:
        outcome = import_settlement_file(
            acting_user=None,
            partner=partner,
            filename=path.name,
            content=content,
            declared_count=args.count,
            declared_total=args.total,
            run_inline=True,
            listener=bar,
            chunk_size=args.chunk_size,
        )
    finally:
        bar.close()
        current_request.reset(token)
    settlement_file = outcome.file
    if outcome.duplicate:
        _err(f"该文件已于此前接收（文件 #{settlement_file.pk}），未重复导入")
    summary = file_summary(settlement_file)
    if settlement_file.status == FileStatus.REJECTED:
        for problem in outcome.problems:
            _err(f"{path.name} {problem.text()}")
        _err(f"文件已拒收，未导入任何记录（共 {len(outcome.problems)} 个问题）")
        # A CSV's line 1 is its header: a header problem makes the file unusable, like a
        # declaration that does not match; a problem on a record line is an invalid row.
        header = 1 if settlement_file.file_format == "csv" else 0
        rows_invalid = any(p.line is not None and p.line > header for p in outcome.problems)
        return EXIT_ROWS_INVALID if rows_invalid else EXIT_UNUSABLE
    if settlement_file.status != FileStatus.ACCEPTED:
        for problem in outcome.problems:
            _err(f"{path.name} {problem.text()}")
        if outcome.job is not None and outcome.job.error:
            _err(outcome.job.error)
        return EXIT_FAILED
    outcomes = " ".join(f"{k}={v}" for k, v in sorted(summary["outcomes"].items()))
    print(
        f"file={settlement_file.pk} status={settlement_file.status} "
        f"records={summary['record_count']} total={summary['total']} {outcomes}".rstrip()
    )
    return EXIT_OK


def _read_records(path: Path) -> list[dict[str, str]]:
    """The partner's per-record list: CSV with a ``setl_id`` column and optional ``status``,
    ``medfee_sumamt``, ``benefit``."""
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return [
        {k.strip(): (v or "").strip() for k, v in row.items() if k and (v or "").strip()}
        for row in reader
    ]


def cmd_reconcile(args: argparse.Namespace) -> int:
    from huzhu.claims.feed import partner_totals, reconcile, report_answer
    from huzhu.core.context import RequestInfo, current_request
    from huzhu.core.errors import InvalidInput

    partner = _partner(args.partner)
    if partner is None:
        _err(f"找不到合作方编号为 {args.partner} 的结算合作方")
        return EXIT_UNUSABLE
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        _err(f"日期“{args.date}”格式不正确，应为 YYYY-MM-DD")
        return EXIT_UNUSABLE
    records = None
    if args.records:
        try:
            records = _read_records(Path(args.records))
        except FileNotFoundError:
            _err(f"文件不存在：{args.records}")
            return EXIT_UNUSABLE
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            _err(f"无法读取结算清单 {args.records}：{exc}")
            return EXIT_UNUSABLE
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        totals = partner_totals(
            count=args.count, medfee=args.medfee, benefit=args.benefit, records=records
        )
        report = reconcile(acting_user=None, partner=partner, day=day, totals=totals, source="cli")
    except InvalidInput as exc:
        for error in exc.errors:
            _err(f"[{error.field}] {error.message}")
        return EXIT_UNUSABLE
    finally:
        current_request.reset(token)
    answer = report_answer(report)
    theirs, ours = answer["theirs"], answer["ours"]
    print(f"对账报告 #{report.pk}：{partner.name}（{partner.partner_id}）{day:%Y-%m-%d}")
    print(
        f"对方：{theirs['count']} 笔，医疗费 {theirs['medfee_sumamt']} 元，"
        f"补助 {theirs['benefit']} 元"
    )
    print(f"我方：{ours['count']} 笔，医疗费 {ours['medfee_sumamt']} 元，补助 {ours['benefit']} 元")
    if answer["balanced"]:
        print("核对一致，没有差异")
        return EXIT_OK
    print(f"差异 {len(answer['differences'])} 项：")
    for item in answer["differences"]:
        print(f"  [{item['label']}] {item['message']}")
    return EXIT_FAILED


def add_subcommands(sub: Any, wrap: Callable[..., Any]) -> None:
    group = sub.add_parser("settlement", help="医保结算批量文件与对账").add_subparsers(
        dest="settlement_cmd", required=True
    )
    p = group.add_parser("import", help="导入合作方的结算批量文件（CSV 或 JSON lines）")
    p.add_argument("file", help="结算文件（UTF-8 的 .csv 或 .jsonl）")
    p.add_argument("--partner", required=True, help="合作方编号（partner_id）")
    p.add_argument("--count", required=True, type=int, help="合作方声明的记录数（含撤销记录）")
    p.add_argument("--total", required=True, help="合作方声明的医疗费总额合计（元，两位小数）")
    p.add_argument("--chunk-size", type=int, default=500, help="大文件每个事务写入的记录数")
    p.set_defaults(func=wrap(cmd_import))

    p = group.add_parser("reconcile", help="按日与合作方对账，列出全部差异")
    p.add_argument("--partner", required=True, help="合作方编号（partner_id）")
    p.add_argument("--date", required=True, help="对账日期 YYYY-MM-DD（按结算时间的日期）")
    p.add_argument("--count", required=True, help="对方当日结算笔数（不含已撤销）")
    p.add_argument("--medfee", required=True, help="对方当日医疗费总额合计（元）")
    p.add_argument("--benefit", required=True, help="对方当日已减免的补助金额合计（元）")
    p.add_argument(
        "--records", help="可选：对方当日结算清单 CSV（setl_id[,status,medfee_sumamt,benefit]）"
    )
    p.set_defaults(func=wrap(cmd_reconcile))
