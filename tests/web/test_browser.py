"""Real headless Chromium (Debian's /usr/bin/chromium) against the live server: a county clerk logs
in, finds a member by ID number, sees only masked values, reveals one with a reason, and gets a 404
for a member of another county. Screenshots of the members list and the member detail, at 1366×768
and at phone width, go to /tmp for a human to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from huzhu.core.ids import mask_id_number
from huzhu.core.models import AuditEvent
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path("/tmp")
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the test
    # around it are synchronous on purpose.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # A missing browser is a failure, never a skip (run `make browser-deps`).
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} 不存在：请先运行 make browser-deps"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(base_url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("h1")).to_have_text("工作台")


def test_county_clerk_finds_member_masked_and_cannot_open_other_county(
    browser: Browser, live_server: object, settings: object
) -> None:
    settings.HUZHU_OTP_REQUIRED = False  # type: ignore[attr-defined]
    base_url = str(live_server.url)  # type: ignore[attr-defined]
    tree = factories.tree()
    factories.staff(tree.county_a1, "clerk", username="county_clerk")
    number = factories.id_number(date(1979, 6, 5), male=False)
    member = factories.member(
        tree.grassroots_1,
        tree.unit_1,
        name="李秀英",
        male=False,
        number=number,
        phone="13907311234",
        bank_account="6217002870012345678",
    )
    for i in range(25):  # enough rows for a second page of the list
        factories.member(tree.grassroots_1, tree.unit_1, name=f"刘建军{i:02d}")
    other_county = factories.member(tree.grassroots_3, tree.unit_3, name="王芳", male=False)
    masked = mask_id_number(number)

    page = browser.new_page(viewport=DESKTOP, locale="zh-CN")
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    _log_in(page, base_url, "county_clerk")
    expect(page.locator(".demo-banner")).to_contain_text("演示模式")

    # Find the member by ID number: the result shows the masked form, the page never the number.
    page.get_by_role("link", name="职工", exact=True).first.click()
    expect(page.locator("h1")).to_have_text("职工")
    page.screenshot(path=str(SCREENSHOTS / "members_list_1366.png"), full_page=True)
    page.fill("#member-q", number)
    page.click("#member-search button[type=submit]")
    rows = page.locator("#member-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("李秀英")
    expect(rows.first).to_contain_text(masked)
    assert number not in page.content()
    assert number not in page.url

    page.click("#member-table >> text=李秀英")
    expect(page.locator("h1")).to_contain_text("李秀英")
    expect(page.locator("#pii-id_number")).to_contain_text(masked)
    expect(page.locator("#pii-phone")).to_contain_text("139****1234")
    content = page.content()
    assert number not in content
    assert "13907311234" not in content
    assert "6217002870012345678" not in content
    page.screenshot(path=str(SCREENSHOTS / "member_detail_1366.png"), full_page=True)

    # 查看明文: a reason of at least 4 characters, then the plain value once, audited.
    page.click("#pii-id_number >> text=查看明文")
    page.fill("#id_id_number_reason", "核对")
    page.click("#pii-id_number button[type=submit]")
    expect(page.locator("#pii-id_number")).to_contain_text("请填写查看原因（至少4个字）")
    page.fill("#id_id_number_reason", "核对理赔申请人身份")
    page.click("#pii-id_number button[type=submit]")
    expect(page.locator("#pii-id_number [data-plain]")).to_have_text(number)
    assert AuditEvent.objects.filter(event="member.unmask", object_id=str(member.pk)).count() == 1
    page.click("#pii-id_number >> text=隐藏")
    expect(page.locator("#pii-id_number")).to_contain_text(masked)
    assert number not in page.content()

    # Phone width: the same pages, navigation behind the menu button.
    page.set_viewport_size(PHONE)
    page.reload()
    page.screenshot(path=str(SCREENSHOTS / "member_detail_phone.png"), full_page=True)
    page.goto(base_url + "/members/")
    page.screenshot(path=str(SCREENSHOTS / "members_list_phone.png"), full_page=True)
    page.click("text=☰ 菜单")
    expect(page.locator("#sidenav")).to_contain_text("组织机构")

    # A member of another county does not exist for this clerk.
    response = page.goto(base_url + f"/members/{other_county.pk}/")
    assert response is not None and response.status == 404
    expect(page.locator("h2")).to_have_text("页面不存在")
    assert "王芳" not in page.content()
    # Nothing was blocked by the content security policy (htmx, Bootstrap, our CSS).
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors


def test_organisation_tree_expands_lazily(
    browser: Browser, live_server: object, settings: object
) -> None:
    settings.HUZHU_OTP_REQUIRED = False  # type: ignore[attr-defined]
    base_url = str(live_server.url)  # type: ignore[attr-defined]
    tree = factories.tree()
    factories.staff(tree.city_a, "clerk", username="city_clerk")
    factories.member(tree.grassroots_1, tree.unit_1, name="甲")
    factories.member(tree.grassroots_2, tree.unit_2, name="乙")
    page = browser.new_page(viewport=DESKTOP, locale="zh-CN")
    _log_in(page, base_url, "city_clerk")
    page.goto(base_url + "/orgs/")
    org_tree = page.locator("#org-tree")
    expect(org_tree).to_contain_text("芙蓉区总工会")
    expect(org_tree).not_to_contain_text("芙蓉区某公司工会")  # not loaded before opening

    def counts(union_pk: int):  # the lazily loaded counts of one node
        return org_tree.locator(f"[hx-get='/orgs/{union_pk}/counts/']")

    expect(counts(tree.city_a.pk)).to_have_text("单位 2 · 职工 2")
    expect(counts(tree.county_a2.pk)).to_have_text("单位 1 · 职工 1")
    page.click("#org-tree summary:has-text('芙蓉区总工会')")
    expect(org_tree).to_contain_text("芙蓉区某公司工会")
    expect(counts(tree.grassroots_1.pk)).to_have_text("单位 1 · 职工 1")
    page.screenshot(path=str(SCREENSHOTS / "org_tree_1366.png"), full_page=True)
