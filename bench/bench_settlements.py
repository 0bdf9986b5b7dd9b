"""The one-stop settlement API under load, its SQL ceiling and a crash drill (#5), PostgreSQL.

    python -m bench.bench_settlements [--members 1000000] [--seconds 60] [--clients 16]
                                      [--workers N | --sweep 2,3,4] [--drill 20000]
                                      [--keep-postgres] [--reuse-postgres] [--no-profile]

1. **Data** (child process, Django configured once): a throwaway database
   ``huzhu_bench_settlements`` (created and dropped here; ``--keep-postgres`` keeps it,
   ``--reuse-postgres`` starts from a kept one), migrated; the demo tree and accounts
   (``huzhu.demo.build_demo(members=0)``), the HUNAN-2026 plan active, ``--members`` members
   loaded by ``bench.bench_members``' loader (COPY, real AES-GCM and blind indexes); then
   set-based, in SQL: one active 2026 enrollment batch per union, an active 2026 enrollment
   (coverage 2026-01-01..12-31) and an active medical-data consent for every member; a partner
   created through ``huzhu.claims.partners.create_partner``, scoped to the province. The ID numbers
   of 100,000 random members are decrypted for the requests.
2. **Server**: ``gunicorn huzhu.wsgi:application -w N --threads 1`` (sync workers) on 127.0.0.1,
   production settings (keys from the environment, DEBUG off, ``HUZHU_DB_CONN_MAX_AGE=600``
   persistent connections with health checks, SSL redirect off on loopback). ``--sweep`` first
   runs a short load for each worker count and keeps the best.
3. **Load**: wrk (Debian's; installed with apt-get when missing and allowed) with
   ``bench/settlements_wrk.lua``, ``--clients`` connections for ``--seconds``, replaying requests
   signed before the run (HMAC, unique setl_id and nonce, timestamps of the run): random members,
   a mix of auto-approved, below-deductible and flagged-for-review settlements. Without wrk, a
   bounded client of threads (stdlib ``http.client``) does the same. Measured: settlements/s
   (200 answers per second), p50/p90/p99 latency, non-200 answers, the outcome mix.
4. **Ceiling**: the database is cloned; in the clone, one settlement request is captured with
   ``CaptureQueriesContext`` (through the whole stack: the nonce, the lookups, the transaction,
   with BEGIN/COMMIT where Django opened and committed it) and turned into a pgbench script in
   which every transaction takes a random enrolled member (one extra primary-key lookup in a
   helper table), a unique setl_id, claim number and nonce, and the shared hot rows as the API
   does (audit chain heads picked with SKIP LOCKED, the ledger's entry counter and balances).
   ``pgbench -n -c <clients> -j 2 -T <seconds>`` → transactions/s: the ceiling.
5. **Crash drill**: ``--drill`` settlements (a few members get five large ones in a row, sent in
   parallel, to push them to the cap) sent by ``--clients`` threads that record every answer; when
   40% are answered, the gunicorn master and workers are killed with SIGKILL; the server is
   restarted and ALL are sent again (same bodies, new signatures). Checked: every setl_id stored
   exactly once, every answer of the resend 200 and equal to the stored answer, every answer
   given before the crash equal to the stored one, ``huzhu verify-ledger`` and
   ``huzhu verify-audit`` exit 0, no benefit year above the plan's cap (× the hardship multiplier
   for members with a hardship record).
6. **Profile** (``--no-profile`` skips): cProfile of a few hundred settlement requests in-process
   (Django test client, same database): the top functions and the SQL per settlement.

Results: ``bench/results/settlements.json`` (machine and load average, every figure, the captured
SQL and the pgbench script) and a table on stdout. Goals: ≥ 500 settlements/s, p99 ≤ 50 ms,
≥ 40% of the pgbench ceiling; the drill's checks all pass. Exit status 1 when a check of the
drill fails or a step breaks (missed performance goals are reported, not failures).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from bench.common import machine, postgres_admin

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
VAR_DIR = DATA_DIR / "var"
RESULTS = BENCH_DIR / "results" / "settlements.json"
WRK_SCRIPT = BENCH_DIR / "settlements_wrk.lua"
VENV_BIN = Path(sys.executable).parent
PG_DATABASE = "huzhu_bench_settlements"
PG_CLONE = "huzhu_bench_settlements_pgbench"
API_PATH = "/api/v1/settlements"
PLAN_YEAR = 2026
GOAL_RATE = 500.0
GOAL_P99_MS = 50.0
GOAL_RATIO = 0.40
PEOPLE = 100_000  # members whose ID numbers the requests use (random among all)
MAX_RATE = 1500  # pre-signed requests per second of load: 3× the goal
SEED = 20261123
KILL_AT = 0.4  # the crash drill kills the server when this share of the first pass is answered


# --- parent ----------------------------------------------------------------------------------
def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_settlements", description=__doc__)
    parser.add_argument(
        "--members",
        type=int,
        default=int(os.environ.get("HUZHU_BENCH_MEMBERS", "1000000")),
        help="members in the province (default 1,000,000 or $HUZHU_BENCH_MEMBERS)",
    )
    parser.add_argument("--seconds", type=int, default=60, help="load and pgbench duration")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, help="gunicorn workers (skips the sweep)")
    parser.add_argument(
        "--sweep", default="2,3,4", help="worker counts tried before the run (best kept)"
    )
    parser.add_argument("--sweep-seconds", type=int, default=15)
    parser.add_argument("--drill", type=int, default=20_000, help="settlements of the crash drill")
    parser.add_argument("--profile-requests", type=int, default=300)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-pgbench", action="store_true")
    parser.add_argument("--no-drill", action="store_true")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk (installed from Debian if missing) or the stdlib client",
    )
    parser.add_argument("--keep-postgres", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--reuse-postgres",
        action="store_true",
        help="start from a kept database (members are loaded only when missing)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("HUZHU_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="server URL without a database name",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.phase:
        return _child(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # Static files are not served by this benchmark; the directory keeps whitenoise quiet.
    (VAR_DIR / "static").mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "settlements",
        "members": args.members,
        "seconds": args.seconds,
        "clients": args.clients,
        "goals": {
            "settlements_per_second": GOAL_RATE,
            "p99_ms": GOAL_P99_MS,
            "share_of_pgbench_ceiling": GOAL_RATIO,
        },
        "machine": machine(),
    }
    run = Run(args)
    status = 0
    try:
        status = run.execute(report)
    except Exception as exc:  # report what was measured so far, then fail
        import traceback

        traceback.print_exc()
        report["error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    finally:
        run.cleanup()
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    _print_table(report)
    print(f"\n结果已写入 {RESULTS.relative_to(ROOT)}")
    return status


# --- environment -----------------------------------------------------------------------------
def _keys() -> dict[str, str]:
    """The bench's own key set (bench/data/var/keys.json, shared with bench_members), handed to
    every process as production settings would be: in the environment."""
    from huzhu.core.keys import load_or_create_demo_keys

    return load_or_create_demo_keys(VAR_DIR)


def _environment(database_url: str) -> dict[str, str]:
    keys = _keys()
    env = dict(os.environ)
    for name in ("HUZHU_DEMO", "HUZHU_TESTING", "HUZHU_DEBUG", "HUZHU_DEMO_OTP"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="huzhu.settings",
        HUZHU_DATABASE_URL=database_url,
        HUZHU_SECRET_KEY=keys["secret_key"],
        HUZHU_FIELD_KEYS=keys["field_keys"],
        HUZHU_FIELD_KEY_CURRENT=keys["field_key_current"],
        HUZHU_BLIND_INDEX_KEY=keys["blind_index_key"],
        HUZHU_SIGNING_KEY=keys["signing_key"],
        HUZHU_VAR_DIR=str(VAR_DIR),
        # Persistent connections (with Django's health check before reuse), as in production.
        HUZHU_DB_CONN_MAX_AGE="600",
        # Plain HTTP on loopback: in production TLS ends at the proxy in front of the server.
        HUZHU_SSL_REDIRECT="0",
        HUZHU_LOG_LEVEL=os.environ.get("HUZHU_LOG_LEVEL", "WARNING"),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def _child_run(
    phase: str, env: dict[str, str], payload: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Run one phase in a child process (Django is configured once per process)."""
    with tempfile.TemporaryDirectory(prefix="bench-settlements-") as tmp:
        source, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        source.write_text(json.dumps(payload or {}, ensure_ascii=False))
        command = [
            sys.executable,
            "-m",
            "bench.bench_settlements",
            "--phase",
            phase,
            "--input",
            str(source),
            "--out",
            str(out),
        ]
        for key, value in extra.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"phase {phase} failed (exit {completed.returncode})")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# --- requests --------------------------------------------------------------------------------
def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


