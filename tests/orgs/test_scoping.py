"""S5/R16/R17: every level sees exactly its own subtree; outside it an object does not exist
(404). S6: the three administrators stay three accounts with no business permission."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from huzhu.orgs import selectors
from huzhu.orgs.access import NotPermitted, access_union, access_union_by_code, access_unit
from huzhu.orgs.models import Union, User, subtree_q
from huzhu.orgs.roles import ADMIN_ROLES, ROLE_PERMISSIONS, Perm, Role, check_separation
from tests import factories


def _names(qs: object) -> set[str]:
    return {u.name for u in qs}  # type: ignore[attr-defined]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("org", "expected"),
    [
        (
            "province",
            {
                "湖南省总工会",
                "长沙市总工会",
                "芙蓉区总工会",
                "天心区总工会",
                "芙蓉区某公司工会",
                "天心区某公司工会",
                "株洲市总工会",
                "荷塘区总工会",
                "荷塘区某公司工会",
            },
        ),
        (
            "city_a",
            {
                "长沙市总工会",
                "芙蓉区总工会",
                "天心区总工会",
                "芙蓉区某公司工会",
                "天心区某公司工会",
            },
        ),
        ("county_a1", {"芙蓉区总工会", "芙蓉区某公司工会"}),
        ("grassroots_1", {"芙蓉区某公司工会"}),
        ("city_b", {"株洲市总工会", "荷塘区总工会", "荷塘区某公司工会"}),
    ],
)
def test_unions_for_is_the_subtree(tree: factories.Tree, org: str, expected: set[str]) -> None:
    actor = factories.staff(getattr(tree, org), "clerk")
    assert _names(selectors.unions_for(actor)) == expected


@pytest.mark.django_db
def test_units_for_is_the_subtree(tree: factories.Tree) -> None:
    def units(org: Union) -> set[str]:
        return {u.name for u in selectors.units_for(factories.staff(org, "clerk"))}

    assert units(tree.province) == {"芙蓉某公司", "天心某公司", "荷塘某公司"}
    assert units(tree.city_a) == {"芙蓉某公司", "天心某公司"}
    assert units(tree.county_a2) == {"天心某公司"}
    assert units(tree.grassroots_3) == {"荷塘某公司"}


@pytest.mark.django_db
def test_sibling_paths_sharing_a_prefix_stay_apart(tree: factories.Tree) -> None:
    """Path "…/00000012/" must not match "…/00000123/" — the range query ends at the slash."""
    union = tree.county_a1
    siblings = list(Union.objects.filter(subtree_q(union.path)).values_list("path", flat=True))
    assert siblings and all(p.startswith(union.path) for p in siblings)
    fake = Union.objects.create(
        name="伪前缀",
        kind="county",
        parent=tree.city_a,
        code="999999",
        path=union.path[:-1] + "0/",
        depth=union.depth,
    )
    assert not Union.objects.filter(subtree_q(union.path), pk=fake.pk).exists()


@pytest.mark.django_db
def test_users_without_organisation_or_inactive_session_see_nothing(tree: factories.Tree) -> None:
    orphan = User.objects.create_user("orphan", "x")
    assert list(selectors.unions_for(orphan)) == []
    assert list(selectors.units_for(orphan)) == []
    assert selectors.scope_path(orphan) is None


@pytest.mark.django_db
def test_children_ancestors_and_enrolling_unions(tree: factories.Tree) -> None:
    actor = factories.staff(tree.province, "clerk")
    assert _names(selectors.children_of(actor, tree.city_a)) == {"天心区总工会", "芙蓉区总工会"}
    with CaptureQueriesContext(connection) as queries:
        chain = selectors.ancestors_of(tree.grassroots_1)
    assert [u.name for u in chain] == [
        "湖南省总工会",
        "长沙市总工会",
        "芙蓉区总工会",
        "芙蓉区某公司工会",
    ]
    assert len(queries) == 1
    county_actor = factories.staff(tree.county_a1, "clerk")
    assert _names(selectors.enrolling_unions_for(county_actor)) == {"芙蓉区某公司工会"}
    # a county clerk cannot list the children of an organisation outside the subtree
    assert list(selectors.children_of(county_actor, tree.city_b)) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("actor_org", "target", "visible"),
    [
        ("county_a1", "county_a1", True),  # own
        ("county_a1", "grassroots_1", True),  # child
        ("county_a1", "county_a2", False),  # sibling
        ("county_a1", "city_a", False),  # parent
        ("county_a1", "grassroots_3", False),  # another city
        ("province", "grassroots_3", True),
    ],
)
def test_access_union_and_unit_answer_404_outside_the_subtree(
    tree: factories.Tree, actor_org: str, target: str, visible: bool
) -> None:
    actor = factories.staff(getattr(tree, actor_org), "clerk")
    union = getattr(tree, target)
    if visible:
        assert access_union(actor, union.pk) == union
        assert access_union_by_code(actor, union.code) == union
    else:
        with pytest.raises(Http404):
            access_union(actor, union.pk)
        with pytest.raises(NotPermitted):
            access_union_by_code(actor, union.code)
    unit = {"grassroots_1": tree.unit_1, "grassroots_3": tree.unit_3}.get(target)
    if unit is not None:
        if visible:
            assert access_unit(actor, unit.pk) == unit
        else:
            with pytest.raises(NotPermitted):
                access_unit(actor, unit.pk)


@pytest.mark.django_db
def test_access_requires_the_permission(tree: factories.Tree) -> None:
    planner = factories.staff(tree.province, "plan_manager")  # no org.view
    with pytest.raises(NotPermitted):
        access_union(planner, tree.province.pk)
    clerk = factories.staff(tree.province, "auditor")  # may view, may not edit
    assert access_union(clerk, tree.city_a.pk) == tree.city_a
    with pytest.raises(NotPermitted):
        access_union(clerk, tree.city_a.pk, Perm.ORG_EDIT)
    with pytest.raises(NotPermitted):
        access_union(clerk, 10**9)


# --- 三员分立 (S6) ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({"sysadmin"}, None),
        ({"secadmin"}, None),
        ({"auditadmin"}, None),
        ({"clerk", "reviewer", "finance", "auditor", "plan_manager"}, None),
        (set(), None),
        (
            {"sysadmin", "secadmin"},
            "系统管理员、安全管理员、审计管理员必须由三个不同的账号担任（三员分立）",
        ),
        (
            {"secadmin", "auditadmin"},
            "系统管理员、安全管理员、审计管理员必须由三个不同的账号担任（三员分立）",
        ),
        ({"sysadmin", "clerk"}, "管理员账号不能同时担任业务角色（三员分立）"),
        ({"auditadmin", "auditor"}, "管理员账号不能同时担任业务角色（三员分立）"),
    ],
)
def test_separation_of_the_three_administrators(roles: set[str], message: str | None) -> None:
    assert check_separation(roles) == message


def test_administrators_hold_no_business_permission_and_only_auditadmin_reads_the_log() -> None:
    business = {
        Perm.MEMBER_VIEW,
        Perm.MEMBER_EDIT,
        Perm.MEMBER_UNMASK,
        Perm.UNIT_EDIT,
        Perm.ORG_EDIT,
        Perm.PLAN_IMPORT,
        Perm.PLAN_ACTIVATE,
    }
    for role in ADMIN_ROLES:
        assert not ROLE_PERMISSIONS[role] & business
    readers = {role for role, perms in ROLE_PERMISSIONS.items() if Perm.AUDIT_VIEW in perms}
    assert readers == {Role.AUDIT_ADMIN}
    managers = {role for role, perms in ROLE_PERMISSIONS.items() if Perm.USER_MANAGE in perms}
    assert managers == {Role.SYSTEM_ADMIN}
    role_managers = {r for r, perms in ROLE_PERMISSIONS.items() if Perm.ROLE_MANAGE in perms}
    assert role_managers == {Role.SECURITY_ADMIN}
    assert Perm.MEMBER_UNMASK not in ROLE_PERMISSIONS[Role.AUDITOR]  # read-only, masked only
