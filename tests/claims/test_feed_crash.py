"""S17 crash safety of the batch feed with a real kill: ``huzhu settlement import`` on a file large
enough to run as a job in chunks is SIGKILLed after its first chunks are committed (the test polls
the committed import position), then run again; every record ends up exactly once (one settlement,
one outcome line per record), the position and the rows agree, and the books and the audit chain
are intact.

Runs in subprocesses against a database of its own, as tests/enrollment/test_crash.py does: a
temporary SQLite file, or a throwaway PostgreSQL database when the suite runs on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.enrollment.test_crash import database  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[2]
RECORDS = 2100  # over huzhu.claims.feed.BACKGROUND_THRESHOLD: a job in committed chunks
PEOPLE = 30
CHUNK = 50

SETUP = """
import sys
from datetime import date
import django
django.setup()
from huzhu.members.services import grant_consent
from tests import factories
from tests.claims.conftest import cover, make_partner, settle_body
from tests.claims.test_feed_support import csv_bytes, total_of
from tests.enrollment.conftest import active_plan
tree = factories.tree()
plan = active_plan(2026)
partner = make_partner(tree.city_a)
people = []
for i in range({people}):
    number = factories.id_number(date(1970 + i, 1, 1))
    member = factories.member(tree.grassroots_1, tree.unit_1, number=number, name=f"职工{{i}}")
    cover(member, plan)
    grant_consent(acting_user=None, member=member)
    people.append(number)
rows = [
    settle_body(
        people[i % len(people)],
        f"C{{i:05d}}",
        base="100.00",
        setl_time=f"2026-03-{{1 + i % 28:02d}} 10:00:00",
    )
    for i in range({records})
]
open(sys.argv[1], "wb").write(csv_bytes(rows))
print(partner.partner_id, len(rows), total_of(rows))
"""


def test_kill_mid_import_and_rerun_gives_every_record_exactly_once(
    tmp_path: Path,
    database: tuple[str, Callable[[str], list[Any]]],  # noqa: F811
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
    subprocess.run([*huzhu, "migrate", "--quiet"], env=env, check=True, cwd=REPO, timeout=180)
    path = tmp_path / "settlements.csv"
    setup = subprocess.run(
        [sys.executable, "-c", SETUP.format(people=PEOPLE, records=RECORDS), str(path)],
        env=env,
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    partner_id, count, total = setup.stdout.strip().splitlines()[-1].split()
    assert int(count) == RECORDS
    command = [
        *huzhu,
        "settlement",
        "import",
        str(path),
        "--partner",
        partner_id,
        "--count",
        count,
        "--total",
        total,
        "--chunk-size",
        str(CHUNK),
    ]

    first = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and first.poll() is None:
            try:
                rows = query("SELECT position FROM claims_settlementfileimport")
            except Exception:  # the table may be locked
                rows = []
            if rows and rows[0][0] >= 2 * CHUNK:  # at least two chunks committed
                os.kill(first.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL, "the import ended before it could be killed"
    position = query("SELECT position FROM claims_settlementfileimport")[0][0]
    assert 2 * CHUNK <= position < RECORDS  # killed mid-way
    assert position % CHUNK == 0  # whole chunks only
    assert query("SELECT status FROM claims_settlementfile")[0][0] == "importing"
    # Progress and rows committed together.
    assert query("SELECT COUNT(*) FROM claims_settlementfileline")[0][0] == position
    assert query("SELECT COUNT(*) FROM claims_settlement")[0][0] == position

    second = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert query(
        "SELECT COUNT(*), COUNT(DISTINCT setl_id), COUNT(DISTINCT file_id) FROM claims_settlement"
    )[0] == (RECORDS, RECORDS, 1)
    assert query(
        "SELECT COUNT(*), COUNT(DISTINCT position), MIN(position), MAX(position) "
        "FROM claims_settlementfileline"
    )[0] == (RECORDS, RECORDS, 1, RECORDS)
    # No record was seen as a repeat of itself: the resumed run started after the position.
    assert (
        query("SELECT COUNT(*) FROM claims_settlementfileline WHERE outcome = 'duplicate'")[0][0]
        == 0
    )
    assert query("SELECT COUNT(*), COUNT(DISTINCT record_key) FROM claims_claim")[0] == (
        RECORDS,
        RECORDS,
    )
    assert query("SELECT status, record_count FROM claims_settlementfile") == [
        ("accepted", RECORDS)
    ]
    assert f"records={RECORDS}" in second.stdout
    # The same file a third time: nothing new.
    third = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0 and "未重复导入" in third.stderr
    assert query("SELECT COUNT(*) FROM claims_settlement")[0][0] == RECORDS
    for check in ("verify-ledger", "verify-audit"):
        verify = subprocess.run(
            [*huzhu, check], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
        )
        assert verify.returncode == 0, verify.stderr
