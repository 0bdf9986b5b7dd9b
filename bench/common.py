"""Helpers shared by the benchmarks: machine facts for the JSON results, and PostgreSQL
administration (creating and dropping throwaway databases)."""

from __future__ import annotations

import os
import platform
import sqlite3
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
