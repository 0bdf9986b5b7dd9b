"""The member's pages: 我的保障 (enrollments), 我的票据 (own receipts only, PDF and signed XML),
我的信息 (own data unmasked, marked and audited), 下载我的数据 (JSON), 更正申请, 授权管理 (consent
granted and withdrawn through the members services, channel ``portal``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from huzhu.contributions.receipt_xml import verify_receipt_xml
from huzhu.core.audit import EVENT_LABELS
from huzhu.core.models import AuditEvent
from huzhu.enrollment.models import Enrollment
from huzhu.enrollment.services import attach_roster, confirm_batch, create_batch, validate_batch
from huzhu.members.models import Consent, ConsentChannel
from huzhu.members.services import add_family_member, grant_consent, record_hardship
from huzhu.portal.models import CorrectionRequest
from huzhu.portal.services import MAX_PENDING_CORRECTIONS, PortalEvent
from tests import factories
from tests.enrollment.conftest import active_plan, csv_bytes, row
from tests.portal.conftest import ACCOUNT, PHONE, Portal

pytestmark = pytest.mark.django_db


def _enroll(portal: Portal) -> Enrollment:
    """The member enrolled for 2026 through the real roster flow (pending payment)."""
    plan = active_plan(2026)
    batch = create_batch(acting_user=None, union=portal.tree.grassroots_1, plan_year=2026)
    content = csv_bytes(
        [row(name=portal.member.name, id_number=portal.id_number, uscc=portal.tree.unit_1.uscc)]
    )
    attach_roster(acting_user=None, batch=batch, file_name="花名册.csv", content=content)
    validate_batch(batch=batch)
    confirm_batch(acting_user=None, batch=batch)
    enrollment = Enrollment.objects.get(member=portal.member)
    assert enrollment.plan_version == plan
    return enrollment


def _events(event: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=event).order_by("pk"))


def test_my_coverage(portal: Portal, member_client: Client) -> None:
    empty = member_client.get(reverse("portal:home")).content.decode()
    assert "暂无参保记录" in empty and 'data-coverage-now="0"' in empty
    enrollment = _enroll(portal)
    text = member_client.get(reverse("portal:home")).content.decode()
    assert "2026年度 · 职工本人" in text and "待缴费" in text
    assert enrollment.plan_version.name in text and portal.tree.unit_1.name in text
    assert "缴费确认后次日起生效" in text and portal.tree.grassroots_1.name in text
    # The portal's own navigation, not the staff one.
    assert "我的票据" in text and "授权管理" in text and "工作台" not in text


def test_my_receipts_lists_only_my_own(portal: Portal, member_client: Client) -> None:
    response = member_client.get(reverse("portal:receipts"))
    text = response.content.decode()
    for receipt in portal.receipts:
        assert f"{receipt.code}-{receipt.number_text}" in text
        assert reverse("portal:receipt_pdf", args=[receipt.pk]) in text
    other = portal.other_receipt
    assert f"{other.code}-{other.number_text}" not in text
    assert "180.00" not in text and "60.00" in text and "120.00" in text


@pytest.mark.parametrize("kind", ["pdf", "xml"])
def test_another_members_receipt_is_not_found(
    portal: Portal, member_client: Client, kind: str
) -> None:
    before = AuditEvent.objects.count()
    url = reverse(f"portal:receipt_{kind}", args=[portal.other_receipt.pk])
    assert member_client.get(url).status_code == 404
    missing = reverse(f"portal:receipt_{kind}", args=[portal.other_receipt.pk + 1000])
    assert member_client.get(missing).status_code == 404
    assert AuditEvent.objects.count() == before


def test_receipt_pdf_and_xml_download(portal: Portal, member_client: Client) -> None:
    receipt = portal.receipts[0]
    pdf = member_client.get(reverse("portal:receipt_pdf", args=[receipt.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert (
        pdf["Content-Disposition"]
        == f'attachment; filename="receipt-{receipt.code}-{receipt.number_text}.pdf"'
    )
    assert pdf["Cache-Control"] == "no-store"
    xml = member_client.get(reverse("portal:receipt_xml", args=[receipt.pk]))
    assert xml.status_code == 200 and xml["Content-Type"] == "application/xml"
    assert xml.content == receipt.signed_xml.encode("utf-8") and verify_receipt_xml(xml.content)
    events = _events(PortalEvent.RECEIPT_DOWNLOADED)
    assert [(e.detail["format"], e.object_id) for e in events] == [
        ("pdf", str(receipt.pk)),
        ("xml", str(receipt.pk)),
    ]
    assert {e.actor_username for e in events} == {f"member:{portal.member.pk}"}
    assert {e.channel for e in events} == {"portal"}


def test_my_information_is_shown_unmasked_and_audited(
    portal: Portal, member_client: Client, assert_no_pii: Any
) -> None:
    add_family_member(
        acting_user=None,
        member=portal.member,
        name="李小明",
        id_number=(child := factories.id_number(date(2012, 5, 1))),
        relation="child",
    )
    response = member_client.get(reverse("portal:profile"))
    assert response.status_code == 200 and response["X-Huzhu-Reveal"] == "1"
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert portal.id_number in text and PHONE in text and ACCOUNT in text
    assert "李小明" in text and child not in text  # a family member's number stays masked
    assert [e.actor_username for e in _events(PortalEvent.PROFILE_VIEWED)] == [
        f"member:{portal.member.pk}"
    ]
    # Every other member page is checked by the S9 guard: no plain value there.
    for name in ("home", "receipts", "corrections", "consent"):
        page = member_client.get(reverse(f"portal:{name}"))
        assert "X-Huzhu-Reveal" not in page
        assert_no_pii(page)


def test_download_my_data(portal: Portal, member_client: Client) -> None:
    _enroll(portal)
    record_hardship(
        acting_user=None,
        member=portal.member,
        source="union_file",
        valid_from=date(2026, 1, 1),
        valid_to=None,
        evidence="工会困难职工档案",
    )
    grant_consent(acting_user=None, member=portal.member)
    assert member_client.get(reverse("portal:data_download")).status_code == 405  # POST only
    response = member_client.post(reverse("portal:data_download"))
    assert response.status_code == 200 and response["X-Huzhu-Reveal"] == "1"
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="my-data-')
    data = json.loads(response.content)
    assert set(data) == {
        "format",
        "exported_at",
        "person",
        "family_members",
        "hardship_records",
        "consents",
        "enrollments",
        "receipts",
        "correction_requests",
    }
    person = data["person"]
    assert person["name"] == "李秀英" and person["id_number"] == portal.id_number
    assert person["phone"] == PHONE and person["bank_account"] == ACCOUNT
    assert person["union"] == portal.tree.grassroots_1.name
    assert [(e["plan_year"], e["status"]) for e in data["enrollments"]] == [(2026, "待缴费")]
    assert [r["number"] for r in data["receipts"]] == [
        r.number_text for r in reversed(portal.receipts)
    ]
    assert [r["total_fen"] for r in data["receipts"]] == [12000, 6000]
    assert [c["channel"] for c in data["consents"]] == ["纸质授权（工会代录）"]
    assert [h["evidence"] for h in data["hardship_records"]] == ["工会困难职工档案"]
    assert portal.other.name not in response.content.decode()
    event = _events(PortalEvent.DATA_DOWNLOADED)
    assert len(event) == 1 and event[0].actor_username == f"member:{portal.member.pk}"
    assert EVENT_LABELS[PortalEvent.DATA_DOWNLOADED] == "会员下载本人数据"


def test_correction_request_flow(portal: Portal, member_client: Client) -> None:
    url = reverse("portal:corrections")
    bad = member_client.post(url, {"field": "phone", "value": "12345", "reason": "换号"})
    assert bad.status_code == 422
    text = bad.content.decode()
    assert "手机号码应为11位" in text and "至少4个字" in text
    assert CorrectionRequest.objects.count() == 0
    new_phone = "13687654321"
    done = member_client.post(
        url, {"field": "phone", "value": new_phone, "reason": "手机号码已更换为新号码"}
    )
    assert done.status_code == 302
    member_client.post(url, {"field": "name", "value": "李秀瑛", "reason": "姓名有错别字"})
    rows = list(CorrectionRequest.objects.order_by("pk"))
    assert [(c.field, c.status) for c in rows] == [("phone", "pending"), ("name", "pending")]
    phone = rows[0]
    assert phone.requested_phone_enc == new_phone and phone.requested_masked == "136****4321"
    assert phone.requested_value == "" and rows[1].requested_value == "李秀瑛"
    page = member_client.get(url).content.decode()
    assert "136****4321" in page and new_phone not in page and "李秀瑛" in page
    assert "待处理" in page
    events = _events(PortalEvent.CORRECTION_REQUESTED)
    assert [e.detail["field"] for e in events] == ["phone", "name"]
    assert new_phone not in json.dumps([e.detail for e in events])


def test_pending_corrections_are_limited(portal: Portal, member_client: Client) -> None:
    url = reverse("portal:corrections")
    for n in range(MAX_PENDING_CORRECTIONS):
        member_client.post(url, {"field": "other", "value": f"说明{n}", "reason": "单位名称有误"})
    response = member_client.post(
        url, {"field": "other", "value": "再一条", "reason": "单位名称有误"}
    )
    assert response.status_code == 422 and "待处理的更正申请" in response.content.decode()
    assert CorrectionRequest.objects.count() == MAX_PENDING_CORRECTIONS


def test_consent_grant_and_withdraw(portal: Portal, member_client: Client) -> None:
    page = member_client.get(reverse("portal:consent")).content.decode()
    assert 'data-consent="none"' in page and "医保结算数据共享授权告知书" in page
    # The notice must be agreed to.
    member_client.post(reverse("portal:consent_grant"))
    assert not Consent.objects.filter(member=portal.member).exists()
    member_client.post(reverse("portal:consent_grant"), {"agree": "1"})
    consent = Consent.objects.get(member=portal.member)
    assert consent.channel == ConsentChannel.PORTAL and consent.active
    assert consent.recorded_by is None
    page = member_client.get(reverse("portal:consent")).content.decode()
    assert 'data-consent="active"' in page and "会员门户" in page
    member_client.post(reverse("portal:consent_grant"), {"agree": "1"})  # already: nothing new
    assert Consent.objects.filter(member=portal.member).count() == 1
    member_client.post(reverse("portal:consent_withdraw"))
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None
    granted = _events("consent.grant")
    withdrawn = _events("consent.withdraw")
    assert len(granted) == len(withdrawn) == 1
    assert granted[0].detail["channel"] == "portal"
    for event in (granted[0], withdrawn[0]):
        assert event.actor_username == f"member:{portal.member.pk}" and event.actor_id is None
        assert event.channel == "portal" and event.organisation_id == portal.member.union_id
