"""Staff screens of the feed (docs/settlement-feed.md): files, upload on a partner's behalf,
reconciliation reports, settlement records (masked, no diagnoses) and the consent / quarantine
screen — each scoped to the user's subtree (out of scope: 404 or not listed)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from huzhu.claims.feed import import_settlement_file, partner_totals, reconcile
from huzhu.claims.models import Claim, ClaimStatus, ReconciliationReport, SettlementFile
from huzhu.claims.services import receive_settlement
from tests import factories
from tests.claims.conftest import covered_person, settle_body
from tests.claims.test_feed_support import csv_bytes, total_of
from tests.web.conftest import login_verified

pytestmark = pytest.mark.django_db


def _client(org: Any, role: str) -> Any:
    from django.test import Client

    return login_verified(Client(), factories.staff(org, role))


def _file(partner: Any, person: Any, *, count: int | None = None) -> SettlementFile:
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2", base="3000.00")]
    return import_settlement_file(
        acting_user=None,
        partner=partner,
        filename="s.csv",
        content=csv_bytes(rows),
        declared_count=len(rows) if count is None else count,
        declared_total=total_of(rows),
    ).file


def _text(response: Any) -> str:
    return response.content.decode()


def test_file_list_and_detail_in_scope(tree, partner, person):
    accepted = _file(partner, person)
    client = _client(tree.city_a, "auditor")
    listing = client.get(reverse("feed:files"))
    assert listing.status_code == 200
    assert f'href="{reverse("feed:file", args=[accepted.pk])}"' in _text(listing)
    detail = client.get(reverse("feed:file", args=[accepted.pk]))
    assert detail.status_code == 200
    body = _text(detail)
    assert 'data-file-status="accepted"' in body
    assert re.findall(r'<tr data-outcome="(\w+)">', body) == ["approved", "approved"]
    assert person.certno not in body


def test_a_rejected_file_shows_every_problem(tree, partner, person):
    rejected = _file(partner, person, count=5)
    body = _text(_client(tree.city_a, "clerk").get(reverse("feed:file", args=[rejected.pk])))
    assert "拒收原因：共 1 个问题，未导入任何记录" in body
    assert "声明记录数 5 与文件中的记录数 2 不符" in body


def test_files_and_reports_outside_the_subtree_are_not_found(tree, partner, person):
    accepted = _file(partner, person)
    report = reconcile(
        acting_user=None,
        partner=partner,
        day=date(2026, 3, 10),
        totals=partner_totals(count=0, medfee="0", benefit="0"),
        source="cli",
    )
    outsider = _client(tree.city_b, "auditor")
    assert outsider.get(reverse("feed:file", args=[accepted.pk])).status_code == 404
    assert outsider.get(reverse("feed:report", args=[report.pk])).status_code == 404
    assert outsider.get(reverse("feed:file_progress", args=[accepted.pk])).status_code == 404
    assert f"#{accepted.pk}<" not in _text(outsider.get(reverse("feed:files")))
    assert "report-list" not in _text(outsider.get(reverse("feed:reports")))
    # Without claim.view (the system administrator): not found either.
    admin = _client(tree.city_a, "sysadmin")
    assert admin.get(reverse("feed:file", args=[accepted.pk])).status_code == 404
    inside = _client(tree.city_a, "auditor")
    assert inside.get(reverse("feed:report", args=[report.pk])).status_code == 200


def test_upload_on_a_partners_behalf(tree, partner, person):
    admin = _client(tree.city_a, "sysadmin")
    assert admin.get(reverse("feed:upload")).status_code == 200
    rows = [settle_body(person.certno, "S1")]
    response = admin.post(
        reverse("feed:upload"),
        {
            "partner": str(partner.pk),
            "file": SimpleUploadedFile("s.csv", csv_bytes(rows), content_type="text/csv"),
            "declared_count": "1",
            "declared_total": total_of(rows),
        },
    )
    settlement_file = SettlementFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("feed:upload") + f"?file={settlement_file.pk}"
    assert settlement_file.status == "accepted"
    assert settlement_file.uploaded_by is not None
    page = _text(admin.get(response["Location"]))
    assert "文件已接收并处理完毕" in page and 'data-outcome="approved"' in page
    # A clerk cannot upload; an administrator of another city cannot pick this partner.
    assert _client(tree.city_a, "clerk").get(reverse("feed:upload")).status_code == 404
    other = _client(tree.city_b, "sysadmin")
    response = other.post(
        reverse("feed:upload"),
        {
            "partner": str(partner.pk),
            "file": SimpleUploadedFile("t.csv", csv_bytes(rows), content_type="text/csv"),
            "declared_count": "1",
            "declared_total": total_of(rows),
        },
    )
    assert response.status_code == 422  # the form again (no partner in scope to choose)
    assert SettlementFile.objects.count() == 1
    assert other.get(reverse("feed:upload") + f"?file={settlement_file.pk}").status_code == 404


def test_reconcile_from_the_screen(tree, partner, person):
    receive_settlement(partner=partner, body=settle_body(person.certno, "S1"))
    admin = _client(tree.city_a, "sysadmin")
    response = admin.post(
        reverse("feed:reconcile"),
        {
            "partner": str(partner.pk),
            "day": "2026-03-10",
            "count": "1",
            "medfee": "30000.00",
            "benefit": "6200.00",
            "records": "S1,,30000.00,6200.00\nS2,cancelled,,",
        },
    )
    report = ReconciliationReport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("feed:reconcile") + f"?report={report.pk}"
    assert [d["kind"] for d in report.differences] == ["missing_ours"]
    assert report.created_by is not None and report.source == "web"
    page = _text(admin.get(response["Location"]))
    assert 'data-kind="missing_ours"' in page
    listing = _text(_client(tree.city_a, "reviewer").get(reverse("feed:reports")))
    assert f'href="{reverse("feed:report", args=[report.pk])}"' in listing
    bad = admin.post(
        reverse("feed:reconcile"),
        {
            "partner": str(partner.pk),
            "day": "2026-03-10",
            "count": "1",
            "medfee": "x",
            "benefit": "0",
        },
    )
    assert bad.status_code == 422
    assert "医疗费总额应为不小于 0 的金额，最多两位小数" in _text(bad)
    assert ReconciliationReport.objects.count() == 1


def test_settlement_records_are_masked_filtered_and_scoped(tree, plan, partner, person):
    receive_settlement(
        partner=partner, body=settle_body(person.certno, "S1", diagnoses=("K35.9", "C34.9"))
    )
    receive_settlement(
        partner=partner, body=settle_body(person.certno, "S2", setl_time="2026-03-12 09:00:00")
    )
    client = _client(tree.county_a1, "clerk")
    page = client.get(reverse("feed:settlements"))
    body = _text(page)
    assert page.status_code == 200
    assert re.findall(r"<code>(S\d)</code>", body) == ["S2", "S1"]
    assert person.member.id_number_masked in body and person.certno not in body
    assert "K35.9" not in body and "C34.9" not in body
    filtered = _text(client.get(reverse("feed:settlements") + "?date=2026-03-12"))
    assert re.findall(r"<code>(S\d)</code>", filtered) == ["S2"]
    by_status = _text(client.get(reverse("feed:settlements") + "?status=pending_review"))
    assert re.findall(r"<code>(S\d)</code>", by_status) == ["S1"]
    sibling = _text(_client(tree.county_a2, "clerk").get(reverse("feed:settlements")))
    assert "settlement-list" not in sibling


def test_quarantine_screen_lists_waiting_members_until_consent_is_recorded(
    tree, plan, partner, django_capture_on_commit_callbacks
):
    waiting = covered_person(tree, plan, consent=False, name="李四")
    receive_settlement(partner=partner, body=settle_body(waiting.certno, "S1"))
    receive_settlement(
        partner=partner, body=settle_body(waiting.certno, "S2", setl_time="2026-03-09 08:00:00")
    )
    clerk = _client(tree.county_a1, "clerk")
    body = _text(clerk.get(reverse("feed:quarantine")))
    assert "李四" in body and "2 笔" in body and "2026-03-09 08:00" in body
    link = reverse("members:detail", args=[waiting.member.pk]) + "#consents"
    assert f'href="{link}"' in body and "登记授权" in body
    assert waiting.certno not in body
    assert "李四" not in _text(_client(tree.county_a2, "clerk").get(reverse("feed:quarantine")))
    # The clerk records the paper consent on the member's page: the claims are released.
    with django_capture_on_commit_callbacks(execute=True):
        response = clerk.post(
            reverse("members:consent_grant", args=[waiting.member.pk]),
            {"channel": "paper_via_union"},
        )
    assert response.status_code in (200, 302)
    assert not Claim.objects.filter(status=ClaimStatus.QUARANTINED).exists()
    assert "没有待授权的结算" in _text(clerk.get(reverse("feed:quarantine")))


def test_the_navigation_shows_the_settlement_data_page(tree):
    client = _client(tree.county_a1, "reviewer")
    body = _text(client.get(reverse("feed:quarantine")))
    assert f'href="{reverse("feed:settlements")}"' in body and "结算数据" in body