_ORDINARY = (
    ("K35.9", "急性阑尾炎"),
    ("J18.9", "肺炎"),
    ("K80.2", "胆囊结石"),
    ("N20.0", "肾结石"),
    ("J44.1", "慢性阻塞性肺病急性加重"),
    ("M17.1", "膝关节骨关节炎"),
    ("K40.9", "腹股沟疝"),
    ("S72.0", "股骨颈骨折"),
)
_CHRONIC = (("E11.9", "2型糖尿病"), ("I10", "原发性高血压"))
_CRITICAL = (("C34.9", "肺恶性肿瘤"), ("I21.9", "急性心肌梗死"), ("I63.9", "脑梗死"))


def settle_body(
    rng: random.Random, setl_id: str, certno: str, kind: str, *, base_fen: int | None = None
) -> dict[str, Any]:
    """A 2304 settle body in the national field names with consistent amounts.

    ``kind``: ``approved`` (an ordinary stay, February to October: auto-approved),
    ``deductible`` (a small base, below the 1,000-yuan deductible), ``review`` (admitted in
    January — within 30 days of coverage — or a critical-illness diagnosis: flagged),
    ``large`` (base 60,000 yuan: flagged as a large amount; five of them reach the cap).
    """
    med_type = "21"
    diagnoses = [rng.choice(_ORDINARY)]
    month = rng.randint(2, 10)
    if kind == "approved":
        base = base_fen or rng.randint(2_000_00, 28_000_00)
        if rng.random() < 0.1:
            med_type, diagnoses = "14", [rng.choice(_CHRONIC)]
            base = rng.randint(2_000_00, 9_000_00)
    elif kind == "deductible":
        base = base_fen or rng.randint(100_00, 900_00)
    elif kind == "review":
        base = base_fen or rng.randint(3_000_00, 20_000_00)
        if rng.random() < 0.5:
            month = 1
        else:
            diagnoses = [rng.choice(_CRITICAL), *diagnoses]
    elif kind == "large":
        base = base_fen or 60_000_00
    else:
        raise ValueError(kind)
    adm = date(PLAN_YEAR, month, rng.randint(1, 28))
    dscg = adm + timedelta(days=rng.randint(2, 14))
    fund_share = rng.uniform(0.55, 0.85)
    inscp = round(base / (1 - fund_share))
    fund = inscp - base
    ownpay = round(inscp * rng.uniform(0, 0.08))
    overlimit = round(inscp * rng.uniform(0, 0.02))
    preself = round(inscp * rng.uniform(0, 0.04))
    total = inscp + ownpay + overlimit + preself
    person = total - fund
    account = min(person, rng.randint(0, 2_000_00))
    info = {
        "setl_id": setl_id,
        "mdtrt_id": "M" + setl_id[1:],
        "psn_cert_type": "01",
        "certno": certno,
        "insutype": "310",
        "med_type": med_type,
        "setl_time": f"{dscg.isoformat()} {rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00",
        "adm_date": adm.isoformat(),
        "dscg_date": dscg.isoformat(),
        "medfee_sumamt": _yuan(total),
        "fulamt_ownpay_amt": _yuan(ownpay),
        "overlmt_selfpay": _yuan(overlimit),
        "preselfpay_amt": _yuan(preself),
        "inscp_scp_amt": _yuan(inscp),
        "hifp_pay": _yuan(fund),
        "fund_pay_sumamt": _yuan(fund),
        "hosp_part_amt": "0.00",
        "psn_part_amt": _yuan(person),
        "acct_pay": _yuan(account),
        "psn_cash_pay": _yuan(person - account),
        "medins_setl_id": "H" + setl_id[1:],
        "clr_optins": "430100",
    }
    return {
        "setlinfo": info,
        "diseinfo": [
            {"diag_code": code, "diag_name": name, "maindiag_flag": "1" if i == 0 else "0"}
            for i, (code, name) in enumerate(diagnoses)
        ],
    }


_KINDS = ("approved", "deductible", "review")
_WEIGHTS = (0.75, 0.15, 0.10)


@dataclass
class Prepared:
    setl_id: str
    body: bytes


class Signer:
    """Signs requests as the partner does (INTERFACES.md §3): HMAC-SHA256 with the key's bytes
    over ``{timestamp}\\n{nonce}\\n{METHOD}\\n{path}\\n{sha256 hex of the body}``."""

    def __init__(self, partner_id: str, key_hex: str, tag: str) -> None:
        self.partner_id = partner_id
        self.key = bytes.fromhex(key_hex)
        self.tag = tag
        self.counter = 0
        self.lock = threading.Lock()

    def headers(self, body: bytes) -> dict[str, str]:
        with self.lock:
            self.counter += 1
            nonce = f"{self.tag}{self.counter:09d}"
        timestamp = str(int(time.time()))
        message = (
            f"{timestamp}\n{nonce}\nPOST\n{API_PATH}\n{hashlib.sha256(body).hexdigest()}".encode()
        )
        return {
            "Content-Type": "application/json",
            "X-Partner-Id": self.partner_id,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": hmac.new(self.key, message, hashlib.sha256).hexdigest(),
        }


def _run_tag() -> str:
    """A short tag unique to this run (setl_ids and nonces of a reused database never clash)."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    value, tag = int(time.time() * 10), ""
    while value:
        value, rest = divmod(value, 36)
        tag = digits[rest] + tag
    return tag[-7:]


def prepare(
    rng: random.Random, people: list[str], prefix: str, count: int, *, hot: int = 0
) -> list[Prepared]:
    """``count`` settle bodies with distinct setl_ids ``<prefix><n>`` for random members; ``hot``
    members get five large settlements each, consecutive (so that they run in parallel)."""
    items: list[Prepared] = []

    def add(certno: str, kind: str) -> None:
        setl_id = f"{prefix}{len(items):08d}"
        body = settle_body(rng, setl_id, certno, kind)
        items.append(Prepared(setl_id, json.dumps(body, ensure_ascii=False).encode()))

    hot_people = iter(rng.sample(people, hot))
    slots = count - 4 * hot  # a hot member takes one slot and four more settlements
    hot_at = set(rng.sample(range(slots), hot))
    for slot in range(slots):
        if slot in hot_at:
            certno = next(hot_people)
            for _ in range(5):
                add(certno, "large")
        else:
            add(rng.choice(people), rng.choices(_KINDS, _WEIGHTS)[0])
    return items


def _raw_request(port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {API_PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- the server --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """gunicorn with sync workers on 127.0.0.1; killed or stopped by its process ids."""

    def __init__(self, env: dict[str, str], workers: int, port: int, log: Path) -> None:
        self.env, self.workers, self.port, self.log = env, workers, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            str(VENV_BIN / "gunicorn"),
            "huzhu.wsgi:application",
            "-w",
            str(self.workers),
            "--threads",
            "1",
            "--worker-class",
            "sync",
            "-b",
            f"127.0.0.1:{self.port}",
            "--backlog",
            "2048",
            "--timeout",
            "60",
            "--graceful-timeout",
            "10",
            "--log-level",
            "warning",
            "--error-logfile",
            str(self.log),
        ]
        self.process = subprocess.Popen(command, env=self.env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.process.returncode}); see {self.log}")
            if len(self.worker_pids()) >= self.workers:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start within 60 s")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        master = self.process.pid
        children: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid …: comm may hold spaces, so split after the last ")".
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                children.append(int(entry.name))
        return children

    def kill(self) -> list[int]:
        """SIGKILL the master and every worker (no graceful anything): a crash."""
        assert self.process is not None
        pids = [self.process.pid, *self.worker_pids()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        for pid in pids[1:]:
            # The workers were children of the master, now reaped by init; wait until gone.
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)
        self.process = None
        return pids

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None


def _post(
    port: int, headers: dict[str, str], body: bytes, timeout: float = 30
) -> tuple[int, bytes]:
    connection = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", API_PATH, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _warm_up(port: int, signer: Signer, items: list[Prepared], threads: int) -> None:
    """Every worker imports the project and opens its database connection before timing."""
    failures: list[str] = []

    def send(chunk: list[Prepared]) -> None:
        for item in chunk:
            status, body = _post(port, signer.headers(item.body), item.body)
            if status != 200:
                failures.append(f"{status} {body[:300]!r}")

    chunks = [items[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=send, args=(chunk,)) for chunk in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise RuntimeError(f"warm-up requests failed: {failures[:3]}")


class CpuMeter:
    """CPU time (user + system) spent by given processes between ``start`` and ``stop``: the
    server's workers and their PostgreSQL backends, per settlement — where the time goes."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, groups: Callable[[], dict[str, list[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, int]] = {}
        self.spent: dict[str, float] = {}

    @staticmethod
    def _ticks(pid: int) -> int | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[11]) + int(fields[12])  # utime, stime

    def _read(self) -> dict[str, dict[int, int]]:
        result: dict[str, dict[int, int]] = {}
        for name, pids in self.groups().items():
            ticks = {pid: self._ticks(pid) for pid in pids}
            result[name] = {pid: t for pid, t in ticks.items() if t is not None}
        return result

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> None:
        after = self._read()
        for name, ticks in after.items():
            start = self.before.get(name, {})
            spent = sum(t - start[pid] for pid, t in ticks.items() if pid in start)
            self.spent[name] = spent / self.TICK

    def per(self, count: int) -> dict[str, float]:
        if not count:
            return {}
        result = {name: round(seconds * 1000 / count, 2) for name, seconds in self.spent.items()}
        result["total"] = round(sum(self.spent.values()) * 1000 / count, 2)
        return result


