"""Real headless Chromium (Debian's /usr/bin/chromium): a clerk creates a batch, uploads a roster
with a bad row and sees the Chinese reason with its row and column in the preview, then confirms
the valid rows. Screenshot to /tmp for a human to look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect, sync_playwright

from huzhu.enrollment.models import EnrollmentBatch
from tests import factories
from tests.enrollment.conftest import active_plan, person, row, xlsx
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


def test_clerk_uploads_roster_and_sees_the_bad_row(
    chromium: Browser, live_server: object, settings: object, tmp_path: Path
) -> None:
    settings.HUZHU_OTP_REQUIRED = False  # type: ignore[attr-defined]
    base = str(live_server.url)  # type: ignore[attr-defined]
    tree = factories.tree()
    active_plan(2026)
    factories.staff(tree.county_a1, "clerk", username="roster_clerk")
    roster = tmp_path / "花名册.xlsx"
    roster.write_bytes(
        xlsx(
            [
                row(name="张伟", id_number=person(), uscc=tree.unit_1.uscc),
                row(name="李娜", id_number=person(male=False), uscc=tree.unit_1.uscc),
            ]
        )
    )
    page = chromium.new_page(viewport={"width": 1366, "height": 768})
    page.goto(base + "/login/")
    page.fill("#id_username", "roster_clerk")
    page.fill("#id_password", factories.PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("h1")).to_have_text("工作台")
    page.goto(base + "/enrollment/")
    page.click("text=新建参保批次")
    page.select_option("#id_union", str(tree.grassroots_1.pk))
    page.select_option("#id_plan_year", str(timezone.localdate().year))
    page.click("text=建立批次")
    expect(page.locator("h1")).to_contain_text("参保批次 #")
    page.set_input_files("#id_file", str(roster))
    page.click("text=上传并校验")
    table = page.locator("#row-errors")
    expect(table).to_contain_text("女职工须填写退休类别（女50或女55），身份证号码无法区分")
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text("3")
    expect(table).to_contain_text("退休类别")
    expect(page.locator("#counts")).to_have_text("2 / 1 / 1")
    page.screenshot(path="/tmp/enrollment-preview.png", full_page=True)
    page.check("#accept_invalid_rows")
    page.click("#confirm button[type=submit]")
    expect(page.locator("h1")).to_contain_text("待缴费")
    expect(page.locator("#members")).to_contain_text("张伟")
    assert EnrollmentBatch.objects.get().enrolled_count == 1
