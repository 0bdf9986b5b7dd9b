"""Review of claims (R15, S6): the state machine with every allowed and refused transition, the
separation of duties (creator ≠ approver ≠ second approver, second approval at the city union),
rejection that takes a record out of its year and prices the year again, one appeal that puts the
record back, and the review policy."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huzhu.claims import review
from huzhu.claims.intake import parse_cancel_body
from huzhu.claims.manual import file_manual_claim
from huzhu.claims.models import (
    BenefitYear,
    Claim,
    ClaimStatus,
    ClaimStep,
    Partner,
    ReviewPolicy,
)
from huzhu.claims.pricing import policy_for, state_of
from huzhu.claims.review import RejectionCode
from huzhu.claims.services import cancel_settlement, receive_settlement
from huzhu.core.errors import ErrorCode, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import User
from huzhu.plans.models import PlanVersion
from tests import factories
from tests.claims.conftest import Person, covered_person, ledger_clean, settle_body
from tests.claims.manual_support import critical, documents_for, hospital
from tests.contributions.conftest import balance

pytestmark = pytest.mark.django_db


def payable(code: str) -> int:
    """Credits minus debits of a liability account (what the fund owes)."""
    return -balance(code)


@pytest.fixture
def reviewer(tree: factories.Tree) -> User:
    return factories.staff(tree.county_a1, "reviewer", username="county_reviewer")


@pytest.fixture
def city_reviewer(tree: factories.Tree) -> User:
    return factories.staff(tree.city_a, "reviewer", username="city_reviewer")


@pytest.fixture
def clerk(tree: factories.Tree) -> User:
    return factories.staff(tree.county_a1, "clerk", username="county_clerk")


def flagged(partner: Partner, person: Person, setl_id: str = "F1", **extra: Any) -> Claim:
    """A one-stop claim sent to review: admitted within 30 days of the coverage start
    (flag new_enrollment), base 12000 → 6200.00 (worked example 1)."""
    extra.setdefault("adm_date", "2026-01-10")
    extra.setdefault("setl_time", "2026-01-15 10:00:00")
    answer = receive_settlement(partner=partner, body=settle_body(person.certno, setl_id, **extra))
    assert answer.body["status"] == "pending_review", answer.body
    return Claim.objects.get(record_key=setl_id)


def large(partner: Partner, person: Person, setl_id: str = "L1", base: str = "35000.00") -> Claim:
    """A one-stop claim above the auto-approval limit: base 35000 → 22300.00 (above 20000)."""
    inscp = int(base.split(".")[0]) + 50000
    body = settle_body(
        person.certno,
        setl_id,
        base=base,
        medfee_sumamt="200000.00",
        inscp_scp_amt=f"{inscp}.00",
        fund_pay_sumamt="50000.00",
    )
    answer = receive_settlement(partner=partner, body=body)
    assert answer.body["status"] == "pending_review", answer.body
    return Claim.objects.get(record_key=setl_id)


def manual_claim(person: Person, creator: User, *, base: int = 12000) -> Claim:
    """A hospitalization filed by ``creator`` from a settlement sheet (submitted, priced in the
    year): base ``base`` yuan (12000 → 6200.00)."""
    inscp = base + 13000
    data = hospital(
        figures={
            "medfee_sumamt": f"{inscp + 5000}.00",
            "inscp_scp_amt": f"{inscp}.00",
            "fund_pay_sumamt": "13000.00",
        }
    )
    claim = file_manual_claim(
        acting_user=creator, member=person.member, data=data, documents=documents_for("inpatient")
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED
    return claim


def events(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name).order_by("id"))


def actions(claim: Claim) -> list[str]:
    return list(ClaimStep.objects.filter(claim=claim).values_list("action", flat=True))


# --- approval --------------------------------------------------------------------------------
def test_approval_posts_the_benefit_owed_to_the_member(partner, person, reviewer):
    claim = flagged(partner, person)
    assert (claim.status, claim.benefit_fen, claim.flags) == (
        ClaimStatus.IN_REVIEW,
        620000,
        ["new_enrollment"],
    )
    assert payable("2241") == 0 and payable("2242") == 0

    review.approve(acting_user=reviewer, claim=claim, note="材料齐全")

    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED
    assert (claim.benefit_fen, claim.posted_fen) == (620000, 620000)
    assert claim.approved_by == reviewer and claim.decided_at is not None
    # Not deducted at discharge (the hospital was told "pending review"): owed to the member.
    assert claim.deducted_at_discharge is False
    assert payable("2241") == 620000 and payable("2242") == 0
    step = ClaimStep.objects.filter(claim=claim).last()
    assert step is not None
    assert (
        step.action,
        step.from_status,
        step.to_status,
        step.actor,
        step.amount_fen,
        step.note,
    ) == (
        "approve",
        ClaimStatus.IN_REVIEW,
        ClaimStatus.APPROVED,
        reviewer,
        620000,
        "材料齐全",
    )
    [event] = events(review.EVENT_APPROVED)
    assert (event.actor_id, event.object_id, event.organisation_id) == (
        reviewer.pk,
        str(claim.pk),
        claim.union_id,
    )
    assert event.detail == {"number": claim.number, "status": "approved", "benefit_fen": 620000}
    assert ledger_clean()


def test_large_amount_needs_a_city_second_approver(partner, person, reviewer, city_reviewer, tree):
    claim = large(partner, person)
    assert claim.benefit_fen == 2230000

    review.approve(acting_user=reviewer, claim=claim)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SECOND_REVIEW and claim.approved_by == reviewer
    assert claim.posted_fen == 0 and payable("2241") == 0  # nothing owed before the second approval

    # A county reviewer (even another one) is not a second approver.
    other_county = factories.staff(tree.county_a1, "reviewer")
    with pytest.raises(InvalidInput) as caught:
        review.second_approve(acting_user=other_county, claim=claim)
    assert caught.value.errors[0].message == "大额理赔须由市（州）总工会或省总工会的审核人员复核"
    # Another city's reviewer does not see the claim at all.
    with pytest.raises(NotPermitted):
        review.second_approve(acting_user=factories.staff(tree.city_b, "reviewer"), claim=claim)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SECOND_REVIEW and claim.second_approved_by is None

    review.second_approve(acting_user=city_reviewer, claim=claim, note="复核同意")
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED
    assert (claim.approved_by, claim.second_approved_by) == (reviewer, city_reviewer)
    assert (claim.posted_fen, payable("2241")) == (2230000, 2230000)
    assert actions(claim)[-2:] == ["approve_first", "second_approve"]
    assert [e.actor_id for e in events(review.EVENT_SECOND_REVIEW)] == [reviewer.pk]
    assert [e.actor_id for e in events(review.EVENT_SECOND_APPROVED)] == [city_reviewer.pk]
    assert ledger_clean()


def test_provincial_reviewer_may_give_the_second_approval(partner, person, reviewer, tree):
    claim = large(partner, person)
    review.approve(acting_user=reviewer, claim=claim)
    review.second_approve(acting_user=factories.staff(tree.province, "reviewer"), claim=claim)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED


def test_the_first_approver_cannot_give_the_second_approval(partner, person, city_reviewer):
    claim = large(partner, person)
    review.approve(acting_user=city_reviewer, claim=claim)
    with pytest.raises(InvalidInput) as caught:
        review.second_approve(acting_user=city_reviewer, claim=claim)
    assert caught.value.errors[0].message == "初审人不能复核本人初审的申请（职责分离）"
    assert caught.value.errors[0].code == ErrorCode.FORBIDDEN
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SECOND_REVIEW and claim.posted_fen == 0


def test_the_creator_cannot_review_their_own_claim(tree, plan, reviewer):
    """S6 also for a user who holds both roles (the demo's province_admin)."""
    person = covered_person(tree, plan)
    both = factories.staff(tree.county_a1, "clerk", "reviewer")
    claim = manual_claim(person, both)
    audit_before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        review.start_review(acting_user=both, claim=claim)
    assert caught.value.errors[0].message == "申请的经办人不能审核本人经办的申请（职责分离）"
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SUBMITTED and AuditEvent.objects.count() == audit_before

    review.start_review(acting_user=reviewer, claim=claim)
    attempts = (
        lambda: review.approve(acting_user=both, claim=claim),
        lambda: review.reject(acting_user=both, claim=claim, code=RejectionCode.DOCUMENTS_MISSING),
    )
    for attempt in attempts:
        with pytest.raises(InvalidInput) as caught:
            attempt()
        assert caught.value.errors[0].message == "申请的经办人不能审核本人经办的申请（职责分离）"
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.IN_REVIEW and claim.approved_by is None
    review.approve(acting_user=reviewer, claim=claim)
    claim.refresh_from_db()
    assert (claim.status, claim.reviewed_by, claim.approved_by) == (
        ClaimStatus.APPROVED,
        reviewer,
        reviewer,
    )
    assert actions(claim) == ["file", "submit", "start_review", "approve"]


def test_the_creator_cannot_give_the_second_approval(tree, plan, reviewer):
    person = covered_person(tree, plan)
    city_both = factories.staff(tree.city_a, "clerk", "reviewer")
    claim = manual_claim(person, city_both, base=35000)
    review.start_review(acting_user=reviewer, claim=claim)
    review.approve(acting_user=reviewer, claim=claim)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SECOND_REVIEW
    with pytest.raises(InvalidInput) as caught:
        review.second_approve(acting_user=city_both, claim=claim)
    assert caught.value.errors[0].message == "申请的经办人不能审核本人经办的申请（职责分离）"


def test_policy_limit_decides_the_second_approval(partner, person, reviewer, tree):
    manager = factories.staff(tree.grassroots_1, "plan_manager")
    limits = {
        "auto_approve_limit_fen": 2_000_000,
        "second_approval_limit_fen": 500_000,
        "large_amount_fen": 3_000_000,
        "many_claims_count": 4,
        "new_enrollment_days": 30,
        "hospital_share_percent": 30,
        "hospital_share_min_claims": 50,
    }
    review.update_policy(acting_user=manager, organisation=tree.grassroots_1, **limits)
    claim = flagged(partner, person)  # 6200.00 > 5000.00
    review.approve(acting_user=reviewer, claim=claim)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.SECOND_REVIEW


def test_send_back_returns_the_claim_to_review(partner, person, reviewer, city_reviewer):
    claim = large(partner, person)
    review.approve(acting_user=reviewer, claim=claim)
    with pytest.raises(InvalidInput) as caught:
        review.send_back(acting_user=city_reviewer, claim=claim, note=" ")
    assert caught.value.errors[0].field == "note"
    review.send_back(acting_user=city_reviewer, claim=claim, note="请补充出院记录")
    claim.refresh_from_db()
    assert (claim.status, claim.approved_by) == (ClaimStatus.IN_REVIEW, None)
    step = ClaimStep.objects.filter(claim=claim).last()
    assert step is not None and (step.action, step.note, step.actor) == (
        "send_back",
        "请补充出院记录",
        city_reviewer,
    )
    # Approved again, by the same first reviewer, then second-approved.
    review.approve(acting_user=reviewer, claim=claim)
    review.second_approve(acting_user=city_reviewer, claim=claim)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED and claim.posted_fen == 2230000
    assert ledger_clean()


# --- the whole state machine: every refused transition changes nothing -----------------------
ALLOWED: dict[str, set[str]] = {
    "start_review": {ClaimStatus.SUBMITTED, ClaimStatus.APPEALED},
    "approve": {ClaimStatus.IN_REVIEW},
    "second_approve": {ClaimStatus.SECOND_REVIEW},
    "send_back": {ClaimStatus.SECOND_REVIEW},
    "reject": {ClaimStatus.IN_REVIEW, ClaimStatus.SECOND_REVIEW},
    "appeal": {ClaimStatus.REJECTED},
}
EXPECTED_AFTER = {
    ("start_review", ClaimStatus.SUBMITTED): ClaimStatus.IN_REVIEW,
    ("start_review", ClaimStatus.APPEALED): ClaimStatus.IN_REVIEW,
    ("approve", ClaimStatus.IN_REVIEW): ClaimStatus.APPROVED,
    ("second_approve", ClaimStatus.SECOND_REVIEW): ClaimStatus.APPROVED,
    ("send_back", ClaimStatus.SECOND_REVIEW): ClaimStatus.IN_REVIEW,
    ("reject", ClaimStatus.IN_REVIEW): ClaimStatus.REJECTED,
    ("reject", ClaimStatus.SECOND_REVIEW): ClaimStatus.REJECTED,
    ("appeal", ClaimStatus.REJECTED): ClaimStatus.APPEALED,
}


def _run(action: str, claim: Claim, reviewer: User, city: User, clerk: User) -> None:
    if action == "start_review":
        review.start_review(acting_user=reviewer, claim=claim)
    elif action == "approve":
        review.approve(acting_user=reviewer, claim=claim)
    elif action == "second_approve":
        review.second_approve(acting_user=city, claim=claim)
    elif action == "send_back":
        review.send_back(acting_user=city, claim=claim, note="请补充材料")
    elif action == "reject":
        review.reject(acting_user=city, claim=claim, code=RejectionCode.DOCUMENTS_MISSING)
    else:
        review.appeal(acting_user=clerk, claim=claim, reason="已补齐全部材料")


@pytest.mark.parametrize("status", ClaimStatus.values)
@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_transition_matrix(action, status, partner, person, reviewer, city_reviewer, clerk):
    claim = flagged(partner, person)
    fields: dict[str, Any] = {"status": status}
    if status == ClaimStatus.REJECTED:
        fields.update(rejection_code=RejectionCode.DOCUMENTS_MISSING, decided_at=timezone.now())
    if status == ClaimStatus.SECOND_REVIEW:
        fields.update(approved_by=reviewer)
    Claim.objects.filter(pk=claim.pk).update(**fields)
    claim.refresh_from_db()
    steps, audit = ClaimStep.objects.count(), AuditEvent.objects.count()
    if status in ALLOWED[action]:
        _run(action, claim, reviewer, city_reviewer, clerk)
        claim.refresh_from_db()
        assert claim.status == EXPECTED_AFTER[(action, status)]
        assert ClaimStep.objects.count() > steps and AuditEvent.objects.count() > audit
    else:
        with pytest.raises(InvalidInput) as caught:
            _run(action, claim, reviewer, city_reviewer, clerk)
        assert caught.value.errors[0].code == ErrorCode.STATE
        assert caught.value.errors[0].message.startswith(
            f"该申请当前状态为“{ClaimStatus(status).label}”"
        )
        claim.refresh_from_db()
        assert claim.status == status
        assert (ClaimStep.objects.count(), AuditEvent.objects.count()) == (steps, audit)
    assert ledger_clean()


def test_roles_and_scope(partner, person, tree, clerk):
    claim = flagged(partner, person)
    auditor = factories.staff(tree.county_a1, "auditor")
    sibling = factories.staff(tree.county_a2, "reviewer")
    for user in (clerk, auditor, sibling):
        with pytest.raises(NotPermitted):
            review.approve(acting_user=user, claim=claim)
        with pytest.raises(NotPermitted):
            review.reject(acting_user=user, claim=claim, code=RejectionCode.OTHER, note="x" * 5)
    reviewer = factories.staff(tree.county_a1, "reviewer")
    with pytest.raises(NotPermitted):  # appeals are registered by a clerk, not a reviewer
        review.appeal(acting_user=reviewer, claim=claim, reason="材料已补齐")
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.IN_REVIEW


# --- rejection and the year --------------------------------------------------------------------
def test_rejection_takes_the_record_out_of_the_year_and_reprices_it(partner, person, reviewer):
    first = flagged(partner, person, "A")  # 12000 → 6200.00, in review
    later = receive_settlement(
        partner=partner,
        body=settle_body(
            person.certno,
            "B",
            base="3000.00",
            adm_date="2026-03-01",
            setl_time="2026-03-05 09:00:00",
        ),
    )
    assert (later.body["status"], later.body["benefit"]) == ("approved", "2100.00")
    assert payable("2242") == 210000  # deducted by the hospital at discharge

    with pytest.raises(InvalidInput) as caught:
        review.reject(acting_user=reviewer, claim=first, code="")
    assert caught.value.errors[0].field == "code"
    with pytest.raises(InvalidInput) as caught:
        review.reject(acting_user=reviewer, claim=first, code=RejectionCode.OTHER)
    assert caught.value.errors[0].field == "note"

    review.reject(
        acting_user=reviewer,
        claim=first,
        code=RejectionCode.FALSE_MATERIAL,
        note="发票与结算单不符",
    )

    first.refresh_from_db()
    assert (first.status, first.benefit_fen, first.posted_fen) == (ClaimStatus.REJECTED, 0, 0)
    assert (first.rejection_code, first.rejection_note) == ("false_material", "发票与结算单不符")
    assert first.decided_at is not None
    year = BenefitYear.objects.get(person_index=first.person_index, product="inpatient")
    state = state_of(year)
    assert [r.setl_id for r in state.records] == ["B"]
    # Alone in the year, B's 3000 pays 2000 × 50% = 1000.00: the 1100.00 it no longer gets is
    # reversed on the hospital's account.
    second = Claim.objects.get(record_key="B")
    assert (second.status, second.benefit_fen, second.posted_fen) == (
        ClaimStatus.APPROVED,
        100000,
        100000,
    )
    assert year.total_fen == 100000
    assert payable("2242") == 100000 and payable("2241") == 0
    assert actions(first)[-2:] == ["reprice", "reject"]
    [event] = events(review.EVENT_REJECTED)
    assert event.detail == {
        "number": first.number,
        "status": "rejected",
        "code": "false_material",
        "year_change_fen": -730000,  # 8300.00 → 1000.00
    }
    assert ledger_clean()


def test_second_approver_may_reject(partner, person, reviewer, city_reviewer):
    claim = large(partner, person)
    review.approve(acting_user=reviewer, claim=claim)
    with pytest.raises(InvalidInput):  # the first approver is not the second reviewer
        review.reject(acting_user=reviewer, claim=claim, code=RejectionCode.DUPLICATE_CLAIM)
    review.reject(acting_user=city_reviewer, claim=claim, code=RejectionCode.DUPLICATE_CLAIM)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.REJECTED and claim.benefit_fen == 0
    assert BenefitYear.objects.get().total_fen == 0
    assert ledger_clean()


# --- appeal ------------------------------------------------------------------------------------
def test_appeal_once_then_approval_puts_the_record_back(partner, person, reviewer, clerk):
    first = flagged(partner, person, "A")
    receive_settlement(
        partner=partner,
        body=settle_body(
            person.certno,
            "B",
            base="3000.00",
            adm_date="2026-03-01",
            setl_time="2026-03-05 09:00:00",
        ),
    )
    review.reject(acting_user=reviewer, claim=first, code=RejectionCode.DOCUMENTS_MISSING)
    with pytest.raises(InvalidInput) as caught:
        review.appeal(acting_user=clerk, claim=first, reason="补")
    assert caught.value.errors[0].field == "reason"

    review.appeal(acting_user=clerk, claim=first, reason="已补交出院记录和发票")
    first.refresh_from_db()
    assert first.status == ClaimStatus.APPEALED and first.appeal_reason == "已补交出院记录和发票"
    assert first.appealed_at is not None

    review.start_review(acting_user=reviewer, claim=first)
    review.approve(acting_user=reviewer, claim=first, note="申诉成立")

    first.refresh_from_db()
    # A joins the end of the year: B 3000 (1000.00), then A 12000: S(14000) = 8300.00 in all,
    # so A is priced 7300.00 and owed to the member.
    assert (first.status, first.benefit_fen, first.posted_fen) == (
        ClaimStatus.APPROVED,
        730000,
        730000,
    )
    assert (first.rejection_code, first.deducted_at_discharge) == ("", False)
    year = BenefitYear.objects.get(person_index=first.person_index, product="inpatient")
    assert [r.setl_id for r in state_of(year).records] == ["B", "A"]
    assert year.total_fen == 830000
    assert payable("2241") == 730000 and payable("2242") == 100000
    assert actions(first)[-5:] == ["reject", "appeal", "start_review", "appeal_reprice", "approve"]
    assert first.explanation["benefit"] == "7300.00"
    [event] = events(review.EVENT_APPEALED)
    assert event.actor_id == clerk.pk
    assert ledger_clean()


def test_only_one_appeal(partner, person, reviewer, clerk):
    claim = flagged(partner, person)
    review.reject(acting_user=reviewer, claim=claim, code=RejectionCode.DOCUMENTS_MISSING)
    review.appeal(acting_user=clerk, claim=claim, reason="已补交全部材料")
    review.start_review(acting_user=reviewer, claim=claim)
    review.reject(acting_user=reviewer, claim=claim, code=RejectionCode.FALSE_MATERIAL)
    with pytest.raises(InvalidInput) as caught:
        review.appeal(acting_user=clerk, claim=claim, reason="再次申诉理由")
    assert caught.value.errors[0].message == "每项申请只能申诉一次，该申请已申诉过"
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.REJECTED and not review.may_appeal(claim)
    assert ledger_clean()


def test_appeal_window(partner, person, reviewer, clerk):
    claim = flagged(partner, person)
    review.reject(acting_user=reviewer, claim=claim, code=RejectionCode.DOCUMENTS_MISSING)
    Claim.objects.filter(pk=claim.pk).update(
        decided_at=timezone.now() - timedelta(days=review.APPEAL_DAYS, minutes=1)
    )
    claim.refresh_from_db()
    assert not review.may_appeal(claim)
    with pytest.raises(InvalidInput) as caught:
        review.appeal(acting_user=clerk, claim=claim, reason="已补交全部材料")
    assert caught.value.errors[0].message.startswith("申诉须在不予给付决定后 60 日内提出")
    Claim.objects.filter(pk=claim.pk).update(
        decided_at=timezone.now() - timedelta(days=review.APPEAL_DAYS - 1)
    )
    claim.refresh_from_db()
    assert review.may_appeal(claim)
    review.appeal(acting_user=clerk, claim=claim, reason="已补交全部材料")


def test_member_appeals_in_person(partner, person, reviewer, tree, plan):
    claim = flagged(partner, person)
    review.reject(acting_user=reviewer, claim=claim, code=RejectionCode.NOT_COVERED_EVENT)
    stranger = covered_person(tree, plan, name="李娜")
    with pytest.raises(NotPermitted):
        review.appeal(member=stranger.member, claim=claim, reason="这是我的申请")
    review.appeal(member=person.member, claim=claim, reason="属于住院保障范围")
    step = ClaimStep.objects.filter(claim=claim).last()
    assert step is not None and (step.actor, step.actor_label) == (None, "职工本人")
    [event] = events(review.EVENT_APPEALED)
    assert (event.actor_id, event.actor_username) == (None, f"member:{person.member.pk}")


def test_rule_based_zero_is_explained_not_appealed(partner, person, clerk):
    answer = receive_settlement(partner=partner, body=settle_body(person.certno, base="800.00"))
    assert answer.body["reason"] == "DEDUCTIBLE"
    claim = Claim.objects.get()
    with pytest.raises(InvalidInput) as caught:
        review.appeal(acting_user=clerk, claim=claim, reason="金额不对请复核")
    assert "不属于审核决定" in caught.value.errors[0].message


def test_upheld_appeal_that_now_pays_nothing(partner, person, reviewer, city_reviewer, clerk):
    """Between the rejection and the appeal the year reached its cap: the upheld appeal's record
    counts, pays nothing (CAP_REACHED), and gains a price if an earlier record leaves."""
    first = flagged(partner, person, "A")
    review.reject(acting_user=reviewer, claim=first, code=RejectionCode.DOCUMENTS_MISSING)
    big = large(partner, person, "C", base="100000.00")  # 67800.00
    review.approve(acting_user=reviewer, claim=big)
    review.second_approve(acting_user=city_reviewer, claim=big)
    answer = receive_settlement(
        partner=partner,
        body=settle_body(
            person.certno,
            "D",
            base="80000.00",
            medfee_sumamt="200000.00",
            inscp_scp_amt="130000.00",
            fund_pay_sumamt="50000.00",
        ),
    )
    assert (answer.body["status"], answer.body["benefit"]) == ("approved", "12200.00")  # the cap
    review.appeal(acting_user=clerk, claim=first, reason="已补交全部材料")
    review.start_review(acting_user=reviewer, claim=first)
    review.approve(acting_user=reviewer, claim=first)
    first.refresh_from_db()
    assert (first.status, first.reason, first.benefit_fen) == (
        ClaimStatus.REJECTED,
        "CAP_REACHED",
        0,
    )
    assert first.rejection_code == ""
    year = BenefitYear.objects.get(person_index=first.person_index, product="inpatient")
    assert [r.setl_id for r in state_of(year).records] == ["C", "D", "A"]
    assert year.total_fen == 8000000
    # The hospital cancels D: A moves up and is owed (to the member) its slice of the year's
    # base after C: P(112000) − P(100000) = 76200.00 − 67800.00 = 8400.00.
    moment, digest = parse_cancel_body({"cancel_time": "2026-03-20 09:00:00"})
    cancel_settlement(partner=partner, setl_id="D", cancel_time=moment, body_hash=digest)
    first.refresh_from_db()
    assert (first.status, first.benefit_fen, first.posted_fen) == (
        ClaimStatus.APPROVED,
        840000,
        840000,
    )
    assert payable("2241") == 6780000 + 840000 and payable("2242") == 0
    assert ledger_clean()


# --- manual claims: the figures re-enter the year ----------------------------------------------
def test_manual_claim_rejected_and_appealed(tree, plan, reviewer, clerk):
    person = covered_person(tree, plan)
    claim = manual_claim(person, clerk)
    assert claim.benefit_fen == 620000
    review.start_review(acting_user=reviewer, claim=claim)
    review.reject(acting_user=reviewer, claim=claim, code=RejectionCode.DOCUMENTS_MISSING)
    assert BenefitYear.objects.get().total_fen == 0
    review.appeal(acting_user=clerk, claim=claim, reason="已补交结算单原件")
    review.start_review(acting_user=reviewer, claim=claim)
    review.approve(acting_user=reviewer, claim=claim)
    claim.refresh_from_db()
    assert (claim.status, claim.benefit_fen, claim.posted_fen) == (
        ClaimStatus.APPROVED,
        620000,
        620000,
    )
    assert BenefitYear.objects.get().total_fen == 620000
    assert ledger_clean()


# --- lump sums ----------------------------------------------------------------------------------
def test_critical_illness_is_priced_at_approval_and_released_on_rejection(
    tree, plan, reviewer, city_reviewer, clerk
):
    person = covered_person(tree, plan)
    claim = file_manual_claim(
        acting_user=clerk,
        member=person.member,
        data=critical(1, "severe"),
        documents=documents_for("critical_illness"),
    )
    review.start_review(acting_user=reviewer, claim=claim)
    with pytest.raises(InvalidInput) as caught:
        review.approve(acting_user=reviewer, claim=claim)
    assert {e.field for e in caught.value.errors} == {"disease", "severity"}
    claim.refresh_from_db()
    assert (claim.status, claim.benefit_fen) == (ClaimStatus.IN_REVIEW, 0)

    # The reviewer confirms a milder form than claimed: 3000.00, approved and owed.
    review.approve(acting_user=reviewer, claim=claim, disease=1, severity="mild")
    claim.refresh_from_db()
    assert (claim.status, claim.benefit_fen, claim.posted_fen) == (
        ClaimStatus.APPROVED,
        300000,
        300000,
    )
    assert payable("2241") == 300000
    assert actions(claim)[-2:] == ["price_lump_sum", "approve"]

    # A second (severe) claim of the same disease pays the difference; rejected by the second
    # approver after pricing, the amount leaves the year again.
    Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.PAID)  # as payment leaves it
    severe = file_manual_claim(
        acting_user=clerk,
        member=person.member,
        data=critical(1, "severe", diagnosis_date=date(2026, 7, 1)),
        documents=documents_for("critical_illness"),
    )
    review.start_review(acting_user=reviewer, claim=severe)
    policy_manager = factories.staff(tree.city_a, "plan_manager")
    review.update_policy(
        acting_user=policy_manager,
        organisation=tree.city_a,
        **{**LIMITS, "second_approval_limit_fen": 500_000},
    )
    review.approve(acting_user=reviewer, claim=severe, disease=1, severity="severe")
    severe.refresh_from_db()
    assert (severe.status, severe.benefit_fen) == (ClaimStatus.SECOND_REVIEW, 700000)
    year = BenefitYear.objects.get(product="critical_illness")
    assert year.total_fen == 1000000
    review.reject(acting_user=city_reviewer, claim=severe, code=RejectionCode.FALSE_MATERIAL)
    severe.refresh_from_db()
    assert (severe.status, severe.benefit_fen, severe.posted_fen) == (ClaimStatus.REJECTED, 0, 0)
    year.refresh_from_db()
    assert year.total_fen == 300000
    [*_, event] = events(review.EVENT_REJECTED)
    assert event.detail["year_change_fen"] == -700000
    assert payable("2241") == 300000
    assert ledger_clean()


