"""Helpers shared by the benchmarks: machine facts for the JSON results, and PostgreSQL
administration (creating and dropping throwaway databases)."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """Cores, CPU model, platform, Python and SQLite versions, and how busy the machine was."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        # Other work on the machine slows a benchmark down: record how busy it was.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def postgres_admin(url: str, statement: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server's ``postgres`` database."""
    import psycopg

    with psycopg.connect(f"{url}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def run_threads(
    count: int, work: Callable[[int, list[float]], None]
) -> tuple[float, list[float], list[str]]:
    """``count`` threads, each with its own Django database connection (opened before the clock
    starts), released together by a barrier; ``work(index, latencies)`` appends the seconds of each
    timed operation. Returns the wall seconds from the release to the last thread's end, every
    latency, and the errors ("Type: message") of the threads that failed."""
    from django.db import connection

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count + 1)

    def worker(index: int) -> None:
        mine: list[float] = []
        try:
            connection.ensure_connection()
            barrier.wait()
            work(index, mine)
        except Exception as exc:
            barrier.abort()  # a thread that cannot start must not leave the others waiting
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in pool:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a failed thread's error is kept
        barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started, latencies, errors
