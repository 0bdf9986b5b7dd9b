"""Keyset pagination on the primary key, newest first: no OFFSET and no COUNT(*), so a page costs
the same on the first page and the ten-thousandth, with millions of rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db import models
from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class KeysetPage(Generic[M]):
    rows: list[M]
    next_cursor: int | None  # the id to pass as ``after`` for the next (older) page
    prev_cursor: int | None  # the id to pass as ``before`` for the previous (newer) page


def keyset_page(
    qs: QuerySet[M], *, after: int | None, before: int | None, size: int
) -> KeysetPage[M]:
    """``after``: rows with ids below the cursor; ``before``: the page above the cursor."""
    if before is not None:
        rows = list(qs.filter(pk__gt=before).order_by("pk")[: size + 1])
        has_prev = len(rows) > size
        rows = list(reversed(rows[:size]))
        return KeysetPage(
            rows=rows,
            next_cursor=rows[-1].pk if rows else None,
            prev_cursor=rows[0].pk if rows and has_prev else None,
        )
    base = qs.filter(pk__lt=after) if after is not None else qs
    rows = list(base.order_by("-pk")[: size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows=rows,
        next_cursor=rows[-1].pk if rows and has_next else None,
        prev_cursor=rows[0].pk if rows and after is not None else None,
    )
