"""Set-based inserts for roster confirmation: one ``executemany`` (SQLite) or one ``COPY``
(PostgreSQL) per table and chunk.

Django's ``bulk_create`` prepares every value of every row through the field machinery and
compiles one statement per 999 parameters on SQLite; on a 100,000-row roster that is most of the
time (bench/bench_roster.py). Here the caller gives database-ready values for the columns it
sets, the remaining columns get their field defaults (so a field added to a model later is still
filled), and the rows go to the database in a single prepared statement per table. Constraints,
triggers and transactions are the database's as with the ORM; nothing here skips a check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED

EXECUTEMANY_ROWS = 5000


def _defaults(model: type[models.Model], columns: Sequence[str]) -> tuple[list[str], list[Any]]:
    """The other concrete columns of ``model`` and their default values, database-ready."""
    names: list[str] = []
    values: list[Any] = []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname in columns or field.name in columns:
            continue
        if field.has_default() or field.null:
            default = field.get_default() if field.has_default() else None
        elif field.blank and isinstance(field, (models.CharField, models.TextField)):
            default = ""
        else:
            raise ValueError(f"{model._meta.label}.{field.name} has no default: give a value")
        if default is NOT_PROVIDED:  # pragma: no cover - has_default() excludes it
            default = None
        names.append(str(field.column))
        values.append(field.get_db_prep_save(default, connection) if default is not None else None)
    return names, values


def insert_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Insert ``rows`` (database-ready values for ``columns``, by attribute name) into
    ``model``'s table; columns not given take their defaults. Returns the number of rows."""
    if not rows:
        return 0
    meta = model._meta
    given = [str(getattr(meta.get_field(name), "column", name)) for name in columns]
    extra_columns, extra_values = _defaults(model, columns)
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in [*given, *extra_columns])
    marks = ", ".join(["%s"] * (len(given) + len(extra_columns)))
    # Identifiers come from the model metadata (quoted), values are bound parameters.
    sql = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({marks})"  # noqa: S608
    extra = tuple(extra_values)
    if connection.vendor == "postgresql":
        # COPY: one stream per table and chunk instead of one INSERT statement per row.
        copy_sql = f"COPY {quote(meta.db_table)} ({names}) FROM STDIN"
        # Errors are translated as Django's (IntegrityError for a violated constraint).
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(copy_sql) as copy,
        ):
            for row in rows:
                copy.write_row((*row, *extra) if extra else row)
        return len(rows)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), EXECUTEMANY_ROWS):
            chunk = rows[start : start + EXECUTEMANY_ROWS]
            cursor.executemany(sql, [(*row, *extra) for row in chunk] if extra else chunk)
    return len(rows)


LOOKUP_CHUNK = 900  # bound parameters per statement (SQLite builds limited to 999)


def lookup_in(sql: str, values: Sequence[Any], *params: Any) -> list[tuple[Any, ...]]:
    """Run ``sql`` (with ``{marks}`` where the IN-list goes, and ``%s`` for ``params`` after it)
    for ``values`` in chunks; one round trip per 900 values, no ORM query building per chunk."""
    found: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for start in range(0, len(values), LOOKUP_CHUNK):
            chunk = list(values[start : start + LOOKUP_CHUNK])
            cursor.execute(sql.format(marks=", ".join(["%s"] * len(chunk))), [*chunk, *params])
            found.extend(cursor.fetchall())
    return found


def tune_bulk_session() -> None:
    """A larger page cache for this connection during a bulk write on SQLite: the blind-index
    B-trees of a large roster outgrow the 2 MB default and every insert would hit the disk."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size = -131072")  # 128 MiB
