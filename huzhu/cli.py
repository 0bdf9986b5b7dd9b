"""The ``huzhu`` command line (INTERFACES.md §2).

Exit statuses: 0 success; 2 unusable input; 3 some rows invalid (the rest processed). Commands that
need no database (``adjudicate``, ``plan validate``) never import Django.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2
EXIT_ROWS_INVALID = 3


def setup_django(*, demo: bool = False, keyless: bool = False) -> None:
    if demo:
        os.environ["HUZHU_DEMO"] = "1"
    if keyless:
        # Commands that read no protected data (schema checks) run with throwaway keys, so a
        # fresh clone can lint without production secrets.
        os.environ.setdefault("HUZHU_TESTING", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huzhu.settings")
    import django

    django.setup()


def _django(
    handler: Callable[[argparse.Namespace], int], *, demo: bool = False, keyless: bool = False
) -> Any:
    def run(args: argparse.Namespace) -> int:
        setup_django(demo=demo, keyless=keyless)
        return handler(args)

    return run


# --- commands that need the database --------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0 if args.quiet else 1)
    return EXIT_OK


def cmd_check_migrations(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    try:
        call_command("makemigrations", check=True, dry_run=True, verbosity=1)
    except SystemExit as exc:
        return int(exc.code or 1)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from waitress import serve

    from huzhu.wsgi import application

    print(f"职工互助保障平台 http://{args.host}:{args.port}/ （Ctrl+C 停止）", flush=True)
    serve(application, host=args.host, port=args.port, threads=args.threads, ident="huzhu")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    from huzhu.demo import build_demo, print_accounts
    from huzhu.demo_claims import build_demo_claims, print_demo_claims
    from huzhu.demo_portal import build_demo_portal, print_demo_portal

    call_command("migrate", interactive=False, verbosity=0)
    build_demo(members=args.members)
    build_demo_portal()  # member portal: a 芙蓉区 member with receipts and an account
    claims = build_demo_claims()  # a settlement partner and claims in every state
    print_accounts()
    print_demo_portal()
    print_demo_claims(claims)
    if args.no_serve:
        return EXIT_OK
    return cmd_serve(args)


def cmd_token_create(args: argparse.Namespace) -> int:
    from huzhu.orgs.models import User
    from huzhu.orgs.services import create_api_token

    user = User.objects.filter(username=args.username, is_active=True).first()
    if user is None:
        print(f"账号不存在或已停用：{args.username}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(create_api_token(acting_user=None, user=user, days=args.days))
    return EXIT_OK


def cmd_verify_audit(args: argparse.Namespace) -> int:
    from huzhu.core.audit import iter_problems
    from huzhu.core.models import AuditChain, AuditEvent

    # One line per broken chain (its first bad row), chains in order: the first line is the
    # first problem; the other chains are independent and checked all the same.
    problems = list(iter_problems())
    if not problems:
        chains = AuditChain.objects.count()
        print(f"审计链完整：{chains} 条链，共 {AuditEvent.objects.count()} 条事件")
        return EXIT_OK
    for problem in problems:
        print(f"审计链异常：{problem.describe()}", file=sys.stderr)
    return EXIT_FAILED


def cmd_createsuperuser(args: argparse.Namespace) -> int:
    from huzhu.orgs.bootstrap import create_first_admins_interactive

    return create_first_admins_interactive()


def cmd_adjudicate(args: argparse.Namespace) -> int:
    from huzhu.rules.cli import cmd_adjudicate as run

    return run(args)


def cmd_plan_validate(args: argparse.Namespace) -> int:
    from huzhu.rules.cli import cmd_plan_validate as run

    return run(args)


def cmd_plan_import(args: argparse.Namespace) -> int:
    from huzhu.plans.cli import cmd_plan_import as run

    return run(args)


# Later capabilities add their own subcommands: each module has ``add_subcommands(sub, wrap)``.
EXTENSIONS: tuple[str, ...] = (
    "huzhu.ledger.cli",
    "huzhu.contributions.cli",
    "huzhu.enrollment.cli",
    "huzhu.claims.feed_cli",
    "huzhu.claims.partner_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huzhu", description="职工互助保障平台命令行")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="建立/刷新演示省份数据并启动服务")
    p.add_argument("--no-serve", action="store_true", help="数据就绪后退出，不启动服务")
    p.add_argument("--members", type=int, default=5000, help="演示职工人数（默认 5000）")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=8)
    p.set_defaults(func=_django(cmd_demo, demo=True))

    p = sub.add_parser("serve", help="以生产方式启动服务")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=8)
    p.set_defaults(func=_django(cmd_serve))

    p = sub.add_parser("migrate", help="建立或升级数据库结构")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_django(cmd_migrate))

    p = sub.add_parser("check-migrations", help="检查模型与迁移文件一致")
    p.set_defaults(func=_django(cmd_check_migrations, keyless=True))

    p = sub.add_parser("createsuperuser", help="交互式创建首批三员管理员账号")
    p.set_defaults(func=_django(cmd_createsuperuser))

    token = sub.add_parser("token", help="接口令牌").add_subparsers(dest="token_cmd", required=True)
    p = token.add_parser("create", help="为职员账号生成接口令牌（仅输出令牌）")
    p.add_argument("username")
    p.add_argument("--days", type=int, default=365)
    p.set_defaults(func=_django(cmd_token_create))

    p = sub.add_parser("verify-audit", help="校验审计日志哈希链")
    p.set_defaults(func=_django(cmd_verify_audit))

    p = sub.add_parser("adjudicate", help="按文件批量计算补助（不使用数据库）")
    p.add_argument("--plan", required=True, help="保障方案 YAML 文件")
    p.add_argument("--members", required=True, help="参保人员 CSV")
    p.add_argument("--settlements", required=True, help="医保结算 CSV")
    p.add_argument("--out", required=True, help="结果 CSV")
    p.set_defaults(func=cmd_adjudicate)

    plan = sub.add_parser("plan", help="保障方案文件").add_subparsers(
        dest="plan_cmd", required=True
    )
    p = plan.add_parser("validate", help="校验方案文件（RULES.md §1）")
    p.add_argument("file")
    p.set_defaults(func=cmd_plan_validate)
    p = plan.add_parser("import", help="校验并导入方案文件为新的方案版本")
    p.add_argument("file")
    p.add_argument("--activate", action="store_true", help="导入后立即启用")
    p.set_defaults(func=_django(cmd_plan_import))

    import importlib

    for module_name in EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.add_subcommands(sub, _django)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
