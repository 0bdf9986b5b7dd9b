"""The receipt screens in a real browser (Debian's Chromium through Playwright): 长沙市 finance logs
in (password + second factor), opens the receipt list, a receipt's detail, voids another receipt
with a reason; then an anonymous visitor follows the QR link to the public verification page and
sees 「有效」 with the amount and the issuer and without the payer. Screenshots go to /tmp
(receipt_list.png, receipt_detail.png, receipt_verify.png) for a human to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.contributions.receipt_models import PayerKind, Receipt, ReceiptStatus
from huzhu.contributions.receipt_services import allocate_range, issue_receipt
from tests import factories
from tests.receipts.conftest import code_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} 不存在：请先运行 make browser-deps"
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _totp(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def test_finance_works_with_receipts_and_the_public_verifies(
    live_server: Any, browser: Any
) -> None:
    tree = factories.tree()
    finance = factories.staff(tree.city_a, "finance", username="cs_finance")
    device = TOTPDevice.objects.create(user=finance, name="验证器", confirmed=True)
    today = timezone.localdate()
    allocate_range(
        acting_user=finance,
        issuer=tree.city_a,
        code=code_for(today.year),
        year=today.year,
        first_number="1",
        last_number="1000",
    )
    receipts = [
        issue_receipt(
            acting_user=finance,
            issuer=tree.city_a,
            payer_name=unit.name,
            payer_kind=PayerKind.UNIT,
            payer_reference=unit.uscc,
            items=[("单位承担互助金", 96000), ("工会补助互助金", 24000)],
            total_fen=120000,
            issued_on=today,
            source_type="browser.payment",
            source_id=str(n),
            payer=unit,
        )
        for n, unit in enumerate((tree.unit_1, tree.unit_2))
    ]
    first, second = receipts
    staff_context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = staff_context.new_page()

    page.goto(f"{live_server.url}/receipts/")
    page.fill("input[name=username]", "cs_finance")
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.fill("input[name=token]", _totp(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/receipts/")
    rows = page.locator("table tbody tr")
    assert rows.count() == 2
    assert f"{second.code}-0000000002" in rows.nth(0).inner_text()
    assert "有效" in rows.nth(0).inner_text() and "1200.00" in rows.nth(0).inner_text()
    page.screenshot(path="/tmp/receipt_list.png")

    page.get_by_role("link", name=f"{second.code}-0000000002").click()
    page.wait_for_url(f"{live_server.url}/receipts/{second.pk}/")
    assert page.get_by_role("heading", name=f"电子票据 {second.code}-0000000002").is_visible()
    assert "壹仟贰佰元整" in page.locator("tfoot").inner_text()
    page.get_by_role("button", name="作废票据…").click()
    page.fill("#void-panel input[name=reason]", "重复开具")
    page.screenshot(path="/tmp/receipt_detail.png")
    page.get_by_role("button", name="确认作废").click()
    page.wait_for_url(f"{live_server.url}/receipts/{second.pk}/")
    assert "已作废" in page.locator("h1").inner_text()
    second.refresh_from_db()
    assert second.status == ReceiptStatus.VOIDED and second.void_reason == "重复开具"

    # An anonymous visitor follows the link that the QR code carries.
    public = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    visitor = public.new_page()
    visitor.goto(
        f"{live_server.url}/receipts/verify/?code={first.code}&number={first.number_text}"
        f"&check={first.check_code}"
    )
    result = visitor.locator("[data-verify-result]")
    assert result.get_attribute("data-verify-result") == "issued"
    body = visitor.locator("main").inner_text()
    assert "查验结果：有效" in body and "长沙市总工会" in body and "¥1200.00" in body
    assert tree.unit_1.name not in body and tree.unit_1.uscc not in body
    visitor.screenshot(path="/tmp/receipt_verify.png", full_page=True)
    visitor.goto(
        f"{live_server.url}/receipts/verify/?code={second.code}&number={second.number_text}"
        f"&check={second.check_code}"
    )
    assert visitor.locator("[data-verify-result]").get_attribute("data-verify-result") == "voided"
    # Close the pages before the live server stops (no request left in flight).
    public.close()
    staff_context.close()
    assert Receipt.objects.count() == 2
