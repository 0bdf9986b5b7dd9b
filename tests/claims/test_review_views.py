"""The review screens: the queue (tabs, filters, counts, paging, bounded queries, nothing sensitive
in the list), a claim's detail (amounts, explanation, flags, history, the actions each viewer may
take, errors in Chinese), the audited diagnoses, the review policy and a member's claim history;
404 outside the subtree or without the permission."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from huzhu.claims import review
from huzhu.claims.manual import file_manual_claim
from huzhu.claims.models import Claim, ClaimStatus, ReviewPolicy
from huzhu.claims.pricing import policy_for
from huzhu.claims.review import RejectionCode
from huzhu.claims.services import receive_settlement
from huzhu.core.models import AuditEvent
from huzhu.orgs.models import User
from tests import factories
from tests.claims.conftest import Person, covered_person, ledger_clean, settle_body
from tests.claims.manual_support import documents_for, hospital
from tests.claims.test_review import flagged, large
from tests.web.conftest import login_verified

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    return login_verified(Client(), user)


def text(response: Any) -> str:
    return response.content.decode()


@pytest.fixture
def reviewer(tree: factories.Tree) -> User:
    return factories.staff(tree.county_a1, "reviewer", username="view_reviewer")


@pytest.fixture
def city_reviewer(tree: factories.Tree) -> User:
    return factories.staff(tree.city_a, "reviewer", username="view_city_reviewer")


@pytest.fixture
def clerk(tree: factories.Tree) -> User:
    return factories.staff(tree.county_a1, "clerk", username="view_clerk")


# --- the queue -----------------------------------------------------------------------------------
def test_queue_tabs_counts_and_rows(partner, person, reviewer, tree, plan):
    claim = flagged(partner, person, diagnoses=("C16.9",))
    receive_settlement(
        partner=partner, body=settle_body(person.certno, "OK1", setl_time="2026-03-10 10:00:00")
    )
    other = covered_person(tree, plan, consent=False, name="王芳")
    receive_settlement(partner=partner, body=settle_body(other.certno, "Q1"))
    client = client_for(reviewer)

    page = client.get("/claims/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    body = text(page)
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', body))
    assert counts == {
        "review": "1",
        "second": "0",
        "approved": "1",
        "rejected": "0",
        "paid": "0",
        "quarantined": "1",
    }
    assert claim.number in body and "参保后短期内发生住院" in body
    assert person.member.id_number_masked in body
    # Lists never show diagnoses (S7) nor the plain ID number (S11).
    assert "C16.9" not in body and person.certno not in body
    approved = text(client.get("/claims/?tab=approved"))
    assert claim.number not in approved and Claim.objects.get(record_key="OK1").number in approved
    quarantined = text(client.get("/claims/?tab=quarantined"))
    assert "王芳" in quarantined and "待授权" in quarantined


def test_queue_filters(partner, person, reviewer, tree, plan):
    claim = flagged(partner, person)
    big = large(partner, person, "L9")
    client = client_for(reviewer)
    by_flag = text(client.get("/claims/?flag=new_enrollment"))
    assert claim.number in by_flag and big.number not in by_flag
    by_large = text(client.get("/claims/?flag=large_amount"))
    assert claim.number not in by_large
    assert claim.number not in text(client.get("/claims/?kind=manual"))
    assert claim.number in text(client.get("/claims/?kind=one_stop&product=inpatient"))
    assert claim.number not in text(client.get("/claims/?product=maternity"))
    assert claim.number in text(client.get(f"/claims/?union={tree.grassroots_1.pk}"))
    # A union outside the subtree shows nothing, and never its name.
    outside = text(client.get(f"/claims/?union={tree.grassroots_2.pk}"))
    assert claim.number not in outside and tree.grassroots_2.name not in outside
    # An unknown flag is ignored rather than failing.
    assert claim.number in text(client.get("/claims/?flag=nonsense"))


def test_queue_pages_by_keyset(partner, tree, plan, reviewer, monkeypatch):
    from huzhu.claims import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    people = [covered_person(tree, plan, name=f"职工{i}") for i in range(5)]
    numbers = [flagged(partner, p, f"K{i}").number for i, p in enumerate(people)]
    client = client_for(reviewer)
    first = text(client.get("/claims/"))
    assert numbers[4] in first and numbers[3] in first and numbers[2] not in first
    next_url = re.search(r'href="(\?[^"]*after=\d+[^"]*)" rel="next"', first)
    assert next_url is not None
    second = text(client.get("/claims/" + next_url.group(1).replace("&amp;", "&")))
    assert numbers[2] in second and numbers[1] in second and numbers[4] not in second


def test_queue_query_count_is_bounded(partner, tree, plan, reviewer, django_assert_max_num_queries):
    """The same number of queries for 2 rows as for 12: no query per row."""
    for i in range(2):
        flagged(partner, covered_person(tree, plan, name=f"职工{i}"), f"N{i}")
    client = client_for(reviewer)
    client.get("/claims/")  # warm the session and caches
    with CaptureQueriesContext(connection) as few:
        client.get("/claims/")
    for i in range(2, 12):
        flagged(partner, covered_person(tree, plan, name=f"职工{i}"), f"N{i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/claims/")
    assert response.status_code == 200 and text(response).count("YZ") >= 12
    # The session, the user's roles, one bounded count per tab, the page, the union filter.
    assert len(few.captured_queries) <= 16


def test_queue_needs_claim_view(tree):
    manager = factories.staff(tree.county_a1, "plan_manager")
    assert client_for(manager).get("/claims/").status_code == 404
    for role in ("clerk", "reviewer", "finance", "auditor"):
        assert client_for(factories.staff(tree.county_a1, role)).get("/claims/").status_code == 200


# --- the detail ----------------------------------------------------------------------------------
def test_detail_shows_amounts_explanation_and_history(partner, person, reviewer):
    claim = flagged(partner, person, diagnoses=("C16.9",))
    response = client_for(reviewer).get(f"/claims/{claim.pk}/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = text(response)
    assert "25,000.00" in body and "12,000.00" in body and "6,200.00" in body
    assert claim.explanation["text"] in body
    assert 'id="bands"' in body and "70%" in body
    assert "参保后短期内发生住院" in body
    assert "转人工审核" in body  # the step of the partner's flagging
    assert person.member.id_number_masked in body and person.certno not in body
    # The diagnosis is not on the page until asked for with a reason.
    assert "C16.9" not in body and "查看诊断" in body
    assert 'id="form-approve"' in body and 'id="form-reject"' in body
    assert 'id="form-appeal"' not in body


def test_detail_actions_per_viewer(partner, person, reviewer, city_reviewer, clerk, tree):
    claim = flagged(partner, person)
    auditor = factories.staff(tree.county_a1, "auditor")
    clerk_page = text(client_for(clerk).get(f"/claims/{claim.pk}/"))
    assert "form-approve" not in clerk_page and "form-reject" not in clerk_page
    assert "查看诊断" not in clerk_page
    assert "form-approve" not in text(client_for(auditor).get(f"/claims/{claim.pk}/"))
    review.reject(acting_user=reviewer, claim=claim, code=RejectionCode.DOCUMENTS_MISSING)
    assert 'id="form-appeal"' in text(client_for(clerk).get(f"/claims/{claim.pk}/"))
    assert 'id="form-appeal"' not in text(client_for(reviewer).get(f"/claims/{claim.pk}/"))
    big = large(partner, person, "L2")
    review.approve(acting_user=reviewer, claim=big)
    county_page = text(client_for(reviewer).get(f"/claims/{big.pk}/"))
    assert "form-second" not in county_page and "待复核：" in county_page
    city_page = text(client_for(city_reviewer).get(f"/claims/{big.pk}/"))
    assert 'id="form-second"' in city_page and 'id="form-send-back"' in city_page


def test_detail_out_of_scope_is_404(partner, person, tree):
    claim = flagged(partner, person)
    for user in (
        factories.staff(tree.county_a2, "reviewer"),
        factories.staff(tree.city_b, "reviewer"),
        factories.staff(tree.county_a1, "plan_manager"),
    ):
        assert client_for(user).get(f"/claims/{claim.pk}/").status_code == 404
    assert (
        client_for(factories.staff(tree.province, "auditor"))
        .get(f"/claims/{claim.pk}/")
        .status_code
        == 200
    )


def test_approve_through_the_screen(partner, person, reviewer):
    claim = flagged(partner, person)
    client = client_for(reviewer)
    response = client.post(f"/claims/{claim.pk}/approve/", {"note": "材料齐全，同意"})
    assert response.status_code == 302 and response["Location"] == f"/claims/{claim.pk}/"
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED and claim.approved_by == reviewer
    page = text(client.get(f"/claims/{claim.pk}/"))
    assert "已核准补助 6200.00 元，待支付给职工" in page and "材料齐全，同意" in page
    assert ledger_clean()


def test_action_errors_are_shown_in_chinese(partner, person, reviewer, clerk):
    claim = flagged(partner, person)
    client = client_for(reviewer)
    response = client.post(f"/claims/{claim.pk}/reject/", {"code": "other", "note": ""})
    assert response.status_code == 422
    assert "原因为“其他”时须填写说明" in text(response)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.IN_REVIEW
    response = client.post(f"/claims/{claim.pk}/second-approve/", {})
    assert response.status_code == 422
    assert "该申请当前状态为“审核中”，不能复核" in text(response)
    # A clerk cannot reach a reviewer's action (404), and GET is not an action (405).
    assert client_for(clerk).post(f"/claims/{claim.pk}/approve/", {}).status_code == 404
    assert client.get(f"/claims/{claim.pk}/approve/").status_code == 405
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.IN_REVIEW


def test_reject_and_appeal_through_the_screens(partner, person, reviewer, clerk):
    claim = flagged(partner, person)
    response = client_for(reviewer).post(
        f"/claims/{claim.pk}/reject/", {"code": "documents_missing", "note": "缺少出院记录"}
    )
    assert response.status_code == 302
    response = client_for(clerk).post(f"/claims/{claim.pk}/appeal/", {"reason": "已补交出院记录"})
    assert response.status_code == 302
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPEALED
    start = client_for(reviewer).post(f"/claims/{claim.pk}/start/", {"note": ""})
    assert start.status_code == 302
    claim.refresh_from_db()
    assert (claim.status, claim.reviewed_by) == (ClaimStatus.IN_REVIEW, reviewer)


def test_creator_sees_why_they_cannot_review(tree, plan, reviewer):
    person = covered_person(tree, plan)
    both = factories.staff(tree.county_a1, "clerk", "reviewer")
    claim = file_manual_claim(
        acting_user=both,
        member=person.member,
        data=hospital(),
        documents=documents_for("inpatient"),
    )
    page = text(client_for(both).get(f"/claims/{claim.pk}/"))
    assert "按职责分离要求不能审核本人经办的申请" in page and "form-start" not in page
    assert 'id="form-start"' in text(client_for(reviewer).get(f"/claims/{claim.pk}/"))
    # The documents are listed (with the manual-claims download link where it is routed).
    assert "医疗费用发票" in page and "invoice.pdf" in page
    invoice = claim.documents.get(doc_type="invoice")
    assert f'href="/claims/manual/documents/{invoice.pk}/"' in page


def test_second_approval_and_send_back_screens(partner, person, reviewer, city_reviewer):
    claim = large(partner, person)
    review.approve(acting_user=reviewer, claim=claim)
    client = client_for(city_reviewer)
    response = client.post(f"/claims/{claim.pk}/send-back/", {"note": ""})
    assert response.status_code == 422 and "请填写退回原因" in text(response)
    assert client.post(f"/claims/{claim.pk}/send-back/", {"note": "请核对发票"}).status_code == 302
    review.approve(acting_user=reviewer, claim=claim)
    assert client.post(f"/claims/{claim.pk}/second-approve/", {"note": ""}).status_code == 302
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED and claim.second_approved_by == city_reviewer


# --- diagnoses -----------------------------------------------------------------------------------
def test_diagnoses_shown_to_a_reviewer_after_a_reason(partner, person, reviewer, clerk):
    claim = flagged(partner, person, diagnoses=("C16.9", "K35.9"))
    client = client_for(reviewer)
    form = client.get(f"/claims/{claim.pk}/diagnoses/", headers={"HX-Request": "true"})
    assert form.status_code == 200 and "查看诊断信息的原因" in text(form)
    refused = client.post(
        f"/claims/{claim.pk}/diagnoses/", {"reason": "看"}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 422 and "请填写查看原因（至少4个字）" in text(refused)
    assert "C16.9" not in text(refused)
    shown = client.post(
        f"/claims/{claim.pk}/diagnoses/",
        {"reason": "核对重大疾病病种"},
        headers={"HX-Request": "true"},
    )
    assert shown.status_code == 200 and "C16.9" in text(shown) and "K35.9" in text(shown)
    [event] = AuditEvent.objects.filter(event=review.EVENT_DIAGNOSES_VIEWED)
    assert (event.actor_id, event.detail["reason"]) == (reviewer.pk, "核对重大疾病病种")
    assert client_for(clerk).get(f"/claims/{claim.pk}/diagnoses/").status_code == 404


# --- policy --------------------------------------------------------------------------------------
POLICY_FORM = {
    "auto_approve_limit_fen": "15000.00",
    "second_approval_limit_fen": "18000",
    "large_amount_fen": "30000.00",
    "many_claims_count": "4",
    "new_enrollment_days": "30",
    "hospital_share_percent": "30",
    "hospital_share_min_claims": "50",
}


def test_policy_screen(tree, plan):
    manager = factories.staff(tree.city_a, "plan_manager")
    client = client_for(manager)
    page = client.get("/claims/policy/")
    assert page.status_code == 200
    assert "系统默认规则" in text(page) and 'value="20000.00"' in text(page)
    response = client.post("/claims/policy/", POLICY_FORM)
    assert response.status_code == 302
    row = ReviewPolicy.objects.get(organisation=tree.city_a)
    assert (row.auto_approve_limit_fen, row.second_approval_limit_fen) == (1_500_000, 1_800_000)
    assert policy_for(tree.grassroots_1).auto_approve_limit_fen == 1_500_000
    assert "本级规则" in text(client.get("/claims/policy/"))
    # A county below inherits it until it sets its own.
    county = client_for(factories.staff(tree.county_a1, "plan_manager"))
    assert "沿用上级规则（长沙市总工会）" in text(county.get("/claims/policy/"))


def test_policy_screen_errors(tree, plan):
    client = client_for(factories.staff(tree.city_a, "plan_manager"))
    bad = {
        **POLICY_FORM,
        "auto_approve_limit_fen": "12.345",
        "many_claims_count": "三",
        "hospital_share_percent": "0",
    }
    response = client.post("/claims/policy/", bad)
    assert response.status_code == 422
    body = text(response)
    assert "格式不正确" in body and "年度多次理赔次数应为整数" in body
    assert not ReviewPolicy.objects.exists()
    response = client.post("/claims/policy/", {**POLICY_FORM, "hospital_share_percent": "0"})
    assert response.status_code == 422 and "医疗机构异常占比(%)应在 1 至 100 之间" in text(response)
    assert not ReviewPolicy.objects.exists()


def test_policy_screen_needs_the_permission(tree):
    for role in ("reviewer", "clerk", "auditor"):
        assert (
            client_for(factories.staff(tree.city_a, role)).get("/claims/policy/").status_code == 404
        )


# --- a member's history ----------------------------------------------------------------------
def test_member_history_says_why(partner, person, reviewer, clerk, tree):
    flagged_claim = flagged(partner, person, "A")
    review.reject(
        acting_user=reviewer,
        claim=flagged_claim,
        code=RejectionCode.DOCUMENTS_MISSING,
        note="缺少发票",
    )
    receive_settlement(
        partner=partner,
        body=settle_body(
            person.certno,
            "B",
            base="800.00",
            adm_date="2026-04-01",
            setl_time="2026-04-03 10:00:00",
        ),
    )
    client = client_for(clerk)
    member_page = text(client.get(f"/members/{person.member.pk}/"))
    assert f"/claims/members/{person.member.pk}/" in member_page
    response = client.get(f"/claims/members/{person.member.pk}/")
    assert response.status_code == 200
    body = text(response)
    assert "材料不全：申请材料不全，无法核实本次费用。（缺少发票）" in body
    assert "可补助费用未超过起付线，本次无补助。" in body  # B: the engine's reason
    # Newest first.
    b = Claim.objects.get(record_key="B")
    assert body.index(b.number) < body.index(flagged_claim.number)
    assert person.certno not in body


def test_member_history_scope(partner, person, tree):
    assert (
        client_for(factories.staff(tree.county_a2, "clerk"))
        .get(f"/claims/members/{person.member.pk}/")
        .status_code
        == 404
    )
    assert (
        client_for(factories.staff(tree.county_a1, "plan_manager"))
        .get(f"/claims/members/{person.member.pk}/")
        .status_code
        == 404
    )


def test_nav_and_dashboard(person: Person, reviewer, city_reviewer, partner):
    flagged(partner, person)
    big = large(partner, person, "L3")
    review.approve(acting_user=reviewer, claim=big)
    response = client_for(reviewer).get("/")
    page = text(response)
    assert 'href="/claims/"' in page and "理赔审核" in page
    figures = {f.label: (f.value, f.url) for f in response.context["figures"]}
    # A county reviewer's queue: the first reviews only (second approval is the city's).
    assert figures["待审核理赔"] == (1, "/claims/")
    city = client_for(city_reviewer).get("/")
    assert {f.label: f.value for f in city.context["figures"]}["待审核理赔"] == 2
