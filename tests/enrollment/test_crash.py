"""S17 crash safety with a real kill: ``huzhu import-roster`` on a few thousand rows is SIGKILLed
after its first chunks are committed (the test polls the batch's committed position), then run
again; every row ends up exactly once (one member, one enrollment), the position and the counts
agree, and the audit chain is intact.

Runs in subprocesses against a database of its own: a temporary SQLite file, or — when the suite
runs on PostgreSQL — a throwaway PostgreSQL database created and dropped here.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ROWS = 3000
BAD_ROWS = {7, 1500, 2999}  # 0-based positions written with a broken ID number
CHUNK = 100

SETUP = """
import sys
from datetime import date, timedelta
import django
django.setup()
from huzhu.core.ids import make_id_number
from huzhu.plans.services import activate_plan, import_plan
from tests import factories
from tests.enrollment.conftest import plan_text, row, xlsx
tree = factories.tree()
version = import_plan(acting_user=None, yaml_text=plan_text(2026))
activate_plan(acting_user=None, plan_version=version)
bad = {bad}
rows = []
for i in range({rows}):
    number = make_id_number("430102", date(1970, 1, 1) + timedelta(days=3 * i), 11)
    rows.append(row(name=f"职工{{i}}", id_number="43010219800101" if i in bad else number,
                    uscc=tree.unit_1.uscc))
open(sys.argv[1], "wb").write(xlsx(rows))
print(tree.grassroots_1.code)
"""


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, Callable[[str], list[Any]]]]:
    url = os.environ.get("HUZHU_DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base = url.rsplit("/", 1)[0]
        name = f"huzhu_crash_{os.getpid()}"
        with psycopg.connect(base + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')

        def query_pg(sql: str) -> list[Any]:
            with psycopg.connect(f"{base}/{name}", autocommit=True) as connection:
                return list(connection.execute(sql).fetchall())

        try:
            yield f"{base}/{name}", query_pg
        finally:
            with psycopg.connect(base + "/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = tmp_path / "crash.sqlite3"

    def query_sqlite(sql: str) -> list[Any]:
        connection = sqlite3.connect(path, timeout=30)
        try:
            return list(connection.execute(sql).fetchall())
        finally:
            connection.close()

    yield f"sqlite:///{path}", query_sqlite


def test_kill_mid_import_and_rerun_gives_every_row_exactly_once(
    tmp_path: Path, database: tuple[str, Callable[[str], list[Any]]]
) -> None:
    url, query = database
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "HUZHU_TESTING")
    }
    env.update(
        HUZHU_DATABASE_URL=url,
        HUZHU_DEMO="1",
        HUZHU_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="huzhu.settings",
        PYTHONPATH=str(REPO),
    )
    huzhu = [sys.executable, "-m", "huzhu"]
    subprocess.run([*huzhu, "migrate", "--quiet"], env=env, check=True, cwd=REPO, timeout=120)
    roster = tmp_path / "roster.xlsx"
    setup = subprocess.run(
        [sys.executable, "-c", SETUP.format(bad=sorted(BAD_ROWS), rows=ROWS), str(roster)],
        env=env,
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    union_code = setup.stdout.strip().splitlines()[-1]
    command = [
        *huzhu,
        "import-roster",
        str(roster),
        "--union",
        union_code,
        "--plan",
        "HUNAN-2026",
        "--chunk-size",
        str(CHUNK),
    ]

    first = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    position = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and first.poll() is None:
            try:
                rows = query("SELECT last_row_done FROM enrollment_enrollmentbatch")
            except Exception:  # the table may be locked or not there yet
                rows = []
            if rows and rows[0][0] >= 2 * CHUNK:  # at least two chunks committed
                position = rows[0][0]
                os.kill(first.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    status, done, enrolled = query(
        "SELECT status, last_row_done, enrolled_count FROM enrollment_enrollmentbatch"
    )[0]
    assert status == "confirming"
    assert 2 * CHUNK < done + 2 < ROWS  # killed mid-way
    committed = query("SELECT COUNT(*) FROM enrollment_enrollment")[0][0]
    assert committed == enrolled  # progress and rows committed together
    assert done >= position

    second = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert second.returncode == 3, second.stderr  # the bad rows are reported, the rest imported
    bad_lines = [line for line in second.stderr.splitlines() if "[身份证号码]" in line]
    assert [line.split()[1] for line in bad_lines] == [f"第{i + 2}行" for i in sorted(BAD_ROWS)]

    valid = ROWS - len(BAD_ROWS)
    assert query(
        "SELECT COUNT(*), COUNT(DISTINCT person_index), COUNT(DISTINCT row_number) "
        "FROM enrollment_enrollment"
    )[0] == (valid, valid, valid)
    assert query("SELECT COUNT(*), COUNT(DISTINCT id_number_index) FROM members_member")[0] == (
        valid,
        valid,
    )
    assert query(
        "SELECT status, enrolled_count, members_created, error_count "
        "FROM enrollment_enrollmentbatch"
    )[0] == ("awaiting_payment", valid, valid, 3)
    assert query("SELECT COUNT(*) FROM enrollment_enrollmentbatch")[0][0] == 1
    verify = subprocess.run(
        [*huzhu, "verify-audit"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0, verify.stderr
