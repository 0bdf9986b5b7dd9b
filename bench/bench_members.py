"""Members at province scale: page latency with 1,000,000 members, on SQLite and PostgreSQL.

    python -m bench.bench_members [--members 1000000] [--databases sqlite,postgresql]
                                  [--requests 60] [--rebuild] [--keep-postgres]

For each database a child process (Django is configured once per process):

1. creates the database — an SQLite file under ``bench/data/`` (kept and reused while it holds the
   same number of members; ``--rebuild`` starts over) or a throwaway PostgreSQL database
   ``huzhu_bench_members`` (created here, dropped at the end unless ``--keep-postgres``) — and
   migrates it;
2. builds the demo organisation tree and accounts (``huzhu.demo.build_demo(members=0)``), then
   loads the members set-based: rows generated in Python in chunks (valid ID numbers, every ID
   really AES-256-GCM encrypted with its HMAC blind index and mask; phones and bank accounts from a
   pool of 2,000 encrypted values), written with ``executemany`` (SQLite) or ``COPY`` (PostgreSQL)
   — no ORM object per row, no audit event (this is a benchmark database); 5% get a hardship record;
3. measures through the whole Django stack (test ``Client``: middleware, session, auth, URL
   routing, view, selectors, template) as ``county_clerk`` (长沙市芙蓉区总工会, about an eighth of
   the province) and ``province_admin`` (everything):
   - *list*: ``GET /members/`` — page 1, newest first;
   - *search*: ``POST /members/ q=<ID number>`` and the redirect it answers
     (``GET /members/?idx=<blind index>``), i.e. everything the user waits for;
   - *api list*: ``GET /api/v1/members`` with a bearer token;
   and, side by side, the page's main member query exactly as Django generated it (captured from a
   request) run directly with ``connection.cursor()``.

Results: ``bench/results/members.json`` (median, p90, n, queries per request, SQL, query plans,
machine: cores, CPU, Python, Django, SQLite and PostgreSQL versions) and a table on stdout.
Goal: median < 30 ms for both pages.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.common import machine, postgres_admin

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS = BENCH_DIR / "results" / "members.json"
PG_DATABASE = "huzhu_bench_members"
GOAL_MS = 30.0
CHUNK = 20_000
POOL = 2_000
SEED = 20260101


# --- parent: one child process per database ------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_members", description=__doc__)
    parser.add_argument(
        "--members",
        type=int,
        default=int(os.environ.get("HUZHU_BENCH_MEMBERS", "1000000")),
        help="number of members (default 1,000,000 or $HUZHU_BENCH_MEMBERS)",
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=60, help="timed requests per page")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the SQLite file")
    parser.add_argument("--keep-postgres", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HUZHU_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="server URL without a database name",
    )
    parser.add_argument(
        "--no-candidates",
        action="store_true",
        help="skip the SQL-level measurement of the proposed list query",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _machine() -> dict[str, Any]:
    import django

    return {**machine(), "django": django.get_version()}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.worker:
        return _worker(args)
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "members",
        "members": args.members,
        "goal_median_ms": GOAL_MS,
        "requests_per_page": args.requests,
        "machine": _machine(),
        "databases": {},
    }
    status = 0
    for database in databases:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="huzhu.settings",
            HUZHU_DEMO="1",  # persistent keys under bench/data/var, second factor off
            HUZHU_VAR_DIR=str(DATA_DIR / "var"),
            HUZHU_LOG_LEVEL=os.environ.get("HUZHU_LOG_LEVEL", "WARNING"),
            PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        )
        env.pop("HUZHU_SECRET_KEY", None)
        env.pop("HUZHU_TESTING", None)
        if database == "sqlite":
            path = DATA_DIR / f"members-{args.members}.sqlite3"
            if args.rebuild:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            env["HUZHU_DATABASE_URL"] = f"sqlite:///{path}"
        elif database == "postgresql":
            try:
                postgres_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
                postgres_admin(args.postgres_url, f"CREATE DATABASE {PG_DATABASE}")
            except Exception as exc:  # no server: report and go on with the others
                print(f"PostgreSQL 不可用，跳过：{exc}", file=sys.stderr)
                report["databases"][database] = {"skipped": str(exc)}
                continue
            env["HUZHU_DATABASE_URL"] = f"{args.postgres_url}/{PG_DATABASE}"
        else:
            print(f"未知数据库：{database}", file=sys.stderr)
            return 2
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = Path(handle.name)
        command = [
            sys.executable,
            "-m",
            "bench.bench_members",
            "--worker",
            database,
            "--members",
            str(args.members),
            "--requests",
            str(args.requests),
            "--out",
            str(out),
            *(["--no-candidates"] if args.no_candidates else []),
        ]
        try:
            completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
            if completed.returncode == 0:
                report["databases"][database] = json.loads(out.read_text())
            else:
                status = 1
                report["databases"][database] = {"failed": completed.returncode}
        finally:
            out.unlink(missing_ok=True)
            if database == "postgresql" and not args.keep_postgres:
                postgres_admin(args.postgres_url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
    RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    _print_table(report)
    print(f"\n结果已写入 {RESULTS.relative_to(ROOT)}")
    return status


def _print_table(report: dict[str, Any]) -> None:
    print(
        f"\n职工 {report['members']:,} 人；每页 {report['requests_per_page']} 次请求；目标中位数 < "
        f"{report['goal_median_ms']:.0f} ms"
    )
    header = (
        f"{'database':<11}{'actor':<16}{'page':<11}{'median':>8}{'p90':>8}{'n':>5}"
        f"{'queries':>9}{'SQL med':>9}{'SQL p90':>9}  goal"
    )
    print(header)
    print("-" * len(header))
    for database, result in report["databases"].items():
        if "measurements" not in result:
            print(f"{database:<11}{json.dumps(result, ensure_ascii=False)}")
            continue
        for row in result["measurements"]:
            sql = row.get("sql") or {}
            print(
                f"{database:<11}{row['actor']:<16}{row['page']:<11}"
                f"{row['median_ms']:>8.2f}{row['p90_ms']:>8.2f}{row['n']:>5}"
                f"{row['queries_per_request']:>9}"
                f"{sql.get('median_ms', float('nan')):>9.3f}{sql.get('p90_ms', float('nan')):>9.3f}"
                f"  {'ok' if row['median_ms'] < report['goal_median_ms'] else 'MISSED'}"
            )
        for candidate in result.get("candidates", []):
            if "error" in candidate:
                print(f"{'':<11}{candidate['actor']:<16}proposal: {candidate['error']}")
                continue
            segment = candidate["scope_by_segment"]
            both = candidate["scope_by_segment_and_flags_by_ids"]
            print(
                f"{'':<11}{candidate['actor']:<16}{'proposal':<11}"
                f"{'SQL only':>16}{'':>14}{segment['median_ms']:>9.3f}{segment['p90_ms']:>9.3f}"
                f"  (+ flags by ids: {both['median_ms']:.3f})"
            )
        build = result.get("build", {})
        if build:
            print(
                f"{'':<11}build: {build.get('members_loaded', 0):,} members in "
                f"{build.get('seconds', 0):.1f} s ({build.get('rows_per_second', 0):,.0f}/s)"
                f"{' (reused)' if build.get('reused') else ''}; {result.get('server_version', '')}"
                f"; load average {result.get('load_average_before')} -> "
                f"{result.get('load_average_after')}"
            )


# --- child: build and measure on one database -----------------------------------------------
def _worker(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    result: dict[str, Any] = {"database": args.worker}
    result["server_version"] = _server_version()
    result["build"] = _build(args.members)
    result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    result["measurements"] = _measure(args.requests, result["build"]["samples"])
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    del result["build"]["samples"]
    if not args.no_candidates:
        result["candidates"] = _candidates(args.requests, result["measurements"])
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, default=str))
    return 0


def _server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            return f"SQLite {cursor.fetchone()[0]}"
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0]}"


def _person_name(rng: random.Random, male: bool) -> str:
    from huzhu.demo import _FEMALE_CHARS, _MALE_CHARS, _SURNAMES

    chars = _MALE_CHARS if male else _FEMALE_CHARS
    given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.7 else "")
    return rng.choice(_SURNAMES) + given


def _build(total: int) -> dict[str, Any]:
    """Organisations and accounts through the demo; members set-based. Reuses a complete DB."""
    from django.db import connection

    from huzhu.demo import build_demo
    from huzhu.members.models import Member

    started = time.perf_counter()
    build_demo(members=0)
    existing = Member.objects.count()
    if existing == total:
        samples = _samples_from_database()
        return {
            "reused": True,
            "members_loaded": 0,
            "seconds": round(time.perf_counter() - started, 1),
            "rows_per_second": 0,
            "samples": samples,
        }
    if existing:
        raise SystemExit(f"数据库已有 {existing} 名职工（需要 {total}）：请加 --rebuild")
    samples = _load_members(total)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seconds = time.perf_counter() - started
    return {
        "reused": False,
        "members_loaded": total,
        "seconds": round(seconds, 1),
        "rows_per_second": round(total / seconds),
        "samples": samples,
    }


def _samples_from_database() -> list[tuple[str, str]]:
    """(ID number, union path) of random members, decrypted (a reused database)."""
    from huzhu.members.models import Member

    rng = random.Random(SEED + 7)
    top = Member.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    ids = [rng.randint(1, top) for _ in range(3000)]
    rows = Member.objects.filter(pk__in=ids).only("id_number_enc", "union_path")
    return [(str(m.id_number_enc), m.union_path) for m in rows]


def _pool(rng: random.Random) -> tuple[list[tuple[bytes, str, str]], list[tuple[bytes, str, str]]]:
    """Encrypted phones (ciphertext, index, mask) and bank accounts (ciphertext, mask, bank)."""
    from huzhu.core.crypto import encrypt
    from huzhu.core.ids import mask_bank_account, mask_phone
    from huzhu.demo import _BANKS, _PHONE_PREFIXES, _luhn_complete
    from huzhu.members.services import phone_index

    phones = []
    accounts = []
    for _ in range(POOL):
        phone = rng.choice(_PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        phones.append(
            (encrypt(phone, "members.Member.phone_enc"), phone_index(phone), mask_phone(phone))
        )
        bin_, bank = rng.choice(_BANKS)
        account = _luhn_complete(bin_ + "".join(str(rng.randrange(10)) for _ in range(12)))
        accounts.append(
            (encrypt(account, "members.Member.bank_account_enc"), mask_bank_account(account), bank)
        )
    return phones, accounts


def _load_members(total: int) -> list[tuple[str, str]]:
    from django.db import connection, transaction
    from django.utils import timezone

    from huzhu.core.crypto import encrypt
    from huzhu.core.ids import (
        RetirementCategory,
        make_id_number,
        mask_id_number,
        statutory_retirement_date,
    )
    from huzhu.demo import BIRTH_REGIONS, COUNTIES, _allocate
    from huzhu.members.models import HardshipRecord, Member
    from huzhu.members.services import id_number_index
    from huzhu.orgs.models import Union, Unit

    rng = random.Random(SEED)
    phones, accounts = _pool(rng)
    units = list(Unit.objects.select_related("union").order_by("pk"))
    federation = Union.objects.get(kind="federation")
    slots: list[tuple[int, str, int | None, str]] = [
        (u.union_id, u.union.path, u.pk, u.union.region_code) for u in units
    ]
    slots.append((federation.pk, federation.path, None, federation.region_code))
    weights = [rng.uniform(0.3, 3.0) for _ in units] + [len(units) * 1.65 * 0.05]
    counts = _allocate(total, weights)
    city_regions = {city: tuple(c for c, _ in counties) for city, counties in COUNTIES.items()}
    city_regions.update(BIRTH_REGIONS)

    fields = [f for f in Member._meta.concrete_fields if not f.primary_key]
    columns = ["id"] + [f.column for f in fields]
    constant: dict[str, Any] = {}
    now = timezone.now()
    for f in fields:
        if f.has_default():
            constant[f.attname] = f.get_db_prep_save(f.get_default(), connection)
    constant["created_at"] = constant["updated_at"] = connection.ops.adapt_datetimefield_value(now)
    constant["is_active"] = True
    adapt_date = connection.ops.adapt_datefield_value
    order = [f.attname for f in fields]

    start_id = (Member.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    numbers: set[str] = set()
    samples: list[tuple[str, str]] = []
    hardship_members: list[int] = []
    reference = date(2026, 1, 1)
    next_id = start_id

    def rows() -> Iterator[tuple[Any, ...]]:
        nonlocal next_id
        for (union_id, path, unit_id, region), count in zip(slots, counts, strict=True):
            regions = city_regions.get(region[:4] + "00", (region,))
            for _ in range(count):
                male = rng.random() < 0.56
                if male:
                    category = RetirementCategory.MALE
                elif rng.random() < 0.4:
                    category = RetirementCategory.FEMALE50
                else:
                    category = RetirementCategory.FEMALE55
                while True:
                    birth = reference - timedelta(days=rng.randint(18 * 366, 59 * 365))
                    retirement = statutory_retirement_date(birth, category)
                    if retirement > reference:
                        break
                while True:
                    sequence = rng.randrange(500) * 2 + (1 if male else 0)
                    number = make_id_number(rng.choice(regions), birth, sequence)
                    if number not in numbers:
                        numbers.add(number)
                        break
                values = dict(constant)
                values.update(
                    name=_person_name(rng, male),
                    id_number_enc=encrypt(number, "members.Member.id_number_enc"),
                    id_number_index=id_number_index(number),
                    id_number_masked=mask_id_number(number),
                    birth_date=adapt_date(birth),
                    sex="male" if male else "female",
                    union_id=union_id,
                    union_path=path,
                    unit_id=unit_id,
                    employment_type="new_employment"
                    if unit_id is None
                    else rng.choice(
                        (
                            "contract",
                            "contract",
                            "contract",
                            "contract",
                            "established",
                            "dispatched",
                        )
                    ),
                    retirement_category=category.value,
                    retirement_date=adapt_date(retirement),
                )
                if rng.random() < 0.95:
                    blob, index, masked = rng.choice(phones)
                    values.update(phone_enc=blob, phone_index=index, phone_masked=masked)
                else:
                    values.update(phone_enc=None, phone_index="", phone_masked="")
                if rng.random() < 0.85:
                    blob, masked, bank = rng.choice(accounts)
                    values.update(bank_account_enc=blob, bank_account_masked=masked, bank_name=bank)
                else:
                    values.update(bank_account_enc=None, bank_account_masked="", bank_name="")
                if rng.random() < 0.05:
                    hardship_members.append(next_id)
                if len(samples) < 3000 and rng.random() < 3000 / max(total, 1) * 1.2:
                    samples.append((number, path))
                yield (next_id, *[values[a] for a in order])
                next_id += 1

    table = Member._meta.db_table
    generator = rows()
    written = 0
    while True:
        chunk = [row for _, row in zip(range(CHUNK), generator, strict=False)]
        if not chunk:
            break
        with transaction.atomic():
            _insert(table, columns, chunk)
        written += len(chunk)
        print(f"  {written:,}/{total:,}", end="\r", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    numbers.clear()

    hardship_fields = [f for f in HardshipRecord._meta.concrete_fields if not f.primary_key]
    hardship_rows = []
    for member_id in hardship_members:
        start = (
            date(2026, 1, 1)
            if rng.random() < 0.7
            else date(2026, 3, 1) + timedelta(days=rng.randint(0, 200))
        )
        values = {
            "member_id": member_id,
            "source": rng.choice(("civil_affairs", "union_file")),
            "valid_from": adapt_date(start),
            "valid_to": adapt_date(date(2026, 12, 31)),
            "evidence": "民政低收入人口动态监测名单",
            "recorded_by_id": None,
            "created_at": constant["created_at"],
        }
        hardship_rows.append(tuple(values[f.attname] for f in hardship_fields))
    with transaction.atomic():
        _insert(HardshipRecord._meta.db_table, [f.column for f in hardship_fields], hardship_rows)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT MAX(id) FROM {table}))"
                )
    return samples


def _insert(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Set-based insert: ``COPY`` on PostgreSQL, ``executemany`` on SQLite."""
    from django.db import connection

    if not rows:
        return
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", rows)  # noqa: S608


