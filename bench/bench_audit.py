"""Audited writes under contention: one audit hash chain against sixteen (ADR 0002), PostgreSQL.

    python -m bench.bench_audit [--threads 16] [--transactions 200] [--events 2]
                                [--chains 1,16] [--repeats 3] [--postgres-url URL]

In a child process (Django configured once) on a throwaway database ``huzhu_bench_audit`` (created
with an autocommit connection, migrated, dropped at the end):

1. for each repeat, for each chain count in turn (``HUZHU_AUDIT_CHAINS`` = 1, then 16, then 1 …:
   interleaved, so a change in machine load hits both alike), ``threads`` threads — each with its
   own database connection — start behind a barrier and each commits ``transactions``
   transactions (``transaction.atomic(durable=True)``) of ``events`` audit events written through
   ``huzhu.core.audit.record_event``; every transaction is timed;
2. after each run: the events counted, every chain verified (``first_problem``), no (chain, seq)
   twice, every transaction's events on one chain, how many chains were used.

Results: ``bench/results/audit.json`` — per chain count the median of the repeats of events/s and
transactions/s (and every run: seconds, latency median/p95/max, chains used), the speed-up of the
largest count over the smallest, the checks, the machine — and a table on stdout. Exit status 1
when a check fails.
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
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import machine, postgres_admin, run_threads

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "audit.json"
PG_DATABASE = "huzhu_bench_audit"


# --- parent ----------------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_audit", description=__doc__)
    parser.add_argument("--threads", type=int, default=16, help="concurrent writers (threads)")
    parser.add_argument("--transactions", type=int, default=200, help="transactions per thread")
    parser.add_argument("--events", type=int, default=2, help="audit events per transaction")
    parser.add_argument("--chains", default="1,16", help="HUZHU_AUDIT_CHAINS values to compare")
    parser.add_argument("--repeats", type=int, default=3, help="runs per chain count (median)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HUZHU_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="server URL without a database name",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    chains = [int(c) for c in args.chains.split(",") if c.strip()]
    if args.worker:
        return _worker(args, chains)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "audit",
        "database": "postgresql",
        "threads": args.threads,
        "transactions_per_thread": args.transactions,
        "events_per_transaction": args.events,
        "repeats": args.repeats,
        "machine": machine(),
    }
    status = 0
    try:
        postgres_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
        postgres_admin(args.postgres_url, f"CREATE DATABASE {PG_DATABASE}")
    except Exception as exc:  # no server: report and stop
        print(f"PostgreSQL 不可用，跳过：{exc}", file=sys.stderr)
        report["skipped"] = str(exc)
        RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="huzhu-bench-audit-") as tmp:
            env = dict(os.environ)
            env.update(
                DJANGO_SETTINGS_MODULE="huzhu.settings",
                HUZHU_TESTING="1",  # ephemeral keys, nothing written under var/
                HUZHU_VAR_DIR=tmp,
                HUZHU_LOG_LEVEL=os.environ.get("HUZHU_LOG_LEVEL", "WARNING"),
                HUZHU_DATABASE_URL=f"{args.postgres_url}/{PG_DATABASE}",
                PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            )
            env.pop("HUZHU_DEMO", None)
            env.pop("HUZHU_AUDIT_CHAINS", None)  # the worker sets it per run
            out = Path(tmp) / "result.json"
            command = [
                sys.executable,
                "-m",
                "bench.bench_audit",
                "--worker",
                "--threads",
                str(args.threads),
                "--transactions",
                str(args.transactions),
                "--events",
                str(args.events),
                "--chains",
                ",".join(str(c) for c in chains),
                "--repeats",
                str(args.repeats),
                "--out",
                str(out),
            ]
            completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
            if out.exists():
                report.update(json.loads(out.read_text()))
                status = 0 if report["checks"]["ok"] and completed.returncode == 0 else 1
            else:
                report["failed"] = completed.returncode
                status = 1
    finally:
        postgres_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    _print_table(report)
    print(f"\n结果已写入 {RESULTS.relative_to(ROOT)}")
    return status


def _print_table(report: dict[str, Any]) -> None:
    if "results" not in report:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(
        f"\nPostgreSQL，{report['threads']} 个并发线程 × 每线程 {report['transactions_per_thread']}"
        f" 个事务 × 每事务 {report['events_per_transaction']} 条审计事件；"
        f"每种链数 {report['repeats']} 次取中位数"
    )
    header = (
        f"{'chains':>6}{'events/s':>11}{'txns/s':>9}{'median ms':>11}{'p95 ms':>9}"
        f"{'chains used':>13}  runs (events/s)"
    )
    print(header)
    print("-" * len(header))
    for result in report["results"]:
        runs = result["runs"]
        print(
            f"{result['chains']:>6}{result['events_per_second']:>11.1f}"
            f"{result['transactions_per_second']:>9.1f}"
            f"{statistics.median(r['latency_ms']['median'] for r in runs):>11.1f}"
            f"{statistics.median(r['latency_ms']['p95'] for r in runs):>9.1f}"
            f"{max(r['chains_used'] for r in runs):>13}  "
            + ", ".join(f"{r['events_per_second']:.0f}" for r in runs)
        )
    print(f"speed-up: {report['speedup']}×")
    checks = report["checks"]
    print(
        "checks: "
        + (
            "每条链校验通过，无重复序号，每个事务只用一条链"
            if checks["ok"]
            else "；".join(checks["problems"])
        )
    )


# --- worker (child process, Django configured) -----------------------------------------------
def _worker(args: argparse.Namespace, chains: list[int]) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    migrate_seconds = time.perf_counter() - started
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in chains}
    problems: list[str] = []
    for repeat in range(args.repeats):
        for count in chains:
            run = _measure(count, args.threads, args.transactions, args.events, repeat)
            runs[count].append(run)
            problems += [f"{count} 条链第 {repeat + 1} 次：{p}" for p in run.pop("problems")]
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = f"PostgreSQL {cursor.fetchone()[0]}"
    results = [
        {
            "chains": count,
            "events_per_second": round(statistics.median(r["events_per_second"] for r in rs), 1),
            "transactions_per_second": round(
                statistics.median(r["transactions_per_second"] for r in rs), 1
            ),
            "runs": rs,
        }
        for count, rs in runs.items()
    ]
    low, high = results[0], results[-1]
    result = {
        "server_version": version,
        "migrate_seconds": round(migrate_seconds, 2),
        "results": results,
        "speedup": round(high["events_per_second"] / low["events_per_second"], 2)
        if low["events_per_second"]
        else None,
        "checks": {"ok": not problems, "problems": problems},
    }
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2))
    return 0 if not problems else 1


def _measure(
    count: int, threads: int, transactions: int, events: int, repeat: int
) -> dict[str, Any]:
    from django.conf import settings
    from django.db import transaction

    from huzhu.core.audit import Event, first_problem, record_event
    from huzhu.core.models import AuditEvent

    settings.HUZHU_AUDIT_CHAINS = count  # read by huzhu.core.audit at every chain pick
    before = AuditEvent.objects.count()
    mixed: list[str] = []  # transactions whose events landed on different chains

    def work(index: int, mine: list[float]) -> None:
        for n in range(transactions):
            begin = time.perf_counter()
            with transaction.atomic(durable=True):
                rows = [
                    record_event(
                        actor=None,
                        actor_username=f"bench{index}",
                        event=Event.EXPORT,
                        object_type="bench.audit",
                        object_id=f"{count}-{repeat}-{index}-{n}-{k}",
                        detail={"run": repeat, "chains": count},
                    )
                    for k in range(events)
                ]
            mine.append(time.perf_counter() - begin)
            if len({row.chain for row in rows}) != 1:
                mixed.append(f"{index}-{n}")  # list.append is atomic

    seconds, latencies, errors = run_threads(threads, work)

    written = AuditEvent.objects.count() - before
    problems = [*errors[:5]]
    expected = threads * transactions * events
    if written != expected:
        problems.append(f"写入 {written} 条事件，应为 {expected} 条")
    if mixed:
        problems.append(f"{len(mixed)} 个事务的事件不在同一条链上")
    pairs = Counter(AuditEvent.objects.values_list("chain", "seq"))
    duplicates = sum(1 for n in pairs.values() if n > 1)
    if duplicates:
        problems.append(f"{duplicates} 个（链，序号）重复")
    audit = first_problem()
    if audit is not None:
        problems.append(f"审计链异常：{audit.describe()}")
    used = (
        AuditEvent.objects.filter(object_id__startswith=f"{count}-{repeat}-")
        .values("chain")
        .distinct()
        .count()
    )
    ordered = sorted(latencies)

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    return {
        "seconds": round(seconds, 3),
        "transactions": len(latencies),
        "events": written,
        "events_per_second": round(written / seconds, 1) if seconds else 0.0,
        "transactions_per_second": round(len(latencies) / seconds, 1) if seconds else 0.0,
        "latency_ms": {
            "median": ms(statistics.median(ordered)) if ordered else 0.0,
            "p95": ms(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]) if ordered else 0.0,
            "max": ms(ordered[-1]) if ordered else 0.0,
        },
        "chains_used": used,
        "problems": problems,
    }


if __name__ == "__main__":
    raise SystemExit(main())
