"""The payment pages (Chinese): the scoped batch list, a new batch with its preview (what it takes,
what it leaves out and why), the batch page, the bank file (audited, full accounts only there,
marked ``X-Huzhu-Reveal``), the bank's results from a file or typed in, cancellation — and 404
outside the subtree or without the permission (S5)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from huzhu.claims.models import (
    Claim,
    ClaimStatus,
    Partner,
    PaymentBatch,
    PaymentBatchStatus,
    PaymentLine,
    PaymentLineResult,
)
from huzhu.claims.payments import create_member_batch, export_bank_file, line_reference
from huzhu.core.models import AuditEvent
from huzhu.ledger.models import JournalEntry
from huzhu.members.models import Member
from huzhu.orgs.models import User
from huzhu.plans.models import PlanVersion
from tests import factories
from tests.claims.test_payments import (
    PayWorld,
    hospital_owed,
    insured,
    member_owed,
    pay_world,
    payable,
    result_csv,
)
from tests.web.conftest import login_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tree: factories.Tree, plan: PlanVersion, partner: Partner) -> PayWorld:
    return pay_world(tree, plan, partner)


def login(user: User) -> Client:
    return login_verified(Client(), user)


def _texts(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def _exported_batch(w: PayWorld, names: tuple[str, ...] = ("李娜", "王芳")) -> PaymentBatch:
    for name in names:
        member_owed(w.partner, insured(w.tree, w.plan, name=name))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    return batch


def test_finance_previews_and_creates_a_batch(world: PayWorld, assert_no_pii) -> None:
    w = world
    owed = member_owed(w.partner, insured(w.tree, w.plan, name="李娜"))
    member_owed(w.partner, insured(w.tree, w.plan, account=False, name="王芳"))
    client = login(w.finance)

    form = client.get("/claims/payments/new/")
    assert form.status_code == 200
    assert "长沙市总工会" in form.content.decode() and "芙蓉区总工会" in form.content.decode()

    preview = client.get("/claims/payments/new/", {"kind": "member", "union": w.tree.city_a.pk})
    text = preview.content.decode()
    assert preview.status_code == 200
    assert 'id="preview-count">1<' in text and 'id="preview-total">6,200.00<' in text
    assert owed.number in text and "**** " in text
    assert "王芳" in text and "职工未登记银行账号，请先在职工信息中登记后再支付" in text
    assert_no_pii(preview)
    assert PaymentBatch.objects.count() == 0

    created = client.post(
        "/claims/payments/new/", {"kind": "member", "union": w.tree.city_a.pk}, follow=True
    )
    batch = PaymentBatch.objects.get()
    assert created.redirect_chain == [(f"/claims/payments/{batch.pk}/", 302)]
    messages = _texts(created)
    assert messages[0] == (
        f"已生成支付批次 {batch.number}：1 笔，合计 6200.00 元。请导出银行文件提交银行。"
    )
    assert "未登记银行账号" in messages[1] and "王芳" in messages[1]
    page = created.content.decode()
    assert line_reference(batch, batch.lines.get()) in page
    assert_no_pii(created)


def test_hospital_clearing_form_lists_the_hospitals(world: PayWorld) -> None:
    w = world
    claim = hospital_owed(w.partner, insured(w.tree, w.plan))
    client = login(w.finance)
    listing = client.get("/claims/payments/new/", {"kind": "hospital", "union": w.tree.city_a.pk})
    text = listing.content.decode()
    assert "P430100001" in text and "长沙市医疗保障事务中心" in text
    assert "hospital_code=P430100001" in text
    chosen = client.get(
        "/claims/payments/new/",
        {"kind": "hospital", "union": w.tree.city_a.pk, "hospital_code": "P430100001"},
    )
    assert claim.number in chosen.content.decode()
    client.post(
        "/claims/payments/new/",
        {"kind": "hospital", "union": w.tree.city_a.pk, "hospital_code": "P430100001"},
    )
    batch = PaymentBatch.objects.get()
    assert (batch.kind, batch.line_count) == ("hospital", 1)


def test_nothing_to_pay_is_said_plainly(world: PayWorld) -> None:
    response = login(world.finance).post(
        "/claims/payments/new/", {"kind": "member", "union": world.tree.city_a.pk}, follow=True
    )
    assert _texts(response) == ["长沙市总工会及下级没有可以支付的职工补助"]
    assert PaymentBatch.objects.count() == 0


def test_a_union_outside_the_subtree_cannot_be_chosen(world: PayWorld) -> None:
    response = login(world.finance).get(
        "/claims/payments/new/", {"kind": "member", "union": world.tree.city_b.pk}
    )
    assert response.status_code == 200
    assert "株洲市总工会" not in response.content.decode()
    assert "preview" not in response.context or response.context["preview"] is None


def test_export_gives_the_bank_file_marked_as_a_reveal_and_audited(world: PayWorld) -> None:
    w = world
    person = insured(w.tree, w.plan, name="李娜")
    member_owed(w.partner, person)
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    account = str(Member.objects.get(pk=person.member.pk).bank_account_enc)
    client = login(w.finance)

    response = client.post(
        f"/claims/payments/{batch.pk}/export/",
        {"reason": "提交工商银行批量代发", "encoding": "utf-8"},
    )
    assert response.status_code == 200
    # S9: the one answer holding full account numbers says so.
    assert response["X-Huzhu-Reveal"] == "1"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{batch.number}.csv"'
    assert response["Cache-Control"] == "no-store"
    assert account in response.content.decode("utf-8-sig")
    event = AuditEvent.objects.get(event="data.export")
    assert (event.actor_id, event.detail["reason"]) == (w.finance.pk, "提交工商银行批量代发")
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.EXPORTED
    # Everywhere else the account is masked (the guard fails the test on a plain one).
    detail = client.get(f"/claims/payments/{batch.pk}/")
    assert account not in detail.content.decode()
    assert "**** " + account[-4:] in detail.content.decode()


def test_export_without_a_reason_is_refused(world: PayWorld) -> None:
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    response = login(w.finance).post(
        f"/claims/payments/{batch.pk}/export/", {"reason": "", "encoding": "utf-8"}, follow=True
    )
    assert _texts(response) == ["导出原因：这个字段是必填项。"]
    assert response.get("X-Huzhu-Reveal") is None
    assert not AuditEvent.objects.filter(event="data.export").exists()


def test_uploaded_results_are_recorded(world: PayWorld) -> None:
    w = world
    batch = _exported_batch(w)
    upload = SimpleUploadedFile("结果.csv", result_csv(batch, {2: "failed"}), "text/csv")
    response = login(w.finance).post(
        f"/claims/payments/{batch.pk}/results/upload/", {"file": upload}, follow=True
    )
    entry = JournalEntry.objects.get(source_type="benefit_payment")
    assert _texts(response) == [
        f"已登记银行结果：成功 1 笔（6200.00 元），失败 1 笔，记账凭证 {entry.display_number}。",
        "批次所有明细均已有银行结果，批次已完成。",
    ]
    text = response.content.decode()
    assert "支付成功" in text and "账户已销户" in text
    assert payable("2241") == 620000


def test_a_bad_result_file_names_row_and_column_and_writes_nothing(world: PayWorld) -> None:
    w = world
    batch = _exported_batch(w)
    ref = line_reference(batch, batch.lines.get(line_no=1))
    content = f"业务参考号,结果,银行流水号,失败原因\n{ref},成功,,\nXX1,失败,,\n".encode()
    client = login(w.finance)
    events = AuditEvent.objects.count()
    response = client.post(
        f"/claims/payments/{batch.pk}/results/upload/",
        {"file": SimpleUploadedFile("结果.csv", content, "text/csv")},
        follow=True,
    )
    assert _texts(response) == [
        "结果文件“结果.csv”未登记，请改正以下问题后重新上传：",
        "第 2 行「银行流水号」：支付成功的须填写银行流水号",
        "第 3 行「业务参考号」：本批次没有业务参考号“XX1”",
    ]
    assert AuditEvent.objects.count() == events
    assert set(PaymentLine.objects.values_list("result", flat=True)) == {"pending"}


def test_results_typed_in_per_line(world: PayWorld) -> None:
    w = world
    batch = _exported_batch(w)
    first, second = batch.lines.order_by("line_no")
    client = login(w.finance)
    response = client.post(
        f"/claims/payments/{batch.pk}/results/",
        {f"result_{first.pk}": "succeeded", f"bank_reference_{first.pk}": "ICBC9001"},
        follow=True,
    )
    assert _texts(response)[0].startswith("已登记银行结果：成功 1 笔（6200.00 元），失败 0 笔")
    first.refresh_from_db()
    assert (first.result, first.bank_reference) == ("succeeded", "ICBC9001")
    assert Claim.objects.get(pk=first.claim_id).status == ClaimStatus.PAID
    missing = client.post(
        f"/claims/payments/{batch.pk}/results/", {f"result_{second.pk}": "failed"}, follow=True
    )
    assert _texts(missing) == ["序号 2「失败原因」：支付失败的须填写失败原因"]
    second.refresh_from_db()
    assert second.result == PaymentLineResult.PENDING


def test_cancel_from_the_page(world: PayWorld) -> None:
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    client = login(w.finance)
    page = client.get(f"/claims/payments/{batch.pk}/").content.decode()
    assert "作废批次" in page and "导出银行文件" in page
    response = client.post(
        f"/claims/payments/{batch.pk}/cancel/", {"reason": "金额需复核"}, follow=True
    )
    assert _texts(response) == [f"支付批次 {batch.number} 已作废，其中的补助可重新生成批次支付。"]
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.CANCELLED
    assert "作废批次" not in response.content.decode()


def test_the_list_is_scoped_and_filtered(world: PayWorld) -> None:
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    member_owed(w.partner, insured(w.tree, w.plan, union=w.tree.grassroots_2, name="周敏"))
    own = create_member_batch(acting_user=w.finance, union=w.tree.county_a1).batch
    sibling = create_member_batch(acting_user=w.finance, union=w.tree.county_a2).batch
    county = factories.staff(w.tree.county_a1, "finance")
    text = login(county).get("/claims/payments/").content.decode()
    assert own.number in text and sibling.number not in text
    assert login(county).get(f"/claims/payments/{sibling.pk}/").status_code == 404
    assert (
        login(county)
        .post(f"/claims/payments/{sibling.pk}/cancel/", {"reason": "越权作废"})
        .status_code
        == 404
    )
    cancelled = login(w.finance).get("/claims/payments/", {"status": "cancelled"})
    assert own.number not in cancelled.content.decode()
    probe = login(county).get("/claims/payments/", {"union": w.tree.county_a2.pk})
    assert sibling.number not in probe.content.decode()


def test_view_only_roles_see_batches_but_cannot_act(world: PayWorld) -> None:
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    auditor = login(factories.staff(w.tree.city_a, "auditor"))
    page = auditor.get(f"/claims/payments/{batch.pk}/")
    assert page.status_code == 200
    assert "导出银行文件" not in page.content.decode()
    assert auditor.get("/claims/payments/new/").status_code == 404
    response = auditor.post(
        f"/claims/payments/{batch.pk}/export/", {"reason": "越权导出测试", "encoding": "utf-8"}
    )
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(event="data.export").exists()
    clerk = login(factories.staff(w.tree.city_a, "plan_manager"))
    assert clerk.get("/claims/payments/").status_code == 404


def test_navigation_shows_payments_to_finance_only(world: PayWorld) -> None:
    finance_page = login(world.finance).get("/claims/payments/")
    assert ("补助金支付", "/claims/payments/") in [
        (item.label, item.url) for item in finance_page.context["nav"]
    ]
    auditor = factories.staff(world.tree.city_a, "auditor")
    nav = login(auditor).get("/claims/payments/").context["nav"]
    assert "补助金支付" not in [item.label for item in nav]
