"""The co-funding pages (Chinese): the invoices list and the generate button, the invoice as the
unit's clerk sees it (split between workers, the company and the union — MISSION story 1), the
downloads (masked, formula-escaped), the payment form (finance only), the split agreements, and
scoping (404 outside the subtree)."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from huzhu.contributions.funding_models import Invoice, InvoiceLine, Payment, SplitAgreement
from huzhu.contributions.funding_services import (
    SplitInput,
    create_invoice,
    create_split_agreement,
)
from huzhu.core.models import AuditEvent
from huzhu.enrollment.models import Enrollment, EnrollmentBatch
from tests import factories
from tests.contributions.conftest import DAY, FundingWorld, Person, login, payer

pytestmark = pytest.mark.django_db


def _batch(world: FundingWorld) -> EnrollmentBatch:
    create_split_agreement(
        acting_user=world.clerk,
        unit=world.tree.unit_1,
        data=SplitInput(valid_from=date(2026, 1, 1), mode="percent", individual="30", union="20"),
    )
    people = [
        Person("张伟", world.tree.unit_1),
        Person("李娜", world.tree.unit_1),
        Person("王芳", world.tree.unit_1, hardship=True),
    ]
    return world.enroll(people)


@pytest.fixture
def invoice(world: FundingWorld) -> Invoice:
    """A batch of 芙蓉某公司 (30/50/20, one hardship member), invoiced on ``DAY`` (the services
    take the date; the page below uses the real one)."""
    return create_invoice(acting_user=world.clerk, batch=_batch(world), today=DAY)


def test_the_clerk_generates_the_invoice(world: FundingWorld) -> None:
    batch = _batch(world)
    client = login(world.clerk)
    listing = client.get("/contributions/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert (
        "待生成缴费通知的参保批次" in text and f"/contributions/batches/{batch.pk}/invoice/" in text
    )
    response = client.post(f"/contributions/batches/{batch.pk}/invoice/create/")
    created = Invoice.objects.get(batch=batch)
    assert response.status_code == 302
    assert response["Location"] == f"/contributions/invoices/{created.pk}/"
    assert created.issued_on == timezone.localdate() and created.created_by_id == world.clerk.pk


def test_the_clerk_sees_the_split(world: FundingWorld, invoice: Invoice) -> None:
    client = login(world.clerk)
    page = client.get(f"/contributions/invoices/{invoice.pk}/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    text = page.content.decode()
    for expected in (
        invoice.number,
        "职工个人（工会代收）",
        "用人单位",
        "工会（含困难职工减免）",
        "72.00",
        "180.00",
        "108.00",
        "360.00",
        "叁佰陆拾元整",
        "芙蓉某公司",
        "芙蓉区某公司工会（困难职工减免）",
        "张伟",
        "困难职工",
    ):
        assert expected in text, expected
    assert "登记缴费到账" not in text  # the clerk does not register payments
    assert client.get(f"/contributions/invoices/{invoice.pk}/payments/new/").status_code == 404
    listing = client.get("/contributions/").content.decode()
    assert invoice.number in listing and "待生成缴费通知的参保批次" not in listing
    # the batch's invoice link leads to the invoice
    link = client.get(f"/contributions/batches/{invoice.batch_id}/invoice/")
    assert link.status_code == 302 and link["Location"].endswith(f"/invoices/{invoice.pk}/")


def test_downloads_are_masked_escaped_and_audited(
    world: FundingWorld, invoice: Invoice, assert_no_pii: object
) -> None:
    # a name a spreadsheet would run as a formula (as if a person were registered so)
    InvoiceLine.objects.filter(invoice=invoice, person_name="李娜").update(
        person_name="=HYPERLINK(1)"
    )
    client = login(world.clerk)
    response = client.get(f"/contributions/invoices/{invoice.pk}/invoice.xlsx")
    assert response.status_code == 200
    assert (
        response["Content-Disposition"] == f'attachment; filename="invoice-{invoice.number}.xlsx"'
    )
    assert_no_pii(response)  # type: ignore[operator]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["缴费通知", "缴费明细"]
    summary = [
        [c for c in row if c is not None] for row in book["缴费通知"].iter_rows(values_only=True)
    ]
    assert ["合计（大写）", "叁佰陆拾元整"] in summary
    assert ["芙蓉某公司", 180, 0, 0, 180] in summary
    detail = list(book["缴费明细"].iter_rows(values_only=True))
    assert detail[0][:4] == ("序号", "姓名", "身份证号码", "单位")
    names = [row[1] for row in detail[1:-1]]
    assert "'=HYPERLINK(1)" in names  # a formula is written as text (S11)
    ids = [row[2] for row in detail[1:-1]]
    assert all(len(i) == 18 and i[3:14] == "*" * 11 for i in ids)
    assert detail[-1][6:11] == (360, 108 - 36, 180, 72, 36)
    assert detail[-1][0] == "合计"
    pdf = client.get(f"/contributions/invoices/{invoice.pk}/invoice.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf["Content-Type"] == "application/pdf"
    exports = AuditEvent.objects.filter(event="data.export", object_id=str(invoice.pk))
    assert sorted(e.detail["format"] for e in exports) == ["pdf", "xlsx"]


def test_finance_registers_a_payment_on_the_form(world: FundingWorld, invoice: Invoice) -> None:
    client = login(world.finance)
    target = payer(invoice, "employer", world.tree.unit_1)
    form = client.get(f"/contributions/invoices/{invoice.pk}/payments/new/?payer={target.pk}")
    assert form.status_code == 200
    assert 'value="180.00"' in form.content.decode()  # the outstanding amount proposed
    too_much = client.post(
        f"/contributions/invoices/{invoice.pk}/payments/new/",
        {
            "payer": target.pk,
            "amount": "180.01",
            "bank_reference": "ICBC-9",
            "paid_on": "2026-03-05",
        },
    )
    assert too_much.status_code == 422
    assert (
        "本次缴费 180.01 元超过芙蓉某公司尚未缴纳的 180.00 元，不能多缴"
        in too_much.content.decode()
    )
    bad = client.post(
        f"/contributions/invoices/{invoice.pk}/payments/new/",
        {"payer": "", "amount": "1.005", "bank_reference": "", "paid_on": ""},
    )
    text = bad.content.decode()
    assert bad.status_code == 422
    for message in ("请选择缴费方", "最多两位小数", "请填写到账日期"):
        assert message in text
    assert not Payment.objects.exists()
    done = client.post(
        f"/contributions/invoices/{invoice.pk}/payments/new/",
        {"payer": target.pk, "amount": "100", "bank_reference": "ICBC-9", "paid_on": "2026-03-05"},
        follow=True,
    )
    text = done.content.decode()
    assert "已登记 芙蓉某公司 到账 100.00 元，已开具电子票据" in text
    payment = Payment.objects.get()
    assert f"/receipts/{payment.receipt_id}/" in text
    # the clerk of the enrolling union downloads the e-receipt (MISSION story 1)
    clerk_client = login(factories.staff(world.tree.grassroots_1, "clerk"))
    assert clerk_client.get(f"/receipts/{payment.receipt_id}/pdf").status_code == 200
    # pay the rest: coverage starts
    for p in invoice.payers.all():
        if p.outstanding_fen:
            client.post(
                f"/contributions/invoices/{invoice.pk}/payments/new/",
                {
                    "payer": p.pk,
                    "amount": f"{p.outstanding_fen / 100:.2f}",
                    "bank_reference": f"R{p.pk}",
                    "paid_on": "2026-03-06",
                },
            )
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert set(
        Enrollment.objects.filter(batch=invoice.batch).values_list("coverage_start", flat=True)
    ) == {date(2026, 3, 7)}
    page = client.get(f"/contributions/invoices/{invoice.pk}/").content.decode()
    assert "已缴清" in page and "登记缴费到账" not in page


def test_scoping_answers_404(world: FundingWorld, invoice: Invoice) -> None:
    sibling = login(factories.staff(world.tree.county_a2, "clerk", "finance"))
    for url in (
        f"/contributions/invoices/{invoice.pk}/",
        f"/contributions/invoices/{invoice.pk}/invoice.xlsx",
        f"/contributions/invoices/{invoice.pk}/invoice.pdf",
        f"/contributions/invoices/{invoice.pk}/payments/new/",
        f"/contributions/batches/{invoice.batch_id}/invoice/",
        f"/contributions/splits/units/{world.tree.unit_1.pk}/",
    ):
        assert sibling.get(url).status_code == 404, url
    assert (
        sibling.post(
            f"/contributions/invoices/{invoice.pk}/payments/new/",
            {
                "payer": payer(invoice, "individual").pk,
                "amount": "1",
                "bank_reference": "X",
                "paid_on": "2026-03-05",
            },
        ).status_code
        == 404
    )
    assert invoice.number not in sibling.get("/contributions/").content.decode()
    assert not Payment.objects.exists()
    reviewer = login(factories.staff(world.tree.county_a1, "reviewer"))
    assert reviewer.get("/contributions/").status_code == 404


def test_split_agreement_pages(world: FundingWorld) -> None:
    client = login(world.clerk)
    unit = world.tree.unit_1
    page = client.get(f"/contributions/splits/units/{unit.pk}/").content.decode()
    assert "尚未约定分担方式" in page and "职工个人全额缴纳" in page and "120.00" in page
    overview = client.get("/contributions/splits/").content.decode()
    assert "芙蓉某公司" in overview and "未约定：职工个人全额缴纳" in overview
    bad = client.post(
        f"/contributions/splits/units/{unit.pk}/new/",
        {"valid_from": "", "mode": "amount", "individual": "40", "employer": "40", "union": "30"},
    )
    assert bad.status_code == 422
    text = bad.content.decode()
    assert "请填写生效日期" in text
    good = client.post(
        f"/contributions/splits/units/{unit.pk}/new/",
        {"valid_from": "2026-01-01", "mode": "percent", "individual": "33.33", "union": "20"},
        follow=True,
    )
    text = good.content.decode()
    assert (
        "已登记分担协议：个人 33.33%，单位 46.67%（取余数），工会 20%，自2026-01-01起执行" in text
    )
    assert SplitAgreement.objects.get().created_by_id == world.clerk.pk
    auditor = login(factories.staff(world.tree.county_a1, "auditor"))
    assert auditor.get(f"/contributions/splits/units/{unit.pk}/").status_code == 200
    assert (
        auditor.post(
            f"/contributions/splits/units/{unit.pk}/new/",
            {"valid_from": "2026-02-01", "mode": "percent", "individual": "10"},
        ).status_code
        == 404
    )
    federation = factories.union(world.tree.county_a1, "芙蓉区骑手联合会", "federation")
    fed_page = client.get(f"/contributions/splits/unions/{federation.pk}/").content.decode()
    assert "没有用人单位的新就业形态劳动者" in fed_page and 'name="employer"' not in fed_page
    assert (
        client.post(
            f"/contributions/splits/unions/{federation.pk}/new/",
            {"valid_from": "2026-01-01", "mode": "percent", "individual": "40", "union": "60"},
        ).status_code
        == 302
    )
    assert "个人 40%，工会 60%" in client.get("/contributions/splits/").content.decode()


def test_batch_invoice_page_for_a_batch_not_confirmed(world: FundingWorld) -> None:
    from huzhu.enrollment.services import create_batch

    draft = create_batch(
        acting_user=world.clerk,
        union=world.tree.grassroots_1,
        plan_year=2026,
        today=date(2026, 3, 1),
    )
    client = login(world.clerk)
    page = client.get(f"/contributions/batches/{draft.pk}/invoice/")
    assert (
        page.status_code == 200
        and "只有确认参保后“待缴费”的批次才有缴费通知" in page.content.decode()
    )
    refused = client.post(f"/contributions/batches/{draft.pk}/invoice/create/", follow=True)
    assert "只有确认参保后待缴费的批次才能生成缴费通知" in refused.content.decode()
    assert not Invoice.objects.exists()


def test_navigation_shows_the_page_to_permitted_roles(world: FundingWorld) -> None:
    assert "缴费与分担" in login(world.clerk).get("/").content.decode()
    admin = login(factories.staff(world.tree.province, "sysadmin"))
    assert "缴费与分担" not in admin.get("/").content.decode()
