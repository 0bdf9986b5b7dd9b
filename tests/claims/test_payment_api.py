"""Payment batches over the API (/api/v1/payments): reads with ``claim.view``, writes with
``claim.pay``; the bank file as CSV marked ``X-Huzhu-Reveal``; results as JSON rows, all or
nothing; 404 outside the subtree (S5)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import Client

from huzhu.claims.models import Claim, Partner, PaymentBatch, PaymentLine
from huzhu.claims.payments import create_member_batch, export_bank_file, line_reference
from huzhu.core.models import AuditEvent
from huzhu.ledger.models import JournalEntry
from huzhu.members.models import Member
from huzhu.plans.models import PlanVersion
from tests import factories
from tests.api.conftest import api_for
from tests.claims.conftest import ledger_clean
from tests.claims.test_payments import (
    PayWorld,
    hospital_owed,
    insured,
    member_owed,
    pay_world,
    payable,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tree: factories.Tree, plan: PlanVersion, partner: Partner) -> PayWorld:
    return pay_world(tree, plan, partner)


def _exported(w: PayWorld, names: tuple[str, ...] = ("李娜", "王芳")) -> PaymentBatch:
    for name in names:
        member_owed(w.partner, insured(w.tree, w.plan, name=name))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    return batch


def test_create_list_and_detail(world: PayWorld) -> None:
    w = world
    owed = member_owed(w.partner, insured(w.tree, w.plan, name="李娜"))
    missing = member_owed(w.partner, insured(w.tree, w.plan, account=False, name="王芳"))
    api = api_for(w.finance)

    preview = api.get("payments/preview", union_id=w.tree.city_a.pk)
    assert preview.status == 200
    assert (preview.body["count"], preview.body["total"]) == (1, "6200.00")
    assert preview.body["included"][0]["bank_account_masked"].startswith("**** ")
    assert [e["code"] for e in preview.body["excluded"]] == ["no_bank_account"]

    created = api.post("payments/batches", {"kind": "member", "union_id": w.tree.city_a.pk})
    assert created.status == 201, created.text
    batch = PaymentBatch.objects.get()
    assert created.body["batch"]["number"] == batch.number
    assert created.body["batch"]["total"] == "6200.00"
    assert created.body["batch"]["status"] == "draft"
    assert created.body["excluded"] == [
        {
            "claim_id": missing.pk,
            "claim_number": missing.number,
            "payee_name": "王芳",
            "amount": "6200.00",
            "code": "no_bank_account",
            "reason": "职工未登记银行账号，请先在职工信息中登记后再支付",
        }
    ]

    auditor = api_for(factories.staff(w.tree.city_a, "auditor"))
    listing = auditor.get("payments/batches")
    assert [b["id"] for b in listing.body["items"]] == [batch.pk]
    assert listing.body["next"] is None
    detail = auditor.get(f"payments/batches/{batch.pk}")
    assert detail.status == 200
    (line,) = detail.body["lines"]
    assert line["claim_id"] == owed.pk and line["reference"] == f"{batch.number}00001"
    assert line["result"] == "pending" and line["bank_account_masked"].startswith("**** ")
    assert auditor.post("payments/batches", {"kind": "member", "union_id": 1}).status == 403


def test_list_pages_and_filters(world: PayWorld) -> None:
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    member_owed(w.partner, insured(w.tree, w.plan, union=w.tree.grassroots_2, name="周敏"))
    first = create_member_batch(acting_user=w.finance, union=w.tree.county_a1).batch
    second = create_member_batch(acting_user=w.finance, union=w.tree.county_a2).batch
    api = api_for(w.finance)
    page = api.get("payments/batches", limit=1)
    assert [b["id"] for b in page.body["items"]] == [second.pk]
    assert page.body["next"] == second.pk
    rest = api.get("payments/batches", limit=1, after=page.body["next"])
    assert [b["id"] for b in rest.body["items"]] == [first.pk] and rest.body["next"] is None
    assert api.get("payments/batches", status="completed").body["items"] == []
    assert api.get("payments/batches", union=1).status == 422
    county = api_for(factories.staff(w.tree.county_a1, "finance"))
    assert [b["id"] for b in county.get("payments/batches").body["items"]] == [first.pk]
    assert county.get(f"payments/batches/{second.pk}").status == 404


def _post_raw(token: str, url: str, body: dict[str, str]) -> Any:
    return Client().post(
        url,
        json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_export_answers_the_csv_marked_as_a_reveal_and_audited(world: PayWorld) -> None:
    w = world
    person = insured(w.tree, w.plan)
    member_owed(w.partner, person)
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    account = str(Member.objects.get(pk=person.member.pk).bank_account_enc)
    token = api_for(w.finance).token
    assert token is not None
    url = f"/api/v1/payments/batches/{batch.pk}/export"
    response = _post_raw(token, url, {"reason": "提交银行代发"})
    assert response.status_code == 200
    # S9: the one answer holding full account numbers says so.
    assert response["X-Huzhu-Reveal"] == "1"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["序号", "收款人", "收款账号", "开户行", "金额(元)", "用途", "业务参考号"]
    assert rows[1][2] == account
    event = AuditEvent.objects.get(event="data.export")
    assert (event.actor_id, event.detail["reason"]) == (w.finance.pk, "提交银行代发")
    gbk = _post_raw(token, url, {"reason": "网银要求GBK编码", "encoding": "gbk"})
    assert gbk["Content-Type"] == "text/csv; charset=gbk"
    assert gbk["X-Huzhu-Reveal"] == "1"
    assert account in gbk.content.decode("gbk")
    # The batch detail shows the masked account only.
    detail = api_for(w.finance).get(f"payments/batches/{batch.pk}")
    assert account not in detail.text


def test_export_needs_a_reason_and_the_pay_permission(world: PayWorld) -> None:
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    missing = api_for(w.finance).post(f"payments/batches/{batch.pk}/export", {"reason": "短"})
    assert missing.status == 422
    assert missing.body["detail"][0]["field"] == "reason"
    auditor = api_for(factories.staff(w.tree.city_a, "auditor"))
    denied = auditor.post(f"payments/batches/{batch.pk}/export", {"reason": "越权导出测试"})
    assert denied.status == 404
    outsider = api_for(factories.staff(w.tree.city_b, "finance"))
    hidden = outsider.post(f"payments/batches/{batch.pk}/export", {"reason": "越权导出测试"})
    assert hidden.status == 404
    assert not AuditEvent.objects.filter(event="data.export").exists()


def test_results_are_recorded_and_posted(world: PayWorld) -> None:
    w = world
    batch = _exported(w)
    first, second = batch.lines.order_by("line_no")
    answer = api_for(w.finance).post(
        f"payments/batches/{batch.pk}/results",
        {
            "rows": [
                {
                    "reference": line_reference(batch, first),
                    "result": "succeeded",
                    "bank_reference": "ICBC0001",
                    "amount": "6200.00",
                },
                {
                    "reference": line_reference(batch, second),
                    "result": "failed",
                    "failure_reason": "户名与账号不符",
                },
            ]
        },
    )
    assert answer.status == 200, answer.text
    entry = JournalEntry.objects.get(source_type="benefit_payment")
    assert answer.body["succeeded"] == 1 and answer.body["failed"] == 1
    assert answer.body["paid"] == "6200.00"
    assert answer.body["ledger_entry"] == entry.display_number
    assert answer.body["completed"] is True
    assert answer.body["batch"]["status"] == "completed"
    assert answer.body["batch"]["succeeded"] == "6200.00"
    assert Claim.objects.get(pk=first.claim_id).status == "paid"
    assert Claim.objects.get(pk=second.claim_id).status == "approved"
    assert payable("2241") == 620000 and ledger_clean()


def test_bad_result_rows_answer_422_and_write_nothing(world: PayWorld) -> None:
    w = world
    batch = _exported(w)
    first = batch.lines.get(line_no=1)
    api = api_for(w.finance)
    events = AuditEvent.objects.count()
    answer = api.post(
        f"payments/batches/{batch.pk}/results",
        {
            "rows": [
                {"reference": line_reference(batch, first), "result": "succeeded"},
                {"reference": "NOPE", "result": "failed", "failure_reason": "x"},
            ]
        },
    )
    assert answer.status == 422
    assert [d["msg"] for d in answer.body["detail"]] == [
        "第 1 条「银行流水号」：支付成功的须填写银行流水号",
        "第 2 条「业务参考号」：本批次没有业务参考号“NOPE”",
    ]
    assert AuditEvent.objects.count() == events
    assert set(PaymentLine.objects.values_list("result", flat=True)) == {"pending"}
    bad = api.post(
        f"payments/batches/{batch.pk}/results",
        {"rows": [{"reference": "X", "result": "ok", "extra": 1}]},
    )
    assert bad.status == 422
    assert {d["field"] for d in bad.body["detail"]} == {"rows.0.result", "rows.0.extra"}


def test_cancel_and_hospital_batches(world: PayWorld) -> None:
    w = world
    claim = hospital_owed(w.partner, insured(w.tree, w.plan))
    api = api_for(w.finance)
    created = api.post(
        "payments/batches",
        {"kind": "hospital", "union_id": w.tree.city_a.pk, "hospital_code": "P430100001"},
    )
    assert created.status == 201, created.text
    batch_id = created.body["batch"]["id"]
    detail = api.get(f"payments/batches/{batch_id}")
    assert detail.body["kind"] == "hospital"
    assert detail.body["lines"][0]["claim_id"] == claim.pk
    assert detail.body["lines"][0]["bank_account_masked"] == ""
    cancelled = api.post(f"payments/batches/{batch_id}/cancel", {"reason": "清算金额待核对"})
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled"
    again = api.post(f"payments/batches/{batch_id}/cancel", {"reason": "清算金额待核对"})
    assert again.status == 422
    assert again.body["detail"][0]["msg"] == "批次已作废，不能作废"


def test_out_of_scope_union_answers_404(world: PayWorld) -> None:
    w = world
    api = api_for(w.finance)
    answer = api.post("payments/batches", {"kind": "member", "union_id": w.tree.city_b.pk})
    assert answer.status == 404
    assert api.get("payments/preview", union_id=w.tree.city_b.pk).status == 404
    assert PaymentBatch.objects.count() == 0


def test_openapi_documents_the_operations(world: PayWorld) -> None:
    schema = json.loads(Client().get("/api/v1/openapi.json").content)
    paths = schema["paths"]
    expected = {
        ("/api/v1/payments/batches", "get"): "claim.view",
        ("/api/v1/payments/batches", "post"): "claim.pay",
        ("/api/v1/payments/preview", "get"): "claim.pay",
        ("/api/v1/payments/batches/{payment_batch_id}", "get"): "claim.view",
        ("/api/v1/payments/batches/{payment_batch_id}/export", "post"): "claim.pay",
        ("/api/v1/payments/batches/{payment_batch_id}/results", "post"): "claim.pay",
        ("/api/v1/payments/batches/{payment_batch_id}/cancel", "post"): "claim.pay",
    }
    for (path, method), perm in expected.items():
        assert paths[path][method]["x-permission"] == perm
    export = paths["/api/v1/payments/batches/{payment_batch_id}/export"]["post"]
    assert "text/csv" in export["responses"]["200"]["content"]
