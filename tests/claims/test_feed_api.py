"""The partner API of the batch feed and the reconciliation (docs/settlement-feed.md): signed like
the settlement API (scope ``batch``), files as the raw body with the declaration in headers, the
answers 200 / 202 / 422, and reports as JSON."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
from django.test import Client, override_settings

from huzhu.claims import feed
from huzhu.claims.models import (
    PartnerScope,
    ReconciliationReport,
    Settlement,
    SettlementFile,
)
from huzhu.claims.partner_signing import sign_hmac, string_to_sign
from huzhu.claims.partners import clear_partner_cache
from tests.claims.conftest import make_partner, settle_body
from tests.claims.test_feed_support import csv_bytes, jsonl_bytes, total_of

pytestmark = pytest.mark.django_db

FILES = "/api/v1/settlement-files"
RECONCILE = "/api/v1/reconciliations"
KEY = "00" * 32


@pytest.fixture(autouse=True)
def _fresh_partner_cache() -> Any:
    clear_partner_cache()
    yield
    clear_partner_cache()


def _signed(partner_id: str, method: str, path: str, body: bytes, key: str = KEY) -> dict[str, str]:
    ts = str(int(time.time()))
    nonce = secrets.token_hex(16)
    return {
        "X-Partner-Id": partner_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign_hmac(key, string_to_sign(ts, nonce, method, path, body)),
    }


def _upload(
    partner: Any,
    content: bytes,
    *,
    count: int | str | None,
    total: str | None,
    content_type: str = "text/csv",
    name: str | None = None,
) -> Any:
    headers = _signed(partner.partner_id, "POST", FILES, content)
    if count is not None:
        headers["X-Record-Count"] = str(count)
    if total is not None:
        headers["X-Amount-Total"] = total
    if name:
        headers["X-File-Name"] = name
    return Client().post(FILES, data=content, content_type=content_type, headers=headers)


def _get(partner: Any, path: str) -> Any:
    return Client().get(path, headers=_signed(partner.partner_id, "GET", path, b""))


def test_upload_a_csv_file(partner, person):
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2", base="3000.00")]
    response = _upload(partner, csv_bytes(rows), count=2, total=total_of(rows))
    assert response.status_code == 200, response.content
    body = response.json()
    settlement_file = SettlementFile.objects.get()
    assert body["file_id"] == settlement_file.pk
    assert (body["status"], body["duplicate"], body["format"]) == ("accepted", False, "csv")
    assert (body["record_count"], body["total"], body["processed"]) == (2, "60000.00", 2)
    assert body["outcomes"] == {"approved": 2}
    assert body["lines"] == [
        {
            "line": 2,
            "setl_id": "S1",
            "record_type": "settle",
            "outcome": "approved",
            "reason": None,
            "benefit": "6200.00",
        },
        {
            "line": 3,
            "setl_id": "S2",
            "record_type": "settle",
            "outcome": "approved",
            "reason": None,
            "benefit": "2100.00",
        },
    ]
    assert body["next_offset"] is None
    # Sent again: the earlier result, nothing new.
    again = _upload(partner, csv_bytes(rows), count=2, total=total_of(rows))
    assert again.status_code == 200
    assert again.json() == {**body, "duplicate": True}
    assert SettlementFile.objects.count() == 1 and Settlement.objects.count() == 2
    # And it can be read back.
    detail = _get(partner, f"{FILES}/{settlement_file.pk}")
    assert detail.status_code == 200 and detail.json() == body


def test_upload_json_lines_by_content_type(partner, person):
    rows = [settle_body(person.certno, "S1"), ("S1", "2026-03-12 09:00:00")]
    response = _upload(
        partner,
        jsonl_bytes(rows),
        count=2,
        total=total_of(rows),
        content_type="application/x-ndjson",
    )
    assert response.status_code == 200, response.content
    assert response.json()["format"] == "jsonl"
    assert [x["outcome"] for x in response.json()["lines"]] == ["approved", "cancelled"]


def test_a_rejected_file_answers_422_with_every_problem(partner, person):
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2", med_type="")]
    response = _upload(partner, csv_bytes(rows), count=3, total=total_of(rows))
    assert response.status_code == 422
    settlement_file = SettlementFile.objects.get()
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "declared_count"],
                "field": "declared_count",
                "line": None,
                "msg": "声明记录数 3 与文件中的记录数 2 不符",
                "code": "invalid",
            },
            {
                "loc": ["body", 3, "med_type"],
                "field": "med_type",
                "line": 3,
                "msg": "第3行：必填",
                "code": "invalid",
            },
        ],
        "file_id": settlement_file.pk,
        "status": "rejected",
    }
    assert Settlement.objects.count() == 0


def test_a_missing_declaration_rejects_the_file(partner, person):
    rows = [settle_body(person.certno, "S1")]
    response = _upload(partner, csv_bytes(rows), count=None, total=None)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["detail"]] == ["declared_count", "declared_total"]


def test_unsigned_or_badly_signed_uploads_are_refused_and_nothing_is_stored(partner, person):
    content = csv_bytes([settle_body(person.certno, "S1")])
    response = Client().post(FILES, data=content, content_type="text/csv")
    assert response.status_code == 401
    headers = _signed(partner.partner_id, "POST", FILES, content, key="11" * 32)
    response = Client().post(FILES, data=content, content_type="text/csv", headers=headers)
    assert response.status_code == 401
    assert SettlementFile.objects.count() == 0


def test_a_partner_without_the_batch_scope_is_forbidden(tree, person):
    partner = make_partner(tree.city_a, partner_id="P430100009")
    partner.scopes = [PartnerScope.SETTLE.value]
    partner.save()
    rows = [settle_body(person.certno, "S1")]
    response = _upload(partner, csv_bytes(rows), count=1, total=total_of(rows))
    assert response.status_code == 403
    assert SettlementFile.objects.count() == 0


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=500)
def test_files_over_the_ordinary_body_limit_are_accepted(partner, person):
    rows = [settle_body(person.certno, f"S{i}", base="100.00") for i in range(3)]
    content = csv_bytes(rows)
    assert len(content) > 500
    response = _upload(partner, content, count=3, total=total_of(rows))
    assert response.status_code == 200, response.content


def test_a_large_file_answers_202_and_is_processed_in_the_background(
    partner, person, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(feed, "BACKGROUND_THRESHOLD", 2)
    rows = [settle_body(person.certno, f"S{i}", base="100.00") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(partner, csv_bytes(rows), count=3, total=total_of(rows))
    assert response.status_code == 202
    assert response.json()["status"] == "importing"
    detail = _get(partner, f"{FILES}/{response.json()['file_id']}")
    assert detail.json()["status"] == "accepted" and detail.json()["processed"] == 3


def test_another_partners_file_is_not_found(tree, partner, person):
    other = make_partner(tree.city_a, partner_id="P430100002")
    rows = [settle_body(person.certno, "S1")]
    file_id = _upload(partner, csv_bytes(rows), count=1, total=total_of(rows)).json()["file_id"]
    assert _get(other, f"{FILES}/{file_id}").status_code == 404
    assert _get(partner, f"{FILES}/{file_id}").status_code == 200


def _reconcile(partner: Any, data: Any) -> Any:
    body = json.dumps(data).encode()
    return Client().post(
        RECONCILE,
        data=body,
        content_type="application/json",
        headers=_signed(partner.partner_id, "POST", RECONCILE, body),
    )


def test_reconciliation_answers_the_report(partner, person):
    _upload(
        partner,
        csv_bytes([settle_body(person.certno, "S1")]),
        count=1,
        total="30000.00",
    )
    response = _reconcile(
        partner,
        {
            "date": "2026-03-10",
            "count": 1,
            "medfee_sumamt": "30000.00",
            "benefit": "0.00",
            "records": [{"setl_id": "S1", "medfee_sumamt": "30000.00"}],
        },
    )
    assert response.status_code == 200, response.content
    report = ReconciliationReport.objects.get()
    assert response.json() == {
        "report_id": report.pk,
        "partner_id": partner.partner_id,
        "date": "2026-03-10",
        "theirs": {"count": 1, "medfee_sumamt": "30000.00", "benefit": "0.00"},
        "ours": {"count": 1, "medfee_sumamt": "30000.00", "benefit": "0.00"},
        "balanced": True,
        "differences": [],
    }
    assert report.source == "api" and report.created_by is None
    assert report.created_by_label == f"partner:{partner.partner_id}"


def test_reconciliation_input_errors_are_named(partner):
    response = _reconcile(
        partner,
        {"date": "2026-02-30", "count": -1, "medfee_sumamt": "1.234", "extra": 1},
    )
    assert response.status_code == 422
    assert sorted(d["field"] for d in response.json()["detail"]) == [
        "benefit",
        "count",
        "date",
        "extra",
        "medfee_sumamt",
    ]
    assert ReconciliationReport.objects.count() == 0
