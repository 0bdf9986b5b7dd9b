"""E-receipt numbering under contention (S16): 20 concurrent issuers × 500 receipts for one issuing
union, on PostgreSQL (and SQLite for comparison).

    python -m bench.bench_receipts [--issuers 20] [--per-issuer 500]
                                   [--databases postgresql,sqlite] [--postgres-url URL]

For each database a child process (Django is configured once per process):

1. creates a throwaway database — PostgreSQL ``huzhu_bench_receipts`` (created with an autocommit
   connection, dropped at the end) or an SQLite file in a temporary directory — and migrates it;
2. builds a province → city tree, a unit and a finance account at the city through the services,
   and registers two ranges (号段) for the city that together hold exactly issuers × per-issuer
   numbers, so the run also switches from an exhausted range to the next one under contention;
3. starts ``issuers`` threads (each with its own database connection) behind a barrier; each
   issues ``per-issuer`` receipts through ``issue_receipt`` — one transaction each, with the
   range lock, the insert, the Ed25519-signed XML and the audit event — and times every call;
4. checks the result: every number of both ranges used exactly once (no gap, no duplicate, nothing
   outside), both ranges exhausted, the audit chain intact, a sample of signed XML originals
   verified.

Results: ``bench/results/receipts.json`` (receipts/s, latency median/p95/max, the checks, the
machine) and a table on stdout. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, postgres_admin, run_threads

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "receipts.json"
PG_DATABASE = "huzhu_bench_receipts"
FIRST_A = 1
FIRST_B = 5_000_001
XML_SAMPLE = 200


# --- parent ----------------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_receipts", description=__doc__)
    parser.add_argument("--issuers", type=int, default=20, help="concurrent issuers (threads)")
    parser.add_argument("--per-issuer", type=int, default=500, help="receipts per issuer")
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HUZHU_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="server URL without a database name",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


_machine = machine


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.worker:
        return _worker(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "receipts",
        "issuers": args.issuers,
        "per_issuer": args.per_issuer,
        "receipts": args.issuers * args.per_issuer,
        "machine": _machine(),
        "databases": {},
    }
    status = 0
    for database in [d.strip() for d in args.databases.split(",") if d.strip()]:
        with tempfile.TemporaryDirectory(prefix="huzhu-bench-receipts-") as tmp:
            env = dict(os.environ)
            env.update(
                DJANGO_SETTINGS_MODULE="huzhu.settings",
                HUZHU_TESTING="1",  # ephemeral keys, nothing written under var/
                HUZHU_VAR_DIR=tmp,
                HUZHU_LOG_LEVEL=os.environ.get("HUZHU_LOG_LEVEL", "WARNING"),
                PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            )
            env.pop("HUZHU_DEMO", None)
            if database == "postgresql":
                try:
                    postgres_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
                    postgres_admin(args.postgres_url, f"CREATE DATABASE {PG_DATABASE}")
                except Exception as exc:  # no server: report and go on
                    print(f"PostgreSQL 不可用，跳过：{exc}", file=sys.stderr)
                    report["databases"][database] = {"skipped": str(exc)}
                    continue
                env["HUZHU_DATABASE_URL"] = f"{args.postgres_url}/{PG_DATABASE}"
            elif database == "sqlite":
                env["HUZHU_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'receipts.sqlite3'}"
            else:
                print(f"未知数据库：{database}", file=sys.stderr)
                return 2
            out = Path(tmp) / "result.json"
            command = [
                sys.executable,
                "-m",
                "bench.bench_receipts",
                "--worker",
                database,
                "--issuers",
                str(args.issuers),
                "--per-issuer",
                str(args.per_issuer),
                "--out",
                str(out),
            ]
            try:
                completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
                if out.exists():
                    result = json.loads(out.read_text())
                    report["databases"][database] = result
                    if not result["checks"]["ok"]:
                        status = 1
                else:
                    status = 1
                    report["databases"][database] = {"failed": completed.returncode}
            finally:
                if database == "postgresql":
                    postgres_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    _print_table(report)
    print(f"\n结果已写入 {RESULTS.relative_to(ROOT)}")
    return status


def _print_table(report: dict[str, Any]) -> None:
    print(
        f"\n{report['issuers']} 个并发开票线程 × 每线程 {report['per_issuer']} 张 = "
        f"{report['receipts']:,} 张电子票据（同一开票单位，两个号段）"
    )
    header = (
        f"{'database':<11}{'seconds':>9}{'receipts/s':>12}{'median ms':>11}{'p95 ms':>9}"
        f"{'max ms':>9}  checks"
    )
    print(header)
    print("-" * len(header))
    for name, result in report["databases"].items():
        if "measurement" not in result:
            print(f"{name:<11}{json.dumps(result, ensure_ascii=False)}")
            continue
        m = result["measurement"]
        checks = result["checks"]
        verdict = (
            "无断号、无重号、未越出号段"
            if checks["ok"]
            else "失败：" + "；".join(checks["problems"])
        )
        print(
            f"{name:<11}{m['seconds']:>9.2f}{m['receipts_per_second']:>12.1f}"
            f"{m['latency_ms']['median']:>11.1f}{m['latency_ms']['p95']:>9.1f}"
            f"{m['latency_ms']['max']:>9.1f}  {verdict}"
        )


# --- worker (child process, Django configured) -----------------------------------------------
def _worker(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    migrate_seconds = time.perf_counter() - started
    setup = _build(args.issuers * args.per_issuer)
    measurement = _measure(setup, args.issuers, args.per_issuer)
    checks = _check(setup, args.issuers * args.per_issuer)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            version = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            cursor.execute("SELECT sqlite_version()")
            version = f"SQLite {cursor.fetchone()[0]}"
    result = {
        "database": connection.vendor,
        "server_version": version,
        "migrate_seconds": round(migrate_seconds, 2),
        "ranges": setup["ranges_text"],
        "measurement": measurement,
        "checks": checks,
    }
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if checks["ok"] else 1


def _build(total: int) -> dict[str, Any]:
    from django.utils import timezone

    from huzhu.contributions.receipt_services import allocate_range
    from huzhu.core.ids import make_uscc
    from huzhu.orgs.services import create_staff_user, create_union, create_unit

    province = create_union(
        acting_user=None, parent=None, name="湖南省总工会", kind="provincial", region_code="430000"
    )
    city = create_union(
        acting_user=None, parent=province, name="长沙市总工会", kind="city", region_code="430100"
    )
    grassroots = create_union(
        acting_user=None,
        parent=city,
        name="长沙市某公司工会",
        kind="grassroots",
        uscc=make_uscc("81430100MA0000001"),
    )
    unit = create_unit(
        acting_user=None, union=grassroots, name="长沙市某公司", uscc=make_uscc("91430100MA0000002")
    )
    finance = create_staff_user(
        acting_user=None,
        username="bench_finance",
        password="Bench-Receipts-2026!",  # noqa: S106 - throwaway benchmark database
        organisation=city,
        roles={"finance"},
        skip_password_policy=True,
    )
    year = timezone.localdate().year
    half = total // 2
    first = allocate_range(
        acting_user=finance,
        issuer=city,
        code=f"430301{year % 100:02d}",
        year=year,
        first_number=str(FIRST_A),
        last_number=str(FIRST_A + half - 1),
    )
    second = allocate_range(
        acting_user=finance,
        issuer=city,
        code=f"430302{year % 100:02d}",
        year=year,
        first_number=str(FIRST_B),
        last_number=str(FIRST_B + (total - half) - 1),
    )
    return {
        "issuer": city,
        "finance": finance,
        "unit": unit,
        "ranges": [first.pk, second.pk],
        "ranges_text": [str(first), str(second)],
    }


def _measure(setup: dict[str, Any], issuers: int, per_issuer: int) -> dict[str, Any]:
    from django.utils import timezone

    from huzhu.contributions.receipt_models import PayerKind
    from huzhu.contributions.receipt_services import issue_receipt

    today = timezone.localdate()
    unit = setup["unit"]

    def work(index: int, mine: list[float]) -> None:
        for n in range(per_issuer):
            begin = time.perf_counter()
            issue_receipt(
                acting_user=setup["finance"],
                issuer=setup["issuer"],
                payer_name=unit.name,
                payer_kind=PayerKind.UNIT,
                payer_reference=unit.uscc,
                items=[("单位承担互助金", 9000), ("工会补助互助金", 3000)],
                total_fen=12000,
                issued_on=today,
                source_type="bench.payment",
                source_id=f"{index}-{n}",
                payer=unit,
            )
            mine.append(time.perf_counter() - begin)

    seconds, latencies, errors = run_threads(issuers, work)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "seconds": round(seconds, 2),
        "issued": len(latencies),
        "receipts_per_second": round(len(latencies) / seconds, 1) if seconds else 0.0,
        "latency_ms": {
            "median": round(statistics.median(ordered) * 1000, 2) if ordered else 0.0,
            "p95": pct(0.95) if ordered else 0.0,
            "max": round(ordered[-1] * 1000, 2) if ordered else 0.0,
        },
        "errors": errors[:20],
    }


def _check(setup: dict[str, Any], total: int) -> dict[str, Any]:
    from huzhu.contributions.receipt_models import Receipt, ReceiptRange
    from huzhu.contributions.receipt_xml import verify_receipt_xml
    from huzhu.core.audit import first_problem

    problems: list[str] = []
    per_range: dict[str, Any] = {}
    count = 0
    for range_id in setup["ranges"]:
        receipt_range = ReceiptRange.objects.get(pk=range_id)
        numbers = list(
            Receipt.objects.filter(receipt_range_id=range_id)
            .order_by("number")
            .values_list("number", flat=True)
        )
        expected = list(range(receipt_range.first_number, receipt_range.last_number + 1))
        count += len(numbers)
        duplicates = len(numbers) - len(set(numbers))
        gaps = len(set(expected) - set(numbers))
        outside = len(set(numbers) - set(expected))
        per_range[str(receipt_range)] = {
            "issued": len(numbers),
            "duplicates": duplicates,
            "gaps": gaps,
            "outside": outside,
            "exhausted": receipt_range.is_exhausted,
        }
        if numbers != expected:
            problems.append(f"号段 {receipt_range}：重号 {duplicates}，断号 {gaps}，越界 {outside}")
        if not receipt_range.is_exhausted:
            problems.append(f"号段 {receipt_range} 未用完")
    if count != total:
        problems.append(f"共开具 {count} 张，应为 {total} 张")
    unique_pairs = Receipt.objects.values("code", "number").distinct().count()
    if unique_pairs != count:
        problems.append("票据代码+号码有重复")
    audit = first_problem()
    if audit is not None:
        problems.append(f"审计链异常：{audit.message}")
    sample = list(Receipt.objects.order_by("?").values_list("signed_xml", flat=True)[:XML_SAMPLE])
    bad_xml = sum(1 for xml in sample if not verify_receipt_xml(xml.encode("utf-8")))
    if bad_xml:
        problems.append(f"{bad_xml} 份 XML 签名未通过核验")
    return {
        "ok": not problems,
        "problems": problems,
        "total_issued": count,
        "ranges": per_range,
        "audit_chain_intact": audit is None,
        "xml_sample_verified": len(sample) - bad_xml,
    }


if __name__ == "__main__":
    raise SystemExit(main())
