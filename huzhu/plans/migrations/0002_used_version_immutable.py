"""A plan version that has priced a benefit never changes (ARCHITECTURE.md convention 2).

Once ``used_at`` is set, the database itself refuses any UPDATE of the version's rules (parameters,
source text, hash, code, name, region, year, dates, lineage) or of ``used_at``, and any DELETE of the
row — on SQLite and PostgreSQL alike, so that neither a bug nor a hand-written SQL statement can
change the rules behind a benefit that was paid. Status changes (activate, retire) stay possible.
"""

from typing import Any

from django.db import migrations

# Columns frozen once the version is used.
FROZEN = (
    "code",
    "name",
    "region",
    "year",
    "effective_from",
    "starts_on",
    "source_yaml",
    "source_filename",
    "parameters",
    "parameters_hash",
    "previous_id",
    "imported_by_id",
    "imported_at",
    "used_at",
)

_SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in FROZEN)
_PG_CHANGED = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in FROZEN)

SQLITE = [
    f"""CREATE TRIGGER IF NOT EXISTS plans_planversion_used_no_update
        BEFORE UPDATE ON plans_planversion
        WHEN OLD.used_at IS NOT NULL AND ({_SQLITE_CHANGED})
        BEGIN SELECT RAISE(ABORT, 'plan version is used and cannot change'); END;""",
    """CREATE TRIGGER IF NOT EXISTS plans_planversion_used_no_delete
       BEFORE DELETE ON plans_planversion
       WHEN OLD.used_at IS NOT NULL
       BEGIN SELECT RAISE(ABORT, 'plan version is used and cannot be deleted'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS plans_planversion_used_no_update;",
    "DROP TRIGGER IF EXISTS plans_planversion_used_no_delete;",
]
POSTGRES = [
    f"""CREATE OR REPLACE FUNCTION plans_planversion_used_immutable() RETURNS trigger AS $$
        BEGIN
          IF TG_OP = 'DELETE' THEN
            IF OLD.used_at IS NOT NULL THEN
              RAISE EXCEPTION 'plan version % is used and cannot be deleted', OLD.code
                USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN OLD;
          END IF;
          IF OLD.used_at IS NOT NULL AND ({_PG_CHANGED}) THEN
            RAISE EXCEPTION 'plan version % is used and cannot change', OLD.code
              USING ERRCODE = 'integrity_constraint_violation';
          END IF;
          RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER plans_planversion_used_immutable
       BEFORE UPDATE OR DELETE ON plans_planversion
       FOR EACH ROW EXECUTE FUNCTION plans_planversion_used_immutable();""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS plans_planversion_used_immutable ON plans_planversion;",
    "DROP FUNCTION IF EXISTS plans_planversion_used_immutable();",
]


def _run(statements: dict[str, list[str]]) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)  # PL/pgSQL RAISE uses %: no placeholders

    return apply


class Migration(migrations.Migration):
    dependencies = [("plans", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRES}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}),
        )
    ]
