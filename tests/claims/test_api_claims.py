"""The staff claims API (/api/v1/claims): scoped list and detail, manual filing as multipart with
the documents, more documents later, documents downloaded with an audit event (S5, S7, S8)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from huzhu.claims.manual import file_manual_claim
from huzhu.claims.models import Claim, ClaimDocument, ClaimStatus
from huzhu.core.models import AuditEvent
from huzhu.orgs.services import create_api_token
from tests import factories
from tests.claims.conftest import covered_person
from tests.claims.manual_support import PDF, PNG, SHEET, documents_for, hospital

pytestmark = pytest.mark.django_db


class Api:
    def __init__(self, user) -> None:
        token = create_api_token(acting_user=None, user=user)
        self.client = Client(headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, **query: Any):
        return self.client.get("/api/v1/" + path, query)

    def post(self, path: str, data: dict[str, Any]):
        return self.client.post("/api/v1/" + path, data)  # multipart


@pytest.fixture
def clerk(tree):
    return factories.staff(tree.county_a1, "clerk", username="api_clerk")


@pytest.fixture
def api(clerk) -> Api:
    return Api(clerk)


def form(member_id: int, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "member_id": member_id,
        "product": "inpatient",
        "channel_reason": "out_of_province",
        "channel_note": "北京住院",
        "med_type": "21",
        "adm_date": "2026-03-01",
        "dscg_date": "2026-03-09",
        "settle_date": "2026-03-09",
        "hospital_name": "北京协和医院",
        "diagnoses": "K35.9",
        **SHEET,
        "invoice": SimpleUploadedFile("发票.pdf", PDF, "application/pdf"),
        "settlement_sheet": SimpleUploadedFile("结算单.pdf", PDF, "application/pdf"),
        "discharge_record": [
            SimpleUploadedFile("出院记录1.png", PNG, "image/png"),
            SimpleUploadedFile("出院记录2.pdf", PDF, "application/pdf"),
        ],
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def filed(clerk, member, **changes: Any) -> Claim:
    data = hospital(**changes)
    return file_manual_claim(
        acting_user=clerk, member=member, data=data, documents=documents_for(data.product)
    )


def detail_of(response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.content.decode()
    return json.loads(response.content)


def test_filing_over_the_api_prices_the_claim_for_review(api, person):
    response = api.post("claims", form(person.member.pk))
    body = detail_of(response)
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    claim = Claim.objects.get()
    assert body["id"] == claim.pk and body["number"] == claim.number
    assert (body["kind"], body["status"], body["status_label"]) == ("manual", "submitted", "已提交")
    assert (body["product"], body["product_label"]) == ("inpatient", "住院互助保障")
    assert (body["benefit"], body["base"]) == ("6200.00", "12000.00")
    assert body["amounts"]["other_reimbursed"] == "0.00"
    assert body["amounts"]["medfee_sumamt"] == "30000.00"
    assert "6200.00" in body["explanation_text"]
    assert body["filing"] == {
        "reason": "out_of_province",
        "reason_label": "异地就医（省外就医，未能一站式结算）",
        "note": "北京住院",
    }
    assert body["diagnoses"] is None  # a clerk is not a reviewer
    assert [s["action"] for s in body["steps"]] == ["file", "submit"]
    docs = sorted((d["doc_type"], d["filename"], d["content_type"]) for d in body["documents"])
    assert docs == [
        ("discharge_record", "出院记录1.png", "image/png"),
        ("discharge_record", "出院记录2.pdf", "application/pdf"),
        ("invoice", "发票.pdf", "application/pdf"),
        ("settlement_sheet", "结算单.pdf", "application/pdf"),
    ]
    first = body["documents"][0]
    assert first["url"] == f"/api/v1/claims/{claim.pk}/documents/{first['id']}"


def test_filing_errors_are_chinese_and_name_every_field(api, person):
    response = api.post(
        "claims",
        form(
            person.member.pk,
            medfee_sumamt="12.345",
            settlement_sheet=SimpleUploadedFile("结算单.pdf", PNG, "application/pdf"),
            discharge_record=None,
        ),
    )
    assert response.status_code == 422
    items = json.loads(response.content)["detail"]
    by_field = {i["field"]: i for i in items}
    assert set(by_field) == {"medfee_sumamt", "settlement_sheet", "discharge_record"}
    assert by_field["discharge_record"]["msg"] == "请上传出院记录"
    assert by_field["discharge_record"]["code"] == "required"
    assert "与扩展名（PDF）不符" in by_field["settlement_sheet"]["msg"]
    assert by_field["medfee_sumamt"]["msg"].startswith("医疗费总额格式不正确")
    assert not Claim.objects.exists() and not ClaimDocument.objects.exists()


def test_malformed_form_fields_and_unknown_fields_answer_422(api, person):
    response = api.post("claims", form(person.member.pk, adm_date="2026-13-01"))
    assert response.status_code == 422
    [item] = json.loads(response.content)["detail"]
    assert (item["loc"], item["msg"]) == (["form", "adm_date"], "应为日期（YYYY-MM-DD）")
    response = api.post(
        "claims",
        form(person.member.pk, colour="红", xray=SimpleUploadedFile("x.png", PNG, "image/png")),
    )
    assert response.status_code == 422
    items = json.loads(response.content)["detail"]
    assert [(i["field"], i["msg"], i["code"]) for i in items] == [
        ("colour", "不允许的字段", "extra_forbidden"),
        ("xray", "不允许的字段", "extra_forbidden"),
    ]
    assert not Claim.objects.exists()


def test_member_outside_the_scope_is_a_field_error(api, tree, plan):
    sibling = covered_person(tree, plan)
    sibling.member.union = tree.grassroots_2  # not how members move; only the scope matters here
    sibling.member.union_path = tree.grassroots_2.path
    sibling.member.save()
    response = api.post("claims", form(sibling.member.pk))
    assert response.status_code == 422
    [item] = json.loads(response.content)["detail"]
    assert (item["field"], item["code"]) == ("member_id", "not_found")
    assert item["msg"] == "该职工不存在或不在您的管辖范围内"
    assert not Claim.objects.exists()


def test_roles_without_the_filing_permission_get_403(tree, person):
    reviewer = factories.staff(tree.county_a1, "reviewer", username="api_reviewer")
    response = Api(reviewer).post("claims", form(person.member.pk))
    assert response.status_code == 403
    assert not Claim.objects.exists()


def test_list_is_scoped_filtered_paged_and_without_diagnoses(api, clerk, tree, plan):
    own = [covered_person(tree, plan, name=f"职工{i}") for i in range(3)]
    claims = [filed(clerk, p.member) for p in own]
    Claim.objects.filter(pk=claims[0].pk).update(status=ClaimStatus.REJECTED)
    outsider_clerk = factories.staff(tree.county_a2, "clerk", username="outsider_clerk")
    outsider = factories.member(tree.grassroots_2, tree.unit_2, name="兄弟单位职工")
    from tests.claims.conftest import cover

    cover(outsider, plan)
    foreign = filed(outsider_clerk, outsider)
    body = detail_of(api.get("claims", limit=2))
    assert [c["id"] for c in body["items"]] == [claims[2].pk, claims[1].pk]
    assert body["next"] == claims[1].pk
    rest = detail_of(api.get("claims", limit=2, after=body["next"]))
    assert [c["id"] for c in rest["items"]] == [claims[0].pk] and rest["next"] is None
    assert foreign.pk not in {c["id"] for c in body["items"] + rest["items"]}
    item = body["items"][0]
    assert set(item) == {
        "id",
        "number",
        "kind",
        "status",
        "status_label",
        "product",
        "product_label",
        "year",
        "member",
        "family_member",
        "union",
        "adm_date",
        "benefit",
        "created_at",
    }
    text = json.dumps(body, ensure_ascii=False)
    assert "K35.9" not in text and "兄弟单位职工" not in text
    rejected = detail_of(api.get("claims", status="rejected"))
    assert [c["id"] for c in rejected["items"]] == [claims[0].pk]
    assert detail_of(api.get("claims", product="maternity"))["items"] == []
    assert len(detail_of(api.get("claims", year=2026))["items"]) == 3
    assert (
        detail_of(api.get("claims", member_id=own[1].member.pk))["items"][0]["id"] == claims[1].pk
    )
    assert detail_of(api.get("claims", member_id=outsider.pk))["items"] == []
    bad = api.get("claims", colour="红")
    assert bad.status_code == 422


def test_detail_shows_diagnoses_only_to_reviewers_who_state_why_and_404_outside(
    api, clerk, tree, person
):
    claim = filed(clerk, person.member)
    assert detail_of(api.get(f"claims/{claim.pk}"))["diagnoses"] is None
    asked = api.get(f"claims/{claim.pk}", diagnoses_reason="核对诊断编码")
    assert detail_of(asked)["diagnoses"] is None  # a clerk is not a reviewer
    reviewer = Api(factories.staff(tree.city_a, "reviewer", username="api_city_reviewer"))
    assert detail_of(reviewer.get(f"claims/{claim.pk}"))["diagnoses"] is None
    assert not AuditEvent.objects.filter(event="claims.diagnoses_viewed").exists()
    shown = reviewer.get(f"claims/{claim.pk}", diagnoses_reason="核对诊断编码")
    assert detail_of(shown)["diagnoses"] == ["K35.9"]
    event = AuditEvent.objects.get(event="claims.diagnoses_viewed")
    assert (event.actor_username, event.detail["reason"]) == ("api_city_reviewer", "核对诊断编码")
    too_short = reviewer.get(f"claims/{claim.pk}", diagnoses_reason="看")
    assert too_short.status_code == 422
    [item] = json.loads(too_short.content)["detail"]
    assert (item["loc"], item["msg"]) == (
        ["query", "diagnoses_reason"],
        "请填写查看原因（至少4个字）",
    )
    sibling = factories.staff(tree.county_a2, "clerk", username="api_sibling")
    planner = factories.staff(tree.county_a1, "plan_manager", username="api_planner")
    for outsider in (sibling, planner):
        response = Api(outsider).get(f"claims/{claim.pk}")
        assert response.status_code == 404
        assert json.loads(response.content) == {"detail": "对象不存在，或不在您的管辖范围内"}


def test_lump_sum_facts_hide_the_disease_from_non_reviewers(api, clerk, tree, person):
    from tests.claims.manual_support import birth, critical

    ci = file_manual_claim(
        acting_user=clerk,
        member=person.member,
        data=critical(1, "mild"),
        documents=documents_for("critical_illness"),
    )
    baby = file_manual_claim(
        acting_user=clerk, member=person.member, data=birth(2), documents=documents_for("maternity")
    )
    assert detail_of(api.get(f"claims/{ci.pk}"))["lump_sum"] is None
    assert detail_of(api.get(f"claims/{baby.pk}"))["lump_sum"] == {
        "birth_date": "2026-06-01",
        "newborns": 2,
    }
    reviewer = factories.staff(tree.county_a1, "reviewer", username="api_lump_reviewer")
    assert detail_of(Api(reviewer).get(f"claims/{ci.pk}"))["lump_sum"] == {
        "diagnosis_date": "2026-05-10",
        "disease_claimed": 1,
        "severity_claimed": "mild",
    }


def test_adding_a_document_later(api, clerk, tree, person):
    claim = filed(clerk, person.member)
    response = api.post(
        f"claims/{claim.pk}/documents",
        {"doc_type": "other", "file": SimpleUploadedFile("补充说明.pdf", PDF, "application/pdf")},
    )
    body = detail_of(response)
    assert response.status_code == 201
    assert (body["doc_type"], body["doc_type_label"], body["filename"]) == (
        "other",
        "其他材料",
        "补充说明.pdf",
    )
    assert claim.documents.count() == 4
    bad = api.post(
        f"claims/{claim.pk}/documents",
        {"doc_type": "other", "file": SimpleUploadedFile("假.pdf", PNG, "application/pdf")},
    )
    assert bad.status_code == 422
    assert json.loads(bad.content)["detail"][0]["field"] == "file"
    Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.APPROVED)
    closed = api.post(
        f"claims/{claim.pk}/documents",
        {"doc_type": "other", "file": SimpleUploadedFile("晚.pdf", PDF, "application/pdf")},
    )
    assert closed.status_code == 422
    assert json.loads(closed.content)["detail"][0]["code"] == "invalid_state"
    reviewer = factories.staff(tree.county_a1, "reviewer", username="api_doc_reviewer")
    denied = Api(reviewer).post(
        f"claims/{claim.pk}/documents",
        {"doc_type": "other", "file": SimpleUploadedFile("x.pdf", PDF, "application/pdf")},
    )
    assert denied.status_code == 404
    assert claim.documents.count() == 4


def test_downloading_a_document_is_audited_and_never_cached(api, clerk, tree, person):
    claim = filed(clerk, person.member)
    document = claim.documents.get(doc_type="invoice")
    response = api.get(f"claims/{claim.pk}/documents/{document.pk}", purpose="核对发票")
    assert response.status_code == 200
    assert response.content == PDF + b"invoice"
    assert response["Content-Type"] == "application/pdf"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"] == 'attachment; filename="invoice.pdf"'
    event = AuditEvent.objects.get(event="claims.document_viewed")
    assert event.actor_username == clerk.username
    assert event.detail["reason"] == "核对发票"
    other = filed(clerk, covered_person(tree, claim.enrollment.plan_version, name="李娜").member)
    mismatched = api.get(f"claims/{other.pk}/documents/{document.pk}")
    assert mismatched.status_code == 404
    sibling = factories.staff(tree.county_a2, "auditor", username="api_sibling_auditor")
    assert Api(sibling).get(f"claims/{claim.pk}/documents/{document.pk}").status_code == 404
    assert AuditEvent.objects.filter(event="claims.document_viewed").count() == 1


def test_chinese_file_names_are_encoded_in_the_header(api, clerk, person):
    claim = filed(clerk, person.member)
    document = claim.documents.first()
    ClaimDocument.objects.filter(pk=document.pk).update(filename="住院发票.pdf")
    response = api.get(f"claims/{claim.pk}/documents/{document.pk}")
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''%E4%BD%8F%E9%99%A2%E5%8F%91%E7%A5%A8.pdf"
    )
