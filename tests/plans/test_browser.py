"""The plan screen in a real browser (Debian's Chromium through Playwright): a provincial plan
manager logs in (password + second factor), opens the plan list, then the readable view, and
sees the bands table and the 50% check. A screenshot at 1366×768 goes to /tmp/plan_view.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.plans import services
from tests import factories
from tests.plans.conftest import hunan_text

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = "/tmp/plan_view.png"  # the path the brief asks for


@pytest.fixture
def browser_page() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (make browser-deps)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop; Django refuses sync ORM calls inside one unless
    # told otherwise (the test thread only talks to the database between browser calls).
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
            # Inside Playwright's sync context Django's connection lookup resolves to another
            # connection object than the test's own (asgiref's context-local storage); close it
            # here, or the PostgreSQL test database cannot be dropped at the end of the session.
            connections.close_all()


@pytest.fixture
def server(transactional_db: None) -> Iterator[Any]:
    """A live server for this test only: stopped (its thread closing its database connections)
    before the test database is flushed or dropped — the session-wide ``live_server`` outlives
    the PostgreSQL test database and keeps a connection to it open."""
    from pytest_django.live_server_helper import LiveServer

    live = LiveServer("localhost")  # in ALLOWED_HOSTS already
    try:
        yield live
    finally:
        live.stop()


def _totp(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def test_plan_manager_reads_the_plan(server: Any, browser_page: Any) -> None:
    tree = factories.tree()
    manager = factories.staff(tree.province, "plan_manager", username="prov_plan")
    device = TOTPDevice.objects.create(user=manager, name="验证器", confirmed=True)
    version = services.import_plan(
        acting_user=manager, yaml_text=hunan_text(), filename="hunan-2026.yaml"
    )
    services.activate_plan(acting_user=manager, plan_version=version)
    page = browser_page

    page.goto(f"{server.url}/plans/")
    page.fill("input[name=username]", "prov_plan")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.fill("input[name=token]", _totp(device))
    page.click("button[type=submit]")

    page.wait_for_url(f"{server.url}/plans/")
    table = page.locator("#plan-list")
    assert table.is_visible()
    row = table.locator("tbody tr", has_text="HUNAN-2026")
    assert "已启用" in row.inner_text()
    assert version.parameters_hash[:12] in row.inner_text()

    row.get_by_role("link", name="HUNAN-2026").click()
    page.wait_for_url(f"{server.url}/plans/{version.pk}/")
    assert page.get_by_role("heading", name="湖南省在职职工互助保障计划（2026年度）").is_visible()
    checks = page.locator("#contribution-checks")
    assert (
        "互助金 120.00 元 ≤ 城乡居民医保个人缴费标准 400.00 元 × 50% = 200.00 元 ✓"
        in checks.inner_text()
    )
    bands = page.locator("#product-inpatient table.plan-bands")
    rows = [r.inner_text().split("\t") for r in bands.locator("tbody tr").all()]
    assert [[cell.strip() for cell in r] for r in rows] == [
        ["第 1 段", "0.00 – 5000.00 元", "50%", "60%"],
        ["第 2 段", "5000.00 – 10000.00 元", "60%", "70%"],
        ["第 3 段", "10000.00 元以上", "70%", "80%"],
    ]
    # A provincial plan manager sees the retire action on an active version.
    assert page.locator("#plan-actions").get_by_role("link", name="停用").is_visible()
    page.screenshot(path=SCREENSHOT, full_page=False)
