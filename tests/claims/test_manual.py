"""Manual claims of hospitalizations (R13, R5, RULES.md §3–§4): priced in the locked year for
review, the filing deadline, the duplicate guard, family members, ``other_reimbursed``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from huzhu.claims import manual
from huzhu.claims.intake import parse_cancel_body
from huzhu.claims.manual import ManualClaimInput, file_manual_claim
from huzhu.claims.models import BenefitYear, Claim, ClaimDocument, ClaimKind, ClaimStatus
from huzhu.claims.services import cancel_settlement, receive_settlement
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.ledger.models import JournalEntry
from tests import factories
from tests.claims.conftest import cover, covered_person, settle_body
from tests.claims.manual_support import (
    cover_family,
    documents_for,
    family_member,
    hospital,
    pdf,
)
from tests.enrollment.conftest import active_plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(tree):
    return factories.staff(tree.county_a1, "clerk", username="manual_clerk")


def file(clerk, member, data: ManualClaimInput | None = None, documents=None) -> Claim:
    data = data or hospital()
    return file_manual_claim(
        acting_user=clerk,
        member=member,
        data=data,
        documents=documents_for(data.product) if documents is None else documents,
    )


def errors_of(caught: pytest.ExceptionInfo[InvalidInput]) -> dict[str, list[str]]:
    return caught.value.by_field()


def nothing_written(before_audit: int) -> bool:
    return (
        Claim.objects.count() == 0
        and ClaimDocument.objects.count() == 0
        and not BenefitYear.objects.exists()
        and AuditEvent.objects.count() == before_audit
    )


def test_inpatient_claim_is_priced_in_the_locked_year_and_submitted_for_review(clerk, person):
    claim = file(clerk, person.member)
    claim.refresh_from_db()
    assert claim.kind == ClaimKind.MANUAL
    assert claim.status == ClaimStatus.SUBMITTED
    assert claim.number.startswith("SG") and claim.record_key == "M" + claim.number
    assert (claim.product, claim.year, claim.base_fen, claim.benefit_fen) == (
        "inpatient",
        2026,
        1_200_000,
        620_000,
    )
    # Reviewed before anything is owed: nothing posted to the ledger yet.
    assert claim.posted_fen == 0 and not JournalEntry.objects.exists()
    assert claim.plan_code == "HUNAN-2026"
    assert claim.created_by == clerk and claim.enrollment == person.enrollment
    assert claim.hospital_name == "北京协和医院" and claim.med_type == "21"
    assert claim.diagnoses_enc == "K35.9"
    assert claim.lump_sum == {
        "filing": {"reason": "out_of_province", "note": "北京协和医院住院，未能一站式结算"}
    }
    assert "6200.00" in claim.explanation["text"]
    year = BenefitYear.objects.get(person_index=person.member.id_number_index)
    assert (year.product, year.total_fen) == ("inpatient", 620_000)
    assert [r["setl_id"] for r in year.state["records"]] == [claim.record_key]
    assert [s.action for s in claim.steps.all()] == ["file", "submit"]
    assert "异地就医" in claim.steps.first().note
    assert sorted(claim.documents.values_list("doc_type", flat=True)) == [
        "discharge_record",
        "invoice",
        "settlement_sheet",
    ]
    event = AuditEvent.objects.get(event="claims.manual_filed")
    assert event.actor_username == clerk.username
    assert event.detail["number"] == claim.number
    assert event.detail["benefit_fen"] == 620_000 and event.detail["documents"] == 3


def test_the_manual_record_counts_with_the_one_stop_records_of_the_year(clerk, person, partner):
    receive_settlement(partner=partner, body=settle_body(person.certno, base="12000.00"))
    # Worked example 2: a second record of base 3000 prices on the running base → 2100.00.
    claim = file(
        clerk,
        person.member,
        hospital(adm_date=date(2026, 4, 1), figures={"fund_pay_sumamt": "22000.00"}),
    )
    assert (claim.base_fen, claim.benefit_fen) == (300_000, 210_000)
    assert BenefitYear.objects.get().total_fen == 830_000


@pytest.mark.parametrize(
    ("other", "base", "benefit"),
    [
        ("0.00", 1_200_000, 620_000),
        ("1000.00", 1_100_000, 550_000),  # S(10000) = 2500 + 3000
        ("0.01", 1_199_999, 619_999),  # 0.70 × 0.01 rounds to 0.01: one fen less
        ("11000.00", 100_000, 0),  # base 1000 = the deductible
        ("20000.00", 0, 0),  # more than the base: base 0, never negative
    ],
)
def test_other_reimbursed_lowers_the_base_exactly(clerk, person, other, base, benefit):
    claim = file(clerk, person.member, hospital(figures={"other_reimbursed": other}))
    claim.refresh_from_db()
    assert claim.other_reimbursed == int(other.replace(".", ""))
    assert (claim.base_fen, claim.benefit_fen) == (base, benefit)
    if benefit == 0:
        assert claim.status == ClaimStatus.REJECTED
        assert claim.reason == ("DEDUCTIBLE" if base else "ZERO_BASE")


def test_family_member_claim_is_priced_under_family_inpatient(clerk, tree, plan):
    person = covered_person(tree, plan)
    relative = family_member(person.member)
    enrollment = cover_family(relative, plan)
    claim = file(
        clerk,
        person.member,
        hospital("family_inpatient", family_member_id=relative.pk),
    )
    claim.refresh_from_db()
    assert claim.family_member == relative and claim.member == person.member
    assert claim.person_index == relative.id_number_index
    assert claim.enrollment == enrollment
    # family_inpatient: deductible 1000, one band of 0.40 → (12000 − 1000) × 0.40 = 4400.00
    assert (claim.product, claim.status, claim.benefit_fen) == (
        "family_inpatient",
        ClaimStatus.SUBMITTED,
        440_000,
    )
    year = BenefitYear.objects.get()
    assert (year.person_index, year.product) == (relative.id_number_index, "family_inpatient")


def test_family_member_must_belong_to_the_member_and_only_for_the_family_product(clerk, tree, plan):
    person = covered_person(tree, plan)
    other = covered_person(tree, plan, name="王强")
    stranger = family_member(other.member)
    own = family_member(person.member, name="张小明")
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, hospital("family_inpatient", family_member_id=stranger.pk))
    assert errors_of(caught) == {"family_member_id": ["该家庭成员不属于此职工"]}
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, hospital("inpatient", family_member_id=own.pk))
    assert errors_of(caught) == {"family_member_id": ["只有“家庭成员住院互助”可以为家庭成员申请"]}
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, hospital("family_inpatient"))
    assert errors_of(caught) == {"family_member_id": ["请选择家庭成员"]}
    assert nothing_written(before)


def test_filing_after_the_plans_deadline_is_refused(clerk, tree):
    plan_2025 = active_plan(2025)  # claim_deadline 2026-03-31
    person = covered_person(tree, plan_2025, start=date(2025, 1, 1))
    person.enrollment.coverage_end = date(2025, 12, 31)
    person.enrollment.save()
    before = AuditEvent.objects.count()
    data = hospital(adm_date=date(2025, 6, 1))
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, data)
    [message] = errors_of(caught)["adm_date"]
    assert message.startswith("2025 年度的理赔申请截止日期为 2026-03-31")
    assert "已超过申请期限" in message
    assert nothing_written(before)


def test_the_deadline_day_itself_is_on_time(clerk, tree, monkeypatch):
    plan_2025 = active_plan(2025)
    person = covered_person(tree, plan_2025, start=date(2025, 1, 1))
    data = hospital(adm_date=date(2025, 6, 1))
    monkeypatch.setattr(manual, "today", lambda: date(2026, 4, 1))
    with pytest.raises(InvalidInput):
        file(clerk, person.member, data)
    monkeypatch.setattr(manual, "today", lambda: date(2026, 3, 31))
    claim = file(clerk, person.member, data)
    assert (claim.status, claim.benefit_fen, claim.year) == (ClaimStatus.SUBMITTED, 620_000, 2025)


def test_a_hospitalization_already_settled_one_stop_is_refused(clerk, person, partner):
    receive_settlement(partner=partner, body=settle_body(person.certno, "S77"))
    one_stop = Claim.objects.get()
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member)
    [message] = errors_of(caught)["adm_date"]
    assert f"已有一站式结算理赔 {one_stop.number}（已核准）" in message
    assert caught.value.errors[0].code == "duplicate"
    assert Claim.objects.count() == 1 and AuditEvent.objects.count() == before
    # Another med_type on the same day is another treatment.
    outpatient = file(
        clerk,
        person.member,
        hospital("special_outpatient", figures={"fund_pay_sumamt": "23000.00"}),
    )
    assert outpatient.product == "special_outpatient"


def test_a_second_manual_claim_of_one_stay_is_refused_even_after_rejection(clerk, person):
    first = file(clerk, person.member)
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member)
    assert f"已有手工申请理赔 {first.number}（已提交）" in errors_of(caught)["adm_date"][0]
    Claim.objects.filter(pk=first.pk).update(status=ClaimStatus.REJECTED)
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member)
    assert "请对原申请提出申诉" in errors_of(caught)["adm_date"][0]
    assert Claim.objects.count() == 1


def test_a_cancelled_settlement_no_longer_blocks_the_manual_claim(clerk, person, partner):
    receive_settlement(partner=partner, body=settle_body(person.certno, "S88"))
    moment, digest = parse_cancel_body({"cancel_time": "2026-03-12 09:00:00"})
    cancel_settlement(partner=partner, setl_id="S88", cancel_time=moment, body_hash=digest)
    claim = file(clerk, person.member)
    assert (claim.status, claim.benefit_fen) == (ClaimStatus.SUBMITTED, 620_000)


def test_a_settlement_arriving_after_the_manual_claim_is_flagged(clerk, person, partner):
    manual_claim = file(clerk, person.member)
    answer = receive_settlement(partner=partner, body=settle_body(person.certno, "S99"))
    assert answer.body["status"] == "pending_review"
    one_stop = Claim.objects.exclude(pk=manual_claim.pk).get()
    assert "manual_duplicate" in one_stop.flags


def test_every_bad_field_is_named_at_once(clerk, person):
    data = replace(
        hospital(figures={"medfee_sumamt": "12.345", "fund_pay_sumamt": "", "hosp_part_amt": "-1"}),
        channel_reason="",
        med_type="",
        adm_date=None,
        settle_date=None,
        hospital_name=" ",
        hospital_code="H 1",
        diagnoses=("癌症",),
    )
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, data, documents=[])
    fields = errors_of(caught)
    assert set(fields) == {
        "channel_reason",
        "med_type",
        "adm_date",
        "settle_date",
        "hospital_name",
        "hospital_code",
        "diagnoses",
        "medfee_sumamt",
        "fund_pay_sumamt",
        "hosp_part_amt",
        "invoice",
        "settlement_sheet",
        "discharge_record",
    }
    assert fields["fund_pay_sumamt"] == ["请填写基金支付总额（元，最多两位小数）"]
    assert fields["invoice"] == ["请上传医疗费用发票"]
    assert nothing_written(before)


def test_rules_section_3_impossible_sums_are_errors_not_zero(clerk, person):
    data = hospital(figures={"fund_pay_sumamt": "29000.00", "hosp_part_amt": "2000.00"})
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, data)
    assert errors_of(caught) == {
        "fund_pay_sumamt": [
            "基金支付总额与医院负担金额之和大于医疗费总额（fund_pay_sumamt + hosp_part_amt > "
            "medfee_sumamt）"
        ]
    }
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, hospital(figures={"inscp_scp_amt": "30000.01"}))
    assert list(errors_of(caught)) == ["inscp_scp_amt"]
    assert Claim.objects.count() == 0


def test_dates_must_be_in_order_and_not_in_the_future(clerk, person, monkeypatch):
    monkeypatch.setattr(manual, "today", lambda: date(2026, 3, 5))
    data = hospital(
        adm_date=date(2026, 3, 1), dscg_date=date(2026, 2, 28), settle_date=date(2026, 3, 6)
    )
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, data)
    assert errors_of(caught) == {
        "dscg_date": ["出院日期不能早于入院日期"],
        "settle_date": ["结算日期不能晚于今天"],
    }


def test_med_type_must_belong_to_the_chosen_product(clerk, person):
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, hospital(med_type="14"))
    assert errors_of(caught) == {
        "med_type": ["“住院互助保障”只保障以下医疗类别：21 普通住院、52 生育住院"]
    }


def test_other_reason_needs_an_explanation(clerk, person):
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, hospital(channel_reason="other", channel_note=""))
    assert errors_of(caught) == {"channel_note": ["原因为“其他原因”时请说明具体情况"]}
    claim = file(
        clerk, person.member, hospital(channel_reason="other", channel_note="医院系统故障")
    )
    assert claim.lump_sum["filing"] == {"reason": "other", "note": "医院系统故障"}


def test_special_outpatient_needs_no_discharge_record(clerk, person):
    data = hospital("special_outpatient", figures={"fund_pay_sumamt": "23500.00"})
    claim = file(clerk, person.member, data, documents=[pdf("invoice"), pdf("settlement_sheet")])
    # whole band 0.20 × base 1500 = 300.00 (worked example 5)
    assert (claim.product, claim.benefit_fen, claim.dscg_date) == (
        "special_outpatient",
        30_000,
        None,
    )


def test_an_uncovered_member_gets_the_engines_reason(clerk, tree, plan):
    member = factories.member(tree.grassroots_1, tree.unit_1, name="未参保")
    claim = file(clerk, member)
    claim.refresh_from_db()
    assert (claim.status, claim.reason, claim.benefit_fen) == (
        ClaimStatus.REJECTED,
        "NOT_COVERED",
        0,
    )
    assert claim.enrollment is None
    assert [s.action for s in claim.steps.all()] == ["file", "reject"]


def test_no_plan_for_the_year_is_refused(clerk, tree, plan):
    person = covered_person(tree, plan)
    data = hospital(adm_date=date(2025, 6, 1))
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, data)
    assert errors_of(caught) == {
        "adm_date": ["2025 年度没有适用于该职工所在工会的互助保障方案，不能申请"]
    }


def test_hardship_member_gets_the_higher_rates(clerk, tree, plan):
    person = covered_person(tree, plan, hardship=True)
    claim = file(clerk, person.member)
    assert claim.benefit_fen == 730_000  # worked example 3


def test_claims_of_two_members_are_independent(clerk, tree, plan):
    first = covered_person(tree, plan)
    second = covered_person(tree, plan, name="李娜")
    a = file(clerk, first.member)
    b = file(clerk, second.member)
    assert a.number != b.number
    assert (a.benefit_fen, b.benefit_fen) == (620_000, 620_000)
    assert BenefitYear.objects.count() == 2


def test_coverage_starting_after_admission_is_not_covered(clerk, tree, plan):
    certno = factories.id_number()
    member = factories.member(tree.grassroots_1, tree.unit_1, number=certno)
    cover(member, plan, start=date(2026, 4, 1))
    claim = file(clerk, member)
    assert (claim.status, claim.reason) == (ClaimStatus.REJECTED, "NOT_COVERED")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite serializes writers: there is no row lock"
)
def test_filing_locks_the_member_before_the_duplicate_check(clerk, person):
    """S16: two parallel filings of one stay cannot both pass the duplicate check — the member's
    row is locked before it, so the second waits for the first's commit and is refused."""
    with CaptureQueriesContext(connection) as queries:
        file(clerk, person.member)
    sql = [q["sql"] for q in queries.captured_queries]
    lock = next(i for i, q in enumerate(sql) if 'FROM "members_member"' in q and "FOR UPDATE" in q)
    check = next(i for i, q in enumerate(sql) if 'FROM "claims_claim"' in q and "adm_date" in q)
    insert = next(i for i, q in enumerate(sql) if q.startswith('INSERT INTO "claims_claim"'))
    assert lock < check < insert
