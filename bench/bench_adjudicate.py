"""Benchmark of ``huzhu adjudicate``: batch core, end-to-end CSV→CSV, single-record path.

    python -m bench.bench_adjudicate [--rows 1000000] [--runs 3] [--single 50000]

Generates the inputs with ``bench.gen_settlements`` (fixed seed) into a temporary directory,
then, side by side in one run:
- the batch core (``huzhu.rules.batch.compute`` on validated, ordered tables), median of runs;
- end to end, ``python -m huzhu adjudicate`` in a subprocess (CSV in, CSV out), median of runs,
  with the peak RSS of the child (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``);
- the single-record path (``engine.run_sequential``: ``settle``/``cancel`` one record at a time,
  with explanations as the real-time API builds them, and without) on the first ``--single``
  records in processing order, and the batch path on the same subset, which must agree.
Writes ``bench/results/adjudicate.json``. Goals (ARCHITECTURE/brief): core ≥ 1,000,000 records/s,
end to end ≥ 300,000 records/s on 1,000,000 rows, peak memory < 2 GiB, batch ≥ 20× single.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from bench.gen_settlements import generate
from huzhu.rules import adjudicate, batch
from huzhu.rules.engine import results_as_rows, run_sequential
from huzhu.rules.plan import load_plan_file

REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "huzhu" / "rules" / "plans" / "hunan-2026.yaml"
RESULTS = REPO / "bench" / "results" / "adjudicate.json"


def _timed(function: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process and its threads, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description="huzhu adjudicate 基准测试")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    members_count = args.members or max(1, args.rows // 5)
    plan, errors = load_plan_file(PLAN)
    assert plan is not None, errors
    report: dict[str, Any] = {
        "rows": args.rows,
        "members": members_count,
        "runs": args.runs,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "polars": pl.__version__,
            "load_average_before": _load_average(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="huzhu-bench-") as directory:
        folder = Path(directory)
        wall, _, (members_path, settlements_path) = _timed(
            lambda: generate(folder, args.rows, members_count)
        )
        report["generate_seconds"] = round(wall, 3)
        report["settlements_bytes"] = settlements_path.stat().st_size
        print(
            f"数据已生成：{args.rows} 行结算、{members_count} 名职工（{wall:.1f} 秒）", flush=True
        )

        # ----- batch core -----
        members = adjudicate.read_members(str(members_path))
        settlements = adjudicate.read_settlements(str(settlements_path))
        core_wall, core_cpu = [], []
        for _ in range(args.runs):
            wall, cpu, _result = _timed(
                lambda: batch.compute(plan, settlements.table, members.table)
            )
            core_wall.append(wall)
            core_cpu.append(cpu)
        core_median = statistics.median(core_wall)
        report["core"] = {
            "seconds": [round(v, 3) for v in core_wall],
            "cpu_seconds": [round(v, 3) for v in core_cpu],
            "median_seconds": round(core_median, 3),
            "records_per_second": round(args.rows / core_median),
            "records_per_cpu_second": round(args.rows / statistics.median(core_cpu)),
        }
        print(
            f"批量核心：中位数 {core_median:.3f} 秒，{args.rows / core_median:,.0f} 条/秒",
            flush=True,
        )

        # ----- end to end, in a subprocess -----
        out = folder / "results.csv"
        command = [
            sys.executable,
            "-m",
            "huzhu",
            "adjudicate",
            "--plan",
            str(PLAN),
            "--members",
            str(members_path),
            "--settlements",
            str(settlements_path),
            "--out",
            str(out),
        ]
        # Like an installed command: bytecode cached (this workplace sets PYTHONDONTWRITEBYTECODE,
        # which would make every run compile Polars from source); one untimed warm-up run.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run(command, cwd=REPO, capture_output=True, env=env, check=False)
        e2e = []
        e2e_cpu = []
        statuses = []
        for _ in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            completed = subprocess.run(
                command, cwd=REPO, capture_output=True, text=True, env=env, check=False
            )
            e2e.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            e2e_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            statuses.append(completed.returncode)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        e2e_median = statistics.median(e2e)
        report["end_to_end"] = {
            "command": "python -m huzhu adjudicate",
            "seconds": [round(v, 3) for v in e2e],
            # CPU of the child, all threads: with other work on the machine the wall time
            # measures the machine as much as the program.
            "cpu_seconds": [round(v, 3) for v in e2e_cpu],
            "median_seconds": round(e2e_median, 3),
            "records_per_second": round(args.rows / e2e_median),
            "records_per_cpu_second": round(args.rows / statistics.median(e2e_cpu)),
            "exit_statuses": statuses,
            "invalid_rows_reported": completed.stderr.count("\n"),
            "peak_rss_mib": round(peak_kib / 1024, 1),
        }
        print(
            f"端到端：中位数 {e2e_median:.3f} 秒，{args.rows / e2e_median:,.0f} 条/秒"
            f"（CPU 中位数 {statistics.median(e2e_cpu):.2f} 秒），"
            f"峰值内存 {peak_kib / 1024:.0f} MiB",
            flush=True,
        )

        # ----- single-record path on the first records, and the batch on the same subset -----
        count = min(args.single, settlements.table.height)
        subset = adjudicate.SettlementsRead(
            table=batch.SettlementTable(settlements.table.frame.head(count)),
            output=settlements.output.head(count),
            errors=[],
            fits_int64=True,
            max_amount=settlements.max_amount,
            total_base=settlements.total_base,
            raw=settlements.raw,
            order=settlements.order[:count],
            path=settlements.path,
        )
        infos, rows = adjudicate.sequential_inputs(members.table, subset)
        single_wall, single_cpu, single = _timed(
            lambda: run_sequential(plan, infos, rows, with_explanation=True)
        )
        bare_wall, bare_cpu, bare = _timed(lambda: run_sequential(plan, infos, rows))
        batch_wall, _, vectorized = _timed(lambda: batch.compute(plan, subset.table, members.table))
        agree = [row[1:] for row in vectorized.rows()] == [
            row[1:] for row in results_as_rows(single)
        ] and results_as_rows(single) == results_as_rows(bare)
        single_rate = count / single_wall
        bare_rate = count / bare_wall
        report["single_record"] = {
            "records": count,
            "seconds_with_explanations": round(single_wall, 3),
            "records_per_second_with_explanations": round(single_rate),
            "seconds_without_explanations": round(bare_wall, 3),
            "records_per_second_without_explanations": round(bare_rate),
            "records_per_cpu_second_with_explanations": round(count / single_cpu),
            "records_per_cpu_second_without_explanations": round(count / bare_cpu),
            "batch_seconds_same_subset": round(batch_wall, 3),
            "batch_and_single_agree": agree,
        }
        report["ratio_batch_core_to_single"] = {
            "with_explanations": round(report["core"]["records_per_second"] / single_rate, 1),
            "without_explanations": round(report["core"]["records_per_second"] / bare_rate, 1),
        }
        print(
            f"单条路径：{single_rate:,.0f} 条/秒（含解释），{bare_rate:,.0f} 条/秒（不含）；"
            f"批量/单条 = {report['ratio_batch_core_to_single']['with_explanations']}×；"
            f"结果一致：{agree}",
            flush=True,
        )
    report["machine"]["load_average_after"] = _load_average()
    report["goals_met"] = {
        "core_1m_per_second": report["core"]["records_per_second"] >= 1_000_000,
        "end_to_end_300k_per_second": report["end_to_end"]["records_per_second"] >= 300_000,
        "peak_memory_below_2_gib": report["end_to_end"]["peak_rss_mib"] < 2048,
        "batch_20x_single": report["ratio_batch_core_to_single"]["without_explanations"] >= 20,
        "paths_agree": report["single_record"]["batch_and_single_agree"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"结果写入 {args.out}")
    return 0 if report["single_record"]["batch_and_single_agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
