"""Lump sums (RULES.md §5, R5): critical illness and maternity are filed with their documents,
confirmed by a reviewer and priced at approval under a lock of the person's year
(``price_lump_sum``); mild then severe pays the difference; one maternity per birth event."""

from __future__ import annotations

from datetime import date

import pytest

from huzhu.claims.manual import file_manual_claim, price_lump_sum, release_lump_sum
from huzhu.claims.models import BenefitYear, Claim, ClaimStatus
from huzhu.core.errors import ConflictError, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.access import NotPermitted
from huzhu.rules.lumpsum import CriticalIllnessState
from tests import factories
from tests.claims.conftest import covered_person
from tests.claims.manual_support import birth, critical, documents_for, pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(tree):
    return factories.staff(tree.county_a1, "clerk", username="lump_clerk")


@pytest.fixture
def reviewer(tree):
    return factories.staff(tree.county_a1, "reviewer", username="lump_reviewer")


def file(clerk, member, data) -> Claim:
    return file_manual_claim(
        acting_user=clerk, member=member, data=data, documents=documents_for(data.product)
    )


def ci_year(person) -> CriticalIllnessState:
    row = BenefitYear.objects.get(
        person_index=person.member.id_number_index, product="critical_illness"
    )
    state = CriticalIllnessState.from_json(row.state)
    assert row.total_fen == state.paid_total
    return state


def test_critical_illness_is_filed_for_review_with_nothing_priced(clerk, person):
    claim = file(clerk, person.member, critical(1, "mild"))
    claim.refresh_from_db()
    assert (claim.product, claim.status, claim.benefit_fen, claim.year) == (
        "critical_illness",
        ClaimStatus.SUBMITTED,
        0,
        2026,
    )
    assert claim.lump_sum == {
        "diagnosis_date": "2026-05-10",
        "disease_claimed": 1,
        "severity_claimed": "mild",
    }
    assert claim.diagnoses_enc == "C34.9"
    assert claim.adm_date is None and claim.record_key == "M" + claim.number
    assert [s.action for s in claim.steps.all()] == ["file", "submit"]
    assert not BenefitYear.objects.exists()
    assert list(claim.documents.values_list("doc_type", flat=True)) == ["pathology_report"]


def test_critical_illness_needs_a_pathology_report(clerk, person):
    with pytest.raises(InvalidInput) as caught:
        file_manual_claim(
            acting_user=clerk, member=person.member, data=critical(), documents=[pdf("invoice")]
        )
    assert caught.value.by_field() == {"pathology_report": ["请上传病理报告/诊断证明"]}


def test_critical_illness_fields_are_checked(clerk, person):
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, critical(29, "grave", diagnosis_date=None))
    assert caught.value.by_field() == {
        "diagnosis_date": ["请填写确诊日期"],
        "disease": ["疾病编号应为 1–28（《重大疾病保险的疾病定义使用规范》2020版）"],
        "severity": ["严重程度应为 severe（重疾）或 mild（轻症）"],
    }
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, critical(6, "mild"))
    assert caught.value.by_field() == {"severity": ["“严重慢性肾衰竭”没有轻症形式"]}


def test_mild_then_severe_pays_the_difference(clerk, reviewer, person):
    mild = file(clerk, person.member, critical(1, "mild"))
    result = price_lump_sum(mild, reviewer, disease=1, severity="mild")
    assert (result.amount, result.reason) == (300_000, None)
    mild.refresh_from_db()
    assert (mild.benefit_fen, mild.status, mild.reason) == (300_000, ClaimStatus.SUBMITTED, "")
    assert mild.lump_sum["disease"] == 1 and mild.lump_sum["severity"] == "mild"
    assert mild.plan_code == "HUNAN-2026" and mild.reviewed_by == reviewer
    assert "本次补助 3000.00 元" in mild.explanation["text"]
    assert ci_year(person).paid_total == 300_000

    severe = file(clerk, person.member, critical(1, "severe", diagnosis_date=date(2026, 9, 1)))
    result = price_lump_sum(severe, reviewer, disease=1, severity="severe")
    # At most `severe` (10000.00) a year in total: 10000 − 3000 already paid.
    assert result.amount == 700_000
    severe.refresh_from_db()
    assert severe.benefit_fen == 700_000
    assert "本年度已付 3000.00 元" in severe.explanation["text"]
    state = ci_year(person)
    assert state.paid_total == 1_000_000
    assert [(d, s.value) for d, s in state.paid] == [(1, "severe")]
    events = AuditEvent.objects.filter(event="claims.lump_sum_priced").order_by("id")
    assert [e.detail["amount_fen"] for e in events] == [300_000, 700_000]
    assert all("disease" not in e.detail for e in events)  # a diagnosis is never in the log