# --- diagnoses ----------------------------------------------------------------------------------
def test_diagnoses_are_shown_to_a_reviewer_with_a_reason(partner, person, reviewer):
    claim = flagged(partner, person, diagnoses=("K35.9", "C16.9"))
    with pytest.raises(InvalidInput):
        review.reveal_diagnoses(acting_user=reviewer, claim=claim, reason="看")
    assert review.reveal_diagnoses(acting_user=reviewer, claim=claim, reason="核对病种") == [
        "K35.9",
        "C16.9",
    ]
    [event] = events(review.EVENT_DIAGNOSES_VIEWED)
    assert event.detail == {"number": claim.number, "reason": "核对病种"}
    assert "K35" not in str(event.detail)


# --- policy -------------------------------------------------------------------------------------
LIMITS = {
    "auto_approve_limit_fen": 1_000_000,
    "second_approval_limit_fen": 1_500_000,
    "large_amount_fen": 2_500_000,
    "many_claims_count": 3,
    "new_enrollment_days": 60,
    "hospital_share_percent": 40,
    "hospital_share_min_claims": 20,
}


def test_policy_update(tree: factories.Tree, plan: PlanVersion) -> None:
    manager = factories.staff(tree.city_a, "plan_manager")
    assert policy_for(tree.grassroots_1).second_approval_limit_fen == 2_000_000  # the default
    review.update_policy(acting_user=manager, organisation=tree.city_a, **LIMITS)
    # The cached policy of a union below is read again at once.
    policy = policy_for(tree.grassroots_1)
    assert (policy.auto_approve_limit_fen, policy.second_approval_limit_fen) == (
        1_000_000,
        1_500_000,
    )
    assert policy.many_claims_count == 3
    row = ReviewPolicy.objects.get()
    assert (row.organisation, row.updated_by) == (tree.city_a, manager)
    [event] = events(review.EVENT_POLICY_UPDATED)
    assert event.detail["changed"]["auto_approve_limit_fen"] == [None, 1_000_000]
    review.update_policy(
        acting_user=manager, organisation=tree.city_a, **{**LIMITS, "many_claims_count": 5}
    )
    assert events(review.EVENT_POLICY_UPDATED)[-1].detail["changed"] == {
        "many_claims_count": [3, 5]
    }


