"""Every read of members, scoped to the actor's organisation subtree (S5).

Lists use keyset pagination (``id < cursor``), never COUNT(*) over the table, so page views stay
fast with millions of members; sensitive ciphertext columns are deferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet

from huzhu.members.models import Consent, ConsentPurpose, HardshipRecord, Member
from huzhu.members.services import id_number_index
from huzhu.orgs.models import Union, User, subtree_q
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
    return len(t) == 18 and t.isascii() and t[:17].isdigit() and (t[17].isdigit() or t[17] == "X")


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


def _path_of(pk: int) -> str | None:
    return Member.objects.filter(pk=pk).values_list("union_path", flat=True).first()


def page_members(
    qs: QuerySet[Member], *, after: int | None, before: int | None, size: int
) -> MemberPage:
    """Members grouped by organisation (the tree's order, newest organisation first) and newest
    first within each — the order of the ``(union_path, id)`` index, so every page is an index
    range scan on SQLite and PostgreSQL alike, however large the subtree (no sort of the subtree,
    no COUNT(*)). ``after`` / ``before``: the id of the last / first row of the page shown.

    A cursor ``(path, id)`` is continued in two plain range queries (same organisation, lower
    ids; then earlier organisations) rather than one OR, which neither database turns into a
    single index range.
    """
    if before is not None:
        path = _path_of(before)
        if path is None:
            return MemberPage(rows=[], next_cursor=None, prev_cursor=None)
        forward = ("union_path", "pk")
        rows = list(qs.filter(union_path=path, pk__gt=before).order_by(*forward)[: size + 1])
        if len(rows) <= size:
            rows += list(qs.filter(union_path__gt=path).order_by(*forward)[: size + 1 - len(rows)])
        has_more_prev = len(rows) > size
        rows = list(reversed(rows[:size]))
        return MemberPage(
            rows=rows,
            next_cursor=rows[-1].pk if rows else None,
            prev_cursor=rows[0].pk if rows and has_more_prev else None,
        )
    backward = ("-union_path", "-pk")
    if after is None:
        rows = list(qs.order_by(*backward)[: size + 1])
    else:
        path = _path_of(after)
        if path is None:
            return MemberPage(rows=[], next_cursor=None, prev_cursor=None)
        rows = list(qs.filter(union_path=path, pk__lt=after).order_by(*backward)[: size + 1])
        if len(rows) <= size:
            rows += list(qs.filter(union_path__lt=path).order_by(*backward)[: size + 1 - len(rows)])
    has_next = len(rows) > size
    rows = rows[:size]
    return MemberPage(
        rows=rows,
        next_cursor=rows[-1].pk if rows and has_next else None,
        prev_cursor=rows[0].pk if rows and after is not None else None,
    )


def attach_flags(rows: list[Member], *, today: date) -> None:
    """Set ``hardship_now`` and ``consent_active`` on a page of members: two queries over the
    page's ids, instead of a correlated subquery per row (which PostgreSQL may plan as a scan of
    the whole hardship or consent table)."""
    ids = [m.pk for m in rows]
    hardship = set(
        HardshipRecord.objects.filter(member_id__in=ids, valid_from__lte=today)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=today))
        .values_list("member_id", flat=True)
    )
    consenting = set(
        Consent.objects.filter(
            member_id__in=ids, purpose=ConsentPurpose.MEDICAL_DATA, withdrawn_at__isnull=True
        ).values_list("member_id", flat=True)
    )
    for member in rows:
        member.hardship_now = member.pk in hardship  # type: ignore[attr-defined]
        member.consent_active = member.pk in consenting  # type: ignore[attr-defined]


def active_consent(purpose: str = ConsentPurpose.MEDICAL_DATA) -> Exists:
    """Members with an active (not withdrawn) consent for ``purpose`` (S12)."""
    return Exists(
        Consent.objects.filter(member=OuterRef("pk"), purpose=purpose, withdrawn_at__isnull=True)
    )


def members_within(actor: User, union: Union) -> QuerySet[Member]:
    """The actor's members enrolled through ``union`` or an organisation below it."""
    return members_for(actor).filter(subtree_q(union.path, "union_path"))