def test_a_second_disease_after_the_yearly_total_pays_nothing(clerk, reviewer, person):
    first = file(clerk, person.member, critical(1, "severe"))
    assert price_lump_sum(first, reviewer, disease=1, severity="severe").amount == 1_000_000
    second = file(clerk, person.member, critical(2, "severe", diagnoses=("I21.9",)))
    result = price_lump_sum(second, reviewer, disease=2, severity="severe")
    assert (result.amount, result.reason.value) == (0, "CAP_REACHED")
    second.refresh_from_db()
    assert (second.benefit_fen, second.reason) == (0, "CAP_REACHED")
    assert ci_year(person).paid_total == 1_000_000


def test_the_reviewer_confirms_what_was_claimed_or_corrects_it(clerk, reviewer, person):
    claim = file(clerk, person.member, critical(1, "severe"))
    result = price_lump_sum(claim, reviewer, disease=1, severity="mild")
    assert result.amount == 300_000
    claim.refresh_from_db()
    assert claim.lump_sum["severity_claimed"] == "severe"
    assert claim.lump_sum["severity"] == "mild"


def test_reviewer_input_is_checked(clerk, reviewer, person):
    claim = file(clerk, person.member, critical(1, "severe"))
    with pytest.raises(InvalidInput) as caught:
        price_lump_sum(claim, reviewer)
    assert set(caught.value.by_field()) == {"disease", "severity"}
    with pytest.raises(InvalidInput) as caught:
        price_lump_sum(claim, reviewer, disease=5, severity="mild")
    assert caught.value.by_field() == {
        "severity": ["“冠状动脉搭桥术（或称冠状动脉旁路移植术）”没有轻症形式"]
    }
    assert not BenefitYear.objects.exists()


def test_pricing_twice_conflicts_and_only_reviewers_price(clerk, reviewer, person):
    claim = file(clerk, person.member, critical(1, "severe"))
    with pytest.raises(NotPermitted):
        price_lump_sum(claim, clerk, disease=1, severity="severe")
    price_lump_sum(claim, reviewer, disease=1, severity="severe")
    with pytest.raises(ConflictError):
        price_lump_sum(claim, reviewer, disease=1, severity="severe")
    assert ci_year(person).paid_total == 1_000_000


def test_only_open_lump_sum_claims_are_priced(clerk, reviewer, person, tree, plan):
    claim = file(clerk, person.member, critical(1, "severe"))
    Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.REJECTED)
    with pytest.raises(ConflictError):
        price_lump_sum(claim, reviewer, disease=1, severity="severe")
    from tests.claims.manual_support import hospital

    other = covered_person(tree, plan, name="李娜")
    hospital_claim = file(clerk, other.member, hospital())
    with pytest.raises(InvalidInput):
        price_lump_sum(hospital_claim, reviewer, disease=1, severity="severe")


def test_release_takes_the_amount_back_out_of_the_year(clerk, reviewer, person):
    mild = file(clerk, person.member, critical(1, "mild"))
    price_lump_sum(mild, reviewer, disease=1, severity="mild")
    severe = file(clerk, person.member, critical(1, "severe", diagnosis_date=date(2026, 9, 1)))
    price_lump_sum(severe, reviewer, disease=1, severity="severe")
    assert release_lump_sum(severe, acting_user=reviewer, cause="复核不同意") == 700_000
    state = ci_year(person)
    assert state.paid_total == 300_000
    assert [(d, s.value) for d, s in state.paid] == [(1, "mild")]
    severe.refresh_from_db()
    assert severe.benefit_fen == 0 and "priced" not in severe.lump_sum
    assert release_lump_sum(severe, acting_user=reviewer, cause="再次") == 0
    # Priced again after an appeal: the same difference.
    assert price_lump_sum(severe, reviewer, disease=1, severity="severe").amount == 700_000


def test_not_covered_on_the_diagnosis_date_pays_nothing(clerk, reviewer, tree, plan):
    person = covered_person(tree, plan, start=date(2026, 6, 1))
    claim = file(clerk, person.member, critical(1, "severe", diagnosis_date=date(2026, 5, 10)))
    result = price_lump_sum(claim, reviewer, disease=1, severity="severe")
    assert (result.amount, result.reason.value) == (0, "NOT_COVERED")


