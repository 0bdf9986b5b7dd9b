"""Organisation, unit and account services: exact results, Chinese errors (all at once), and
nothing written on a failure path."""

from __future__ import annotations

from typing import Any

import pytest

from huzhu.core.audit import Event
from huzhu.core.errors import ErrorCode, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.models import ApiToken, Union, Unit, User, UserRole
from huzhu.orgs.roles import Role
from huzhu.orgs.services import (
    create_api_token,
    create_staff_user,
    create_union,
    create_unit,
    set_roles,
    update_unit,
)
from tests import factories

UNION_USCC = "81430100MA4L00003R"
UNIT_USCC = "91110000600037341L"


def _snapshot() -> tuple[Any, ...]:
    return (
        list(Union.objects.order_by("pk").values_list("pk", "name", "path", "code")),
        list(Unit.objects.order_by("pk").values_list("pk", "name", "uscc", "union_id")),
        list(User.objects.order_by("pk").values_list("pk", "username")),
        list(UserRole.objects.order_by("pk").values_list("user_id", "role")),
        AuditEvent.objects.count(),
    )


def _errors(caught: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str, ErrorCode]]:
    return [(e.field, e.message, e.code) for e in caught.value.errors]


# --- unions ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_union_builds_the_materialised_path_and_audits() -> None:
    province = create_union(
        acting_user=None,
        parent=None,
        name=" 湖南省总工会 ",
        kind="provincial",
        region_code="430000",
    )
    city = create_union(
        acting_user=None, parent=province, name="长沙市总工会", kind="city", region_code="430100"
    )
    grassroots = create_union(
        acting_user=None, parent=city, name="某公司工会", kind="grassroots", uscc=UNION_USCC.lower()
    )
    assert (province.name, province.code, province.depth, province.uscc) == (
        "湖南省总工会",
        "430000",
        0,
        None,
    )
    assert province.path == f"{province.pk:08d}/"
    assert city.path == f"{province.pk:08d}/{city.pk:08d}/" and city.depth == 1
    assert grassroots.path == city.path + f"{grassroots.pk:08d}/"
    assert (grassroots.code, grassroots.uscc, grassroots.depth) == (UNION_USCC, UNION_USCC, 2)
    assert Union.objects.get(pk=grassroots.pk).path == grassroots.path
    assert grassroots.can_enroll and not city.can_enroll
    events = AuditEvent.objects.filter(event=Event.ORG_CREATED).order_by("seq")
    assert [(e.object_id, e.organisation_id, e.detail) for e in events] == [
        (str(province.pk), province.pk, {"name": "湖南省总工会", "kind": "provincial"}),
        (str(city.pk), city.pk, {"name": "长沙市总工会", "kind": "city"}),
        (str(grassroots.pk), grassroots.pk, {"name": "某公司工会", "kind": "grassroots"}),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"name": " ", "kind": "provincial", "region_code": "430000"},
            [("name", "名称不能为空", ErrorCode.REQUIRED)],
        ),
        (
            {"name": "省总", "kind": "ministry", "region_code": "430000"},
            [("kind", "组织类型无效", ErrorCode.INVALID)],
        ),
        (
            {"name": "省总", "kind": "provincial", "region_code": "43000"},
            [("region_code", "行政区划代码应为6位数字（GB/T 2260）", ErrorCode.INVALID)],
        ),
        (
            {"name": "省总", "kind": "city", "region_code": "430500"},
            [("kind", "（无上级）下不能设立市（州）总工会", ErrorCode.INVALID)],
        ),
        (
            {"name": "省总", "kind": "provincial"},
            [
                (
                    "region_code",
                    "非基层工会须填写行政区划代码或统一社会信用代码",
                    ErrorCode.REQUIRED,
                )
            ],
        ),
    ],
)
def test_create_union_errors(kwargs: dict[str, Any], expected: list[Any]) -> None:
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_union(acting_user=None, parent=None, **kwargs)
    assert _errors(caught) == expected
    assert _snapshot() == before


