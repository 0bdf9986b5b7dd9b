"""The member portal in a real browser (Debian's Chromium through Playwright), on a phone-sized
screen: a member logs in with ID number and password, opens 我的票据 and downloads a receipt's PDF.
Screenshots go to /tmp (portal_home.png, portal_receipts.png) for a human to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from huzhu.core.models import AuditEvent
from huzhu.portal.services import PortalEvent
from tests.portal.conftest import PASSWORD, Portal
from tests.receipts.test_browser import browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_member_logs_in_and_downloads_a_receipt_pdf(
    live_server: Any,
    browser: Any,  # noqa: F811
    portal: Portal,
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/portal/receipts/")
    page.wait_for_url(f"{live_server.url}/portal/login/?next=%2Fportal%2Freceipts%2F")
    page.fill("input[name=id_number]", portal.id_number)
    page.fill("input[name=password]", "Wrong-pass-2026")
    page.click("button[type=submit]")
    assert page.locator("#login-error").inner_text() == "身份证号码或密码错误"
    assert page.input_value("input[name=id_number]") == ""  # not rendered back
    page.fill("input[name=id_number]", portal.id_number)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portal/receipts/")
    rows = page.locator("[data-receipt]")
    assert rows.count() == 2
    newest = portal.receipts[-1]
    assert f"{newest.code}-{newest.number_text}" in rows.nth(0).inner_text()
    assert "120.00" in rows.nth(0).inner_text() and "有效" in rows.nth(0).inner_text()
    page.screenshot(path="/tmp/portal_receipts.png", full_page=True)

    with page.expect_download() as info:
        rows.nth(0).get_by_role("link", name="下载 PDF").click()
    download = info.value
    assert download.suggested_filename == f"receipt-{newest.code}-{newest.number_text}.pdf"
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF-") and len(content) > 1000
    assert AuditEvent.objects.filter(
        event=PortalEvent.RECEIPT_DOWNLOADED, object_id=str(newest.pk)
    ).exists()

    page.get_by_role("link", name="我的保障").click()
    page.wait_for_url(f"{live_server.url}/portal/")
    assert page.get_by_role("heading", name="我的保障").is_visible()
    page.screenshot(path="/tmp/portal_home.png", full_page=True)
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(f"{live_server.url}/portal/login/")
    page.goto(f"{live_server.url}/portal/receipts/")
    assert "/portal/login/" in page.url
    context.close()
