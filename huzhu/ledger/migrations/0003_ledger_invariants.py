"""The ledger's invariants in the database itself (S15, ARCHITECTURE.md convention 4).

Both databases: entries, lines and closed periods are append-only (UPDATE and DELETE refused), and
an entry dated in a closed period is refused. PostgreSQL also checks, at commit (a DEFERRABLE
INITIALLY DEFERRED constraint trigger, since an entry's lines are inserted after the entry), that
every entry has at least two lines and that its debits equal its credits and its ``total_fen``.
SQLite has no deferred triggers: there the posting service enforces balance and ``huzhu
verify-ledger`` re-checks it.

TRUNCATE is not trapped: the application's database role should not hold TRUNCATE (a truncated
ledger would still be found by ``verify-ledger``: its numbering counters no longer match).

SQLite drops a table's triggers when Django rebuilds the table for an ALTER: a later migration
that alters one of these tables must create the triggers again (``verify-ledger`` reports a
missing trigger).
"""

from typing import Any

from django.db import migrations

APPEND_ONLY_TABLES = ["ledger_journalentry", "ledger_journalline", "ledger_closedperiod"]

SQLITE = [
    sql
    for table in APPEND_ONLY_TABLES
    for sql in (
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, 'ledger table {table} is append-only'); END;""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'ledger table {table} is append-only'); END;""",
    )
] + [
    """CREATE TRIGGER IF NOT EXISTS ledger_journalentry_period_open
       BEFORE INSERT ON ledger_journalentry
       WHEN EXISTS (SELECT 1 FROM ledger_closedperiod
                    WHERE fund_id = NEW.fund_id AND period = NEW.period)
       BEGIN SELECT RAISE(ABORT, 'accounting period is closed'); END;""",
]
SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {table}_{what};"
    for table in APPEND_ONLY_TABLES
    for what in ("no_update", "no_delete")
] + ["DROP TRIGGER IF EXISTS ledger_journalentry_period_open;"]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'ledger table % is append-only', TG_TABLE_NAME
             USING ERRCODE = 'integrity_constraint_violation'; END;
       $$ LANGUAGE plpgsql;""",
    """CREATE OR REPLACE FUNCTION ledger_check_entry_balanced() RETURNS trigger AS $$
       DECLARE
         eid bigint; n integer; d bigint; c bigint; t bigint;
       BEGIN
         IF TG_TABLE_NAME = 'ledger_journalentry' THEN eid := NEW.id;
         ELSE eid := NEW.entry_id; END IF;
         SELECT total_fen INTO t FROM ledger_journalentry WHERE id = eid;
         SELECT count(*), coalesce(sum(debit_fen), 0), coalesce(sum(credit_fen), 0)
           INTO n, d, c FROM ledger_journalline WHERE entry_id = eid;
         IF n < 2 THEN
           RAISE EXCEPTION 'journal entry % has % line(s); at least 2 are required', eid, n
             USING ERRCODE = 'check_violation';
         END IF;
         IF d <> c THEN
           RAISE EXCEPTION 'journal entry % is unbalanced: debits % <> credits %', eid, d, c
             USING ERRCODE = 'check_violation';
         END IF;
         IF d <> t THEN
           RAISE EXCEPTION 'journal entry % lines total % <> entry total %', eid, d, t
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NULL;
       END;
       $$ LANGUAGE plpgsql;""",
    """CREATE OR REPLACE FUNCTION ledger_refuse_closed_period() RETURNS trigger AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM ledger_closedperiod
                    WHERE fund_id = NEW.fund_id AND period = NEW.period) THEN
           RAISE EXCEPTION 'accounting period % is closed', NEW.period
             USING ERRCODE = 'check_violation';
         END IF;
         RETURN NEW;
       END;
       $$ LANGUAGE plpgsql;""",
    *[
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION ledger_append_only();"""
        for table in APPEND_ONLY_TABLES
    ],
    """CREATE CONSTRAINT TRIGGER ledger_journalentry_balanced
       AFTER INSERT ON ledger_journalentry DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();""",
    """CREATE CONSTRAINT TRIGGER ledger_journalline_balanced
       AFTER INSERT ON ledger_journalline DEFERRABLE INITIALLY DEFERRED
       FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();""",
    """CREATE TRIGGER ledger_journalentry_period_open BEFORE INSERT ON ledger_journalentry
       FOR EACH ROW EXECUTE FUNCTION ledger_refuse_closed_period();""",
]
POSTGRES_REVERSE = [
    *[f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in APPEND_ONLY_TABLES],
    "DROP TRIGGER IF EXISTS ledger_journalentry_balanced ON ledger_journalentry;",
    "DROP TRIGGER IF EXISTS ledger_journalline_balanced ON ledger_journalline;",
    "DROP TRIGGER IF EXISTS ledger_journalentry_period_open ON ledger_journalentry;",
    "DROP FUNCTION IF EXISTS ledger_check_entry_balanced();",
    "DROP FUNCTION IF EXISTS ledger_refuse_closed_period();",
    "DROP FUNCTION IF EXISTS ledger_append_only();",
]


def _run(statements: dict[str, list[str]]) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            # params=None: no %-placeholder parsing (PL/pgSQL RAISE uses %)
            schema_editor.execute(sql, params=None)

    return apply


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_chart_of_accounts")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRES}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}),
        )
    ]