@pytest.mark.django_db
def test_grassroots_union_needs_an_81_uscc_and_every_error_comes_at_once(
    tree: factories.Tree,
) -> None:
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_union(acting_user=None, parent=tree.county_a1, name="", kind="grassroots")
    assert _errors(caught) == [
        ("name", "名称不能为空", ErrorCode.REQUIRED),
        ("uscc", "基层工会必须填写统一社会信用代码", ErrorCode.REQUIRED),
    ]
    with pytest.raises(InvalidInput) as caught:
        create_union(
            acting_user=None,
            parent=tree.county_a1,
            name="某厂工会",
            kind="grassroots",
            uscc=UNIT_USCC,
        )
    assert _errors(caught) == [
        ("uscc", "基层工会的统一社会信用代码应以“81”开头（工会、基层工会）", ErrorCode.INVALID)
    ]
    with pytest.raises(InvalidInput) as caught:
        create_union(
            acting_user=None,
            parent=tree.county_a1,
            name="某厂工会",
            kind="grassroots",
            uscc=UNION_USCC[:-1] + "0",
        )
    assert _errors(caught) == [("uscc", "统一社会信用代码校验位不正确", ErrorCode.INVALID)]
    assert _snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("parent_attr", "kind", "allowed"),
    [
        ("province", "city", True),
        ("province", "county", False),
        ("province", "grassroots", False),
        ("city_a", "county", True),
        ("city_a", "grassroots", True),
        ("county_a1", "grassroots", True),
        ("county_a1", "city", False),
        ("grassroots_1", "grassroots", False),
        ("grassroots_1", "federation", False),
    ],
)
def test_which_kind_may_sit_under_which(
    tree: factories.Tree, parent_attr: str, kind: str, allowed: bool
) -> None:
    parent = getattr(tree, parent_attr)
    uscc = factories.uscc("81430100") if kind == "grassroots" else None
    kwargs = {"uscc": uscc} if uscc else {"region_code": "431300"}
    if allowed:
        union = create_union(acting_user=None, parent=parent, name="新组织", kind=kind, **kwargs)
        assert union.parent_id == parent.pk and union.path.startswith(parent.path)
    else:
        with pytest.raises(InvalidInput) as caught:
            create_union(acting_user=None, parent=parent, name="新组织", kind=kind, **kwargs)
        assert [e.field for e in caught.value.errors] == ["kind"]
        assert caught.value.errors[0].message.endswith("下不能设立" + _label(kind))


def _label(kind: str) -> str:
    from huzhu.orgs.models import UnionKind

    return str(UnionKind(kind).label)


@pytest.mark.django_db
def test_duplicate_union_code_is_refused(tree: factories.Tree) -> None:
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_union(
            acting_user=None, parent=tree.province, name="又一个", kind="city", region_code="430100"
        )
    assert _errors(caught) == [("region_code", "该代码已被其他组织使用", ErrorCode.DUPLICATE)]
    assert _snapshot() == before


# --- units -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_unit(tree: factories.Tree) -> None:
    unit = create_unit(
        acting_user=None,
        union=tree.grassroots_1,
        name=" 湖南某某科技有限公司 ",
        uscc=UNIT_USCC.lower(),
        industry="制造业",
    )
    assert (unit.name, unit.uscc, unit.union_id, unit.union_path, unit.industry) == (
        "湖南某某科技有限公司",
        UNIT_USCC,
        tree.grassroots_1.pk,
        tree.grassroots_1.path,
        "制造业",
    )
    event = AuditEvent.objects.get(event=Event.UNIT_CREATED, object_id=str(unit.pk))
    assert (event.organisation_id, event.detail) == (
        tree.grassroots_1.pk,
        {"name": "湖南某某科技有限公司"},
    )


@pytest.mark.django_db
def test_create_unit_errors_all_at_once(tree: factories.Tree) -> None:
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_unit(acting_user=None, union=tree.county_a1, name="", uscc="123")
    assert _errors(caught) == [
        ("name", "单位名称不能为空", ErrorCode.REQUIRED),
        ("uscc", "统一社会信用代码应为18位，实际为3位", ErrorCode.INVALID),
        ("union", "单位只能隶属于基层工会或工会联合会", ErrorCode.INVALID),
    ]
    with pytest.raises(InvalidInput) as caught:
        create_unit(acting_user=None, union=tree.grassroots_2, name="重复", uscc=tree.unit_1.uscc)
    assert _errors(caught) == [("uscc", "该统一社会信用代码已登记为其他单位", ErrorCode.DUPLICATE)]
    assert _snapshot() == before


@pytest.mark.django_db
def test_update_unit_moves_it_and_lists_the_changes(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.city_a, "clerk")
    unit = update_unit(
        acting_user=clerk,
        unit=tree.unit_1,
        name="芙蓉某公司（更名）",
        uscc=tree.unit_1.uscc,
        union=tree.grassroots_2,
        address="长沙市天心区某路1号",
    )
    stored = Unit.objects.get(pk=unit.pk)
    assert (stored.name, stored.union_id, stored.union_path, stored.address) == (
        "芙蓉某公司（更名）",
        tree.grassroots_2.pk,
        tree.grassroots_2.path,
        "长沙市天心区某路1号",
    )
    event = AuditEvent.objects.get(event=Event.UNIT_UPDATED)
    assert event.detail == {"changed": ["name", "address", "union"]}
    assert event.actor_id == clerk.pk