def test_critical_illness_filing_duplicate_is_refused_but_an_upgrade_is_not(clerk, person):
    mild = file(clerk, person.member, critical(1, "mild"))
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, critical(1, "mild"))
    assert f"该疾病已有重大疾病关爱申请 {mild.number}" in caught.value.by_field()["disease"][0]
    file(clerk, person.member, critical(1, "severe"))
    with pytest.raises(InvalidInput):
        file(clerk, person.member, critical(1, "mild"))
    file(clerk, person.member, critical(2, "severe"))
    assert Claim.objects.count() == 3


# --- maternity ---------------------------------------------------------------------------------
def test_maternity_pays_per_child(clerk, reviewer, person):
    claim = file(clerk, person.member, birth(2))
    claim.refresh_from_db()
    assert (claim.status, claim.benefit_fen) == (ClaimStatus.SUBMITTED, 0)
    assert claim.lump_sum == {"birth_date": "2026-06-01", "newborns": 2}
    result = price_lump_sum(claim, reviewer)
    assert result.amount == 200_000
    assert "每名新生儿 1000.00 元 × 2 名 = 2000.00 元" in result.text()
    row = BenefitYear.objects.get(product="maternity")
    assert row.total_fen == 200_000 and len(row.state["events"]) == 1
    # The event key is made of the blind index: no plain ID number in the state.
    assert row.state["events"][0].startswith(person.member.id_number_index.upper())
    assert person.certno not in str(row.state)


def test_maternity_once_per_birth_event(clerk, reviewer, person):
    first = file(clerk, person.member, birth(1))
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, birth(1))
    assert caught.value.by_field()["birth_date"][0].startswith(
        "该次生育（出生日期 2026-06-01）已有生育补助申请"
    )
    price_lump_sum(first, reviewer)
    # A second claim that got past filing (the first was rejected, then appealed and approved
    # elsewhere) is still paid once: the year state knows the event.
    Claim.objects.filter(pk=first.pk).update(status=ClaimStatus.REJECTED)
    second = file(clerk, person.member, birth(1))
    result = price_lump_sum(second, reviewer)
    assert (result.amount, result.reason.value) == (0, "DUPLICATE")
    assert BenefitYear.objects.get(product="maternity").total_fen == 100_000
    # Another birth (another date) is another event.
    third = file(clerk, person.member, birth(1, birth_date=date(2026, 10, 1)))
    assert price_lump_sum(third, reviewer).amount == 100_000


def test_maternity_needs_the_birth_certificate_and_sane_counts(clerk, person):
    with pytest.raises(InvalidInput) as caught:
        file_manual_claim(acting_user=clerk, member=person.member, data=birth(0), documents=[])
    assert caught.value.by_field() == {
        "newborns": ["新生儿人数应为 1–10"],
        "birth_certificate": ["请上传出生医学证明"],
    }


def test_release_of_maternity_frees_the_event(clerk, reviewer, person):
    claim = file(clerk, person.member, birth(1))
    price_lump_sum(claim, reviewer)
    assert release_lump_sum(claim, acting_user=reviewer, cause="驳回") == 100_000
    row = BenefitYear.objects.get(product="maternity")
    assert (row.state, row.total_fen) == ({"events": [], "paid_total": 0}, 0)
    assert price_lump_sum(claim, reviewer).amount == 100_000


def test_lump_sums_are_for_the_member_not_a_family_member(clerk, person):
    from tests.claims.manual_support import family_member

    relative = family_member(person.member)
    with pytest.raises(InvalidInput) as caught:
        file(clerk, person.member, birth(1, family_member_id=relative.pk))
    assert caught.value.by_field() == {
        "family_member_id": ["只有“家庭成员住院互助”可以为家庭成员申请"]
    }


def test_coverage_is_read_at_pricing_not_at_filing(clerk, reviewer, tree, plan):
    from tests.claims.conftest import cover

    member = factories.member(tree.grassroots_1, tree.unit_1, name="后参保")
    claim = file(clerk, member, birth(1))  # filed before the member's share exists
    assert claim.enrollment is None
    enrollment = cover(member, plan)
    assert price_lump_sum(claim, reviewer).amount == 100_000
    claim.refresh_from_db()
    assert claim.enrollment == enrollment
