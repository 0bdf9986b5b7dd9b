"""The clerk's manual claim pages (R13): reached from the member's page, product first, then the
form with the documents; errors beside their fields; the filed claim with its priced amount; the
document download for staff who may view claims (audited, never cached)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from huzhu.claims.manual import file_manual_claim
from huzhu.claims.models import Claim, ClaimDocument
from huzhu.core.models import AuditEvent
from tests import factories
from tests.claims.manual_support import (
    PDF,
    PNG,
    SHEET,
    cover_family,
    documents_for,
    family_member,
    hospital,
)
from tests.web.conftest import login_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(tree):
    return factories.staff(tree.county_a1, "clerk", username="view_clerk")


@pytest.fixture
def browser(clerk) -> Client:
    return login_verified(Client(), clerk)


def new_url(member) -> str:
    return reverse("manual:new", args=[member.pk])


def inpatient_post(**changes):
    data = {
        "channel_reason": "out_of_province",
        "channel_note": "北京协和医院住院",
        "med_type": "21",
        "adm_date": "2026-03-01",
        "dscg_date": "2026-03-09",
        "settle_date": "2026-03-09",
        "hospital_name": "北京协和医院",
        "diagnoses": "K35.9",
        **SHEET,
        "other_reimbursed": "",
        "invoice": [
            SimpleUploadedFile("发票1.pdf", PDF, "application/pdf"),
            SimpleUploadedFile("发票2.jpg", b"\xff\xd8\xff\xe0" + b"0" * 20, "image/jpeg"),
        ],
        "settlement_sheet": SimpleUploadedFile("结算单.pdf", PDF, "application/pdf"),
        "discharge_record": SimpleUploadedFile("出院记录.pdf", PDF, "application/pdf"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_member_page_links_to_the_filing_for_clerks_only(browser, tree, person):
    page = browser.get(reverse("members:detail", args=[person.member.pk])).content.decode()
    assert f'href="{new_url(person.member)}"' in page and "提交手工理赔申请" in page
    reviewer = login_verified(Client(), factories.staff(tree.county_a1, "reviewer"))
    page = reviewer.get(reverse("members:detail", args=[person.member.pk])).content.decode()
    assert "提交手工理赔申请" not in page


def test_product_choice_offers_the_family_product_only_with_family(browser, person):
    page = browser.get(new_url(person.member)).content.decode()
    assert re.findall(r'data-product="(\w+)"', page) == [
        "inpatient",
        "special_outpatient",
        "critical_illness",
        "maternity",
    ]
    family_member(person.member)
    page = browser.get(new_url(person.member)).content.decode()
    assert 'data-product="family_inpatient"' in page


@pytest.mark.parametrize(
    ("product", "labels"),
    [
        (
            "inpatient",
            ["入院日期", "出院日期", "医疗费总额", "其他已报销金额", "出院记录（必须上传）"],
        ),
        ("special_outpatient", ["就诊日期", "符合政策范围金额", "医疗费用发票（必须上传）"]),
        ("critical_illness", ["确诊日期", "所患疾病", "严重程度", "病理报告/诊断证明（必须上传）"]),
        ("maternity", ["新生儿出生日期", "新生儿人数", "出生医学证明（必须上传）"]),
    ],
)
def test_each_product_has_its_own_fields(browser, person, product, labels):
    response = browser.get(new_url(person.member) + f"?product={product}")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    for label in labels:
        assert label in page
    assert person.certno not in page  # masked only (S11)


def test_filing_redirects_to_the_claim_with_its_priced_amount(browser, clerk, person):
    response = browser.post(new_url(person.member) + "?product=inpatient", inpatient_post())
    claim = Claim.objects.get()
    assert response.status_code == 302
    page = browser.get(response["Location"], follow=True).content.decode()
    assert claim.number in page
    assert "6200.00" in page
    assert claim.created_by == clerk and claim.benefit_fen == 620_000
    assert claim.documents.count() == 4
    assert sorted(claim.documents.values_list("filename", flat=True)) == [
        "出院记录.pdf",
        "发票1.pdf",
        "发票2.jpg",
        "结算单.pdf",
    ]


def test_confirmation_page_shows_number_amount_explanation_and_documents(browser, clerk, person):
    claim = file_manual_claim(
        acting_user=clerk,
        member=person.member,
        data=hospital(),
        documents=documents_for("inpatient"),
    )
    response = browser.get(reverse("manual:filed", args=[claim.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert f'<span id="claim-number">{claim.number}</span>' in page
    assert '<strong id="claim-benefit">6200.00</strong> 元' in page
    assert claim.explanation["text"] in page
    for document in claim.documents.all():
        assert reverse("manual:document", args=[document.pk]) in page


def test_errors_are_shown_beside_their_fields_and_nothing_is_filed(browser, person):
    response = browser.post(
        new_url(person.member) + "?product=inpatient",
        inpatient_post(
            adm_date="2026-02-30",
            medfee_sumamt="三万",
            discharge_record=SimpleUploadedFile("出院记录.pdf", PNG, "application/pdf"),
        ),
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "日期格式应为“年-月-日”" in page  # the form's parse error first
    response = browser.post(
        new_url(person.member) + "?product=inpatient",
        inpatient_post(
            medfee_sumamt="三万",
            discharge_record=SimpleUploadedFile("出院记录.pdf", PNG, "application/pdf"),
        ),
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "医疗费总额格式不正确" in page
    assert "文件内容（PNG）与扩展名（PDF）不符" in page
    assert page.count("is-invalid") >= 2
    assert not Claim.objects.exists() and not ClaimDocument.objects.exists()


def test_family_member_is_chosen_on_the_form(browser, tree, plan, person):
    relative = family_member(person.member)
    cover_family(relative, plan)
    page = browser.get(new_url(person.member) + "?product=family_inpatient").content.decode()
    assert relative.id_number_masked in page
    response = browser.post(
        new_url(person.member) + "?product=family_inpatient",
        inpatient_post(family_member_id=str(relative.pk)),
    )
    assert response.status_code == 302
    claim = Claim.objects.get()
    assert (claim.family_member, claim.product, claim.benefit_fen) == (
        relative,
        "family_inpatient",
        440_000,
    )


def test_a_lump_sum_is_filed_for_review(browser, person):
    response = browser.post(
        new_url(person.member) + "?product=maternity",
        {
            "birth_date": "2026-06-01",
            "newborns": "2",
            "birth_certificate": SimpleUploadedFile("出生医学证明.png", PNG, "image/png"),
        },
    )
    assert response.status_code == 302
    claim = Claim.objects.get()
    assert (claim.product, claim.status, claim.lump_sum) == (
        "maternity",
        "submitted",
        {"birth_date": "2026-06-01", "newborns": 2},
    )


def test_outside_the_scope_or_without_the_permission_the_form_does_not_exist(tree, plan, person):
    sibling = login_verified(Client(), factories.staff(tree.county_a2, "clerk"))
    reviewer = login_verified(Client(), factories.staff(tree.county_a1, "reviewer"))
    for client in (sibling, reviewer):
        assert client.get(new_url(person.member)).status_code == 404
        response = client.post(new_url(person.member) + "?product=inpatient", inpatient_post())
        assert response.status_code == 404
    assert not Claim.objects.exists()


def test_document_download_is_audited_and_scoped(browser, clerk, tree, person):
    claim = file_manual_claim(
        acting_user=clerk,
        member=person.member,
        data=hospital(),
        documents=documents_for("inpatient"),
    )
    document = claim.documents.get(doc_type="settlement_sheet")
    url = reverse("manual:document", args=[document.pk])
    auditor = login_verified(Client(), factories.staff(tree.city_a, "auditor"))
    response = auditor.get(url + "?purpose=稽核抽查")
    assert response.status_code == 200
    assert response.content == PDF + b"settlement_sheet"
    assert response["Content-Disposition"] == 'attachment; filename="settlement_sheet.pdf"'
    assert response["Cache-Control"] == "no-store"
    event = AuditEvent.objects.get(event="claims.document_viewed")
    assert event.detail["reason"] == "稽核抽查"
    sibling = login_verified(Client(), factories.staff(tree.county_a2, "auditor"))
    planner = login_verified(Client(), factories.staff(tree.county_a1, "plan_manager"))
    for client in (sibling, planner):
        assert client.get(url).status_code == 404
    assert AuditEvent.objects.filter(event="claims.document_viewed").count() == 1
