"""The SQLite guard triggers survive a table rebuild (huzhu.core.triggers)."""

from __future__ import annotations

import pytest
from django.db import connection

from huzhu.core.triggers import ensure_sqlite_guards, sqlite_guard_statements


def _trigger_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {row[0] for row in cursor.fetchall()}


def _expected() -> set[str]:
    return {sql.split("IF NOT EXISTS", 1)[1].split()[0] for sql in sqlite_guard_statements()}


@pytest.mark.django_db
def test_guards_are_installed_and_restored_after_a_rebuild() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: PostgreSQL keeps triggers across ALTER TABLE")
    expected = _expected()
    assert {"core_auditevent_no_update", "core_auditevent_no_delete"} <= expected
    assert expected <= _trigger_names()
    # What a table rebuild does to triggers: they are gone …
    with connection.cursor() as cursor:
        for name in expected:
            cursor.execute(f'DROP TRIGGER "{name}"')
    assert not (expected & _trigger_names())
    # … and the post_migrate hook puts every one of them back.
    ensure_sqlite_guards(using="default")
    assert expected <= _trigger_names()
