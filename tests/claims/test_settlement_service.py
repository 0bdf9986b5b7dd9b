"""The one-stop settlement service (R12, INTERFACES.md §3): pricing, exactly-once, consent
quarantine, cancellation with re-pricing, and the ledger postings."""

from __future__ import annotations

import pytest

from huzhu.claims.intake import parse_cancel_body
from huzhu.claims.models import BenefitYear, Claim, ClaimStatus, Settlement
from huzhu.claims.services import (
    OutOfScope,
    UnknownSettlement,
    cancel_settlement,
    receive_settlement,
)
from huzhu.core.errors import ConflictError, InvalidInput
from huzhu.members.services import grant_consent
from tests import factories
from tests.claims.conftest import covered_person, ledger_clean, make_partner, settle_body
from tests.contributions.conftest import balance

pytestmark = pytest.mark.django_db


def _payable(code: str) -> int:
    """Credits minus debits of a liability account over every posted line."""
    return -balance(code)


def test_worked_example_1_is_approved_and_deducted_by_the_hospital(partner, person):
    answer = receive_settlement(partner=partner, body=settle_body(person.certno))
    assert answer.status_code == 200
    assert answer.body["status"] == "approved"
    assert answer.body["benefit"] == "6200.00"
    assert answer.body["product"] == "inpatient"
    assert answer.body["reason"] is None
    claim = Claim.objects.get()
    assert (claim.status, claim.benefit_fen, claim.posted_fen) == (
        ClaimStatus.APPROVED,
        620000,
        620000,
    )
    assert claim.deducted_at_discharge is True
    assert claim.plan_code == "HUNAN-2026"
    assert _payable("2242") == 620000
    assert ledger_clean()


def test_claim_numbers_come_from_the_settlement_rows_never_from_chance(partner, person):
    from django.utils import timezone

    for setl_id in ("S0001", "S0002", "S0003"):
        receive_settlement(partner=partner, body=settle_body(person.certno, setl_id, base="10.00"))
    day = f"{timezone.localdate():%Y%m%d}"
    numbers = {c.settlement_id: c.number for c in Claim.objects.all()}
    assert numbers == {
        pk: f"YZ{day}{pk:010d}" for pk in Settlement.objects.values_list("pk", flat=True)
    }


def test_second_record_prices_on_the_running_base(partner, person):
    receive_settlement(partner=partner, body=settle_body(person.certno))
    answer = receive_settlement(
        partner=partner, body=settle_body(person.certno, "S0002", base="3000.00")
    )
    assert answer.body["benefit"] == "2100.00"
    assert BenefitYear.objects.get().total_fen == 830000


def test_repeat_answers_the_same_and_changes_nothing(partner, person):
    body = settle_body(person.certno)
    first = receive_settlement(partner=partner, body=body)
    reordered = {"diseinfo": body["diseinfo"], "setlinfo": dict(reversed(body["setlinfo"].items()))}
    again = receive_settlement(partner=partner, body=reordered)
    assert again.body == first.body and again.replayed
    assert Claim.objects.count() == 1 and Settlement.objects.count() == 1


def test_different_body_for_the_same_setl_id_conflicts(partner, person):
    receive_settlement(partner=partner, body=settle_body(person.certno))
    with pytest.raises(ConflictError):
        receive_settlement(partner=partner, body=settle_body(person.certno, base="11000.00"))
    assert Claim.objects.get().benefit_fen == 620000


def test_unknown_member_is_rejected_not_found(partner, tree):
    answer = receive_settlement(partner=partner, body=settle_body(factories.id_number()))
    assert (answer.body["status"], answer.body["reason"]) == ("rejected", "NOT_FOUND")
    assert Claim.objects.count() == 0


def test_member_outside_partner_scope_is_forbidden(tree, plan):
    other = make_partner(tree.city_b, partner_id="P430200001")
    person = covered_person(tree, plan)
    with pytest.raises(OutOfScope):
        receive_settlement(partner=other, body=settle_body(person.certno))
    assert Settlement.objects.count() == 0


