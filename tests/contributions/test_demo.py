"""The demo province's co-funding (``huzhu.demo_funding.build_demo_funding``): plan, ranges,
agreements, batches, invoices, payments — real content for every screen, idempotent."""

from __future__ import annotations

from typing import Any

import pytest

from huzhu.contributions.funding_models import Invoice, InvoicePayer, Payment, SplitAgreement
from huzhu.contributions.receipt_models import Receipt
from huzhu.core.audit import first_problem
from huzhu.core.models import AuditEvent
from huzhu.demo import build_demo
from huzhu.demo_funding import build_demo_funding
from huzhu.enrollment.models import Enrollment
from huzhu.ledger.models import JournalEntry

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, Any]:
    return {
        "agreements": SplitAgreement.objects.count(),
        "invoices": list(Invoice.objects.order_by("pk").values_list("pk", "status", "total_fen")),
        "payments": Payment.objects.count(),
        "receipts": Receipt.objects.count(),
        "entries": JournalEntry.objects.count(),
        "enrollments": Enrollment.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def test_demo_funding_is_real_and_idempotent() -> None:
    build_demo(members=400)
    summary = build_demo_funding()
    assert summary.batches == summary.invoices >= 2 and summary.enrolled > 20
    invoices = list(Invoice.objects.order_by("pk"))
    statuses = [i.status for i in invoices]
    assert statuses[:-1] == ["paid"] * (len(invoices) - 1) and statuses[-1] == "partial"
    paid = Enrollment.objects.filter(batch__invoice__in=invoices[:-1])
    assert set(paid.values_list("status", flat=True)) == {"active"}
    assert set(
        Enrollment.objects.filter(batch=invoices[-1].batch).values_list("status", flat=True)
    ) == {"pending"}
    assert Receipt.objects.count() == Payment.objects.count() > 0
    assert InvoicePayer.objects.filter(payer_type="employer").exists()
    assert SplitAgreement.objects.exists()
    payment = Payment.objects.select_related("registered_by").first()
    assert payment is not None and payment.registered_by.username == "finance"
    before = _snapshot()
    again = build_demo_funding()
    assert _snapshot() == before
    assert (again.invoices, again.payments) == (summary.invoices, 0)
    assert first_problem() is None
