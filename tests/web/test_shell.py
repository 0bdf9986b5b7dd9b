"""The shell: navigation by role, the dashboard's scoped figures, error pages."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from huzhu.members.services import grant_consent, record_hardship, withdraw_consent
from huzhu.web import auth
from tests import factories

pytestmark = pytest.mark.django_db


def nav_labels(html: str) -> list[str]:
    import re

    nav = html.split('aria-label="主导航"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'class="nav-link[^"]*" href="[^"]*"[^>]*>([^<]+)</a>', nav)


def test_dashboard_figures_are_scoped_to_the_subtree(tree: factories.Tree, login) -> None:
    own = [factories.member(tree.grassroots_1, tree.unit_1, name=f"甲{i}") for i in range(3)]
    factories.member(tree.grassroots_2, tree.unit_2, name="乙")  # sibling county
    factories.member(tree.grassroots_3, tree.unit_3, name="丙")  # other city
    record_hardship(
        acting_user=None,
        member=own[0],
        source="civil_affairs",
        valid_from=date(2020, 1, 1),
        valid_to=None,
    )
    record_hardship(  # ended: not a hardship member now
        acting_user=None,
        member=own[1],
        source="union_file",
        valid_from=date(2020, 1, 1),
        valid_to=date(2021, 1, 1),
    )
    grant_consent(acting_user=None, member=own[0])
    grant_consent(acting_user=None, member=own[1])
    withdraw_consent(acting_user=None, member=own[1])
    client = login(factories.staff(tree.county_a1, "clerk"))
    response = client.get("/")
    assert response.status_code == 200
    figures = {f.label: f.value for f in response.context["figures"]}
    assert figures == {
        "工会组织": 2,  # 芙蓉区总工会 and its grassroots union
        "单位": 1,
        "参保职工": 3,
        "困难职工（当前）": 1,
        "已授权医保数据": 1,
    }
    city = login(factories.staff(tree.city_a, "clerk")).get("/")
    city_figures = {f.label: f.value for f in city.context["figures"]}
    assert city_figures["参保职工"] == 4 and city_figures["工会组织"] == 5


def test_dashboard_for_an_administrator_shows_no_business_data(tree: factories.Tree, login) -> None:
    factories.member(tree.grassroots_1, tree.unit_1)
    response = login(factories.staff(tree.province, "auditadmin")).get("/")
    labels = [f.label for f in response.context["figures"]]
    assert labels == ["工会组织"]
    assert "参保职工" not in response.content.decode()


def test_top_bar_shows_user_organisation_roles_and_logout(tree: factories.Tree, login) -> None:
    user = factories.staff(tree.county_a1, "clerk", "reviewer", username="li_clerk")
    html = login(user).get("/").content.decode()
    assert "li_clerk" in html and "芙蓉区总工会" in html
    assert "经办" in html and "审核" in html
    assert 'action="/logout/"' in html and "修改密码" in html


@pytest.mark.parametrize(
    ("roles", "expected", "absent"),
    [
        (
            ("clerk",),
            ["工作台", "组织机构", "单位", "职工", "理赔审核", "会员更正申请"],
            ["审计日志", "补助金支付", "结算合作方"],
        ),
        (("reviewer",), ["理赔审核", "结算数据"], ["补助金支付"]),
        (("finance",), ["补助金支付", "基金账务", "电子票据"], ["结算合作方"]),
        (("auditor",), ["工作台", "组织机构", "单位", "职工"], ["审计日志"]),
        (("auditadmin",), ["工作台", "组织机构", "审计日志"], ["职工", "单位"]),
        (
            ("sysadmin",),
            ["工作台", "组织机构", "结算合作方"],
            ["职工", "审计日志", "单位", "理赔审核"],
        ),
        (("secadmin",), ["工作台", "组织机构"], ["职工", "审计日志"]),
    ],
)
def test_navigation_follows_the_roles(
    tree: factories.Tree, login, roles: tuple[str, ...], expected: list[str], absent: list[str]
) -> None:
    html = login(factories.staff(tree.province, *roles)).get("/").content.decode()
    labels = nav_labels(html)
    for label in expected:
        assert label in labels
    for label in absent:
        assert label not in labels


def test_plans_link_only_when_the_plans_app_has_the_page(
    tree: factories.Tree, login, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huzhu.web import context_processors

    assert auth.url_or_none("no_such_app:list") is None
    assert auth.url_or_none("web:dashboard") == "/"
    client = login(factories.staff(tree.county_a1, "clerk"))
    available = auth.url_or_none("plans:list")
    labels = nav_labels(client.get("/").content.decode())
    assert ("保障方案" in labels) is (available is not None)
    real = context_processors.url_or_none

    def without_plans(name: str, *args: object) -> str | None:
        return None if name == "plans:list" else real(name, *args)

    monkeypatch.setattr(context_processors, "url_or_none", without_plans)
    labels = nav_labels(client.get("/").content.decode())
    assert "保障方案" not in labels and "职工" in labels


def test_active_navigation_item(tree: factories.Tree, login) -> None:
    client = login(factories.staff(tree.county_a1, "clerk"))
    html = client.get("/orgs/units/").content.decode()
    assert 'class="nav-link active" href="/orgs/units/"' in html
    assert 'class="nav-link active" href="/orgs/"' not in html


def test_bootstrap_and_htmx_are_served_locally(tree: factories.Tree, login) -> None:
    html = login(factories.staff(tree.county_a1, "clerk")).get("/").content.decode()
    assert "/static/vendor/bootstrap/css/bootstrap.min.css" in html
    assert "/static/django_htmx/htmx-2.min.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    client = Client()
    assert client.get("/static/vendor/bootstrap/css/bootstrap.min.css").status_code == 200
    assert client.get("/static/web/app.css").status_code == 200


def test_404_page_is_chinese(tree: factories.Tree, login) -> None:
    response = login(factories.staff(tree.county_a1, "clerk")).get("/no/such/page/")
    assert response.status_code == 404
    assert "页面不存在" in response.content.decode()


def test_other_apps_pages_follow_permission_and_existence(
    tree: factories.Tree, login, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huzhu.web import context_processors

    monkeypatch.setattr(
        context_processors,
        "APP_PAGES",
        [
            ("可见页面", "orgs:unit_list", "member.view"),
            ("无权页面", "orgs:tree", "audit.view"),
            ("未建页面", "no_such_app:list", "member.view"),
        ],
    )
    labels = nav_labels(login(factories.staff(tree.county_a1, "clerk")).get("/").content.decode())
    assert "可见页面" in labels
    assert "无权页面" not in labels and "未建页面" not in labels