def test_invalid_body_names_every_field(partner, person):
    body = settle_body(person.certno, medfee_sumamt="12.345", extra_field="x")
    body["setlinfo"].pop("adm_date")
    with pytest.raises(InvalidInput) as caught:
        receive_settlement(partner=partner, body=body)
    fields = {e.field for e in caught.value.errors}
    assert {"setlinfo.medfee_sumamt", "setlinfo.extra_field", "setlinfo.adm_date"} <= fields
    assert Settlement.objects.count() == 0


def test_without_consent_the_record_is_quarantined_then_released(
    tree, plan, partner, django_capture_on_commit_callbacks
):
    person = covered_person(tree, plan, consent=False)
    answer = receive_settlement(partner=partner, body=settle_body(person.certno))
    assert (answer.body["status"], answer.body["reason"]) == ("quarantined", "NO_CONSENT")
    claim = Claim.objects.get()
    assert claim.status == ClaimStatus.QUARANTINED and claim.benefit_fen == 0
    assert not BenefitYear.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        grant_consent(acting_user=None, member=person.member)
    claim.refresh_from_db()
    assert (claim.status, claim.benefit_fen) == (ClaimStatus.APPROVED, 620000)
    # The hospital did not deduct it at discharge: the member is owed it.
    assert claim.deducted_at_discharge is False
    assert _payable("2241") == 620000 and _payable("2242") == 0
    assert ledger_clean()


def test_cancel_reverses_and_reprices_the_later_record(partner, person):
    receive_settlement(partner=partner, body=settle_body(person.certno, "S1", base="800.00"))
    second = receive_settlement(
        partner=partner,
        body=settle_body(person.certno, "S2", base="700.00", setl_time="2026-03-11 10:00:00"),
    )
    assert second.body["benefit"] == "250.00"
    moment, digest = parse_cancel_body({"cancel_time": "2026-03-12 09:00:00"})
    answer = cancel_settlement(partner=partner, setl_id="S1", cancel_time=moment, body_hash=digest)
    # Without S1 the 700 falls inside the deductible: the year's entitlement drops by 250.
    assert answer.body["benefit"] == "-250.00"
    assert answer.body["status"] == "cancelled"
    s2 = Claim.objects.get(record_key="S2")
    assert (s2.benefit_fen, s2.posted_fen) == (0, 0)
    assert Claim.objects.get(record_key="S1").status == ClaimStatus.CANCELLED
    assert _payable("2242") == 0
    again = cancel_settlement(partner=partner, setl_id="S1", cancel_time=moment, body_hash=digest)
    assert again.body == answer.body and again.replayed
    assert ledger_clean()


def test_cancel_of_unknown_setl_id(partner, person):
    moment, digest = parse_cancel_body({"cancel_time": "2026-03-12 09:00:00"})
    with pytest.raises(UnknownSettlement):
        cancel_settlement(partner=partner, setl_id="NOPE", cancel_time=moment, body_hash=digest)


def test_cap_reached_record_gains_a_price_when_an_earlier_one_is_cancelled(partner, person):
    receive_settlement(
        partner=partner,
        body=settle_body(
            person.certno,
            "A",
            base="100000.00",
            medfee_sumamt="200000.00",
            inscp_scp_amt="150000.00",
            fund_pay_sumamt="50000.00",
        ),
    )
    receive_settlement(
        partner=partner,
        body=settle_body(
            person.certno,
            "B",
            base="80000.00",
            medfee_sumamt="200000.00",
            inscp_scp_amt="150000.00",
            fund_pay_sumamt="70000.00",
            setl_time="2026-03-11 10:00:00",
        ),
    )
    third = receive_settlement(
        partner=partner,
        body=settle_body(person.certno, "C", base="5000.00", setl_time="2026-03-12 10:00:00"),
    )
    assert (third.body["status"], third.body["reason"]) == ("rejected", "CAP_REACHED")
    moment, digest = parse_cancel_body({"cancel_time": "2026-03-13 09:00:00"})
    cancel_settlement(partner=partner, setl_id="B", cancel_time=moment, body_hash=digest)
    c = Claim.objects.get(record_key="C")
    assert c.status == ClaimStatus.APPROVED and c.benefit_fen > 0
    assert c.deducted_at_discharge is False
    assert BenefitYear.objects.get().total_fen <= 8000000
    assert ledger_clean()
