"""Keep the SQLite guard triggers in place after every migration.

SQLite cannot ALTER most things in place, so Django rebuilds a table (create new, copy, drop old,
rename) for many schema changes — and dropping the old table drops its triggers. A later migration
that touches a guarded table would silently remove the append-only and immutability guards. After
every ``migrate`` this hook re-runs the (idempotent, ``IF NOT EXISTS``) trigger statements of the
migrations that created them. PostgreSQL keeps triggers across ALTER TABLE and needs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.db import connections

# (migration module, name of its list of SQLite statements)
GUARD_MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("huzhu.core.migrations.0002_audit_append_only", "SQLITE"),
    ("huzhu.plans.migrations.0002_used_version_immutable", "SQLITE"),
    ("huzhu.ledger.migrations.0003_ledger_invariants", "SQLITE"),
)


def sqlite_guard_statements() -> list[str]:
    statements: list[str] = []
    for module_name, attribute in GUARD_MIGRATIONS:
        module = importlib.import_module(module_name)
        statements.extend(getattr(module, attribute))
    return statements


def ensure_sqlite_guards(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {row[0] for row in cursor.fetchall()}
        for sql in sqlite_guard_statements():
            table = sql.split(" ON ", 1)[1].split()[0]
            if table in tables:  # a partly migrated database has not every table yet
                cursor.execute(sql)
