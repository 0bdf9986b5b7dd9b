"""The co-funding screens in a real browser (Debian's Chromium through Playwright), MISSION story
1: 长沙市 finance logs in (password + second factor), opens the invoice of a confirmed batch,
sees the split between the workers, the company and the union, registers the company's bank
payment on the form; the receipt is issued and linked. Screenshots go to /tmp
(funding_invoice.png, funding_payment.png) for a human to look at."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.contributions.funding_models import Payment
from huzhu.contributions.funding_services import SplitInput, create_invoice, create_split_agreement
from tests import factories
from tests.contributions.conftest import DAY, build_world
from tests.receipts.test_browser import _totp, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finance_registers_the_company_payment(live_server: Any, browser: Any) -> None:  # noqa: F811
    world = build_world(factories.tree())
    create_split_agreement(
        acting_user=world.clerk,
        unit=world.tree.unit_1,
        data=SplitInput(valid_from=date(2026, 1, 1), mode="percent", individual="30", union="20"),
    )
    invoice = create_invoice(
        acting_user=world.clerk, batch=world.enroll(world.people(4)), today=DAY
    )
    device = TOTPDevice.objects.create(user=world.finance, name="验证器", confirmed=True)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/contributions/")
    page.fill("input[name=username]", world.finance.username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.fill("input[name=token]", _totp(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/contributions/")
    page.get_by_role("link", name=invoice.number).click()
    page.wait_for_url(f"{live_server.url}/contributions/invoices/{invoice.pk}/")
    split = page.locator("#split").inner_text()
    assert "144.00" in split and "240.00" in split and "96.00" in split and "480.00" in split
    assert "肆佰捌拾元整" in split
    page.screenshot(path="/tmp/funding_invoice.png", full_page=True)
    page.locator("#payers tr", has_text="芙蓉某公司").get_by_role("link", name="登记到账").click()
    assert page.input_value("input[name=amount]") == "240.00"
    page.fill("input[name=amount]", "200.00")
    page.fill("input[name=bank_reference]", "ICBC20260305001")
    page.fill("input[name=paid_on]", "2026-03-05")
    page.screenshot(path="/tmp/funding_payment.png", full_page=True)
    page.get_by_role("button", name="确认登记").click()
    page.wait_for_url(f"{live_server.url}/contributions/invoices/{invoice.pk}/")
    assert "已登记 芙蓉某公司 到账 200.00 元，已开具电子票据" in page.locator("main").inner_text()
    payment = Payment.objects.get()
    assert payment.receipt is not None
    assert (
        page.locator("#payments")
        .get_by_role("link", name=f"{payment.receipt.code}-{payment.receipt.number_text}")
        .is_visible()
    )
    assert "部分缴费" in page.locator("h1").inner_text()
    context.close()
