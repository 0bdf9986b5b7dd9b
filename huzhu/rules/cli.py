"""Commands of the engine that need no database: ``huzhu adjudicate`` and ``huzhu plan validate``.

``huzhu.cli`` registers them; ``python -m huzhu.rules.cli …`` runs them on their own. Exit statuses
(INTERFACES.md §2): 0 success, 2 unusable input, 3 some rows invalid.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from huzhu.core.money import format_fen
from huzhu.rules.adjudicate import EXIT_OK, EXIT_UNUSABLE, adjudicate_files
from huzhu.rules.plan import load_plan_file

__all__ = ["add_subcommands", "cmd_adjudicate", "cmd_plan_validate", "main"]

_STAGES = ("读取计划", "读取参保人员", "读取结算记录", "计算补助", "写出结果")


def cmd_adjudicate(args: argparse.Namespace) -> int:
    """``huzhu adjudicate --plan P.yaml --members M.csv --settlements S.csv --out R.csv``."""
    progress = None
    bar: Any = None
    if sys.stderr.isatty():
        # A progress bar only for a person watching (INTERFACES.md §2 output stays clean in pipes).
        from tqdm import tqdm

        bar = tqdm(total=len(_STAGES), unit="步", file=sys.stderr, leave=False)

        def progress(stage: str) -> None:
            if bar.n or stage != _STAGES[0]:
                bar.update(1)
            bar.set_description(stage)

    try:
        status = adjudicate_files(
            args.plan, args.members, args.settlements, args.out, progress=progress
        )
        if bar is not None:
            bar.update(bar.total - bar.n)
    finally:
        if bar is not None:
            bar.close()
    return status


def cmd_plan_validate(args: argparse.Namespace) -> int:
    """``huzhu plan validate FILE``: every error of RULES.md §1 with its key path, exit 2 if any."""
    plan, errors = load_plan_file(args.file)
    if plan is None:
        print(f"{args.file}：方案文件无效，共 {len(errors)} 处错误：", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"{args.file}：方案文件有效（{plan.code} {plan.name}）")
    for check in plan.contribution_checks():
        what = "互助金" if check.product is None else f"{check.product} 互助金"
        bound = format_fen(int(check.bound)) if check.bound.denominator == 1 else str(check.bound)
        print(
            f"  {what} {format_fen(check.contribution)} 元 ≤ 城乡居民医保个人缴费标准 "
            f"{format_fen(check.resident_individual_contribution)} 元的 50%（{bound} 元）"
        )
    print(f"  参数摘要 sha256:{plan.parameters_hash()}")
    return EXIT_OK


def add_subcommands(subparsers: Any) -> dict[str, argparse.ArgumentParser]:
    """Register ``adjudicate`` and ``plan validate`` on an argparse subparsers object.

    Returns the parsers, including ``"plan"`` subcommands' own subparsers under ``"plan_sub"`` so
    that the database side can add ``plan import`` next to ``plan validate``.
    """
    adjudicate = subparsers.add_parser("adjudicate", help="按文件批量计算补助（不使用数据库）")
    adjudicate.add_argument("--plan", required=True, help="保障方案 YAML 文件")
    adjudicate.add_argument("--members", required=True, help="参保人员 CSV")
    adjudicate.add_argument("--settlements", required=True, help="医保结算 CSV")
    adjudicate.add_argument("--out", required=True, help="结果 CSV")
    adjudicate.set_defaults(func=cmd_adjudicate)
    plan = subparsers.add_parser("plan", help="保障方案文件")
    plan_sub = plan.add_subparsers(dest="plan_cmd", required=True)
    validate = plan_sub.add_parser("validate", help="校验方案文件（RULES.md §1）")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_plan_validate)
    return {"adjudicate": adjudicate, "plan": plan, "plan_sub": plan_sub, "validate": validate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="huzhu", description="互助保障补助计算（无数据库）")
    add_subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
