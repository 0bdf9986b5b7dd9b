"""``huzhu plan import FILE.yaml [--activate]`` (INTERFACES.md §2).

Exit 0 with the plan's code and parameters hash on standard output; exit 2 with every error (key
path and Chinese reason) on standard error for a missing, unreadable or invalid file, and nothing
stored. The acting user is the command line itself (no account; audited as 「命令行」).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_UNUSABLE = 2


def _read(path: Path) -> tuple[str | None, str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, f"文件 {path} 不存在"
    except OSError as exc:
        return None, f"无法读取文件 {path}：{exc.strerror or exc}"
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return None, f"{path}：文件不是 UTF-8 编码"


def cmd_plan_import(args: argparse.Namespace) -> int:
    from huzhu.core.context import RequestInfo, current_request
    from huzhu.core.errors import ConflictError, InvalidInput
    from huzhu.plans.models import PlanStatus
    from huzhu.plans.services import activate_plan, import_plan

    path = Path(args.file)
    text, problem = _read(path)
    if text is None:
        print(problem, file=sys.stderr)
        return EXIT_UNUSABLE
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        try:
            version = import_plan(acting_user=None, yaml_text=text, filename=path.name)
        except InvalidInput as exc:
            print(f"{path}：方案文件无效，共 {len(exc.errors)} 处错误，未导入：", file=sys.stderr)
            for error in exc.errors:
                print(f"  {error.field or '（整个文件）'}：{error.message}", file=sys.stderr)
            return EXIT_UNUSABLE
        print(f"code={version.code}")
        print(f"hash={version.parameters_hash}")
        if getattr(args, "activate", False):
            if version.status == PlanStatus.ACTIVE:
                print("status=active（已是启用状态）")
                return EXIT_OK
            try:
                activate_plan(acting_user=None, plan_version=version)
            except (InvalidInput, ConflictError) as exc:
                print(f"{version.code}：无法启用：{exc}", file=sys.stderr)
                return EXIT_UNUSABLE
            print("status=active")
        else:
            print(f"status={version.status}")
        return EXIT_OK
    finally:
        current_request.reset(token)
