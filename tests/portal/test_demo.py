"""The portal part of ``huzhu demo``: a 芙蓉区 member with a receipt of their own (paid, booked and
receipted through the real services) and an activated account with the documented password;
idempotent; the printed instructions carry the ID number a tester needs."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from huzhu.contributions.receipt_models import Receipt
from huzhu.core.audit import first_problem
from huzhu.core.models import AuditEvent
from huzhu.demo import build_demo
from huzhu.demo_portal import (
    DEMO_MEMBER_PASSWORD,
    build_demo_portal,
    demo_portal_member,
    print_demo_portal,
)
from huzhu.ledger import verify
from huzhu.ledger.models import JournalEntry
from huzhu.members.models import Member
from huzhu.orgs.models import Union
from huzhu.portal.models import MemberAccount

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, Any]:
    return {
        "receipts": Receipt.objects.count(),
        "entries": JournalEntry.objects.count(),
        "accounts": list(MemberAccount.objects.values_list("pk", "password")),
        "audit": AuditEvent.objects.count(),
    }


def test_the_demo_member_can_log_in_and_has_a_receipt(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_demo_portal() is None  # nothing to do without the demo province
    build_demo(members=400)
    member = build_demo_portal()
    assert member is not None and demo_portal_member() == member
    county = Union.objects.get(code="430102")
    assert member.union_path.startswith(county.path)
    account = MemberAccount.objects.get(member=member)
    assert account.is_activated and MemberAccount.objects.count() == 1
    receipts = list(Receipt.objects.filter(payer_member=member))
    assert len(receipts) == 1 and receipts[0].payer_kind == "individual"
    assert receipts[0].total_fen == 6000 and receipts[0].issuer.name == "长沙市总工会"
    assert verify.first_problem() is None and first_problem() is None

    before = _snapshot()
    assert build_demo_portal() == member
    assert _snapshot() == before

    number = str(Member.objects.get(pk=member.pk).id_number_enc)
    print_demo_portal()
    out = capsys.readouterr().out
    assert number in out and member.id_number_masked in out and DEMO_MEMBER_PASSWORD in out
    assert "/portal/login/" in out

    client = Client()
    response = client.post(
        reverse("portal:login"), {"id_number": number, "password": DEMO_MEMBER_PASSWORD}
    )
    assert response.status_code == 302
    page = client.get(reverse("portal:receipts")).content.decode()
    assert f"{receipts[0].code}-{receipts[0].number_text}" in page
    home = client.get(reverse("portal:home")).content.decode()
    assert "保障中" in home
