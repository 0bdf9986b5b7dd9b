"""Real headless Chromium (Debian's /usr/bin/chromium): a clerk opens a member's page, files an
inpatient claim treated out of province with the settlement sheet's figures and PDF documents, and
sees the claim's number and priced amount. Screenshot to /tmp for a human to look at."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from huzhu.claims.models import Claim
from tests import factories
from tests.claims.conftest import covered_person
from tests.claims.manual_support import PDF, SHEET
from tests.enrollment.conftest import active_plan
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} 不存在：请先运行 make browser-deps"
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def test_clerk_files_an_inpatient_claim_and_sees_the_amount(
    chromium: Browser, live_server: object, settings: object, tmp_path: Path
) -> None:
    settings.HUZHU_OTP_REQUIRED = False  # type: ignore[attr-defined]
    base = str(live_server.url)  # type: ignore[attr-defined]
    tree = factories.tree()
    person = covered_person(tree, active_plan(2026))
    factories.staff(tree.county_a1, "clerk", username="manual_clerk")
    sheet = tmp_path / "结算单.pdf"
    sheet.write_bytes(PDF)

    page = chromium.new_page(viewport={"width": 1366, "height": 900})
    page.goto(base + "/login/")
    page.fill("#id_username", "manual_clerk")
    page.fill("#id_password", factories.PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("h1")).to_have_text("工作台")
    page.goto(base + f"/members/{person.member.pk}/")
    page.click("#file-manual-claim")
    expect(page.locator("h1")).to_have_text(f"提交手工理赔申请：{person.member.name}")
    page.click("[data-product=inpatient]")
    expect(page.locator("h1")).to_have_text("手工理赔申请：住院互助保障")
    page.select_option("#id_channel_reason", "out_of_province")
    page.fill("#id_channel_note", "北京协和医院住院")
    page.select_option("#id_med_type", "21")
    page.fill("#id_adm_date", "2026-03-01")
    page.fill("#id_dscg_date", "2026-03-09")
    page.fill("#id_settle_date", "2026-03-09")
    page.fill("#id_hospital_name", "北京协和医院")
    for name, value in SHEET.items():
        page.fill(f"#id_{name}", value)
    page.fill("#id_other_reimbursed", "1000.00")
    page.fill("#id_diagnoses", "K35.9")
    # First without the discharge record: the error is shown beside its field.
    page.set_input_files("#id_invoice", str(sheet))
    page.set_input_files("#id_settlement_sheet", str(sheet))
    page.click("text=提交申请")
    expect(page.locator("#id_discharge_record ~ .invalid-feedback")).to_have_text("请上传出院记录")
    assert not Claim.objects.exists()
    page.screenshot(path="/tmp/manual-claim-form.png", full_page=True)
    page.set_input_files("#id_invoice", str(sheet))
    page.set_input_files("#id_settlement_sheet", str(sheet))
    page.set_input_files("#id_discharge_record", str(sheet))
    page.click("text=提交申请")
    claim = Claim.objects.get()
    # base 25000 − 13000 − 1000 (other reimbursed) = 11000 → S(10000) = 2500 + 3000 = 5500.00
    assert claim.benefit_fen == 550_000
    expect(page.locator("body")).to_contain_text(claim.number)
    expect(page.locator("body")).to_contain_text(re.compile(r"5,?500\.00"))
    page.screenshot(path="/tmp/manual-claim-filed.png", full_page=True)
