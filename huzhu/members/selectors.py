"""Every read of members, scoped to the actor's organisation subtree (S5).

Lists use keyset pagination (``id < cursor``), never COUNT(*) over the table, so page views stay
fast with millions of members; sensitive ciphertext columns are deferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet

from huzhu.members.models import HardshipRecord, Member
from huzhu.members.services import id_number_index
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.selectors import scope_path

_DEFERRED = ("id_number_enc", "phone_enc", "bank_account_enc")


def members_for(actor: User) -> QuerySet[Member]:
    path = scope_path(actor)
    if path is None:
        return Member.objects.none()
    return Member.objects.filter(subtree_q(path, "union_path")).defer(*_DEFERRED)


def hardship_on(day: date) -> Exists:
    return Exists(
        HardshipRecord.objects.filter(member=OuterRef("pk"), valid_from__lte=day).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=day)
        )
    )


@dataclass(frozen=True)
class MemberFilter:
    q: str = ""
    unit_id: int | None = None
    employment_type: str = ""
    hardship: bool | None = None


@dataclass(frozen=True)
class MemberPage:
    rows: list[Member]
    next_cursor: int | None
    prev_cursor: int | None


def looks_like_id_number(text: str) -> bool:
    t = text.strip().upper()
    return len(t) == 18 and t[:17].isdigit() and (t[17].isdigit() or t[17] == "X")


def search_members(actor: User, flt: MemberFilter, *, today: date) -> QuerySet[Member]:
    qs = members_for(actor).select_related("unit", "union")
    text = flt.q.strip()
    if text:
        if looks_like_id_number(text):
            qs = qs.filter(id_number_index=id_number_index(text))
        else:
            qs = qs.filter(name__startswith=text)
    if flt.unit_id:
        qs = qs.filter(unit_id=flt.unit_id)
    if flt.employment_type:
        qs = qs.filter(employment_type=flt.employment_type)
    if flt.hardship is True:
        qs = qs.filter(hardship_on(today))
    elif flt.hardship is False:
        qs = qs.exclude(hardship_on(today))
    return qs


def page_members(
    qs: QuerySet[Member], *, after: int | None, before: int | None, size: int
) -> MemberPage:
    """Newest first. ``after``: ids below the cursor; ``before``: the previous page."""
    if before is not None:
        rows = list(qs.filter(pk__gt=before).order_by("pk")[: size + 1])
        has_more_prev = len(rows) > size
        rows = list(reversed(rows[:size]))
        return MemberPage(
            rows=rows,
            next_cursor=rows[-1].pk if rows else None,
            prev_cursor=rows[0].pk if rows and has_more_prev else None,
        )
    base = qs.filter(pk__lt=after) if after is not None else qs
    rows = list(base.order_by("-pk")[: size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    return MemberPage(
        rows=rows,
        next_cursor=rows[-1].pk if rows and has_next else None,
        prev_cursor=rows[0].pk if rows and after is not None else None,
    )
