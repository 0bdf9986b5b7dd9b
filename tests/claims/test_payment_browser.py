"""Paying benefits in a real browser (Debian's Chromium through Playwright): 长沙市 finance logs
in (password + second factor), opens 补助金支付, previews a batch for 长沙市总工会 (one member
has no bank account and is listed with the reason), creates it, exports the bank file (a real
download, with a stated reason) and uploads the bank's result file; the batch is completed, the
claims are paid and the books are clean. Screenshots go to /tmp (payment_preview.png,
payment_batch.png) for a human to look at."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.claims.models import Claim, ClaimStatus, PaymentBatch, PaymentBatchStatus
from huzhu.members.models import Member
from tests import factories
from tests.claims.conftest import ledger_clean, make_partner
from tests.claims.test_payments import fund_bank, insured, member_owed, payable
from tests.enrollment.conftest import active_plan
from tests.receipts.test_browser import _totp, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finance_creates_exports_and_records_a_batch(
    live_server: Any,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    tree = factories.tree()
    plan = active_plan(2026)
    partner = make_partner(tree.city_a)
    fund_bank(tree.province)
    paid = [member_owed(partner, insured(tree, plan, name=n)) for n in ("李娜", "赵磊")]
    member_owed(partner, insured(tree, plan, account=False, name="王芳"))
    finance = factories.staff(tree.city_a, "finance", username="cs_pay_finance")
    device = TOTPDevice.objects.create(user=finance, name="验证器", confirmed=True)

    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/claims/payments/")
    page.fill("input[name=username]", finance.username)
    page.fill("input[name=password]", factories.PASSWORD)
    page.click("button[type=submit]")
    page.fill("input[name=token]", _totp(device))
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/claims/payments/")
    page.get_by_role("link", name="生成支付批次").click()
    page.wait_for_url(f"{live_server.url}/claims/payments/new/")
    page.get_by_label("补助金支付（职工）").check()
    page.select_option("select[name=union]", str(tree.city_a.pk))
    page.get_by_role("button", name="预览").click()
    page.wait_for_selector("#preview")
    assert page.inner_text("#preview-count") == "2"
    assert page.inner_text("#preview-total") == "12,400.00"
    excluded = page.inner_text("#preview-excluded")
    assert "王芳" in excluded and "职工未登记银行账号" in excluded
    page.screenshot(path="/tmp/payment_preview.png", full_page=True)
    page.get_by_role("button", name="生成批次（2 笔）").click()
    page.wait_for_selector("#batch-summary")
    batch = PaymentBatch.objects.get()
    assert f"已生成支付批次 {batch.number}" in page.inner_text("main")

    page.fill("input[name=reason]", "提交工商银行批量代发")
    with page.expect_download() as caught:
        page.get_by_role("button", name="导出银行文件").click()
    download = caught.value
    assert download.suggested_filename == f"{batch.number}.csv"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_bytes().decode("utf-8-sig"))))
    accounts = {str(m.bank_account_enc) for m in Member.objects.filter(name__in=["李娜", "赵磊"])}
    assert {r[2] for r in rows[1:]} == accounts
    references = [r[6] for r in rows[1:]]

    # The bank's answer: both paid.
    results = io.StringIO()
    writer = csv.writer(results)
    writer.writerow(["业务参考号", "结果", "银行流水号", "失败原因"])
    for index, reference in enumerate(references, start=1):
        writer.writerow([reference, "成功", f"ICBC2026{index:04d}", ""])
    result_file = tmp_path / "银行回执.csv"
    result_file.write_bytes(results.getvalue().encode("gbk"))
    page.goto(f"{live_server.url}/claims/payments/{batch.pk}/")
    page.set_input_files("input[name=file]", str(result_file))
    page.get_by_role("button", name="上传并登记").click()
    page.wait_for_selector("#batch-summary")
    text = page.inner_text("main")
    assert "已登记银行结果：成功 2 笔（12400.00 元），失败 0 笔" in text
    assert "批次已完成" in text
    page.screenshot(path="/tmp/payment_batch.png", full_page=True)
    context.close()

    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.COMPLETED
    assert {c.status for c in Claim.objects.filter(pk__in=[c.pk for c in paid])} == {
        ClaimStatus.PAID
    }
    assert payable("2241") == 620000  # 王芳's, waiting for her bank account
    assert ledger_clean()
