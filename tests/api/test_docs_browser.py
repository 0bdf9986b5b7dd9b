"""Real headless Chromium (Debian's /usr/bin/chromium): /api/v1/docs renders the whole contract
with Swagger UI under the site's CSP, fetching nothing but the application's own URLs (a union
intranet has no internet), and "Try it out" with a bearer token reaches the API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from huzhu.orgs.services import create_api_token
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} 不存在：请先运行 make browser-deps"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def test_swagger_ui_renders_offline_and_calls_the_api(browser: Browser, live_server: Any) -> None:
    tree = factories.tree()
    clerk = factories.staff(tree.county_a1, "clerk")
    token = create_api_token(acting_user=None, user=clerk)
    base = live_server.url
    page = browser.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(base + "/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("职工互助保障平台 API")
    expect(page.locator(".opblock")).to_have_count(10 + _other_operations(page))
    # Authorize with the bearer token, then run GET /orgs from the page.
    page.click("button.authorize")
    page.fill(".auth-container input", token)
    page.click(".auth-btn-wrapper button.authorize")
    page.click("button.btn-done")
    block = page.locator("#operations-组织-huzhu_api_orgs_list_orgs")
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text("200")
    expect(block.locator(".live-responses-table")).to_contain_text("芙蓉区总工会")
    page.screenshot(path="/tmp/huzhu-api-docs.png", full_page=False)
    outside = [url for url in requested if not url.startswith(base) and not url.startswith("data:")]
    assert outside == []
    assert [p for p in problems if "Content Security Policy" in p] == []


def _other_operations(page: Any) -> int:
    """Operations other apps add to the API (plans, settlements…): counted from the contract,
    so this test pins only our ten staff operations."""
    schema = page.evaluate("fetch('/api/v1/openapi.json').then(r => r.json())")
    total = sum(
        1
        for item in schema["paths"].values()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )
    return total - 10
