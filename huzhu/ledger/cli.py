"""``huzhu verify-ledger`` (INTERFACES.md §2): exit 0 with a summary when the books are sound,
exit 1 naming the first bad entry otherwise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1


def cmd_verify_ledger(args: argparse.Namespace) -> int:
    from huzhu.ledger.verify import first_problem, summary

    problem = first_problem()
    if problem is not None:
        print(f"账簿异常：{problem.message}", file=sys.stderr)
        return EXIT_FAILED
    print(summary().text())
    return EXIT_OK


def add_subcommands(sub: Any, wrap: Callable[[Callable[[argparse.Namespace], int]], Any]) -> None:
    p = sub.add_parser("verify-ledger", help="核对互助基金账簿（借贷平衡、凭证连续、不可篡改）")
    p.set_defaults(func=wrap(cmd_verify_ledger))
