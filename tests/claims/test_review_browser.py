"""The review screens in a real browser (Debian's Chromium through Playwright), MISSION story 3:
a county reviewer logs in (password + second factor), opens the review queue, sees the claims with
their risk flags, opens one, reads the engine's explanation, looks at the diagnoses (stating a
reason) and approves it; the claim is approved and the amount is owed to the member. Screenshots
go to /tmp (claims_queue.png, claims_detail.png) for a human to look at."""

from __future__ import annotations

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.claims.models import Claim, ClaimStatus
from huzhu.claims.services import receive_settlement
from tests import factories
from tests.claims.conftest import covered_person, make_partner, settle_body
from tests.enrollment.conftest import active_plan
from tests.receipts.test_browser import _totp, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_reviewer_approves_a_flagged_claim(live_server: Any, browser: Any) -> None:  # noqa: F811
    tree = factories.tree()
    plan = active_plan(2026)
    partner = make_partner(tree.city_a)
    names = ["张伟", "李娜", "王芳"]
    for index, name in enumerate(names):
        person = covered_person(tree, plan, name=name)
        receive_settlement(
            partner=partner,
            body=settle_body(
                person.certno,
                f"B{index}",
                adm_date=f"2026-01-{10 + index}",
                setl_time=f"2026-01-{15 + index} 10:00:00",
                diagnoses=("K35.9", "C16.9") if index == 0 else ("K35.9",),
            ),
        )
    claim = Claim.objects.get(record_key="B0")
    assert claim.status == ClaimStatus.IN_REVIEW
    reviewer = factories.staff(tree.county_a1, "reviewer", username="fr_reviewer")
    device = TOTPDevice.objects.create(user=reviewer, name="验证器", confirmed=True)

    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/claims/")
    page.fill("input[name=username]", reviewer.username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.fill("input[name=token]", _totp(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/claims/")
    table = page.locator("#claim-table").inner_text()
    assert all(name in table for name in names)
    assert "参保后短期内发生住院" in table and "C16.9" not in table
    assert page.locator("[data-count=review]").inner_text() == "3"
    page.screenshot(path="/tmp/claims_queue.png", full_page=True)

    page.get_by_role("link", name=claim.number).click()
    page.wait_for_url(f"{live_server.url}/claims/{claim.pk}/")
    assert "本次补助 6200.00 元" in page.locator("#explanation").inner_text()
    assert page.locator("#bands tbody tr").count() == 4  # three bands and the total
    # The diagnoses after a stated reason (htmx swaps the box in place).
    page.get_by_role("link", name="查看诊断").click()
    page.fill("#diag_reason", "核对是否重大疾病")
    page.get_by_role("button", name="确认查看").click()
    page.locator("[data-diagnosis]").first.wait_for()
    assert "C16.9" in page.locator("#diagnoses").inner_text()
    page.fill("#approve_note", "出院记录与结算一致，同意")
    page.screenshot(path="/tmp/claims_detail.png", full_page=True)

    page.locator("#form-approve").get_by_role("button", name="核准").click()
    page.wait_for_url(f"{live_server.url}/claims/{claim.pk}/")
    assert "已核准补助 6200.00 元，待支付给职工" in page.locator("main").inner_text()
    assert page.locator("#claim-status").inner_text() == "已核准"
    assert page.locator("#form-approve").count() == 0
    claim.refresh_from_db()
    assert (claim.status, claim.approved_by, claim.posted_fen) == (
        ClaimStatus.APPROVED,
        reviewer,
        620000,
    )
    context.close()
