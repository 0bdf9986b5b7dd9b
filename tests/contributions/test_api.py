"""Co-funding over the API: a batch's invoice (JSON), per-person lines (masked), registering a
payment with a finance token, listing payments; permissions and scope (403/404), errors (422)."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone

from huzhu.contributions.funding_models import Invoice, Payment
from huzhu.contributions.funding_services import (
    SplitInput,
    create_invoice,
    create_split_agreement,
)
from tests import factories
from tests.api.conftest import api_for
from tests.contributions.conftest import DAY, FundingWorld, Person

pytestmark = pytest.mark.django_db


def test_invoice_and_payments_over_the_api(world: FundingWorld) -> None:
    create_split_agreement(
        acting_user=world.clerk,
        unit=world.tree.unit_1,
        data=SplitInput(
            valid_from=date(2026, 1, 1), mode="amount", individual="40", employer="60", union="20"
        ),
    )
    batch = world.enroll(world.people(2, hardship=[0]))
    clerk, finance = api_for(world.clerk), api_for(world.finance)
    # generated over the API (dated today) …
    other = world.enroll([Person("另一批", world.tree.unit_1)])
    created = clerk.post(f"contributions/batches/{other.pk}/invoice")
    assert created.status == 201, created.text
    assert created.body["issued_on"] == timezone.localdate().isoformat()
    again = clerk.post(f"contributions/batches/{other.pk}/invoice")
    assert again.status == 200 and again.body["id"] == created.body["id"]
    # … and one dated in the plan year by the service, read and paid over the API
    invoice = create_invoice(acting_user=world.clerk, batch=batch, today=DAY)
    body = clerk.get(f"contributions/invoices/{invoice.pk}").body
    assert (body["id"], body["number"], body["status"], body["person_count"]) == (
        invoice.pk,
        invoice.number,
        "open",
        2,
    )
    assert (body["total"], body["owed"], body["outstanding"], body["contribution"]) == (
        "240.00",
        "240.00",
        "240.00",
        "120.00",
    )
    payers = {p["payer_type"]: p for p in body["payers"]}
    assert {k: p["owed"] for k, p in payers.items()} == {
        "individual": "40.00",
        "employer": "120.00",
        "union": "40.00",
        "union_waiver": "40.00",
    }
    assert payers["employer"]["owed_capital"] == "壹佰贰拾元整"
    assert clerk.get("contributions/invoices", batch_id=batch.pk).body[0]["id"] == invoice.pk
    lines = clerk.get(f"contributions/invoices/{invoice.pk}/lines", limit=1)
    assert lines.status == 200 and lines.body["next"] is not None
    first = lines.body["items"][0]
    assert (first["individual"], first["waiver"], first["hardship"]) == ("0.00", "40.00", True)
    assert first["id_number_masked"][3:14] == "*" * 11
    rest = clerk.get(f"contributions/invoices/{invoice.pk}/lines", after=lines.body["next"])
    assert len(rest.body["items"]) == 1 and rest.body["next"] is None
    # registering payments needs the finance role: the clerk gets 404 (an object's action)
    employer = payers["employer"]
    body_in = {
        "payer_id": employer["id"],
        "amount": "120.00",
        "bank_reference": "API-1",
        "paid_on": "2026-03-05",
    }
    denied = clerk.post(f"contributions/invoices/{invoice.pk}/payments", body_in)
    assert denied.status == 404 and not Payment.objects.exists()
    over = finance.post(
        f"contributions/invoices/{invoice.pk}/payments", {**body_in, "amount": "120.01"}
    )
    assert over.status == 422
    assert over.body["detail"][0]["msg"] == (
        "本次缴费 120.01 元超过芙蓉某公司尚未缴纳的 120.00 元，不能多缴；请核对金额"
    )
    malformed = finance.post(
        f"contributions/invoices/{invoice.pk}/payments", {**body_in, "amount": "1e3", "extra": 1}
    )
    assert malformed.status == 422
    assert {e["field"] for e in malformed.body["detail"]} == {"amount", "extra"}
    paid = finance.post(f"contributions/invoices/{invoice.pk}/payments", body_in)
    assert paid.status == 201, paid.text
    assert paid.body["amount"] == "120.00" and paid.body["receipt"]["number"] == "0000000001"
    listed = clerk.get(f"contributions/invoices/{invoice.pk}/payments")
    assert [p["bank_reference"] for p in listed.body] == ["API-1"]
    for p in ("individual", "union", "union_waiver"):
        assert (
            finance.post(
                f"contributions/invoices/{invoice.pk}/payments",
                {
                    "payer_id": payers[p]["id"],
                    "amount": payers[p]["owed"],
                    "bank_reference": f"API-{p}",
                    "paid_on": "2026-03-06",
                },
            ).status
            == 201
        )
    final = clerk.get(f"contributions/invoices/{invoice.pk}").body
    assert (final["status"], final["paid_on"], final["outstanding"]) == (
        "paid",
        "2026-03-06",
        "0.00",
    )


def test_api_scope_and_permissions(world: FundingWorld) -> None:
    batch = world.enroll(world.people(1))
    outsider = api_for(factories.staff(world.tree.county_a2, "clerk", "finance"))
    assert outsider.post(f"contributions/batches/{batch.pk}/invoice").status == 404
    api_for(world.clerk).post(f"contributions/batches/{batch.pk}/invoice")
    invoice = Invoice.objects.get()
    for path in (
        f"contributions/invoices/{invoice.pk}",
        f"contributions/invoices/{invoice.pk}/lines",
        f"contributions/invoices/{invoice.pk}/payments",
    ):
        assert outsider.get(path).status == 404, path
    assert outsider.get("contributions/invoices").body == []
    reviewer = api_for(factories.staff(world.tree.county_a1, "reviewer"))
    assert reviewer.get("contributions/invoices").status == 403
    assert reviewer.get(f"contributions/invoices/{invoice.pk}").status == 404
    assert api_for(world.clerk).get("contributions/invoices", union=1).status == 422