# --- load generators -------------------------------------------------------------------------
def _ensure_wrk(mode: str) -> str | None:
    """The wrk binary: found, or installed from Debian (root or sudo, idempotent); None when
    the stdlib client has to do."""
    if mode == "python":
        return None
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk 未安装：尝试从 Debian 安装（apt-get install -y wrk）", file=sys.stderr)
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is not None and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

        def apt(*arguments: str) -> int:
            return subprocess.run(
                [*prefix, "apt-get", *arguments],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            ).returncode

        if apt("install", "-y", "-qq", "wrk") != 0:
            apt("update", "-qq")
            apt("install", "-y", "-qq", "wrk")
    found = shutil.which("wrk")
    if found:
        return found
    if mode == "wrk":
        raise RuntimeError("wrk 不可用且无法安装")
    print("wrk 不可用：改用标准库的并发客户端（结果中注明）", file=sys.stderr)
    return None


def _percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def _load_wrk(
    wrk: str,
    port: int,
    signer: Signer,
    items: list[Prepared],
    clients: int,
    seconds: int,
    cpu: CpuMeter,
) -> dict[str, Any]:
    threads = max(1, min(2, clients))
    with tempfile.TemporaryDirectory(prefix="bench-settlements-wrk-") as tmp:
        prefix = Path(tmp) / "requests"
        files = [open(f"{prefix}-{i}.bin", "wb") for i in range(threads)]  # noqa: SIM115
        try:
            for index, item in enumerate(items):
                raw = _raw_request(port, signer.headers(item.body), item.body)
                files[index % threads].write(f"{len(raw)}\n".encode() + raw)
        finally:
            for handle in files:
                handle.close()
        command = [
            wrk,
            f"-t{threads}",
            f"-c{clients}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(WRK_SCRIPT),
            f"http://127.0.0.1:{port}",
        ]
        cpu.start()
        completed = subprocess.run(
            command,
            env=dict(os.environ, BENCH_REQUESTS=str(prefix)),
            capture_output=True,
            text=True,
            check=False,
        )
        cpu.stop()
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {completed.stdout[-2000:]} {completed.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = data["duration_us"] / 1e6
    ok = data["statuses"].get("200", 0)
    percentiles = data["latency_us"]["percentiles"]
    return {
        "client": "wrk",
        "command": " ".join([*command[:-1], "http://127.0.0.1:PORT"]),
        "duration_s": round(seconds_run, 2),
        "requests": data["requests"],
        "pool": len(items),
        "pool_exhausted": data["exhausted"],
        "settlements_per_second": round(ok / seconds_run, 1),
        "requests_per_second": round(data["requests"] / seconds_run, 1),
        "latency_ms": {
            "p50": round(percentiles["50"] / 1000, 2),
            "p90": round(percentiles["90"] / 1000, 2),
            "p99": round(percentiles["99"] / 1000, 2),
            "p99.9": round(percentiles["99.9"] / 1000, 2),
            "mean": round(data["latency_us"]["mean"] / 1000, 2),
            "max": round(data["latency_us"]["max"] / 1000, 2),
        },
        "statuses": data["statuses"],
        "non_200": sum(v for k, v in data["statuses"].items() if k != "200"),
        "socket_errors": data["errors"],
        "outcomes": dict(sorted(data["outcomes"].items(), key=lambda kv: -kv[1])),
        "wrk_text": completed.stdout.split("BENCH_JSON")[0].strip().splitlines(),
    }


def _outcome(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return "?"
    outcome = str(data.get("status", "?"))
    return f"{outcome}/{data['reason']}" if data.get("reason") else outcome


def _load_python(
    port: int,
    signer: Signer,
    items: list[Prepared],
    clients: int,
    seconds: int,
    cpu: CpuMeter,
) -> dict[str, Any]:
    """The stdlib fallback: ``clients`` threads, each sending its next pre-signed request as
    soon as the previous one is answered, for ``seconds``."""
    prepared = [(item, signer.headers(item.body)) for item in items]
    position = iter(range(len(prepared)))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    exhausted = threading.Event()

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(position, None)
            if index is None:
                exhausted.set()
                return
            item, headers = prepared[index]
            started = time.perf_counter()
            try:
                status, body = _post(port, headers, item.body, timeout=10)
            except OSError as exc:
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[str(status)] += 1
                if status == 200:
                    outcomes[_outcome(body)] += 1

    cpu.start()
    started = time.monotonic()
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    cpu.stop()
    ordered = sorted(latencies)
    return {
        "client": "python threads (http.client)",
        "duration_s": round(elapsed, 2),
        "requests": len(latencies),
        "pool": len(items),
        "pool_exhausted": int(exhausted.is_set()),
        "settlements_per_second": round(statuses.get("200", 0) / elapsed, 1),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            "p50": round(_percentile(ordered, 50) * 1000, 2),
            "p90": round(_percentile(ordered, 90) * 1000, 2),
            "p99": round(_percentile(ordered, 99) * 1000, 2),
            "p99.9": round(_percentile(ordered, 99.9) * 1000, 2),
            "mean": round(statistics.fmean(ordered) * 1000, 2) if ordered else None,
            "max": round(ordered[-1] * 1000, 2) if ordered else None,
        },
        "statuses": dict(statuses),
        "non_200": sum(v for k, v in statuses.items() if k != "200"),
        "socket_errors": dict(errors),
        "outcomes": dict(outcomes.most_common()),
    }


# --- the run ---------------------------------------------------------------------------------
def _sql(
    database_url: str, statement: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    """One statement on the bench database from the parent (no Django), autocommit."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _share(load: dict[str, Any], pgbench: dict[str, Any]) -> float | None:
    ceiling = pgbench["transactions_per_second"]
    return round(load["settlements_per_second"] / ceiling, 3) if ceiling else None


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = args.postgres_url.rstrip("/")
        self.database = f"{self.url}/{PG_DATABASE}"
        self.env = _environment(self.database)
        self.tag = _run_tag()
        self.rng = random.Random(SEED)
        self.port = args.port or _free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-settlements-"))
        self.log = self.tmp / "gunicorn.log"
        self.server: Server | None = None
        self.created = False
        self.cloned = False

    def cleanup(self) -> None:
        if self.server is not None:
            self.server.stop()
        with contextlib.suppress(Exception):
            if self.cloned:
                postgres_admin(self.url, f"DROP DATABASE IF EXISTS {PG_CLONE}")
            if self.created and not self.args.keep_postgres:
                postgres_admin(self.url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
        if self.log.exists():
            text = self.log.read_text(errors="replace")
            if text.strip():
                kept = DATA_DIR / "settlements-gunicorn.log"
                kept.write_text(text)
                print(f"gunicorn 日志：{kept.relative_to(ROOT)}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _server(self, workers: int) -> Server:
        self.server = Server(self.env, workers, self.port, self.log)
        self.server.start()
        return self.server

    def _stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def execute(self, report: dict[str, Any]) -> int:
        args = self.args
        # 1. data
        if not args.reuse_postgres:
            postgres_admin(self.url, f"DROP DATABASE IF EXISTS {PG_DATABASE}")
        with contextlib.suppress(Exception):  # exists already (reuse)
            postgres_admin(self.url, f"CREATE DATABASE {PG_DATABASE}")
        self.created = True
        print(f"构建数据：{args.members:,} 名职工 …", file=sys.stderr, flush=True)
        build = _child_run("build", self.env, members=args.members)
        people: list[str] = build.pop("people")
        self.signer_key = build.pop("key")
        self.partner_id = build["partner_id"]
        report["build"] = build
        # A database kept from before migration enrollment 0002 (person_index index) is upgraded by
        # the build's migrate; the lookup must not fall back to a sequential scan unnoticed.
        if not self._has_person_index():
            raise SystemExit("enrollment_enrollment has no index led by person_index")
        print(
            f"  数据就绪：{build['seconds']:.0f} s；合作方 {self.partner_id}",
            file=sys.stderr,
            flush=True,
        )

        # 2–3. server and load
        wrk = _ensure_wrk(args.client)
        report["load_generator"] = "wrk" if wrk else "python threads (http.client)"
        sweep: list[dict[str, Any]] = []
        if args.workers:
            workers = args.workers
        else:
            counts = [int(x) for x in args.sweep.split(",") if x.strip()]
            for count in counts:
                result = self._load(wrk, people, count, args.sweep_seconds, f"W{count}")
                sweep.append({"workers": count, **_brief(result)})
                print(f"  sweep -w {count}: {_line(result)}", file=sys.stderr, flush=True)
            workers = max(sweep, key=lambda r: r["settlements_per_second"])["workers"]
        report["workers"] = workers
        report["worker_sweep"] = sweep
        report["server"] = (
            f"gunicorn huzhu.wsgi:application -w {workers} --threads 1 --worker-class sync "
            "--backlog 2048 (HUZHU_DB_CONN_MAX_AGE=600, CONN_HEALTH_CHECKS on, DEBUG off)"
        )
        load = self._load(wrk, people, workers, args.seconds, "L")
        report["api"] = load
        print(f"  load -w {workers}: {_line(load)}", file=sys.stderr, flush=True)

        # 4. ceiling
        if not args.no_pgbench:
            report["pgbench"] = self._ceiling()
            report["api_share_of_ceiling"] = _share(load, report["pgbench"])

        # 5. crash drill
        status = 0
        if not args.no_drill:
            drill = self._drill(people, workers)
            report["crash_drill"] = drill
            if not drill["passed"]:
                status = 1

        # 6. profile
        if not args.no_profile:
            print("profile …", file=sys.stderr, flush=True)
            items = prepare(self.rng, people, f"P{self.tag}", args.profile_requests)
            report["profile"] = _child_run(
                "profile",
                self.env,
                {
                    "partner_id": self.partner_id,
                    "key": self.signer_key,
                    "items": [[p.setl_id, p.body.decode()] for p in items],
                },
            )
        report["goals_met"] = {
            "settlements_per_second": load["settlements_per_second"] >= GOAL_RATE,
            "p99_ms": load["latency_ms"]["p99"] <= GOAL_P99_MS,
            "share_of_pgbench_ceiling": (report.get("api_share_of_ceiling") or 0) >= GOAL_RATIO,
            "crash_drill": report.get("crash_drill", {}).get("passed"),
        }
        return status

    def _has_person_index(self) -> bool:
        """Whether enrollment_enrollment has a non-partial index led by person_index."""
        rows = _sql(
            self.database,
            """
            SELECT count(*) FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
            WHERE c.relname = 'enrollment_enrollment' AND i.indpred IS NULL
              AND a.attname = 'person_index'
            """,
        )
        return bool(rows[0][0])

    def _load(
        self, wrk: str | None, people: list[str], workers: int, seconds: int, label: str
    ) -> dict[str, Any]:
        count = seconds * MAX_RATE
        items = prepare(self.rng, people, f"{label}{self.tag}", count)
        warm = prepare(self.rng, people, f"U{label}{self.tag}", workers * 8)
        signer = Signer(self.partner_id, self.signer_key, f"n{label}{self.tag}")
        server = self._server(workers)
        try:
            _warm_up(self.port, signer, warm, workers * 2)
            cpu = CpuMeter(
                lambda: {
                    "gunicorn_workers": server.worker_pids(),
                    "postgres_backends": self._backend_pids(),
                }
            )
            loadavg = [round(x, 2) for x in os.getloadavg()]
            clients = self.args.clients
            if wrk:
                result = _load_wrk(wrk, self.port, signer, items, clients, seconds, cpu)
            else:
                result = _load_python(self.port, signer, items, clients, seconds, cpu)
        finally:
            server.stop()
            self.server = None
        result["workers"] = workers
        result["load_average_before"] = loadavg
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        ok = int(result["statuses"].get("200", 0))
        result["cpu_ms_per_settlement"] = cpu.per(ok)
        # With every core busy on this, 1000 ms × cores / CPU ms per settlement is the most the
        # machine could do for the server and its database alone (the load generator aside).
        total = result["cpu_ms_per_settlement"].get("total")
        cores = os.cpu_count() or 1
        result["cpu_bound_settlements_per_second"] = (
            round(1000 * cores / total, 1) if total else None
        )
        return result

    def _backend_pids(self) -> list[int]:
        """The PostgreSQL backends serving the bench database (the server's connections)."""
        rows = _sql(
            self.database,
            "SELECT pid FROM pg_stat_activity WHERE datname = %s "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            [PG_DATABASE],
        )
        return [int(row[0]) for row in rows]

    # --- pgbench ---
    def _ceiling(self) -> dict[str, Any]:
        print("pgbench：克隆数据库 …", file=sys.stderr, flush=True)
        postgres_admin(self.url, f"DROP DATABASE IF EXISTS {PG_CLONE}")
        started = time.perf_counter()
        postgres_admin(
            self.url, f"CREATE DATABASE {PG_CLONE} TEMPLATE {PG_DATABASE} STRATEGY FILE_COPY"
        )
        self.cloned = True
        clone_seconds = time.perf_counter() - started
        clone_env = _environment(f"{self.url}/{PG_CLONE}")
        captured = _child_run(
            "capture", clone_env, {"partner_id": self.partner_id, "key": self.signer_key}
        )
        script = self.tmp / "settlement.sql"
        script.write_text(captured["script"])
        parsed = urllib.parse.urlparse(self.url)
        env = dict(os.environ)
        env.update(
            PGHOST=parsed.hostname or "127.0.0.1",
            PGPORT=str(parsed.port or 5432),
            PGUSER=urllib.parse.unquote(parsed.username or "postgres"),
        )
        if parsed.password:
            env["PGPASSWORD"] = urllib.parse.unquote(parsed.password)
        logs = Path(tempfile.mkdtemp(prefix="pgbench-log-", dir=self.tmp))
        command = [
            "pgbench",
            "-n",
            "-c",
            str(self.args.clients),
            "-j",
            "2",
            "-T",
            str(self.args.seconds),
            "-f",
            str(script),
            "-l",
            "--log-prefix",
            str(logs / "tx"),
            PG_CLONE,
        ]
        # One client for a few seconds first, with per-statement latencies (-r): what each
        # statement costs without contention.
        single = subprocess.run(
            ["pgbench", "-n", "-c", "1", "-T", "10", "-r", "-f", str(script), PG_CLONE],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        statement_ms = []
        for line in single.stdout.splitlines():
            match = re.match(r"^\s+([0-9.]+)\s+(\d+)\s+(\S.*)$", line)
            if match:
                statement_ms.append((float(match.group(1)), match.group(3)[:200]))
        single_tps = re.search(r"tps = ([0-9.]+)", single.stdout)
        loadavg = [round(x, 2) for x in os.getloadavg()]
        print("pgbench …", file=sys.stderr, flush=True)
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        output = completed.stdout + completed.stderr
        tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
        failed = re.search(r"number of failed transactions: (\d+)", output)
        done = re.search(r"number of transactions actually processed: (\d+)", output)
        latencies = []
        for path in logs.iterdir():
            for line in path.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)
        latencies.sort()
        postgres_admin(self.url, f"DROP DATABASE IF EXISTS {PG_CLONE}")
        self.cloned = False
        if completed.returncode != 0 or tps is None:
            raise RuntimeError(f"pgbench failed: {output[-3000:]}")
        print(f"  pgbench: {float(tps.group(1)):.0f} tps", file=sys.stderr, flush=True)
        return {
            "command": " ".join(
                [
                    "pgbench",
                    "-n",
                    "-c",
                    str(self.args.clients),
                    "-j",
                    "2",
                    "-T",
                    str(self.args.seconds),
                    "-f",
                    "settlement.sql",
                ]
            ),
            "transactions_per_second": round(float(tps.group(1)), 1),
            "transactions": int(done.group(1)) if done else None,
            "failed_transactions": int(failed.group(1)) if failed else None,
            "latency_ms": {
                "p50": round(_percentile(latencies, 50), 2),
                "p90": round(_percentile(latencies, 90), 2),
                "p99": round(_percentile(latencies, 99), 2),
            },
            "single_client": {
                "transactions_per_second": float(single_tps.group(1)) if single_tps else None,
                "ms_per_statement": [
                    {"ms": ms, "statement": text}
                    for ms, text in sorted(statement_ms, key=lambda x: -x[0])
                ],
                "ms_total": round(sum(ms for ms, _ in statement_ms), 2),
            },
            "clone_seconds": round(clone_seconds, 1),
            "load_average_before": loadavg,
            "statements_per_settlement": captured["statements"],
            "transactions_per_settlement": captured["transactions"],
            "captured_sql": captured["captured"],
            "script": captured["script"].splitlines(),
            "output": output.strip().splitlines()[-12:],
        }

    # --- crash drill ---
    def _drill(self, people: list[str], workers: int) -> dict[str, Any]:
        args = self.args
        count = args.drill
        hot = max(1, count // 500)
        items = prepare(self.rng, people, f"D{self.tag}", count, hot=hot)
        signer = Signer(self.partner_id, self.signer_key, f"nD{self.tag}")
        print(f"crash drill：{count:,} 笔 …", file=sys.stderr, flush=True)
        server = self._server(workers)
        kill_at = int(count * KILL_AT)
        first, killed = self._send_all(items, signer, kill_at=kill_at)
        answered_first = sum(1 for a in first if a is not None and a[0] == 200)
        stored_at_kill = _sql(
            self.database,
            "SELECT count(*) FROM claims_settlement s JOIN claims_partner p "
            "ON p.id = s.partner_id WHERE p.partner_id = %s AND s.setl_id LIKE %s",
            [self.partner_id, f"D{self.tag}%"],
        )[0][0]
        print(
            f"  killed {len(killed)} processes after {answered_first:,} answers",
            file=sys.stderr,
            flush=True,
        )
        server = self._server(workers)
        try:
            second, _ = self._send_all(items, signer, kill_at=None)
        finally:
            server.stop()
            self.server = None
        payload = {
            "partner_id": self.partner_id,
            "prefix": f"D{self.tag}",
            "items": [
                {
                    "setl_id": item.setl_id,
                    "first": None if a is None else [a[0], a[1].decode(errors="replace")],
                    "second": None if b is None else [b[0], b[1].decode(errors="replace")],
                }
                for item, a, b in zip(items, first, second, strict=True)
            ],
        }
        checks = _child_run("check", self.env, payload)
        verify = {}
        for command in ("verify-ledger", "verify-audit"):
            completed = subprocess.run(
                [str(VENV_BIN / "huzhu"), command],
                env=self.env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            verify[command] = {
                "exit": completed.returncode,
                "output": (completed.stdout + completed.stderr).strip().splitlines()[-3:],
            }
        first_statuses = Counter(
            "no answer (server killed)" if a is None else str(a[0]) for a in first
        )
        second_statuses = Counter("no answer" if b is None else str(b[0]) for b in second)
        passed = (
            checks["stored"] == count
            and checks["distinct"] == count
            and not checks["missing"]
            and checks["second_not_200"] == 0
            and checks["second_differs_from_stored"] == 0
            and checks["first_differs_from_stored"] == 0
            and checks["above_cap"] == 0
            and verify["verify-ledger"]["exit"] == 0
            and verify["verify-audit"]["exit"] == 0
        )
        return {
            "settlements": count,
            "hot_members": hot,
            "killed_after_answers": answered_first,
            # Committed, but the answer was lost with the server: the resend must replay it.
            "stored_at_kill": stored_at_kill,
            "committed_without_answer": stored_at_kill - answered_first,
            "killed_pids": len(killed),
            "first_pass_statuses": dict(first_statuses),
            "second_pass_statuses": dict(second_statuses),
            "second_pass_outcomes": dict(
                Counter(_outcome(b[1]) for b in second if b is not None and b[0] == 200)
            ),
            **checks,
            **{name.replace("-", "_"): value for name, value in verify.items()},
            "passed": passed,
        }

    def _send_all(
        self, items: list[Prepared], signer: Signer, *, kill_at: int | None
    ) -> tuple[list[tuple[int, bytes] | None], list[int]]:
        """Send every item once from ``clients`` threads and record each answer (None: no
        answer). With ``kill_at``, SIGKILL the server once that many are answered."""
        answers: list[tuple[int, bytes] | None] = [None] * len(items)
        position = iter(range(len(items)))
        lock = threading.Lock()
        answered = 0
        reached = threading.Event()
        port = self.port

        def client() -> None:
            nonlocal answered
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                item = items[index]
                try:
                    answer = _post(port, signer.headers(item.body), item.body)
                except OSError:
                    continue  # the server is gone: no answer for this one
                with lock:
                    answers[index] = answer
                    answered += 1
                    if kill_at is not None and answered >= kill_at:
                        reached.set()

        threads = [threading.Thread(target=client) for _ in range(self.args.clients)]
        for thread in threads:
            thread.start()
        killed: list[int] = []
        if kill_at is not None:
            while not reached.wait(0.05):
                if not any(t.is_alive() for t in threads):
                    break
            assert self.server is not None
            killed = self.server.kill()
            self.server = None
        for thread in threads:
            thread.join()
        return answers, killed


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "settlements_per_second": result["settlements_per_second"],
        "latency_ms": result["latency_ms"],
        "non_200": result["non_200"],
        "load_average_before": result.get("load_average_before"),
    }


def _line(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    return (
        f"{result['settlements_per_second']:.0f}/s, p50 {latency['p50']} ms, "
        f"p99 {latency['p99']} ms, non-200 {result['non_200']}"
    )


def _print_table(report: dict[str, Any]) -> None:
    print(
        f"\n一站式结算接口：职工 {report['members']:,} 人，{report['clients']} 个并发客户端，"
        f"{report['seconds']} 秒；负载 {report['machine'].get('load_average_at_start')}"
    )
    api = report.get("api")
    if api:
        latency = api["latency_ms"]
        print(f"{'':<26}{'per s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}")
        for row in report.get("worker_sweep", []):
            lat = row["latency_ms"]
            print(
                f"{'sweep -w ' + str(row['workers']):<26}{row['settlements_per_second']:>10.1f}"
                f"{lat['p50']:>9}{lat['p99']:>9}{row['non_200']:>9}"
            )
        print(
            f"{'API -w ' + str(report['workers']) + ' (' + api['client'][:10] + ')':<26}"
            f"{api['settlements_per_second']:>10.1f}{latency['p50']:>9}{latency['p99']:>9}"
            f"{api['non_200']:>9}"
        )
        cpu = api.get("cpu_ms_per_settlement") or {}
        if cpu:
            print(
                f"{'':<26}CPU per settlement: gunicorn {cpu.get('gunicorn_workers')} ms + "
                f"PostgreSQL {cpu.get('postgres_backends')} ms → at most "
                f"{api.get('cpu_bound_settlements_per_second')}/s on {os.cpu_count()} cores"
            )
        pg = report.get("pgbench")
        if pg:
            print(
                f"{'pgbench ceiling':<26}{pg['transactions_per_second']:>10.1f}"
                f"{pg['latency_ms']['p50']:>9}{pg['latency_ms']['p99']:>9}"
                f"{pg['failed_transactions'] or 0:>9}"
            )
            print(f"API / ceiling: {report.get('api_share_of_ceiling')}")
        print(f"outcomes: {api['outcomes']}")
        goals = report.get("goals_met", {})
        print(
            f"goals: ≥ {GOAL_RATE:.0f}/s "
            f"{'ok' if goals.get('settlements_per_second') else 'MISSED'}"
            f", p99 ≤ {GOAL_P99_MS:.0f} ms {'ok' if goals.get('p99_ms') else 'MISSED'}"
            f", ≥ {GOAL_RATIO:.0%} of ceiling "
            f"{'ok' if goals.get('share_of_pgbench_ceiling') else 'MISSED'}"
        )
    drill = report.get("crash_drill")
    if drill:
        print(
            f"crash drill: {drill['settlements']:,} settlements, killed after "
            f"{drill['killed_after_answers']:,} answers ({drill['committed_without_answer']} "
            f"committed without an answer); stored {drill['stored']:,} "
            f"(distinct {drill['distinct']:,}, missing {len(drill['missing'])}); resend non-200 "
            f"{drill['second_not_200']}; differs from stored {drill['second_differs_from_stored']}"
            f" / {drill['first_differs_from_stored']}; above cap {drill['above_cap']} (at cap "
            f"{drill['at_cap']}); verify-ledger {drill['verify_ledger']['exit']}, verify-audit "
            f"{drill['verify_audit']['exit']} → {'PASSED' if drill['passed'] else 'FAILED'}"
        )
    profile = report.get("profile")
    if profile:
        plain = profile["unprofiled"]
        print(
            f"in-process (test client, no HTTP server): {plain['ms_per_request']} ms/request, "
            f"of which Python CPU {plain['python_cpu_ms_per_request']} ms and SQL "
            f"{plain['sql_wall_ms_per_request']} ms; {profile['queries_per_request']} queries"
        )
    if "error" in report:
        print(f"error: {report['error']}")


# --- children (Django) -------------------------------------------------------------------------
def _child(args: argparse.Namespace) -> int:
    import django

    django.setup()
    payload = json.loads(Path(args.input).read_text()) if args.input else {}
    phases: dict[str, Callable[[argparse.Namespace, dict[str, Any]], dict[str, Any]]] = {
        "build": _phase_build,
        "capture": _phase_capture,
        "check": _phase_check,
        "profile": _phase_profile,
    }
    result = phases[args.phase](args, payload)
    Path(args.out).write_text(json.dumps(result, ensure_ascii=False, default=str))
    return 0


@contextlib.contextmanager
def _cli_context() -> Iterator[None]:
    from huzhu.core.context import RequestInfo, current_request

    token = current_request.set(RequestInfo(channel="cli"))
    try:
        yield
    finally:
        current_request.reset(token)


def _phase_build(args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection

    from bench import bench_members
    from huzhu.claims.partners import create_partner
    from huzhu.orgs.models import Union

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    with _cli_context():
        # The demo tree and accounts, then the members with bench_members' loader (COPY).
        members = bench_members._build(args.members)
        members.pop("samples", None)
        from huzhu.demo_funding import _ensure_plan

        province = Union.objects.get(parent__isnull=True)
        _ensure_plan(province)
        enrollment = _enroll_everyone()
        partner, key = create_partner(
            acting_user=None,
            name=f"湖南省医疗保障事务中心（压测 {time.strftime('%Y%m%d%H%M%S')}）",
            organisation=province,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    people = _people(PEOPLE)
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "members": members,
        "enrollment": enrollment,
        "partner_id": partner.partner_id,
        "key": key,
        "people": people,
        "server_version": connection.pg_version,  # type: ignore[attr-defined]
    }


def _enroll_everyone() -> dict[str, Any]:
    """An active 2026 batch per union and, set-based in SQL, an active enrollment and an active
    medical-data consent for every member who has none yet (no ORM object per row)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from huzhu.enrollment.models import BatchStatus, Enrollment, EnrollmentBatch
    from huzhu.members.models import CURRENT_NOTICE_VERSION, Consent, Member
    from huzhu.orgs.models import Union
    from huzhu.plans.models import PlanStatus, PlanVersion

    started = time.perf_counter()
    plan = PlanVersion.objects.get(region="430000", year=PLAN_YEAR, status=PlanStatus.ACTIVE)
    start, end = date(PLAN_YEAR, 1, 1), date(PLAN_YEAR, 12, 31)
    now = timezone.now()
    union_ids = list(Member.objects.values_list("union_id", flat=True).distinct())
    with transaction.atomic():
        have = set(
            EnrollmentBatch.objects.filter(
                plan_year=PLAN_YEAR, status=BatchStatus.ACTIVE
            ).values_list("union_id", flat=True)
        )
        for union in Union.objects.filter(pk__in=union_ids).exclude(pk__in=have):
            EnrollmentBatch.objects.create(
                union=union,
                union_path=union.path,
                plan_version=plan,
                plan_year=PLAN_YEAR,
                status=BatchStatus.ACTIVE,
                enrollment_date=start,
                paid_on=start,
                confirmed_at=now,
                activated_at=now,
            )
        enrollment = Enrollment._meta.db_table
        batch = EnrollmentBatch._meta.db_table
        member = Member._meta.db_table
        consent = Consent._meta.db_table
        with connection.cursor() as cursor:
            # Fresh statistics, hash joins only and room for them: with the just-loaded tables
            # taken for empty, the planner probed the hardship records — and the very table being
            # filled — by a sequential scan per member (hours at 1,000,000). Anti-joins by hash
            # read the existing rows once, before the insert starts; the hardship flag is a join.
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"ANALYZE {member}, members_hardshiprecord, {batch}, {enrollment}, {consent}"
                )
                cursor.execute("SET LOCAL enable_nestloop = off")
                cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute(
                f"""
                INSERT INTO {enrollment} (batch_id, member_id, family_member_id, product_set,
                    person_index, union_id, union_path, unit_id, plan_version_id, plan_year,
                    status, hardship, enrollment_date, coverage_start, coverage_end, left_unit_on,
                    withdrawn_at, refund_due, reason, row_number, created_at)
                SELECT b.id, m.id, NULL, 'self', m.id_number_index, m.union_id, m.union_path,
                    m.unit_id, %s, %s, 'active', hs.member_id IS NOT NULL,
                    %s, %s, %s, NULL, NULL, false, '', NULL, %s
                FROM {member} m
                JOIN {batch} b ON b.union_id = m.union_id AND b.plan_year = %s
                    AND b.status = 'active'
                LEFT JOIN (SELECT DISTINCT member_id FROM members_hardshiprecord) hs
                    ON hs.member_id = m.id
                WHERE NOT EXISTS (SELECT 1 FROM {enrollment} e
                                  WHERE e.member_id = m.id AND e.plan_year = %s)
                """,  # noqa: S608 - table names from the models
                [plan.pk, PLAN_YEAR, start, start, end, now, PLAN_YEAR, PLAN_YEAR],
            )
            enrolled = cursor.rowcount
            cursor.execute(
                f"""
                UPDATE {batch} b SET enrolled_count = (
                    SELECT count(*) FROM {enrollment} e WHERE e.batch_id = b.id)
                WHERE b.plan_year = %s
                """,  # noqa: S608
                [PLAN_YEAR],
            )
            cursor.execute(
                f"""
                INSERT INTO {consent} (member_id, purpose, notice_version, channel, granted_at,
                    withdrawn_at, recorded_by_id)
                SELECT m.id, 'medical_data', %s, 'paper_via_union', %s, NULL, NULL
                FROM {member} m
                WHERE NOT EXISTS (SELECT 1 FROM {consent} c WHERE c.member_id = m.id
                                  AND c.purpose = 'medical_data' AND c.withdrawn_at IS NULL)
                """,  # noqa: S608
                [CURRENT_NOTICE_VERSION, now],
            )
            consented = cursor.rowcount
    return {
        "batches": EnrollmentBatch.objects.filter(plan_year=PLAN_YEAR).count(),
        "enrolled": enrolled,
        "consents": consented,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _people(count: int) -> list[str]:
    """Plain ID numbers of ``count`` random enrolled members (decrypted from the database)."""
    from huzhu.members.models import Member

    rng = random.Random(SEED + 11)
    top = Member.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    wanted = min(count, top)
    ids = rng.sample(range(1, top + 1), wanted)
    numbers: list[str] = []
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        numbers += [
            str(n)
            for n in Member.objects.filter(pk__in=chunk).values_list("id_number_enc", flat=True)
        ]
    return numbers


# --- capture: one settlement's SQL, as a pgbench script ----------------------------------------
def _signed_client_post(client: Any, partner_id: str, key: str, body: bytes, nonce: str) -> Any:
    timestamp = str(int(time.time()))
    message = f"{timestamp}\n{nonce}\nPOST\n{API_PATH}\n{hashlib.sha256(body).hexdigest()}"
    return client.post(
        API_PATH,
        data=body,
        content_type="application/json",
        HTTP_X_PARTNER_ID=partner_id,
        HTTP_X_TIMESTAMP=timestamp,
        HTTP_X_NONCE=nonce,
        HTTP_X_SIGNATURE=hmac.new(bytes.fromhex(key), message.encode(), hashlib.sha256).hexdigest(),
    )


#: Tables whose ids the capture makes distinctive (sequences moved far up in the clone), so that a
#: value in a later statement is recognised as "the id this settlement's insert returned".
_BUMPED = (
    "claims_settlement",
    "claims_claim",
    "claims_claimstep",
    "claims_claimadjustment",
    "claims_benefityear",
    "ledger_journalentry",
    "ledger_journalline",
    "core_auditevent",
)
#: INSERT … RETURNING whose id later statements use: ``\\gset <prefix>`` after them.
_RETURNING_GSET = {
    "claims_settlement": "settlement_",
    "claims_claim": "claim_",
    "ledger_journalentry": "entry_",
}


def _phase_capture(args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    """In the clone: capture one settlement request's SQL and write the pgbench script.

    Django logs BEGIN and COMMIT with the queries (``debug_transaction``), so the script opens
    and commits the transaction where the request did; the statements before it (the nonce, the
    lookups) run in autocommit, as in the request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from huzhu.claims.models import Claim, ClaimAdjustment, Settlement
    from huzhu.members.models import Member

    with connection.cursor() as cursor:
        for offset, table in enumerate(_BUMPED, start=1):
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                [table, offset * 10**13 + 7 * 10**11],
            )
        cursor.execute("DROP TABLE IF EXISTS bench_people")
        cursor.execute(
            """
            CREATE TABLE bench_people AS
            SELECT row_number() OVER (ORDER BY e.id) AS n, m.id AS member_id, e.person_index,
                   m.union_id, m.union_path, m.unit_id, e.id AS enrollment_id
            FROM enrollment_enrollment e JOIN members_member m ON m.id = e.member_id
            WHERE e.plan_year = %s AND e.status = 'active' AND e.family_member_id IS NULL
              AND m.unit_id IS NOT NULL
            """,
            [PLAN_YEAR],
        )
        cursor.execute("ALTER TABLE bench_people ADD PRIMARY KEY (n)")
        cursor.execute("ANALYZE bench_people")
        cursor.execute("SELECT count(*) FROM bench_people")
        people_count = cursor.fetchone()[0]

    rng = random.Random(SEED + 5)
    partner_id, key = payload["partner_id"], payload["key"]

    def pick() -> tuple[Member, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT member_id FROM bench_people WHERE n = %s", [rng.randint(1, people_count)]
            )
            member = Member.objects.get(pk=cursor.fetchone()[0])
        return member, str(member.id_number_enc)

    client = Client(HTTP_HOST="127.0.0.1")
    # A first request, for another member of the same union, fills the per-process caches
    # (partner, the union's plan versions and review policy, hospital shares), as a running
    # server has them; the second one is captured.
    member, certno = pick()
    neighbour = (
        Member.objects.filter(union_id=member.union_id, unit__isnull=False)
        .exclude(pk=member.pk)
        .first()
    )
    assert neighbour is not None
    body = json.dumps(
        settle_body(rng, "CAPWARM0001", str(neighbour.id_number_enc), "approved")
    ).encode()
    response = _signed_client_post(client, partner_id, key, body, "capture-warm-0001")
    if response.status_code != 200:
        raise RuntimeError(f"warm-up request: {response.status_code} {response.content[:300]!r}")
    setl_id, nonce = "CAPPROBE00000001", "captureprobe0001"
    body = json.dumps(settle_body(rng, setl_id, certno, "approved", base_fen=12_000_00)).encode()
    with CaptureQueriesContext(connection) as captured:
        response = _signed_client_post(client, partner_id, key, body, nonce)
    if response.status_code != 200 or response.json()["status"] != "approved":
        raise RuntimeError(f"probe request: {response.status_code} {response.content[:500]!r}")
    statements = [str(q["sql"]) for q in captured.captured_queries]

    settlement = Settlement.objects.get(partner__partner_id=partner_id, setl_id=setl_id)
    claim = Claim.objects.get(settlement=settlement)
    adjustment = ClaimAdjustment.objects.filter(claim=claim).select_related("entry").first()
    enrollment = claim.enrollment
    assert adjustment is not None and adjustment.entry is not None and enrollment is not None
    probe = Probe(
        ints={
            str(settlement.pk): ":settlement_id",
            str(claim.pk): ":claim_id",
            str(adjustment.entry_id): ":entry_id",
        },
        strings={
            setl_id: "S:client_id-:rnd",
            nonce: "bnonce-:client_id-:rnd",
            claim.number: "YZ:cn",
            member.id_number_index: ":person_index",
            member.union_path: ":union_path",
        },
        columns={
            "member_id": (str(member.pk), ":member_id"),
            "union_id": (str(member.union_id), ":union_id"),
            "organisation_id": (str(member.union_id), ":union_id"),
            "unit_id": (str(member.unit_id), ":unit_id"),
            "enrollment_id": (str(enrollment.pk), ":enrollment_id"),
        },
        table_ids={
            "members_member": (str(member.pk), ":member_id"),
            "enrollment_enrollment": (str(enrollment.pk), ":enrollment_id"),
        },
    )
    script, transactions = _pgbench_script(statements, probe, people_count)
    return {
        "captured": statements,
        "statements": sum(1 for s in statements if s not in ("BEGIN", "COMMIT")),
        "transactions": transactions,
        "script": script,
    }


@dataclass
class Probe:
    """The probe settlement's own values and what each becomes in the pgbench script."""

    ints: dict[str, str]  # distinctive ids (any numeric literal, any substring of a string)
    strings: dict[str, str]  # distinctive strings (any substring of a string literal)
    columns: dict[str, tuple[str, str]]  # column -> (probe value, variable): only that column
    table_ids: dict[str, tuple[str, str]]  # table.id -> (probe value, variable)


_TOKEN = re.compile(
    r"""(?P<str>'(?:[^']|'')*')
      | (?P<ident>"(?:[^"]|"")*")
      | (?P<num>\d+(?:\.\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
      | (?P<space>\s+)
      | (?P<op>::|<=|>=|<>|!=|.)""",
    re.X | re.S,
)
_CLAUSE_WORDS = {"LIMIT", "OFFSET", "ORDER", "GROUP", "RETURNING", "ON", "FOR", "AS", "SELECT"}


def _table_of(sql: str) -> str:
    match = re.match(
        r'\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+"([^"]+)"|\s*SELECT .*? FROM "([^"]+)"', sql, re.S
    )
    return (match.group(1) or match.group(2)) if match else ""


def _rewrite(sql: str, probe: Probe) -> str:
    """Replace the probe's values in one statement by pgbench variables (see ``Probe``)."""
    verb = sql.lstrip().split(" ", 1)[0].upper()
    table = _table_of(sql)
    tokens = [(m.lastgroup or "op", m.group()) for m in _TOKEN.finditer(sql)]
    # Column context: for INSERT, position in the VALUES tuple; otherwise the last column named.
    insert_columns: list[str] = []
    if verb == "INSERT":
        head = re.match(r'\s*INSERT INTO "[^"]+" \(([^)]*)\) VALUES', sql)
        if head:
            insert_columns = [c.strip().strip('"') for c in head.group(1).split(",")]
    out: list[str] = []
    significant: list[tuple[str, str]] = []
    depth = 0
    in_values = False
    position = 0
    last_table, last_column = table, ""
    for kind, text in tokens:
        if kind == "space":
            out.append(text)
            continue
        if kind == "word":
            upper = text.upper()
            if verb == "INSERT" and upper == "VALUES":
                in_values = True
            elif upper in ("RETURNING", "ON") and in_values and depth == 0:
                in_values = False
            if upper in _CLAUSE_WORDS:
                last_column = ""
        elif kind == "ident":
            name = text.strip('"')
            if (
                len(significant) >= 2
                and significant[-1] == ("op", ".")
                and (significant[-2][0] == "ident")
            ):
                last_table, last_column = significant[-2][1].strip('"'), name
            else:
                last_table, last_column = table, name
        elif kind == "op" and in_values:
            if text == "(":
                depth += 1
                if depth == 1:
                    position = 0
            elif text == ")":
                depth -= 1
            elif text == "," and depth == 1:
                position += 1
        if kind in ("str", "num"):
            column, column_table = last_column, last_table
            if in_values and depth >= 1 and insert_columns:
                column, column_table = insert_columns[position % len(insert_columns)], table
            out.append(_replace_literal(kind, text, column, column_table, table, verb, probe))
        else:
            out.append(text)
        significant.append((kind, text))
    return "".join(out)


def _replace_literal(
    kind: str, text: str, column: str, column_table: str, table: str, verb: str, probe: Probe
) -> str:
    if kind == "str":
        content = text[1:-1]
        if table == "core_auditevent" and column == "prev_hash" and verb == "INSERT":
            return "':chain_last_hash'"
        for value, variable in sorted(
            {**probe.strings, **probe.ints}.items(), key=lambda kv: -len(kv[0])
        ):
            content = content.replace(value, variable)
        return f"'{content}'"
    # a number
    if text in probe.ints:
        return probe.ints[text]
    if table == "core_auditevent" and verb == "INSERT":
        if column == "chain":
            return ":chain_id"
        if column == "seq":
            return ":audit_seq"
    if table == "core_auditchain" and verb in ("UPDATE", "SELECT"):
        if column == "last_seq":
            return ":audit_seq"
        if column == "id":
            return ":chain_id"
    if table == "ledger_journalentry" and verb == "INSERT" and column == "number":
        return ":entry_number"
    if column_table == "claims_benefityear" and column == "id" and verb == "UPDATE":
        return ":by_id"
    if column == "id" and column_table in probe.table_ids:
        value, variable = probe.table_ids[column_table]
        if text == value:
            return variable
    if column in probe.columns:
        value, variable = probe.columns[column]
        if text == value:
            return variable
    return text


def _pgbench_script(statements: list[str], probe: Probe, people: int) -> tuple[str, int]:
    """The pgbench script of one settlement: variables first (a random enrolled member), then the
    captured statements rewritten, ``\\gset`` where a later statement needs a returned value."""
    lines = [
        "-- One settlement request's SQL as captured by bench/bench_settlements.py, rewritten for",
        "-- pgbench: a random enrolled member (bench_people), a unique setl_id/nonce/claim number.",
        f"\\set n random(1, {people})",
        "\\set rnd random(1, 999999999999)",
        "\\set cn random(100000000000, 999999999999)",
        "\\set chain_offset random(1, 16)",
        "SELECT member_id, person_index, union_id, union_path, unit_id, enrollment_id "
        "FROM bench_people WHERE n = :n \\gset",
    ]
    transactions = 0
    upserted = False
    for sql in statements:
        if sql == "BEGIN":
            lines.append("BEGIN;")
            transactions += 1
            continue
        if sql == "COMMIT":
            lines.append("COMMIT;")
            continue
        table = _table_of(sql)
        verb = sql.lstrip().split(" ", 1)[0].upper()
        if "SKIP LOCKED" in sql and table == "core_auditchain":
            # The free chain: the first one not locked, from a random start (as connections do).
            text = re.sub(r'("core_auditchain"\."id" \+ )\d+', r"\1:chain_offset", sql)
            lines.append(f"{text} \\gset chain_")
            continue
        text = _rewrite(sql, probe)
        if table == "core_auditevent" and verb == "INSERT":
            lines.append("\\set audit_seq :chain_last_seq + 1")
        if table == "ledger_journalentry" and verb == "INSERT":
            # The counter's upsert returns the new number; a locked SELECT the last one given.
            lines.append(f"\\set entry_number :seq_last_number{'' if upserted else ' + 1'}")
        if verb == "SELECT" and table == "core_auditchain":
            lines.append(f"{text} \\gset chain_")
        elif verb == "SELECT" and table == "ledger_entrysequence" and "FOR UPDATE" in sql:
            lines.append(f"{text} \\gset seq_")
        elif verb == "INSERT" and table == "ledger_entrysequence" and "RETURNING" in sql:
            lines.append(f"{text} \\gset seq_")
            upserted = True
        elif verb == "SELECT" and table == "claims_benefityear" and "FOR UPDATE" in sql:
            lines.append(f"{text} \\gset by_")
        elif verb == "INSERT" and table in _RETURNING_GSET and "RETURNING" in sql:
            lines.append(f"{text} \\gset {_RETURNING_GSET[table]}")
        else:
            lines.append(f"{text};")
    return "\n".join(lines) + "\n", transactions


# --- check: the crash drill's database side -------------------------------------------------------
def _phase_check(args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection

    from huzhu.claims.models import Settlement
    from huzhu.core.money import round_half_up
    from huzhu.plans.loader import plan_for
    from huzhu.plans.models import PlanStatus, PlanVersion

    items = payload["items"]
    expected = {item["setl_id"] for item in items}
    rows = Settlement.objects.filter(
        partner__partner_id=payload["partner_id"], setl_id__startswith=payload["prefix"]
    ).values_list("setl_id", "response")
    stored: dict[str, Any] = {}
    duplicates = 0
    for setl_id, response in rows:
        if setl_id in stored:
            duplicates += 1
        stored[setl_id] = response
    second_not_200 = second_differs = first_differs = first_answered = 0
    examples: list[str] = []
    for item in items:
        setl_id = item["setl_id"]
        second, first = item["second"], item["first"]
        if second is None or second[0] != 200:
            second_not_200 += 1
            if len(examples) < 5:
                examples.append(
                    f"{setl_id}: resend {second and second[0]} {second and second[1][:200]}"
                )
        elif json.loads(second[1]) != stored.get(setl_id):
            second_differs += 1
        if first is not None and first[0] == 200:
            first_answered += 1
            if json.loads(first[1]) != stored.get(setl_id):
                first_differs += 1

    # The cap: no benefit year's net total above the product's cap, × the hardship multiplier
    # for a member with a hardship record in the year.
    version = PlanVersion.objects.get(region="430000", year=PLAN_YEAR, status=PlanStatus.ACTIVE)
    plan = plan_for(version)
    caps = [
        (name, product.annual_cap, round_half_up(product.annual_cap * plan.hardship.cap_multiplier))
        for name, product in plan.schedule_products().items()
    ]
    values = ", ".join(["(%s, %s::bigint, %s::bigint)"] * len(caps))
    params: list[Any] = [v for cap in caps for v in cap]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH caps(product, cap, hardship_cap) AS (VALUES {values}),
            years AS (
                SELECT b.total_fen,
                       CASE WHEN EXISTS (
                           SELECT 1 FROM members_hardshiprecord h
                           WHERE h.member_id = b.member_id AND h.valid_from <= %s
                             AND (h.valid_to IS NULL OR h.valid_to >= %s))
                       THEN c.hardship_cap ELSE c.cap END AS cap
                FROM claims_benefityear b JOIN caps c ON c.product = b.product
                WHERE b.year = %s)
            SELECT count(*), count(*) FILTER (WHERE total_fen > cap),
                   count(*) FILTER (WHERE total_fen = cap), max(total_fen)
            FROM years
            """,  # noqa: S608 - placeholders only
            [*params, date(PLAN_YEAR, 12, 31), date(PLAN_YEAR, 1, 1), PLAN_YEAR],
        )
        years, above, at_cap, largest = cursor.fetchone()
    return {
        "stored": len(stored) + duplicates,
        "distinct": len(stored),
        "missing": sorted(expected - set(stored))[:20],
        "unexpected": sorted(set(stored) - expected)[:20],
        "first_pass_answered_200": first_answered,
        "first_differs_from_stored": first_differs,
        "second_not_200": second_not_200,
        "second_differs_from_stored": second_differs,
        "second_examples": examples,
        "benefit_years": years,
        "above_cap": above,
        "at_cap": at_cap,
        "largest_total_fen": largest,
        "caps_fen": {name: [cap, hardship] for name, cap, hardship in caps},
    }


# --- profile ---------------------------------------------------------------------------------
def _phase_profile(args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    import cProfile
    import pstats

    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    items = payload["items"]
    partner_id, key = payload["partner_id"], payload["key"]
    # Warm the caches first, as a running server has them.
    for index, (_, body) in enumerate(items[:10]):
        _signed_client_post(client, partner_id, key, body.encode(), f"profwarm{index:08d}")
    # First without the profiler (wall and CPU time as the server would spend them), then the
    # rest with it (where the time goes; cProfile itself slows Python down).
    plain, measured = items[10 : 10 + (len(items) - 10) // 2], items[10 + (len(items) - 10) // 2 :]
    plain_wall = plain_cpu = plain_sql = 0.0
    for index, (_, body) in enumerate(plain):
        with CaptureQueriesContext(connection) as captured:
            started, cpu_started = time.perf_counter(), time.process_time()
            _signed_client_post(client, partner_id, key, body.encode(), f"plain{index:09d}")
            plain_cpu += time.process_time() - cpu_started
            plain_wall += time.perf_counter() - started
        plain_sql += sum(float(q["time"]) for q in captured.captured_queries)
        reset_queries()
    profiler = cProfile.Profile()
    sql_ms = 0.0
    queries = 0
    patterns: Counter[str] = Counter()
    pattern_ms: dict[str, float] = {}
    statuses: Counter[int] = Counter()
    wall = 0.0
    for index, (_, body) in enumerate(measured):
        data = body.encode()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            profiler.enable()
            response = _signed_client_post(client, partner_id, key, data, f"profile{index:09d}")
            profiler.disable()
            wall += time.perf_counter() - started
        statuses[response.status_code] += 1
        for query in captured.captured_queries:
            spent = float(query["time"]) * 1000
            sql_ms += spent
            queries += 1
            name = _pattern(str(query["sql"]))
            patterns[name] += 1
            pattern_ms[name] = pattern_ms.get(name, 0.0) + spent
        reset_queries()
    n = max(len(measured), 1)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({function})",
                "calls_per_request": round(nc / n, 1),
                "own_ms_per_request": round(tt * 1000 / n, 3),
                "cumulative_ms_per_request": round(ct * 1000 / n, 3),
            }
        )
    by_own = sorted(rows, key=lambda r: -r["own_ms_per_request"])[:25]
    ours = [r for r in rows if r["function"].startswith("huzhu/")]
    by_cumulative = sorted(ours, key=lambda r: -r["cumulative_ms_per_request"])[:40]
    return {
        "requests": len(measured),
        "statuses": dict(statuses),
        "note": "Django test client in one process (no HTTP server), cProfile on; the SQL times "
        "are measured by Django's debug cursor",
        "unprofiled": {
            "requests": len(plain),
            "ms_per_request": round(plain_wall * 1000 / max(len(plain), 1), 2),
            "python_cpu_ms_per_request": round(plain_cpu * 1000 / max(len(plain), 1), 2),
            "sql_wall_ms_per_request": round(plain_sql * 1000 / max(len(plain), 1), 2),
        },
        "ms_per_request": round(wall * 1000 / n, 2),
        "queries_per_request": round(queries / n, 1),
        "sql_ms_per_request": round(sql_ms / n, 2),
        "sql_by_statement": [
            {
                "statement": name,
                "per_request": round(patterns[name] / n, 2),
                "ms_per_request": round(pattern_ms[name] / n, 3),
            }
            for name in sorted(pattern_ms, key=lambda k: -pattern_ms[k])
        ],
        "top_own_time": by_own,
        "top_cumulative_huzhu": by_cumulative,
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _pattern(sql: str) -> str:
    verb = sql.lstrip().split(" ", 1)[0].upper()
    table = _table_of(sql) or "?"
    extra = " FOR UPDATE" if "FOR UPDATE" in sql else ""
    return f"{verb} {table}{extra}"


if __name__ == "__main__":
    raise SystemExit(main())