def test_policy_validation_names_every_field(tree: factories.Tree, plan: PlanVersion) -> None:
    manager = factories.staff(tree.city_a, "plan_manager")
    bad = {
        **LIMITS,
        "auto_approve_limit_fen": 0,
        "hospital_share_percent": 101,
        "many_claims_count": 1,
    }
    del bad["large_amount_fen"]
    with pytest.raises(InvalidInput) as caught:
        review.update_policy(acting_user=manager, organisation=tree.city_a, **bad)
    assert caught.value.by_field() == {
        "auto_approve_limit_fen": ["自动核准上限应大于 0 元且不超过 100000000.00 元"],
        "large_amount_fen": ["请填写大额提示金额"],
        "many_claims_count": ["年度多次理赔次数应在 2 至 100 之间"],
        "hospital_share_percent": ["医疗机构异常占比(%)应在 1 至 100 之间"],
    }
    assert not ReviewPolicy.objects.exists()
    assert not events(review.EVENT_POLICY_UPDATED)


def test_policy_scope_and_permission(tree: factories.Tree, plan: PlanVersion) -> None:
    manager = factories.staff(tree.county_a1, "plan_manager")
    with pytest.raises(NotPermitted):
        review.update_policy(acting_user=manager, organisation=tree.city_a, **LIMITS)
    with pytest.raises(NotPermitted):
        review.update_policy(
            acting_user=factories.staff(tree.county_a1, "reviewer"),
            organisation=tree.county_a1,
            **LIMITS,
        )
    assert not ReviewPolicy.objects.exists()


