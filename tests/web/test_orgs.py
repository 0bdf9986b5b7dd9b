"""Organisation tree, organisation pages and units: scoped (another county's → 404), lazy,
validated in Chinese beside the fields."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from huzhu.core.models import AuditEvent
from huzhu.orgs.models import Union, Unit
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(tree: factories.Tree):
    return factories.staff(tree.county_a1, "clerk", username="county_clerk")


# --- tree --------------------------------------------------------------------------------------
def test_tree_starts_at_the_users_organisation(tree: factories.Tree, clerk, login) -> None:
    response = login(clerk).get("/orgs/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "芙蓉区总工会" in html and "芙蓉区某公司工会" in html
    for outside in ("湖南省总工会", "长沙市总工会", "天心区总工会", "株洲市总工会"):
        assert outside not in html.split('id="org-tree"', 1)[1]
    assert f'hx-get="/orgs/{tree.county_a1.pk}/counts/"' in html
    assert "基层工会" in html and tree.grassroots_1.uscc in html


def test_children_load_lazily_with_kind_and_code(tree: factories.Tree, login) -> None:
    client = login(factories.staff(tree.province, "clerk"))
    html = client.get("/orgs/").content.decode()
    # Only the province's direct children are in the first page; deeper levels load on opening.
    assert "长沙市总工会" in html and "株洲市总工会" in html
    assert "芙蓉区总工会" not in html
    assert f'hx-get="/orgs/{tree.city_a.pk}/children/"' in html
    part = client.get(f"/orgs/{tree.city_a.pk}/children/", HTTP_HX_REQUEST="true")
    text = part.content.decode()
    assert part.status_code == 200
    assert "芙蓉区总工会" in text and "天心区总工会" in text and "430102" in text
    assert "<html" not in text
    leaf = client.get(f"/orgs/{tree.grassroots_1.pk}/children/").content.decode()
    assert "无下级组织" in leaf


def test_node_counts_cover_the_subtree(tree: factories.Tree, clerk, login) -> None:
    factories.member(tree.grassroots_1, tree.unit_1, name="甲")
    factories.member(tree.grassroots_1, tree.unit_1, name="乙")
    factories.member(tree.grassroots_2, tree.unit_2, name="丙")
    client = login(factories.staff(tree.city_a, "clerk"))
    assert client.get(f"/orgs/{tree.county_a1.pk}/counts/").content.decode().strip() == (
        "单位 1 · 职工 2"
    )
    assert client.get(f"/orgs/{tree.city_a.pk}/counts/").content.decode().strip() == (
        "单位 2 · 职工 3"
    )


def test_counts_respect_the_field_matrix(tree: factories.Tree, login) -> None:
    factories.member(tree.grassroots_1, tree.unit_1)
    sysadmin = login(factories.staff(tree.province, "sysadmin"))
    assert sysadmin.get(f"/orgs/{tree.county_a1.pk}/counts/").content.decode().strip() == ""


def test_tree_queries_do_not_grow_with_children(tree: factories.Tree, login) -> None:
    client = login(factories.staff(tree.province, "clerk"))
    client.get("/orgs/")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/orgs/{tree.province.pk}/children/")
    for i in range(6):
        factories.union(tree.province, f"产业工会{i}", "industry")
    with CaptureQueriesContext(connection) as many:
        client.get(f"/orgs/{tree.province.pk}/children/")
    assert len(many) == len(few)


@pytest.mark.parametrize(
    "url", ["/orgs/{}/", "/orgs/{}/children/", "/orgs/{}/counts/", "/orgs/{}/new/"]
)
def test_organisations_outside_the_scope_are_404(
    tree: factories.Tree, clerk, login, url: str
) -> None:
    client = login(clerk)
    for other in (tree.county_a2, tree.grassroots_3, tree.city_a, tree.province):
        response = client.get(url.format(other.pk))
        assert response.status_code == 404
        assert other.name not in response.content.decode()


def test_organisation_detail(tree: factories.Tree, clerk, login) -> None:
    response = login(clerk).get(f"/orgs/{tree.grassroots_1.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "芙蓉区某公司工会" in html and tree.grassroots_1.uscc in html
    assert f'href="/orgs/{tree.county_a1.pk}/"' in html  # parent, within the scope
    assert "长沙市总工会" not in html  # never the chain above the user's own organisation
    assert f"/orgs/units/new/?union={tree.grassroots_1.pk}" in html
    assert f"/members/?union={tree.grassroots_1.pk}" in html
    assert "新建下级组织" not in html  # a grassroots union has no child kinds


def test_read_only_role_sees_no_edit_actions(tree: factories.Tree, login) -> None:
    auditor = login(factories.staff(tree.county_a1, "auditor"))
    html = auditor.get(f"/orgs/{tree.county_a1.pk}/").content.decode()
    assert "新建下级组织" not in html and "新建单位" not in html
    assert auditor.get(f"/orgs/{tree.county_a1.pk}/new/").status_code == 404
    assert auditor.get("/orgs/units/new/").status_code == 404


def test_create_child_organisation(tree: factories.Tree, clerk, login) -> None:
    client = login(clerk)
    page = client.get(f"/orgs/{tree.county_a1.pk}/new/").content.decode()
    assert "基层工会" in page and "工会联合会" in page
    assert 'value="city"' not in page  # not allowed under a county union
    uscc = factories.uscc("81430102")
    response = client.post(
        f"/orgs/{tree.county_a1.pk}/new/",
        {"name": "芙蓉区新建某厂工会", "kind": "grassroots", "uscc": uscc, "region_code": ""},
    )
    created = Union.objects.get(name="芙蓉区新建某厂工会")
    assert response.status_code == 302 and response["Location"] == f"/orgs/{created.pk}/"
    assert created.parent_id == tree.county_a1.pk and created.uscc == uscc
    assert AuditEvent.objects.filter(event="org.create", object_id=str(created.pk)).exists()


def test_create_child_shows_every_error_beside_its_field(
    tree: factories.Tree, clerk, login
) -> None:
    before = Union.objects.count()
    response = login(clerk).post(
        f"/orgs/{tree.county_a1.pk}/new/",
        {"name": "", "kind": "grassroots", "uscc": "91430100MA0000000X", "region_code": "12"},
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert form.errors["name"] == ["名称不能为空"]
    assert "统一社会信用代码校验位不正确" in form.errors["uscc"][0]
    assert form.errors["region_code"] == ["行政区划代码应为6位数字（GB/T 2260）"]
    html = response.content.decode()
    assert 'class="invalid-feedback d-block">名称不能为空<' in html
    assert Union.objects.count() == before
    missing_kind = login(clerk).post(f"/orgs/{tree.county_a1.pk}/new/", {"name": "某会"})
    assert missing_kind.context["form"].errors["kind"] == ["请选择组织类型"]


# --- units -------------------------------------------------------------------------------------
def test_unit_list_is_scoped_and_searchable(tree: factories.Tree, clerk, login) -> None:
    factories.unit(tree.grassroots_1, "长沙湘江机械有限公司")
    client = login(clerk)
    html = client.get("/orgs/units/").content.decode()
    assert "芙蓉某公司" in html and "长沙湘江机械有限公司" in html
    assert "天心某公司" not in html and "荷塘某公司" not in html
    by_name = client.get("/orgs/units/", {"q": "湘江"}).content.decode()
    assert "长沙湘江机械有限公司" in by_name and "芙蓉某公司" not in by_name
    by_code = client.get("/orgs/units/", {"q": tree.unit_1.uscc.lower()}).content.decode()
    assert "芙蓉某公司" in by_code and "长沙湘江机械有限公司" not in by_code
    other = client.get("/orgs/units/", {"q": tree.unit_3.uscc}).content.decode()
    assert "荷塘某公司" not in other and "没有符合条件的单位" in other


def test_unit_list_filtered_by_organisation(tree: factories.Tree, login) -> None:
    client = login(factories.staff(tree.city_a, "clerk"))
    html = client.get("/orgs/units/", {"union": tree.county_a2.pk}).content.decode()
    assert "天心某公司" in html and "芙蓉某公司" not in html
    assert client.get("/orgs/units/", {"union": tree.county_b1.pk}).status_code == 404


def test_unit_list_pages_without_count(tree: factories.Tree, clerk, login) -> None:
    for i in range(25):
        factories.unit(tree.grassroots_1, f"分页单位{i:02d}")
    client = login(clerk)
    client.get("/orgs/units/")
    with CaptureQueriesContext(connection) as queries:
        first = client.get("/orgs/units/", {"q": "分页"})
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    rows = first.context["units"]
    assert len(rows) == 20 and first.context["next_url"] == "?q=%E5%88%86%E9%A1%B5&page=2"
    second = client.get("/orgs/units/", {"q": "分页", "page": 2})
    assert [u.name for u in second.context["units"]] == [f"分页单位{i:02d}" for i in range(20, 25)]
    assert second.context["next_url"] is None and second.context["prev_url"]
    assert len(queries) <= 10  # one list query with its union joined, whatever the page size


def test_unit_detail_and_members_link(tree: factories.Tree, clerk, login) -> None:
    factories.member(tree.grassroots_1, tree.unit_1)
    factories.member(tree.grassroots_1, tree.unit_1, name="李四")
    html = login(clerk).get(f"/orgs/units/{tree.unit_1.pk}/").content.decode()
    assert tree.unit_1.uscc in html and "芙蓉区某公司工会" in html
    assert "2 人" in html and f"/members/?unit={tree.unit_1.pk}" in html
    assert "编辑" in html


@pytest.mark.parametrize("url", ["/orgs/units/{}/", "/orgs/units/{}/edit/"])
def test_units_outside_the_scope_are_404(tree: factories.Tree, clerk, login, url: str) -> None:
    client = login(clerk)
    for other in (tree.unit_2, tree.unit_3):
        response = client.get(url.format(other.pk))
        assert response.status_code == 404
        assert other.name not in response.content.decode()
    assert client.post(url.format(tree.unit_3.pk), {"name": "x"}).status_code == 404


def test_create_unit(tree: factories.Tree, clerk, login) -> None:
    client = login(clerk)
    page = client.get("/orgs/units/new/", {"union": tree.grassroots_1.pk})
    assert page.context["form"]["union"].value() == str(tree.grassroots_1.pk)
    options = page.context["form"].fields["union"].widget.choices
    assert [value for value, _ in options] == ["", str(tree.grassroots_1.pk)]
    uscc = factories.uscc()
    response = client.post(
        "/orgs/units/new/",
        {"union": tree.grassroots_1.pk, "name": "芙蓉区新单位", "uscc": uscc, "industry": "制造业"},
    )
    unit = Unit.objects.get(uscc=uscc)
    assert response["Location"] == f"/orgs/units/{unit.pk}/"
    assert unit.union_id == tree.grassroots_1.pk and unit.industry == "制造业"
    assert AuditEvent.objects.filter(event="unit.create", object_id=str(unit.pk)).exists()


def test_create_unit_errors_in_chinese_and_nothing_written(
    tree: factories.Tree, clerk, login
) -> None:
    before = Unit.objects.count()
    response = login(clerk).post(
        "/orgs/units/new/", {"union": tree.grassroots_1.pk, "name": " ", "uscc": "123"}
    )
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert errors["name"] == ["单位名称不能为空"]
    assert errors["uscc"] == ["统一社会信用代码应为18位，实际为3位"]
    duplicate = login(clerk).post(
        "/orgs/units/new/",
        {"union": tree.grassroots_1.pk, "name": "重复", "uscc": tree.unit_1.uscc},
    )
    assert duplicate.context["form"].errors["uscc"] == ["该统一社会信用代码已登记为其他单位"]
    assert Unit.objects.count() == before


def test_create_unit_union_outside_the_scope_is_refused(tree: factories.Tree, clerk, login) -> None:
    response = login(clerk).post(
        "/orgs/units/new/",
        {"union": tree.grassroots_3.pk, "name": "越权单位", "uscc": factories.uscc()},
    )
    assert response.status_code == 422
    assert response.context["form"].errors["union"] == ["该工会组织不存在或不在您的管辖范围内"]
    assert not Unit.objects.filter(name="越权单位").exists()


def test_edit_unit(tree: factories.Tree, clerk, login) -> None:
    client = login(clerk)
    page = client.get(f"/orgs/units/{tree.unit_1.pk}/edit/")
    assert page.context["form"]["name"].value() == "芙蓉某公司"
    response = client.post(
        f"/orgs/units/{tree.unit_1.pk}/edit/",
        {
            "union": tree.grassroots_1.pk,
            "name": "芙蓉某公司（更名）",
            "uscc": tree.unit_1.uscc,
            "address": "长沙市芙蓉区五一大道1号",
        },
    )
    assert response["Location"] == f"/orgs/units/{tree.unit_1.pk}/"
    tree.unit_1.refresh_from_db()
    assert tree.unit_1.name == "芙蓉某公司（更名）"
    event = AuditEvent.objects.filter(event="unit.update").latest("seq")
    assert set(event.detail["changed"]) == {"name", "address"}
    bad = client.post(
        f"/orgs/units/{tree.unit_1.pk}/edit/",
        {"union": tree.grassroots_1.pk, "name": "", "uscc": tree.unit_1.uscc},
    )
    assert bad.context["form"].errors["name"] == ["单位名称不能为空"]
    tree.unit_1.refresh_from_db()
    assert tree.unit_1.name == "芙蓉某公司（更名）"


def test_large_scope_asks_for_the_union_code(tree: factories.Tree, login, monkeypatch) -> None:
    from huzhu.web.forms import ScopedUnionMixin

    monkeypatch.setattr(ScopedUnionMixin, "union_limit", 1)
    client = login(factories.staff(tree.province, "clerk"))
    page = client.get("/orgs/units/new/")
    assert "union_code" in page.context["form"].fields
    uscc = factories.uscc()
    response = client.post(
        "/orgs/units/new/",
        {"union_code": tree.grassroots_3.code, "name": "荷塘新单位", "uscc": uscc},
    )
    assert response.status_code == 302
    assert Unit.objects.get(uscc=uscc).union_id == tree.grassroots_3.pk
    wrong = client.post("/orgs/units/new/", {"union_code": "NOPE", "name": "x", "uscc": uscc})
    assert wrong.context["form"].errors["union_code"] == ["该工会组织不存在或不在您的管辖范围内"]