@pytest.mark.django_db
def test_update_unit_refuses_another_units_code_and_changes_nothing(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.city_a, "clerk")
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        update_unit(
            acting_user=clerk,
            unit=tree.unit_1,
            name="新名",
            uscc=tree.unit_2.uscc,
            union=tree.grassroots_1,
        )
    assert _errors(caught) == [("uscc", "该统一社会信用代码已登记为其他单位", ErrorCode.DUPLICATE)]
    assert _snapshot() == before
    tree.unit_1.refresh_from_db()
    assert tree.unit_1.name == "芙蓉某公司"


# --- staff accounts and roles ----------------------------------------------------------------
@pytest.mark.django_db
def test_create_staff_user(tree: factories.Tree) -> None:
    admin = factories.staff(tree.province, "sysadmin")
    user = create_staff_user(
        acting_user=admin,
        username="liuyang",
        password="Lake-Orchid-2026",
        organisation=tree.county_a1,
        roles={"clerk", "reviewer"},
        full_name="刘洋",
    )
    stored = User.objects.get(username="liuyang")
    assert stored.role_codes() == {"clerk", "reviewer"}
    assert (stored.full_name, stored.organisation_id, stored.is_staff) == (
        "刘洋",
        tree.county_a1.pk,
        False,
    )
    assert stored.check_password("Lake-Orchid-2026")
    event = AuditEvent.objects.get(event=Event.USER_CREATED, object_id=str(user.pk))
    assert (event.actor_id, event.detail) == (admin.pk, {"roles": ["clerk", "reviewer"]})
    assert "Lake-Orchid-2026" not in str(AuditEvent.objects.values().get(pk=event.pk))


@pytest.mark.django_db
def test_create_staff_user_errors(tree: factories.Tree) -> None:
    factories.staff(tree.province, "clerk", username="taken")
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_staff_user(
            acting_user=None,
            username="taken",
            password="Lake-Orchid-2026",
            organisation=tree.province,
            roles={"clerk", "emperor", "sysadmin"},
        )
    assert _errors(caught) == [
        ("username", "用户名已存在", ErrorCode.DUPLICATE),
        ("roles", "未知角色：emperor", ErrorCode.INVALID),
        ("roles", "管理员账号不能同时担任业务角色（三员分立）", ErrorCode.INVALID),
    ]
    with pytest.raises(InvalidInput) as caught:
        create_staff_user(
            acting_user=None,
            username=" ",
            password="Lake-Orchid-2026",
            organisation=tree.province,
            roles={"clerk"},
        )
    assert _errors(caught) == [("username", "用户名不能为空", ErrorCode.REQUIRED)]
    assert _snapshot() == before


@pytest.mark.django_db
def test_set_roles_replaces_the_set_and_audits_before_and_after(tree: factories.Tree) -> None:
    security = factories.staff(tree.province, "secadmin")
    user = factories.staff(tree.city_a, "clerk", "auditor")
    set_roles(acting_user=security, user=user, roles={"clerk", "finance"})
    assert set(UserRole.objects.filter(user=user).values_list("role", flat=True)) == {
        "clerk",
        "finance",
    }
    assert user.role_codes() == {"clerk", "finance"}
    event = AuditEvent.objects.get(event=Event.ROLES_CHANGED)
    assert event.detail == {"before": ["auditor", "clerk"], "after": ["clerk", "finance"]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "roles",
    [{"sysadmin", "secadmin"}, {"auditadmin", "clerk"}, {"sysadmin", "secadmin", "auditadmin"}],
)
def test_set_roles_keeps_the_three_administrators_apart(
    tree: factories.Tree, roles: set[str]
) -> None:
    security = factories.staff(tree.province, "secadmin")
    user = factories.staff(tree.province, "sysadmin")
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        set_roles(acting_user=security, user=user, roles=roles)
    assert [e.field for e in caught.value.errors] == ["roles"]
    assert _snapshot() == before
    assert User.objects.get(pk=user.pk).role_codes() == {Role.SYSTEM_ADMIN}


@pytest.mark.django_db
def test_api_token_is_shown_once_and_stored_as_a_digest(tree: factories.Tree) -> None:
    user = factories.staff(tree.city_a, "clerk")
    token = create_api_token(acting_user=None, user=user, days=30)
    assert token.startswith("hz_") and len(token) > 40
    stored = ApiToken.objects.get(user=user)
    assert stored.digest == ApiToken.digest_of(token) and token not in stored.digest
    assert stored.prefix == token[:8]
    assert stored.expires_at is not None
    assert 29 <= (stored.expires_at - stored.created_at).days <= 30
    assert AuditEvent.objects.filter(event=Event.TOKEN_CREATED, object_id=str(user.pk)).count() == 1
