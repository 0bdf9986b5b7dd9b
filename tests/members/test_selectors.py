"""Member reads: scoped to the subtree (S5), exact ID search through the blind index (S10),
filters, hardship as of a date, keyset pages with a fixed number of queries."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from huzhu.members.access import access_member
from huzhu.members.models import Member
from huzhu.members.selectors import (
    MemberFilter,
    looks_like_id_number,
    members_for,
    page_members,
    search_members,
)
from huzhu.members.services import record_hardship
from huzhu.orgs.access import NotPermitted
from tests import factories

TODAY = date(2026, 7, 1)


@pytest.fixture
def people(tree: factories.Tree) -> dict[str, Member]:
    return {
        "wang": factories.member(
            tree.grassroots_1, tree.unit_1, name="王强", number="430102197503010033"
        ),
        "wangfang": factories.member(tree.grassroots_1, tree.unit_1, name="王芳", male=False),
        "li": factories.member(
            tree.grassroots_2, tree.unit_2, name="李明", employment_type="dispatched"
        ),
        "zhao": factories.member(tree.grassroots_3, tree.unit_3, name="赵磊"),
    }


def _names(qs: object) -> set[str]:
    return {m.name for m in qs}  # type: ignore[attr-defined]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("org", "expected"),
    [
        ("province", {"王强", "王芳", "李明", "赵磊"}),
        ("city_a", {"王强", "王芳", "李明"}),
        ("county_a1", {"王强", "王芳"}),
        ("county_a2", {"李明"}),
        ("grassroots_3", {"赵磊"}),
    ],
)
def test_members_for_is_the_subtree(
    tree: factories.Tree, people: dict[str, Member], org: str, expected: set[str]
) -> None:
    actor = factories.staff(getattr(tree, org), "clerk")
    assert _names(members_for(actor)) == expected


@pytest.mark.django_db
def test_search_by_exact_id_number_within_scope(
    tree: factories.Tree, people: dict[str, Member]
) -> None:
    county = factories.staff(tree.county_a1, "clerk")
    sibling = factories.staff(tree.county_a2, "clerk")
    found = search_members(county, MemberFilter(q=" 430102197503010033 "), today=TODAY)
    assert [m.pk for m in found] == [people["wang"].pk]
    assert [
        m.pk
        for m in search_members(county, MemberFilter(q="430102197503010033".lower()), today=TODAY)
    ] == [people["wang"].pk]
    assert list(search_members(sibling, MemberFilter(q="430102197503010033"), today=TODAY)) == []
    # the plain ID never reaches the SQL: the search uses the blind index
    with CaptureQueriesContext(connection) as queries:
        list(search_members(county, MemberFilter(q="430102197503010033"), today=TODAY))
    assert "430102197503010033" not in " ".join(q["sql"] for q in queries)


@pytest.mark.django_db
def test_name_prefix_unit_employment_and_hardship_filters(
    tree: factories.Tree, people: dict[str, Member]
) -> None:
    actor = factories.staff(tree.province, "clerk")

    def names(**kwargs: object) -> set[str]:
        return _names(search_members(actor, MemberFilter(**kwargs), today=TODAY))  # type: ignore[arg-type]

    assert names(q="王") == {"王强", "王芳"}
    assert names(q="王芳") == {"王芳"}
    assert names(q="芳") == set()  # prefix, not substring
    assert names(unit_id=tree.unit_2.pk) == {"李明"}
    assert names(employment_type="dispatched") == {"李明"}
    record_hardship(
        acting_user=None,
        member=people["li"],
        source="civil_affairs",
        valid_from=date(2026, 7, 1),
        valid_to=None,
    )
    record_hardship(
        acting_user=None,
        member=people["zhao"],
        source="union_file",
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 6, 30),
    )
    assert names(hardship=True) == {"李明"}  # 赵磊's status ended the day before
    assert names(hardship=False) == {"王强", "王芳", "赵磊"}
    assert _names(search_members(actor, MemberFilter(hardship=True), today=date(2026, 6, 30))) == {
        "赵磊"
    }


def test_looks_like_id_number() -> None:
    assert looks_like_id_number("11010519491231002x")
    assert not looks_like_id_number("王强")
    assert not looks_like_id_number("4301021975030100")


@pytest.mark.django_db
def test_keyset_pages_newest_first_with_constant_queries(tree: factories.Tree) -> None:
    rows = [factories.member(tree.grassroots_1, tree.unit_1, name=f"职工{n:02d}") for n in range(7)]
    actor = factories.staff(tree.county_a1, "clerk")
    qs = search_members(actor, MemberFilter(), today=TODAY)
    with CaptureQueriesContext(connection) as queries:
        first = page_members(qs, after=None, before=None, size=3)
        names = [m.name for m in first.rows]
        units = [m.unit.name for m in first.rows if m.unit]  # select_related: no extra query
    assert len(queries) == 1
    assert names == ["职工06", "职工05", "职工04"] and len(units) == 3
    assert (first.prev_cursor, first.next_cursor) == (None, rows[4].pk)
    second = page_members(qs, after=first.next_cursor, before=None, size=3)
    assert [m.name for m in second.rows] == ["职工03", "职工02", "职工01"]
    assert (second.prev_cursor, second.next_cursor) == (rows[3].pk, rows[1].pk)
    last = page_members(qs, after=second.next_cursor, before=None, size=3)
    assert [m.name for m in last.rows] == ["职工00"] and last.next_cursor is None
    back = page_members(qs, after=None, before=second.prev_cursor, size=3)
    assert [m.name for m in back.rows] == ["职工06", "职工05", "职工04"]
    assert back.prev_cursor is None  # nothing newer


@pytest.mark.django_db
def test_lists_never_load_the_ciphertexts(tree: factories.Tree, people: dict[str, Member]) -> None:
    actor = factories.staff(tree.province, "clerk")
    with CaptureQueriesContext(connection) as queries:
        list(members_for(actor))
    assert "id_number_enc" not in queries[0]["sql"] and "phone_enc" not in queries[0]["sql"]


@pytest.mark.django_db
def test_access_member_answers_404_outside_the_subtree_or_without_permission(
    tree: factories.Tree, people: dict[str, Member]
) -> None:
    county = factories.staff(tree.county_a1, "clerk")
    assert access_member(county, people["wang"].pk) == people["wang"]
    for other in (people["li"], people["zhao"]):
        with pytest.raises(NotPermitted):
            access_member(county, other.pk)
    admin = factories.staff(tree.province, "sysadmin")  # 三员: no member data at all
    with pytest.raises(NotPermitted):
        access_member(admin, people["wang"].pk)
    with pytest.raises(NotPermitted):
        access_member(county, 10**9)
