"""``huzhu import-roster``, ``huzhu renew`` and ``huzhu worker`` (INTERFACES.md §2).

``huzhu import-roster FILE --union CODE --plan CODE`` validates the roster, enrolls the valid rows
and prints every invalid row on standard error (file, row number, column, reason). Exit 0: every
row enrolled; 2: unusable input (missing file or column, unknown union or plan) and nothing
written; 3: some rows invalid, the rest enrolled. Running it again with the same file continues an
interrupted import (S17) or, for a finished one, changes nothing and reports the same.

``huzhu renew --year YYYY`` drafts next year's batches (exit 2 when a union has no active plan).
``huzhu worker`` runs the background job queue (django-tasks database backend).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_ROWS_INVALID = 3


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_import_roster(args: argparse.Namespace) -> int:
    from huzhu.core.context import RequestInfo, current_request
    from huzhu.core.errors import ErrorCollector, InvalidInput
    from huzhu.enrollment import services
    from huzhu.enrollment.jobs import confirmation_job, validation_job
    from huzhu.enrollment.models import BatchStatus, RosterRowError
    from huzhu.enrollment.roster import RosterFileError, read_roster
    from huzhu.jobs.cli import tqdm_listener
    from huzhu.jobs.services import run_job
    from huzhu.orgs.models import Union, UnionKind
    from huzhu.plans.models import PlanVersion

    path = Path(args.file)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        _err(f"文件不存在：{path}")
        return EXIT_UNUSABLE
    except OSError as exc:
        _err(f"无法读取文件 {path}：{exc.strerror or exc}")
        return EXIT_UNUSABLE
    union = Union.objects.filter(code=args.union.strip().upper()).first()
    if union is None:
        _err(f"找不到组织代码为 {args.union} 的工会（应为统一社会信用代码或行政区划代码）")
        return EXIT_UNUSABLE
    version = PlanVersion.objects.filter(code=args.plan.strip()).first()
    if version is None:
        _err(f"找不到计划编码为 {args.plan} 的保障方案")
        return EXIT_UNUSABLE
    checks = ErrorCollector()
    services._check_union(checks, None, union)
    services._check_plan(checks, union, version)
    if checks:
        for error in checks.errors:
            _err(error.message)
        return EXIT_UNUSABLE
    try:
        read_roster(content, require_unit_column=union.kind != UnionKind.FEDERATION)
    except RosterFileError as exc:
        _err(f"{path}：{exc}")
        return EXIT_UNUSABLE
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        batch = services.same_file_batch(union, version.year, services.file_sha256(content))
        if batch is None:
            try:
                batch = services.create_batch(
                    acting_user=None, union=union, plan_year=version.year, plan_version=version
                )
            except InvalidInput as exc:
                for error in exc.errors:
                    _err(error.message)
                return EXIT_UNUSABLE
            batch = services.attach_roster(
                acting_user=None, batch=batch, file_name=path.name, content=content
            ).batch
        else:
            print(f"该文件已导入过（参保批次 #{batch.pk}），继续该批次", file=sys.stderr)
        if batch.status in (BatchStatus.DRAFT, BatchStatus.VALIDATED):
            job = validation_job(None, batch)
            with tqdm_listener("校验花名册") as listener:
                job = run_job(job.pk, listener=listener)
            if job.status != "succeeded":
                _err(job.error)
                return EXIT_FAILED
            batch.refresh_from_db()
            if batch.valid_count == 0:
                _print_errors(path, RosterRowError.objects.filter(batch=batch))
                _err("没有可以参保的有效行，未导入任何记录")
                return EXIT_ROWS_INVALID
            services.start_confirmation(acting_user=None, batch=batch, accept_invalid_rows=True)
            batch.refresh_from_db()
        if batch.status == BatchStatus.CONFIRMING:
            job = confirmation_job(None, batch)
            job.params["chunk_size"] = args.chunk_size
            job.save(update_fields=["params"])
            with tqdm_listener("写入参保记录") as listener:
                job = run_job(job.pk, listener=listener)
            if job.status != "succeeded":
                _err(job.error)
                return EXIT_FAILED
            batch.refresh_from_db()
        if batch.status == BatchStatus.CANCELLED:
            _err(f"参保批次 #{batch.pk} 已作废")
            return EXIT_FAILED
        errors = RosterRowError.objects.filter(batch=batch)
        _print_errors(path, errors)
        print(
            f"batch={batch.pk} status={batch.status} enrolled={batch.enrolled_count} "
            f"invalid_rows={batch.error_count} members_created={batch.members_created} "
            f"members_updated={batch.members_updated}"
        )
        return EXIT_ROWS_INVALID if batch.error_count else EXIT_OK
    finally:
        current_request.reset(token)


def _print_errors(path: Path, errors: Any) -> None:
    for error in errors.order_by("row_number", "id").iterator(chunk_size=2000):
        column = f"[{error.column}] " if error.column else ""
        _err(f"{path.name} 第{error.row_number}行 {column}{error.message}")


def cmd_renew(args: argparse.Namespace) -> int:
    from huzhu.core.context import RequestInfo, current_request
    from huzhu.enrollment.jobs import renewal_job
    from huzhu.enrollment.services import renewal_plans
    from huzhu.jobs.cli import tqdm_listener
    from huzhu.jobs.services import run_job

    _unions, _versions, problems = renewal_plans(acting_user=None, year=args.year)
    if problems:
        for message in problems:
            _err(message)
        return EXIT_UNUSABLE
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        job = renewal_job(None, args.year)
        with tqdm_listener("生成续保批次", unit="个工会") as listener:
            job = run_job(job.pk, listener=listener)
        if job.status != "succeeded":
            _err(job.error)
            return EXIT_FAILED
    finally:
        current_request.reset(token)
    unions = job.result.get("unions", [])
    if not unions:
        print(f"{args.year - 1}年度没有保障中的参保记录，无需续保")
    for item in unions:
        state = "已存在，未重复生成" if item["existing"] else "已生成草稿"
        print(
            f"{item['union']}：续保批次 #{item['batch_id']} {state}，"
            f"续保 {item['carried']} 人，未纳入 {item['dropped']} 人"
        )
        for dropped in item.get("dropped_people", []):
            print(f"  未纳入：{dropped}")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    options: dict[str, Any] = {"interval": args.interval}
    if args.batch:
        options["batch"] = True
    call_command("db_worker", **options)
    return EXIT_OK


def add_subcommands(sub: Any, wrap: Callable[..., Any]) -> None:
    p = sub.add_parser("import-roster", help="从花名册文件办理团体参保")
    p.add_argument("file", help="花名册文件（.xlsx、.xls 或 UTF-8/GBK 编码的 CSV）")
    p.add_argument(
        "--union", required=True, help="参保工会的组织代码（统一社会信用代码或行政区划代码）"
    )
    p.add_argument("--plan", required=True, help="保障方案的计划编码")
    p.add_argument("--chunk-size", type=int, default=5000, help="每个事务写入的行数（默认 5000）")
    p.set_defaults(func=wrap(cmd_import_roster))

    p = sub.add_parser("renew", help="根据本年度保障中的参保记录生成下一年度续保批次（草稿）")
    p.add_argument("--year", type=int, required=True, help="续保的保障年度，如 2027")
    p.set_defaults(func=wrap(cmd_renew))

    p = sub.add_parser("worker", help="运行后台任务队列（花名册校验、参保确认、续保等）")
    p.add_argument("--interval", type=float, default=1.0, help="空闲时轮询间隔（秒）")
    p.add_argument("--batch", action="store_true", help="处理完现有任务后退出")
    p.set_defaults(func=wrap(cmd_worker))
