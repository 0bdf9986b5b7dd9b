"""Keyset paging across organisations (huzhu.members.selectors.page_members)."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from huzhu.members.models import Member
from huzhu.members.selectors import attach_flags, members_for, page_members
from huzhu.members.services import record_hardship
from tests import factories


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_pages_walk_every_member_once_in_index_order(tree, size: int) -> None:
    for union, unit in [(tree.grassroots_1, tree.unit_1), (tree.grassroots_2, tree.unit_2)]:
        for i in range(4):
            factories.member(union, unit, name=f"职工{i}")
    actor = factories.staff(tree.city_a, "clerk")
    qs = members_for(actor)
    expected = list(Member.objects.order_by("-union_path", "-pk").values_list("pk", flat=True))
    seen: list[int] = []
    pages = []
    cursor = None
    while True:
        page = page_members(qs, after=cursor, before=None, size=size)
        pages.append(page)
        seen += [m.pk for m in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected
    assert len(set(seen)) == 8
    # Walking back with `before` gives the same pages in reverse.
    for previous, current in itertools.pairwise(pages):
        assert current.prev_cursor is not None
        back = page_members(qs, after=None, before=current.prev_cursor, size=size)
        assert [m.pk for m in back.rows] == [m.pk for m in previous.rows]


def test_a_cursor_outside_the_scope_gives_an_empty_page(tree) -> None:
    outsider = factories.member(tree.grassroots_3, tree.unit_3)
    factories.member(tree.grassroots_1, tree.unit_1)
    actor = factories.staff(tree.county_a1, "clerk")
    page = page_members(members_for(actor), after=outsider.pk + 1000, before=None, size=5)
    assert page.rows == []


def test_flags_for_a_page_in_two_queries(tree, django_assert_num_queries) -> None:
    a = factories.member(tree.grassroots_1, tree.unit_1)
    b = factories.member(tree.grassroots_1, tree.unit_1)
    record_hardship(
        acting_user=None, member=a, source="union_file", valid_from=date(2026, 1, 1), valid_to=None
    )
    rows = list(Member.objects.filter(pk__in=[a.pk, b.pk]).order_by("pk"))
    with django_assert_num_queries(2):
        attach_flags(rows, today=date(2026, 6, 1))
    assert [(m.hardship_now, m.consent_active) for m in rows] == [(True, False), (False, False)]
