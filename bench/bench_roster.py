"""Roster import benchmark (``python -m bench.bench_roster`` or ``main()``; ``make bench``).

A synthetic roster of 100,000 rows (fixed seed, written into a temporary directory, never
committed; ~0.5% invalid rows, a third of the people with a phone and bank account, 5% hardship,
80% consent) is imported end to end — read, validate every row, write members, hardship, consents
and enrollments — by huzhu's own pipeline (the same services the CLI and the UI use:
``create_batch`` → ``attach_roster`` → ``validate_batch`` → ``confirm_batch``) and, side by side
in the same run, by django-import-export (a ``ModelResource`` for ``Member`` computing the same
encrypted / blind-index / masked columns in ``before_import_row`` and writing the enrollment in
``after_save_instance``) into the same tables, on SQLite and on PostgreSQL (a throwaway database
created and dropped here). Each import runs in a fresh subprocess on a fresh database; rows/s is
end to end (file bytes in → committed rows), peak memory is the subprocess's ``ru_maxrss``.

django-import-export is slow enough that it runs on the first ``--iex-rows`` rows of the same file
(default 10,000); its rows/s is what is compared. Results: ``bench/results/roster.json``.

Goals: ≥ 20,000 rows/s, ≥ 10× django-import-export, < 1 GiB peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "roster.json"
SEED = 20260101
GOAL_ROWS_PER_S = 20_000
GOAL_SPEEDUP = 10
GOAL_MEMORY_BYTES = 1 << 30
PG_BASE = os.environ.get("HUZHU_BENCH_PG", "postgres://postgres@127.0.0.1:5432")

HEADERS = [
    "姓名",
    "身份证号码",
    "手机号码",
    "单位统一社会信用代码",
    "用工形式",
    "退休类别",
    "困难职工",
    "医保数据授权",
    "银行账号",
    "开户银行",
]
UNITS = 20


# --- the roster file ------------------------------------------------------------------------------
def _id_number(birth: date, sequence: int) -> str:
    from huzhu.core.ids import make_id_number

    return make_id_number("430102", birth, sequence)


def write_roster(path: Path, rows: int, usccs: list[str]) -> int:
    """The synthetic roster; returns the number of rows that should be invalid."""
    from openpyxl import Workbook

    rng = random.Random(SEED)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("花名册")
    sheet.append(HEADERS)
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"
    employment = ["合同"] * 6 + ["在编"] * 2 + ["劳务派遣", "新就业形态"]
    invalid = 0
    start = date(1968, 1, 1)
    for i in range(rows):
        male = rng.random() < 0.55
        if male:
            birth = start + timedelta(days=(i * 7) % 12000)  # 1968-01 .. 2000-11
        else:  # women: born 1971 or later, so that both categories are within the age rule
            birth = start + timedelta(days=1100 + (i * 7) % 10900)
        sequence = (i // 1715) * 2 % 998 + (1 if male else 2)
        number = _id_number(birth, sequence)
        category = "男" if male else rng.choice(["女50", "女55", "女55"])
        if not male and birth < date(1976, 1, 1) and category == "女50":
            category = "女55"  # 女50 born before 1976 are past the age limit: keep valid
        if i % 200 == 199:  # 0.5% invalid: broken check character
            number = number[:17] + ("0" if number[17] != "0" else "1")
            invalid += 1
        has_contact = rng.random() < 0.33
        sheet.append(
            [
                rng.choice(surnames)
                + rng.choice(given)
                + (rng.choice(given) if rng.random() < 0.5 else ""),
                number,
                f"13{rng.randrange(10**9):09d}" if has_contact else "",
                usccs[i % len(usccs)],
                rng.choice(employment),
                category,
                "是" if rng.random() < 0.05 else "否",
                "是" if rng.random() < 0.8 else "",
                f"62170028{rng.randrange(10**11):011d}" if has_contact else "",
                "中国建设银行" if has_contact else "",
            ]
        )
    workbook.save(path)
    return invalid


# --- one import in a subprocess ------------------------------------------------------------------
def _setup_database() -> dict[str, Any]:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from huzhu.orgs.services import create_union, create_unit
    from huzhu.plans.services import activate_plan, import_plan

    plan_text = (REPO / "huzhu/rules/plans/hunan-2026.yaml").read_text(encoding="utf-8")
    version = import_plan(acting_user=None, yaml_text=plan_text)
    activate_plan(acting_user=None, plan_version=version)
    from huzhu.core.ids import make_uscc

    province = create_union(
        acting_user=None, parent=None, name="湖南省总工会", kind="provincial", region_code="430000"
    )
    city = create_union(
        acting_user=None, parent=province, name="长沙市总工会", kind="city", region_code="430100"
    )
    county = create_union(
        acting_user=None, parent=city, name="芙蓉区总工会", kind="county", region_code="430102"
    )
    grassroots = create_union(
        acting_user=None,
        parent=county,
        name="某集团工会",
        kind="grassroots",
        uscc=make_uscc("81430100MA4L0001"[:17].ljust(17, "0")),
    )
    for n in range(UNITS):
        create_unit(
            acting_user=None,
            union=grassroots,
            name=f"某集团第{n + 1}公司",
            uscc=make_uscc(f"91430100MA{n:07d}"),
        )
    return {"union": grassroots, "plan": version}


def _ours(path: Path, rows: int) -> dict[str, Any]:
    from huzhu.enrollment import services
    from huzhu.enrollment.models import Enrollment
    from huzhu.members.models import Member

    world = _setup_database()
    content_start = time.perf_counter()
    content = path.read_bytes()
    batch = services.create_batch(
        acting_user=None,
        union=world["union"],
        plan_year=2026,
        plan_version=world["plan"],
        today=date(2025, 12, 1),
    )
    services.attach_roster(acting_user=None, batch=batch, file_name=path.name, content=content)
    services.validate_batch(batch=batch, today=date(2025, 12, 1))
    batch = services.confirm_batch(
        acting_user=None, batch=batch, accept_invalid_rows=True, today=date(2025, 12, 1)
    )
    seconds = time.perf_counter() - content_start
    return {
        "seconds": seconds,
        "rows": rows,
        "enrolled": Enrollment.objects.count(),
        "members": Member.objects.count(),
        "invalid_rows": batch.error_count,
    }


def _iex(path: Path, rows: int) -> dict[str, Any]:
    """django-import-export importing the same file into the same tables, as fairly as its
    documented extension points allow: ``before_import_row`` validates the row and computes the
    encrypted, blind-index and masked columns; units are looked up once into a dict; the
    enrollment is written in ``after_save_instance``; bulk mode is off because the row-level
    validation and the enrollment need saved instances (``use_bulk`` skips ``save`` hooks)."""
    import tablib
    from import_export import fields, resources

    from huzhu.core.ids import (
        mask_bank_account,
        mask_id_number,
        mask_phone,
        parse_id_number,
        statutory_retirement_date,
        validate_bank_account,
        validate_mobile,
    )
    from huzhu.enrollment.models import Enrollment, EnrollmentBatch
    from huzhu.members.models import Member
    from huzhu.members.services import id_number_index, phone_index
    from huzhu.orgs.models import Unit

    world = _setup_database()
    union, plan = world["union"], world["plan"]
    batch = EnrollmentBatch.objects.create(
        union=union, union_path=union.path, plan_version=plan, plan_year=2026, status="confirming"
    )
    units = {u.uscc: u for u in Unit.objects.all()}
    employment = {
        "在编": "established",
        "合同": "contract",
        "劳务派遣": "dispatched",
        "新就业形态": "new_employment",
    }
    categories = {"男": "male", "女50": "female50", "女55": "female55"}

    class MemberResource(resources.ModelResource):
        name = fields.Field(attribute="name", column_name="姓名")
        id_number_index = fields.Field(attribute="id_number_index", column_name="id_number_index")

        class Meta:
            model = Member
            import_id_fields = ("id_number_index",)
            fields = ("name", "id_number_index")
            skip_unchanged = False
            # One outer transaction below (import-export's own would roll back every row as
            # soon as one row fails, and per-row autocommit would fsync each row on SQLite).
            use_transactions = False

        def before_import_row(self, row: Any, **kwargs: Any) -> None:
            resident = parse_id_number(str(row["身份证号码"]))  # raises → row error
            row["id_number_index"] = id_number_index(resident.number)
            row["_resident"] = resident

        def import_instance(self, instance: Member, row: Any, **kwargs: Any) -> None:
            super().import_instance(instance, row, **kwargs)
            resident = row["_resident"]
            category = categories.get(str(row["退休类别"]), "male")
            unit = units[str(row["单位统一社会信用代码"])]
            instance.id_number_enc = resident.number
            instance.id_number_masked = mask_id_number(resident.number)
            instance.birth_date = resident.birth_date
            instance.sex = resident.sex.value
            instance.union = unit.union
            instance.union_path = unit.union_path
            instance.unit = unit
            instance.employment_type = employment[str(row["用工形式"])]
            instance.retirement_category = category
            instance.retirement_date = statutory_retirement_date(resident.birth_date, category)
            phone = str(row["手机号码"] or "")
            if phone:
                phone = validate_mobile(phone)
                instance.phone_enc = phone
                instance.phone_index = phone_index(phone)
                instance.phone_masked = mask_phone(phone)
            account = str(row["银行账号"] or "")
            if account:
                account = validate_bank_account(account)
                instance.bank_account_enc = account
                instance.bank_account_masked = mask_bank_account(account)
                instance.bank_name = str(row["开户银行"] or "")

        def after_save_instance(self, instance: Member, row: Any, **kwargs: Any) -> None:
            if not kwargs.get("dry_run"):
                Enrollment.objects.create(
                    batch=batch,
                    member=instance,
                    person_index=instance.id_number_index,
                    union=union,
                    union_path=union.path,
                    unit=instance.unit,
                    plan_version=plan,
                    plan_year=2026,
                    enrollment_date=date(2026, 1, 1),
                )

    start = time.perf_counter()
    dataset = tablib.Dataset().load(path.read_bytes(), format="xlsx")
    from django.db import transaction

    with transaction.atomic():
        result = MemberResource().import_data(
            dataset, dry_run=False, raise_errors=False, collect_failed_rows=True
        )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": len(dataset),
        "enrolled": Enrollment.objects.count(),
        "members": Member.objects.count(),
        "invalid_rows": len(result.invalid_rows) + len(result.error_rows),
    }


def worker(kind: str, path: Path, rows: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huzhu.settings")
    import django

    django.setup()
    outcome = (_ours if kind == "ours" else _iex)(path, rows)
    outcome["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    outcome["rows_per_s"] = round(outcome["rows"] / outcome["seconds"], 1)
    print("RESULT " + json.dumps(outcome))


def _run(kind: str, database_url: str, path: Path, rows: int, var_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        HUZHU_DATABASE_URL=database_url,
        HUZHU_TESTING="1",
        HUZHU_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="huzhu.settings.test",
        HUZHU_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_roster",
            "--worker",
            kind,
            "--file",
            str(path),
            "--rows",
            str(rows),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} on {database_url} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _postgres_database() -> tuple[str, Any] | None:
    try:
        import psycopg

        name = f"huzhu_bench_roster_{os.getpid()}"
        with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    except Exception as exc:  # no server: the SQLite figures still stand
        print(f"PostgreSQL 不可用，跳过：{exc}", file=sys.stderr)
        return None

    def recreate() -> str:
        with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        return f"{PG_BASE}/{name}"

    def drop() -> None:
        with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return recreate, drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="花名册导入基准测试")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--iex-rows", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--worker", choices=["ours", "iex"])
    parser.add_argument("--file")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, Path(args.file), args.rows)
        return 0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huzhu.settings.test")
    os.environ.setdefault("HUZHU_TESTING", "1")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from huzhu.core.ids import make_uscc

    usccs = [make_uscc(f"91430100MA{n:07d}") for n in range(UNITS)]
    results: dict[str, Any] = {
        "benchmark": "roster import (read + validate + write members, hardship, consents, "
        "enrollments), end to end",
        "rows": args.rows,
        "iex_rows": args.iex_rows,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            # shared development machines: the load tells how much CPU the run really had
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "goals": {
            "rows_per_s": GOAL_ROWS_PER_S,
            "speedup_vs_django_import_export": GOAL_SPEEDUP,
            "peak_memory_bytes": GOAL_MEMORY_BYTES,
        },
        "databases": {},
    }
    with tempfile.TemporaryDirectory(prefix="huzhu-bench-roster-") as tmp:
        tmp_path = Path(tmp)
        roster = tmp_path / "roster.xlsx"
        started = time.perf_counter()
        invalid = write_roster(roster, args.rows, usccs)
        # django-import-export's sample: the first ``--iex-rows`` rows of the same roster (the
        # generator is deterministic row by row), in a file of its own so that it does not pay
        # for loading the other rows.
        sample = tmp_path / "roster-sample.xlsx"
        write_roster(sample, args.iex_rows, usccs)
        results["file"] = {
            "bytes": roster.stat().st_size,
            "invalid_rows": invalid,
            "generated_in_s": round(time.perf_counter() - started, 1),
        }
        print(
            f"生成花名册 {args.rows} 行（{roster.stat().st_size / 1e6:.1f} MB，{invalid} 行无效）",
            file=sys.stderr,
        )
        targets: list[tuple[str, Any, Any]] = [
            ("sqlite", lambda: f"sqlite:///{tmp_path / 'bench.sqlite3'}", None)
        ]
        postgres = None if args.no_postgres else _postgres_database()
        if postgres is not None:
            targets.append(("postgresql", postgres[0], postgres[1]))
        for label, make_url, drop in targets:
            figures: dict[str, Any] = {}
            for kind, rows in (("huzhu", args.rows), ("django_import_export", args.iex_rows)):
                url = make_url()
                if label == "sqlite":
                    for suffix in ("", "-wal", "-shm"):
                        Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
                source = roster if kind == "huzhu" else sample
                outcome = _run("ours" if kind == "huzhu" else "iex", url, source, rows, tmp_path)
                figures[kind] = outcome
                print(
                    f"{label} {kind}: {outcome['rows_per_s']:.0f} 行/秒，峰值内存 "
                    f"{outcome['peak_rss_bytes'] / 2**20:.0f} MiB",
                    file=sys.stderr,
                )
            if drop is not None:
                drop()
            ours, theirs = figures["huzhu"], figures["django_import_export"]
            figures["speedup"] = round(ours["rows_per_s"] / theirs["rows_per_s"], 1)
            figures["goals_met"] = {
                "rows_per_s": ours["rows_per_s"] >= GOAL_ROWS_PER_S,
                "speedup": figures["speedup"] >= GOAL_SPEEDUP,
                "memory": ours["peak_rss_bytes"] < GOAL_MEMORY_BYTES,
            }
            results["databases"][label] = figures
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results["databases"], ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
