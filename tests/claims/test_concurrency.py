"""S16 through the partner API: parallel settlements for one member never exceed the cap, and the
same settlement sent eight times at once is stored once and answered the same every time.

Real threads, each with its own database connection (closed at the end of the thread), posting
signed requests through the whole middleware stack against committed data
(``django_db(transaction=True)``). The races need PostgreSQL: SQLite serializes every write
transaction (``transaction_mode=IMMEDIATE``) and its in-memory test database is one connection, so
there the same requests are sent one after another — the outcome must be the same — and the
control is skipped.

The control removes the row lock of the member's year state (``lock_year`` reads the row without
``SELECT … FOR UPDATE``) and holds every thread until all have read it: the settlements are then
priced on the same stale state and the cap is exceeded or records are lost. It must fail without
the lock, which shows that the first test passes because of the lock, not by luck.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from huzhu.claims import partners, pricing, services
from huzhu.claims.models import BenefitYear, Claim, ClaimStatus, Partner, Settlement
from huzhu.core.audit import first_problem as audit_problem
from huzhu.rules.engine import YearState
from tests import factories
from tests.claims.conftest import Person, covered_person, ledger_clean, make_partner, settle_body
from tests.claims.test_partner_api import SETTLE, Reply, Signer, send
from tests.enrollment.conftest import active_plan

POSTGRES = connection.vendor == "postgresql"
pytestmark = pytest.mark.django_db(transaction=True)
needs_postgres = pytest.mark.skipif(
    not POSTGRES,
    reason="SQLite serializes write transactions and its test database is one in-memory "
    "connection: there is no interleaving to test (run with HUZHU_DATABASE_URL=postgres://…)",
)

THREADS = 8
CAP_FEN = 80000_00  # Hunan 2026 inpatient annual cap
BIG_BASE = "25000.00"  # eight of these (with the first record) exceed the cap several times


@pytest.fixture(autouse=True)
def _fresh_partner_cache() -> Iterator[None]:
    partners.clear_partner_cache()
    yield
    partners.clear_partner_cache()


@dataclass
class World:
    partner: Partner
    signer: Signer
    person: Person


@pytest.fixture
def world(transactional_db: None) -> World:
    tree = factories.tree()
    plan = active_plan(2026)
    partner = make_partner(tree.city_a)
    person = covered_person(tree, plan)
    signer = Signer(partner.partner_id)
    # A first, small settlement: the year-state row exists and is committed before the race (so
    # the threads meet at its lock, not at the insertion of the row).
    first = send(Client(), signer, SETTLE, settle_body(person.certno, "FIRST", base="2000.00"))
    assert first.status == 200 and first.body["benefit"] == "500.00", first.body
    return World(partner, signer, person)


@dataclass
class Run:
    replies: list[Reply | None]
    errors: list[str] = field(default_factory=list)


def race(bodies: list[bytes], signer: Signer, *, parallel: bool = POSTGRES) -> Run:
    """Post every body, each from its own thread and connection, released together."""
    run = Run([None] * len(bodies))
    lock = threading.Lock()
    start = threading.Barrier(len(bodies))

    def work(index: int) -> None:
        try:
            client = Client()
            if parallel:
                start.wait(timeout=30)
            run.replies[index] = send(client, signer, SETTLE, bodies[index])
        except Exception as exc:  # reported by the test, never swallowed
            with lock:
                run.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    if not parallel:
        for index in range(len(bodies)):
            run.replies[index] = send(Client(), signer, SETTLE, bodies[index])
        return run
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request never finished"
    return run


def cap_bodies(person: Person, tag: str) -> list[bytes]:
    return [
        json.dumps(
            settle_body(
                person.certno,
                f"{tag}{i:02d}",
                base=BIG_BASE,
                setl_time=f"2026-04-{i + 1:02d} 10:00:00",
                adm_date=f"2026-04-{i + 1:02d}",
            )
        ).encode()
        for i in range(THREADS)
    ]


@dataclass(frozen=True)
class YearTotals:
    state_total: int  # the locked year state
    state_records: int
    claims_total: int  # the claims' current prices
    claims: int  # every claim of the member (a record priced 0 at the cap is "rejected")
    priced_claims: int  # claims with a price above 0
    answered: int  # what the partner was told, summed


def totals(person: Person, replies: list[Reply | None]) -> YearTotals:
    row = BenefitYear.objects.get(person_index=person.member.id_number_index, product="inpatient")
    state = YearState.from_json(row.state)
    live = Claim.objects.filter(member=person.member).exclude(
        status__in=[ClaimStatus.REJECTED, ClaimStatus.CANCELLED]
    )
    answered = 0
    for reply in replies:
        if reply is not None and reply.status == 200:
            whole, _, cents = reply.body["benefit"].partition(".")
            answered += int(whole) * 100 + int(cents)
    return YearTotals(
        state_total=row.total_fen,
        state_records=len(state.records),
        claims_total=sum(c.benefit_fen for c in live),
        claims=Claim.objects.filter(member=person.member).count(),
        priced_claims=sum(1 for c in live if c.benefit_fen > 0),
        answered=answered,
    )


def _slow_lock(original: Callable[..., BenefitYear]) -> Callable[..., BenefitYear]:
    """The real lock, held a little longer: widens the window a missing lock would open."""

    def locked(*args: Any, **kwargs: Any) -> BenefitYear:
        row = original(*args, **kwargs)
        time.sleep(0.02)
        return row

    return locked


# --- the tests -----------------------------------------------------------------------------------
def test_parallel_settlements_for_one_member_never_exceed_the_cap(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "lock_year", _slow_lock(pricing.lock_year))
    run = race(cap_bodies(world.person, "CAP"), world.signer)
    assert run.errors == []
    assert [r.status for r in run.replies if r is not None] == [200] * THREADS
    result = totals(world.person, run.replies)
    assert result.state_total == CAP_FEN
    assert result.claims_total == CAP_FEN
    assert result.state_records == THREADS + 1 == result.claims
    assert Settlement.objects.count() == THREADS + 1
    assert ledger_clean()
    assert audit_problem() is None


def test_the_same_settlement_sent_eight_times_at_once_is_stored_once(world: World) -> None:
    body = json.dumps(settle_body(world.person.certno, "SAME", base="12000.00")).encode()
    run = race([body] * THREADS, world.signer)
    assert run.errors == []
    replies = [r for r in run.replies if r is not None]
    assert [r.status for r in replies] == [200] * THREADS
    assert all(r.body == replies[0].body for r in replies)
    assert replies[0].body["setl_id"] == "SAME"
    assert Settlement.objects.filter(setl_id="SAME").count() == 1
    assert Claim.objects.filter(record_key="SAME").count() == 1
    result = totals(world.person, [])
    assert result.state_records == 2  # FIRST and SAME
    assert ledger_clean()


@needs_postgres
def test_control_without_the_year_lock_the_cap_is_exceeded_or_records_are_lost(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    aligned = threading.Barrier(THREADS)

    def unlocked(insured: pricing.Insured, product: str, year: int) -> BenefitYear:
        row = BenefitYear.objects.get(person_index=insured.person_index, product=product, year=year)
        with contextlib.suppress(threading.BrokenBarrierError):
            aligned.wait(timeout=20)  # everybody has read the state before anybody writes
        return row

    monkeypatch.setattr(services, "lock_year", unlocked)
    monkeypatch.setattr(pricing, "lock_year", unlocked)
    run = race(cap_bodies(world.person, "RACE"), world.signer)
    assert run.errors == []
    result = totals(world.person, run.replies)
    exceeded = result.claims_total > CAP_FEN or result.answered > CAP_FEN
    lost = result.state_records < result.priced_claims
    assert exceeded or lost, f"without the lock nothing went wrong: {result}"
    # Each thread priced its record as if it were the only one after FIRST.
    assert result.answered > CAP_FEN
