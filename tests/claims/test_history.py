"""The member's claim history in plain Chinese: the portal page 我的理赔 (issue #5 item 5)."""

from __future__ import annotations

import pytest
from django.test import Client

from huzhu.claims.history import history
from huzhu.claims.services import receive_settlement
from tests import factories
from tests.claims.conftest import covered_person, settle_body
from tests.portal.conftest import activate, login_member

pytestmark = pytest.mark.django_db


def test_history_says_status_amount_and_why(tree, plan, partner):
    person = covered_person(tree, plan)
    receive_settlement(partner=partner, body=settle_body(person.certno, "H1"))
    receive_settlement(
        partner=partner,
        body=settle_body(person.certno, "H2", base="0.00", setl_time="2026-03-11 10:00:00"),
    )
    rows = {r.claim.record_key: r for r in history(person.member)}
    approved, zero = rows["H1"], rows["H2"]
    assert (approved.status_label, approved.amount) == ("已核准", "6200.00")
    assert "出院结算时已由医院直接减免" in approved.why
    assert (zero.status_label, zero.amount) == ("不予给付", "0.00")
    assert "不予给付" in zero.why and len(zero.why) > len("不予给付。")


def test_portal_page_lists_own_claims_only(tree, plan, partner):
    person = covered_person(tree, plan)
    other = covered_person(tree, plan, name="李娜")
    receive_settlement(partner=partner, body=settle_body(person.certno, "MINE"))
    receive_settlement(partner=partner, body=settle_body(other.certno, "THEIRS"))
    clerk = factories.staff(tree.grassroots_1, "clerk")
    activate(clerk, person.member, person.certno)
    client = login_member(Client(), person.certno)
    response = client.get("/portal/claims/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "住院互助保障" in text and "¥6200.00" in text
    mine = person.member.claims.get().number
    theirs = other.member.claims.get().number
    assert mine in text and theirs not in text
