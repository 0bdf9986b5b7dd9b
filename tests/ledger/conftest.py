from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from django.db import connection

from huzhu.ledger.models import Fund
from huzhu.ledger.services import fund_for
from huzhu.orgs.models import User
from tests import factories

# A past date in an ordinary month, so that periods before it can be closed in tests.
DAY = date(2025, 3, 10)


@pytest.fixture(autouse=True)
def _check_deferred_constraints(request: pytest.FixtureRequest) -> Iterator[None]:
    """On PostgreSQL the balance trigger is deferred to COMMIT, which a test in a rolled-back
    transaction never reaches: fire the pending checks at the end of every ledger test, so that
    every entry the services posted is also checked by the database."""
    yield
    if (
        "db" in request.fixturenames
        and connection.vendor == "postgresql"
        and connection.in_atomic_block
        and not connection.needs_rollback
    ):
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def fund(tree: factories.Tree) -> Fund:
    return fund_for(tree.province)


@pytest.fixture
def province_finance(tree: factories.Tree) -> User:
    return factories.staff(tree.province, "finance", username="prov_finance")


@pytest.fixture
def city_a_finance(tree: factories.Tree) -> User:
    return factories.staff(tree.city_a, "finance", username="city_a_finance")


@pytest.fixture
def city_b_finance(tree: factories.Tree) -> User:
    return factories.staff(tree.city_b, "finance", username="city_b_finance")


def fire_deferred_checks() -> None:
    """PostgreSQL: run the deferred balance checks of everything posted so far now (as COMMIT
    would), then defer again — before a test tampers with rows behind the triggers' back."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def drop_append_only_triggers(table: str) -> None:
    """Remove the protection of one ledger table (inside the test's transaction, so the
    rollback at the end of the test restores it)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        else:
            cursor.execute(f"DROP TRIGGER {table}_no_update")
            cursor.execute(f"DROP TRIGGER {table}_no_delete")