# --- invariant: any sequence of review decisions keeps the year and the books right ------------
BASES = ("800.00", "3000.00", "12000.00", "35000.00", "100000.00")
ACTIONS = ("approve", "second_approve", "send_back", "reject", "appeal", "start_review")


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records=st.lists(st.tuples(st.sampled_from(BASES), st.booleans()), min_size=2, max_size=4),
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=3), st.sampled_from(ACTIONS)), max_size=12
    ),
)
def test_any_review_sequence_keeps_year_and_ledger(
    records, steps, partner, person, reviewer, city_reviewer, clerk
):
    outer = transaction.atomic()
    outer._from_testcase = True  # type: ignore[attr-defined]  # the services' durable blocks nest
    with outer:
        for index, (base, early) in enumerate(records):
            inscp = int(base.split(".")[0]) + 50000
            receive_settlement(
                partner=partner,
                body=settle_body(
                    person.certno,
                    f"H{index}",
                    base=base,
                    medfee_sumamt="200000.00",
                    inscp_scp_amt=f"{inscp}.00",
                    fund_pay_sumamt="50000.00",
                    # Admitted within 30 days of the coverage start: flagged for review.
                    adm_date="2026-01-10" if early else "2026-03-01",
                    setl_time=f"2026-03-{10 + index:02d} 10:00:00",
                ),
            )
        claims = list(Claim.objects.order_by("id"))
        for which, action in steps:
            claim = claims[which % len(claims)]
            claim.refresh_from_db()
            before = Claim.objects.filter(pk=claim.pk).values().get()
            try:
                _run(action, claim, reviewer, city_reviewer, clerk)
            except InvalidInput:
                assert Claim.objects.filter(pk=claim.pk).values().get() == before
        _check_invariants(person)
        transaction.set_rollback(True)


def _check_invariants(person: Person) -> None:
    assert ledger_clean()
    claims = list(Claim.objects.filter(person_index=person.member.id_number_index))
    owed_member = owed_hospital = 0
    for claim in claims:
        if claim.status in (ClaimStatus.APPROVED, ClaimStatus.PAID):
            assert claim.posted_fen == claim.benefit_fen, claim.number
        else:
            assert claim.posted_fen == 0, claim.number
        if claim.deducted_at_discharge:
            owed_hospital += claim.posted_fen
        else:
            owed_member += claim.posted_fen
    assert (payable("2241"), payable("2242")) == (owed_member, owed_hospital)
    year = BenefitYear.objects.filter(product="inpatient").first()
    if year is None:
        return
    state = state_of(year)
    prices = {r.setl_id: r.price for r in state.records}
    assert year.total_fen == sum(prices.values()) <= 8_000_000
    for claim in claims:
        if claim.record_key in prices:
            assert claim.benefit_fen == prices[claim.record_key], claim.number
            assert claim.status != ClaimStatus.REJECTED or not claim.rejection_code
        else:
            assert claim.benefit_fen == 0, claim.number