def _timed(
    action: Callable[[], Any], count: int, warmup: int = 3, budget_seconds: float = 30.0
) -> list[float]:
    """``count`` timed runs after a warm-up; a slow page stops after ``budget_seconds`` (at least
    5 runs), so that a miss is measured without taking an hour."""
    for _ in range(warmup):
        action()
    times: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    for _ in range(count):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
        if len(times) >= 5 and time.perf_counter() > deadline:
            break
    return times


def _stats(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(p90, 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "min_ms": round(ordered[0], 3),
        "n": len(ordered),
    }


def _main_query(captured: list[dict[str, Any]]) -> str:
    """The page's member query: the ordered, limited SELECT from the member table."""
    for query in captured:
        sql = str(query["sql"])
        if (
            sql.lstrip().startswith("SELECT")
            and 'FROM "members_member"' in sql
            and "ORDER BY" in sql
            and "LIMIT" in sql
        ):
            return sql
    raise RuntimeError("the page ran no member query")


def _explain(sql: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            return [str(row[-1]) for row in cursor.fetchall()]
        cursor.execute("EXPLAIN " + sql)
        return [str(row[0]) for row in cursor.fetchall()]


def _sql_timing(sql: str, count: int) -> dict[str, Any]:
    from django.db import connection

    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            cursor.fetchall()

    return {**_stats(_timed(run, count)), "query": sql, "plan": _explain(sql)}


def _measure(count: int, samples: list[tuple[str, str]]) -> list[dict[str, Any]]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from huzhu.core.ids import mask_id_number
    from huzhu.orgs.models import User
    from huzhu.orgs.services import create_api_token

    rng = random.Random(SEED + 3)
    results: list[dict[str, Any]] = []
    for username in ("county_clerk", "province_admin"):
        user = User.objects.select_related("organisation").get(username=username)
        scope = user.organisation.path  # type: ignore[union-attr]
        mine = [number for number, path in samples if path.startswith(scope)]
        if not mine:
            raise RuntimeError(f"no sample member in the scope of {username}")
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        token = create_api_token(acting_user=None, user=user, days=1)

        def list_page(client: Client = client) -> Any:
            response = client.get("/members/")
            assert response.status_code == 200, response.status_code
            return response

        def search(client: Client = client, mine: list[str] = mine) -> Any:
            number = rng.choice(mine)
            response = client.post("/members/", {"q": number}, follow=True)
            assert response.status_code == 200, response.status_code
            assert mask_id_number(number).encode() in response.content, "member not found"
            return response

        def api_list(client: Client = client, token: str = token) -> Any:
            response = client.get("/api/v1/members", HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 200, response.status_code
            return response

        for page, action in (("list", list_page), ("search", search), ("api list", api_list)):
            with CaptureQueriesContext(connection) as captured:
                action()
            # Read now: the log is cleared at the next request once the context has closed.
            queries = list(captured.captured_queries)
            row: dict[str, Any] = {
                "actor": username,
                "organisation": user.organisation.name,  # type: ignore[union-attr]
                "page": page,
                "queries_per_request": len(queries),
                **_stats(_timed(action, count)),
            }
            try:
                row["sql"] = _sql_timing(_main_query(queries), count)
            except RuntimeError as exc:
                row["sql"] = {"error": str(exc)}
            results.append(row)
            print(
                f"  {username:<15}{page:<9}{row['median_ms']:8.2f} ms (p90 {row['p90_ms']:.2f})",
                file=sys.stderr,
                flush=True,
            )
    return results


# --- a proposal, measured at the SQL level -----------------------------------------------------
_SCOPE_RE = re.compile(
    r'"members_member"\."union_path" >= \'([^\']*)\'(?:::\w+)? AND '
    r'"members_member"\."union_path" < \'[^\']*\'(?:::\w+)?'
)
_HARDSHIP_RE = re.compile(r'EXISTS\(SELECT 1 AS "a" FROM "members_hardshiprecord".*?LIMIT 1\) AS')


def _candidates(count: int, measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list page's query as it could be (not what the views run today), timed in SQL:

    * scope by the path segment at the actor's depth — ``substr(union_path, 9*depth + 1, 8) =
      '<the actor organisation's id, 8 digits>'`` (equivalently a denormalised ancestor-id column
      per depth) — instead of the ``union_path`` range;
    * order newest first by ``(created_at, id)``, served by an index on ``(segment, created_at,
      id)``: page 1 then reads 21 index entries. Ordering by ``id`` alone lets PostgreSQL pick a
      backward primary-key scan whose estimate assumes a subtree's members are spread evenly over
      the ids — roster imports cluster them, so it walks past every other organisation's members
      — and makes SQLite sort the whole subtree;
    * the hardship flag of the page's rows by a second query on their ids instead of a correlated
      EXISTS (PostgreSQL turns it into a hashed subplan that reads the whole hardship table).

    The indexes are created for the measurement and dropped afterwards.
    """
    from django.db import connection
    from django.utils import timezone

    from huzhu.orgs.models import User

    today = timezone.localdate().isoformat()
    rows: list[dict[str, Any]] = []
    created: list[str] = []
    for measurement in measurements:
        if measurement["page"] != "list" or "query" not in measurement.get("sql", {}):
            continue
        user = User.objects.select_related("organisation").get(username=measurement["actor"])
        organisation = user.organisation
        assert organisation is not None
        depth = organisation.depth
        start = 9 * depth + 1
        index = f"bench_member_segment_{depth}"
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON members_member "
                f"(substr(union_path, {start}, 8), created_at, id)"
            )
            cursor.execute("ANALYZE members_member")
        created.append(index)
        segment = f'substr("members_member"."union_path", {start}, 8) = \'{organisation.pk:08d}\''
        original = measurement["sql"]["query"]
        scoped = _SCOPE_RE.sub(segment, original, count=1).replace(
            'ORDER BY "members_member"."id" DESC',
            'ORDER BY "members_member"."created_at" DESC, "members_member"."id" DESC',
        )
        if scoped == original or 'created_at" DESC' not in scoped:
            rows.append({"actor": measurement["actor"], "error": "scope filter not found"})
            continue
        without_exists = _HARDSHIP_RE.sub("0 AS", scoped, count=1)

        def page_then_flags(sql: str = without_exists) -> None:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                ids = [row[0] for row in cursor.fetchall()]
                if ids:
                    marks = ", ".join(["%s"] * len(ids))
                    cursor.execute(
                        "SELECT DISTINCT member_id FROM members_hardshiprecord "  # noqa: S608
                        f"WHERE member_id IN ({marks}) AND valid_from <= %s "
                        "AND (valid_to IS NULL OR valid_to >= %s)",
                        [*ids, today, today],
                    )
                    cursor.fetchall()

        rows.append(
            {
                "actor": measurement["actor"],
                "page": "list",
                "index": f"{index} (substr(union_path, {start}, 8), created_at, id)",
                "scope_by_segment": _sql_timing(scoped, count),
                "scope_by_segment_and_flags_by_ids": {
                    **_stats(_timed(page_then_flags, count)),
                    "query": without_exists,
                    "plan": _explain(without_exists),
                },
            }
        )
    with connection.cursor() as cursor:
        for index in dict.fromkeys(created):
            cursor.execute(f"DROP INDEX IF EXISTS {index}")
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
