"""The partner settlement API (R12, INTERFACES.md §3, S14): signatures (HMAC-SHA256 and
SM3withSM2), the timestamp window, nonce replay, IP allow-list, scopes, and the answers of
``POST /api/v1/settlements`` and ``…/{setl_id}/cancel`` through the whole middleware stack."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huzhu.claims import partners
from huzhu.claims.models import (
    BenefitYear,
    Claim,
    ClaimStatus,
    Partner,
    PartnerNonce,
    PartnerScope,
    Settlement,
    SignatureMethod,
)
from huzhu.claims.partner_signing import new_sm2_key_pair, sign_hmac, sign_sm2, string_to_sign
from huzhu.core.models import AuditEvent
from tests import factories
from tests.claims.conftest import covered_person, ledger_clean, make_partner, settle_body

pytestmark = pytest.mark.django_db

SETTLE = "/api/v1/settlements"
KEY = "00" * 32


def cancel_path(setl_id: str) -> str:
    return f"/api/v1/settlements/{setl_id}/cancel"


# --- signing as a partner does ---------------------------------------------------------------
@dataclass
class Signer:
    partner_id: str
    key: str | None = KEY
    sm2_private: str | None = None

    def signature(self, message: bytes) -> str:
        if self.sm2_private:
            return sign_sm2(self.sm2_private, message)
        assert self.key is not None
        return sign_hmac(self.key, message)

    def headers(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, str]:
        ts = timestamp or str(int(time.time()))
        nc = nonce or secrets.token_hex(16)
        return {
            "X-Partner-Id": self.partner_id,
            "X-Timestamp": ts,
            "X-Nonce": nc,
            "X-Signature": self.signature(string_to_sign(ts, nc, method, path, body)),
        }


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


def raw(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=False).encode()


def send(
    client: Client,
    signer: Signer,
    path: str,
    body: Any,
    *,
    ip: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
    sign_method: str = "POST",
    sign_path: str | None = None,
    sign_body: bytes | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
    extra: dict[str, str] | None = None,
) -> Reply:
    data = raw(body)
    signed = signer.headers(
        sign_method,
        sign_path or path,
        data if sign_body is None else sign_body,
        timestamp=timestamp,
        nonce=nonce,
    )
    if headers is not None:
        signed = headers
    response = client.generic(
        "POST",
        path,
        data,
        content_type="application/json",
        headers={**signed, **(extra or {})},
        REMOTE_ADDR=ip,
    )
    content = response.content.decode()
    parsed = (
        json.loads(content) if response["Content-Type"].startswith("application/json") else None
    )
    return Reply(response.status_code, parsed, response.headers)


@pytest.fixture(autouse=True)
def _fresh_partner_cache() -> Iterator[None]:
    partners.clear_partner_cache()
    yield
    partners.clear_partner_cache()


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def signer(partner: Partner) -> Signer:
    return Signer(partner.partner_id)


def refusals(reason: str | None = None) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(event=partners.EVENT_PARTNER_AUTH_FAILED).order_by("id")
    return [e for e in events if reason is None or e.detail.get("reason") == reason]


def nothing_stored() -> bool:
    return not Settlement.objects.exists() and not Claim.objects.exists()


# --- the happy path ------------------------------------------------------------------------------
def test_signed_settlement_is_priced_and_answered(client, signer, person):
    reply = send(client, signer, SETTLE, settle_body(person.certno))
    assert reply.status == 200, reply.body
    assert reply.body == {
        "setl_id": "S0001",
        "status": "approved",
        "product": "inpatient",
        "benefit": "6200.00",
        "reason": None,
        "explanation": reply.body["explanation"],
    }
    assert reply.body["explanation"]["text"]
    assert reply.headers["Cache-Control"] == "no-store"
    claim = Claim.objects.get()
    assert (claim.status, claim.benefit_fen, claim.deducted_at_discharge) == (
        ClaimStatus.APPROVED,
        620000,
        True,
    )
    assert refusals() == []
    assert ledger_clean()


def test_upper_case_hex_signature_is_accepted(client, signer, person):
    body = raw(settle_body(person.certno))
    headers = signer.headers("POST", SETTLE, body)
    headers["X-Signature"] = headers["X-Signature"].upper()
    assert send(client, signer, SETTLE, body, headers=headers).status == 200


def test_queries_per_settlement_stay_few(client, signer, tree, plan, monkeypatch):
    """The hot path: the partner comes from the cache and the nonce costs one statement — the
    API layer adds exactly one query to the settlement service's own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from huzhu.api import settlements as api_module

    first, second = covered_person(tree, plan), covered_person(tree, plan, name="李娜")
    assert send(client, signer, SETTLE, settle_body(first.certno, "W0")).status == 200
    inner: list[int] = []
    service = api_module.receive_settlement

    def counted(**kwargs: Any) -> Any:
        with CaptureQueriesContext(connection) as ctx:
            answer = service(**kwargs)
        inner.append(len(ctx.captured_queries))
        return answer

    monkeypatch.setattr(api_module, "receive_settlement", counted)
    with CaptureQueriesContext(connection) as outer:
        reply = send(client, signer, SETTLE, settle_body(second.certno, "W1"))
    assert reply.status == 200 and reply.body["status"] == "approved"
    assert len(outer.captured_queries) == inner[0] + 1
    assert "claims_partnernonce" in outer.captured_queries[0]["sql"]
    assert len(outer.captured_queries) <= QUERY_BUDGET


QUERY_BUDGET = 45  # measured 43 on SQLite in a test transaction (savepoints included)


def test_partner_lookup_is_cached_between_requests(
    client, signer, tree, plan, django_assert_num_queries: Callable[[int], Any]
):
    body = raw({"not": "a settlement"})
    # Warm: the partner row is read once.
    assert send(client, signer, SETTLE, body).status == 422
    with django_assert_num_queries(1):  # the nonce only
        assert send(client, signer, SETTLE, body).status == 422


# --- signature failures: 401, audited, nothing stored --------------------------------------------
@pytest.mark.parametrize(
    "tamper",
    ["wrong_key", "bad_signature", "wrong_path", "wrong_method", "wrong_body", "not_hex"],
)
def test_bad_signatures_are_refused_and_audited(client, signer, person, tamper):
    body = raw(settle_body(person.certno))
    kwargs: dict[str, Any] = {}
    if tamper == "wrong_key":
        kwargs = {"headers": Signer(signer.partner_id, key="11" * 32).headers("POST", SETTLE, body)}
    elif tamper == "bad_signature":
        headers = signer.headers("POST", SETTLE, body)
        last = headers["X-Signature"][-1]
        headers["X-Signature"] = headers["X-Signature"][:-1] + ("0" if last != "0" else "1")
        kwargs = {"headers": headers}
    elif tamper == "wrong_path":
        kwargs = {"sign_path": "/api/v1/settlements/S0001/cancel"}
    elif tamper == "wrong_method":
        kwargs = {"sign_method": "PUT"}
    elif tamper == "wrong_body":
        kwargs = {"sign_body": raw(settle_body(person.certno, base="11000.00"))}
    elif tamper == "not_hex":
        headers = signer.headers("POST", SETTLE, body)
        headers["X-Signature"] = "z" * 64
        kwargs = {"headers": headers}
    reply = send(client, signer, SETTLE, body, **kwargs)
    assert reply.status == 401
    assert reply.body == {"detail": partners.BAD_SIGNATURE_MESSAGE}
    assert nothing_stored()
    assert not PartnerNonce.objects.exists()  # only a signed request may use up a nonce
    (event,) = refusals()
    assert (event.outcome, event.actor_username) == ("denied", f"partner:{signer.partner_id}")
    assert event.detail["reason"] == "bad_signature"
    assert event.detail["path"] == SETTLE and event.detail["method"] == "POST"
    text = json.dumps(event.detail)
    assert KEY not in text and "X-Signature" not in text and person.certno not in text


@pytest.mark.parametrize("offset", [301, -301, 100000])
def test_stale_timestamp_is_refused(client, signer, person, monkeypatch, offset):
    fixed = timezone.now().replace(microsecond=0)
    monkeypatch.setattr(partners, "now", lambda: fixed)
    stamp = str(int(fixed.timestamp()) + offset)
    reply = send(client, signer, SETTLE, settle_body(person.certno), timestamp=stamp)
    assert reply.status == 401
    assert "时间戳超出允许范围" in reply.body["detail"]
    assert nothing_stored()
    assert [e.detail["reason"] for e in refusals()] == ["stale_timestamp"]


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_timestamp_within_the_window_is_accepted(client, signer, person, monkeypatch, offset):
    fixed = timezone.now().replace(microsecond=0)
    monkeypatch.setattr(partners, "now", lambda: fixed)
    stamp = str(int(fixed.timestamp()) + offset)
    reply = send(client, signer, SETTLE, settle_body(person.certno), timestamp=stamp)
    assert reply.status == 200


@pytest.mark.parametrize("stamp", ["-5", "1.5", "abc", "12345678901234"])
def test_malformed_timestamp_is_refused(client, signer, person, stamp):
    reply = send(client, signer, SETTLE, settle_body(person.certno), timestamp=stamp)
    assert reply.status == 401
    assert reply.body["detail"] == "X-Timestamp 应为 Unix 时间戳（秒，整数）"
    assert [e.detail["reason"] for e in refusals()] == ["malformed_timestamp"]


def test_replayed_nonce_is_refused_and_changes_nothing(client, signer, tree, plan):
    first, second = covered_person(tree, plan), covered_person(tree, plan, name="李娜")
    nonce = "nonce-replay-0001"
    assert send(client, signer, SETTLE, settle_body(first.certno), nonce=nonce).status == 200
    # The same request again (a replay) and a fresh, correctly signed request reusing the nonce.
    again = send(client, signer, SETTLE, settle_body(first.certno), nonce=nonce)
    other = send(client, signer, SETTLE, settle_body(second.certno, "S0002"), nonce=nonce)
    for reply in (again, other):
        assert reply.status == 401
        assert reply.body["detail"] == "重复的请求：该 X-Nonce 已在 10 分钟内使用过"
    assert Settlement.objects.count() == 1 and Claim.objects.count() == 1
    assert [e.detail["reason"] for e in refusals()] == ["replayed_nonce", "replayed_nonce"]


def test_nonce_may_be_used_again_after_the_window(client, signer, tree, plan, monkeypatch):
    first, second = covered_person(tree, plan), covered_person(tree, plan, name="李娜")
    start = timezone.now().replace(microsecond=0)
    monkeypatch.setattr(partners, "now", lambda: start)
    stamp = str(int(start.timestamp()))
    nonce = "nonce-window-0001"
    assert send(client, signer, SETTLE, settle_body(first.certno), nonce=nonce, timestamp=stamp)
    later = start + timedelta(minutes=10, seconds=1)
    monkeypatch.setattr(partners, "now", lambda: later)
    reply = send(
        client,
        signer,
        SETTLE,
        settle_body(second.certno, "S0002"),
        nonce=nonce,
        timestamp=str(int(later.timestamp())),
    )
    assert reply.status == 200
    assert PartnerNonce.objects.get().seen_at == later


def test_nonces_are_per_partner(client, signer, tree, plan):
    other = make_partner(tree.city_a, partner_id="P430100002", key="22" * 32)
    first, second = covered_person(tree, plan), covered_person(tree, plan, name="李娜")
    nonce = "shared-nonce-0001"
    assert send(client, signer, SETTLE, settle_body(first.certno), nonce=nonce).status == 200
    reply = send(
        client,
        Signer(other.partner_id, key="22" * 32),
        SETTLE,
        settle_body(second.certno, "S0002"),
        nonce=nonce,
    )
    assert reply.status == 200


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space!", "中文随机数随机数随机数"])
def test_malformed_nonce_is_refused(client, signer, person, nonce):
    body = raw(settle_body(person.certno))
    ts = str(int(time.time()))
    headers = {
        "X-Partner-Id": signer.partner_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign_hmac(KEY, string_to_sign(ts, nonce, "POST", SETTLE, body)),
    }
    reply = send(client, signer, SETTLE, body, headers=headers)
    assert reply.status == 401
    assert "X-Nonce" in reply.body["detail"]
    assert nothing_stored()


def test_old_nonces_are_purged(signer, partner):
    now = timezone.now()
    PartnerNonce.objects.create(
        partner=partner, nonce="old-nonce-0001", seen_at=now - timedelta(minutes=11)
    )
    PartnerNonce.objects.create(
        partner=partner, nonce="new-nonce-0001", seen_at=now - timedelta(minutes=9)
    )
    assert partners.purge_nonces(now) == 1
    assert list(PartnerNonce.objects.values_list("nonce", flat=True)) == ["new-nonce-0001"]


def test_every_nth_accepted_nonce_purges(partner, monkeypatch):
    now = timezone.now()
    PartnerNonce.objects.create(
        partner=partner, nonce="old-nonce-0001", seen_at=now - timedelta(hours=1)
    )
    monkeypatch.setattr(partners, "NONCE_PURGE_EVERY", 3)
    monkeypatch.setattr(partners, "_accepted", itertools.count(1))
    for i in range(3):
        assert partners.remember_nonce(partner, f"fresh-nonce-{i:04d}", now)
    assert not PartnerNonce.objects.filter(nonce="old-nonce-0001").exists()
    assert PartnerNonce.objects.count() == 3


# --- missing headers, unknown and inactive partners ----------------------------------------------
def test_missing_headers_are_refused_without_an_audit_event(client, signer, person):
    body = raw(settle_body(person.certno))
    headers = signer.headers("POST", SETTLE, body)
    del headers["X-Nonce"]
    reply = send(client, signer, SETTLE, body, headers=headers)
    assert reply.status == 401
    assert reply.body["detail"] == "缺少签名请求头：X-Nonce"
    reply = send(client, signer, SETTLE, body, headers={})
    assert reply.status == 401
    assert "X-Partner-Id" in reply.body["detail"] and "X-Signature" in reply.body["detail"]
    assert nothing_stored() and refusals() == []


def test_unknown_partner_is_refused_like_a_bad_signature(client, person):
    reply = send(client, Signer("P999999001"), SETTLE, settle_body(person.certno))
    assert reply.status == 401
    assert reply.body == {"detail": partners.BAD_SIGNATURE_MESSAGE}
    assert nothing_stored() and refusals() == []


def test_a_staff_bearer_token_is_no_partner_signature(client, person, tree):
    from huzhu.orgs.services import create_api_token

    token = create_api_token(acting_user=None, user=factories.staff(tree.city_a, "clerk"))
    response = client.post(
        SETTLE,
        raw(settle_body(person.certno)),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert nothing_stored()


def test_inactive_partner_is_refused(client, signer, partner, person):
    partners.deactivate(acting_user=None, partner=partner)
    reply = send(client, signer, SETTLE, settle_body(person.certno))
    assert reply.status == 401
    assert reply.body["detail"] == "该合作方已停用，请联系平台管理员"
    assert nothing_stored()
    assert [e.detail["reason"] for e in refusals()] == ["inactive"]
    partners.activate(acting_user=None, partner=partner)
    assert send(client, signer, SETTLE, settle_body(person.certno)).status == 200


def test_rotated_key_replaces_the_old_one_at_once(client, signer, partner, tree, plan):
    first, second = covered_person(tree, plan), covered_person(tree, plan, name="李娜")
    assert send(client, signer, SETTLE, settle_body(first.certno)).status == 200  # cached now
    new_key = partners.rotate_key(acting_user=None, partner=partner)
    old = send(client, signer, SETTLE, settle_body(second.certno, "S0002"))
    assert old.status == 401
    fresh = send(
        client, Signer(partner.partner_id, key=new_key), SETTLE, settle_body(second.certno, "S0002")
    )
    assert fresh.status == 200


# --- IP allow-list ---------------------------------------------------------------------------
def test_ip_allow_list(client, signer, partner, tree, plan):
    partners.update_partner(
        acting_user=None, partner=partner, ip_allowlist="10.1.2.0/24\n192.168.0.7"
    )
    first, second = covered_person(tree, plan), covered_person(tree, plan, name="李娜")
    denied = send(client, signer, SETTLE, settle_body(first.certno), ip="10.1.3.1")
    assert denied.status == 403
    assert denied.body["detail"] == "请求来源地址不在该合作方的 IP 白名单内"
    assert nothing_stored()
    (event,) = refusals("ip_not_allowed")
    assert event.detail["client_ip"] == "10.1.3.1"
    assert send(client, signer, SETTLE, settle_body(first.certno), ip="10.1.2.200").status == 200
    assert (
        send(client, signer, SETTLE, settle_body(second.certno, "S2"), ip="192.168.0.7").status
        == 200
    )


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
    client, signer, partner, person, settings
):
    partners.update_partner(acting_user=None, partner=partner, ip_allowlist="10.1.2.3")
    body = settle_body(person.certno)
    forged = {"X-Forwarded-For": "10.1.2.3"}
    assert send(client, signer, SETTLE, body, ip="172.16.0.9", extra=forged).status == 403
    settings.HUZHU_TRUSTED_PROXIES = ["172.16.0.0/24"]
    # Through the trusted proxy: the right-most untrusted hop is the client.
    spoofed = {"X-Forwarded-For": "10.1.2.3, 203.0.113.5"}
    assert send(client, signer, SETTLE, body, ip="172.16.0.9", extra=spoofed).status == 403
    reply = send(
        client, signer, SETTLE, body, ip="172.16.0.9", extra={"X-Forwarded-For": "10.1.2.3"}
    )
    assert reply.status == 200
    # Not from the proxy: the header is the caller's own claim and is ignored.
    assert send(client, signer, SETTLE, body, ip="198.51.100.1", extra=forged).status == 403


# --- scopes ------------------------------------------------------------------------------------
def test_missing_scope_is_forbidden(client, signer, partner, person):
    partners.update_partner(acting_user=None, partner=partner, scopes=[PartnerScope.CANCEL])
    reply = send(client, signer, SETTLE, settle_body(person.certno))
    assert reply.status == 403
    assert reply.body["detail"] == "该合作方未获授权调用此接口（需要权限：结算上传）"
    assert nothing_stored()
    assert [e.detail["reason"] for e in refusals()] == ["missing_scope"]


def test_cancel_needs_the_cancel_scope(client, signer, partner, person):
    assert send(client, signer, SETTLE, settle_body(person.certno)).status == 200
    partners.update_partner(acting_user=None, partner=partner, scopes=[PartnerScope.SETTLE])
    reply = send(client, signer, cancel_path("S0001"), {"cancel_time": "2026-03-11 09:00:00"})
    assert reply.status == 403
    assert Claim.objects.get().status == ClaimStatus.APPROVED


# --- SM2 ---------------------------------------------------------------------------------------
@pytest.fixture
def sm2_signer(tree: factories.Tree) -> Signer:
    private, public = new_sm2_key_pair()
    partner, key = partners.create_partner(
        acting_user=None,
        name="长沙市某医院信息系统",
        organisation=tree.city_a,
        method=SignatureMethod.SM2,
        scopes=["settle", "cancel"],
        sm2_public_key=public,
    )
    assert key == ""
    return Signer(partner.partner_id, key=None, sm2_private=private)


def test_sm2_signature_is_accepted(client, sm2_signer, person):
    reply = send(client, sm2_signer, SETTLE, settle_body(person.certno))
    assert reply.status == 200 and reply.body["benefit"] == "6200.00"


def test_sm2_signature_of_another_key_or_body_is_refused(client, sm2_signer, person):
    other_private, _ = new_sm2_key_pair()
    stranger = Signer(sm2_signer.partner_id, key=None, sm2_private=other_private)
    assert send(client, stranger, SETTLE, settle_body(person.certno)).status == 401
    reply = send(client, sm2_signer, SETTLE, settle_body(person.certno), sign_body=b"{}")
    assert reply.status == 401
    # An HMAC signature is no SM2 signature.
    hmac_like = Signer(sm2_signer.partner_id, key=KEY)
    assert send(client, hmac_like, SETTLE, settle_body(person.certno)).status == 401
    assert nothing_stored()
    assert [e.detail["reason"] for e in refusals()] == ["bad_signature"] * 3


# --- bodies ---------------------------------------------------------------------------------------
def test_invalid_body_lists_every_field_error_in_chinese(client, signer, person):
    body = settle_body(person.certno, medfee_sumamt="12.345", adm_date="2026-02-30")
    del body["setlinfo"]["setl_time"]
    body["setlinfo"]["certno"] = "430102198503120010"  # bad check digit
    body["diseinfo"][0]["diag_code"] = "阑尾炎"
    reply = send(client, signer, SETTLE, body)
    assert reply.status == 422
    fields = {item["field"] for item in reply.body["detail"]}
    assert {
        "setlinfo.setl_time",
        "setlinfo.medfee_sumamt",
        "setlinfo.adm_date",
        "setlinfo.certno",
        "diseinfo[0].diag_code",
    } <= fields
    for item in reply.body["detail"]:
        assert item["loc"][0] == "body"
        assert any("\u4e00" <= ch <= "\u9fff" for ch in item["msg"])
    assert nothing_stored()


def test_unknown_field_is_rejected(client, signer, person):
    body = settle_body(person.certno, bill_no="123")
    body["extra"] = 1
    reply = send(client, signer, SETTLE, body)
    assert reply.status == 422
    fields = {item["field"]: item["msg"] for item in reply.body["detail"]}
    assert set(fields) == {"setlinfo.bill_no", "extra"}
    assert "不接受的字段" in fields["setlinfo.bill_no"]
    assert nothing_stored()


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"\xff\xfe", b"[1, 2]", b"null", b'"text"', b"[" * 100000 + b"]" * 100000],
    ids=["empty", "truncated", "not-utf8", "array", "null", "string", "deep"],
)
def test_malformed_bodies_answer_422_in_chinese(client, signer, payload):
    reply = send(client, signer, SETTLE, payload)
    assert reply.status == 422
    assert reply.body["detail"][0]["loc"][0] == "body"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in reply.body["detail"][0]["msg"])
    assert nothing_stored()


def test_money_as_json_numbers_is_read_exactly(client, signer, person):
    body = raw(settle_body(person.certno)).decode()
    info = settle_body(person.certno)["setlinfo"]
    for name in ("medfee_sumamt", "inscp_scp_amt", "fund_pay_sumamt", "hosp_part_amt"):
        body = body.replace(f'"{name}": "{info[name]}"', f'"{name}": {info[name]}')
    assert '"medfee_sumamt": 30000.00' in body
    reply = send(client, signer, SETTLE, body.encode())
    assert reply.status == 200 and reply.body["benefit"] == "6200.00"


@pytest.mark.parametrize("amount", ["1e400", "123456789012345678", "1e-9", "0.001"])
def test_absurd_amounts_are_invalid_not_errors(client, signer, person, amount):
    body = raw(settle_body(person.certno)).decode().replace('"30000.00"', amount)
    reply = send(client, signer, SETTLE, body.encode())
    assert reply.status == 422
    assert "setlinfo.medfee_sumamt" in {item["field"] for item in reply.body["detail"]}


@pytest.mark.parametrize("value", ["1e999999", '"1e999999"', "1e-99999"])
def test_absurd_ages_are_invalid_not_errors(client, signer, person, value):
    body = raw(settle_body(person.certno, age="AGE")).decode().replace('"AGE"', value)
    reply = send(client, signer, SETTLE, body.encode())
    assert reply.status == 422
    assert {item["field"] for item in reply.body["detail"]} == {"setlinfo.age"}


# --- exactly once ----------------------------------------------------------------------------
def test_repeat_with_other_spacing_and_key_order_answers_the_same(client, signer, person):
    body = settle_body(person.certno)
    first = send(client, signer, SETTLE, body)
    reordered = {
        "diseinfo": body["diseinfo"],
        "setlinfo": dict(reversed(list(body["setlinfo"].items()))),
    }
    spaced = json.dumps(reordered, indent=4, ensure_ascii=False).encode()
    again = send(client, signer, SETTLE, spaced)
    assert again.status == 200 and again.body == first.body
    assert Settlement.objects.count() == 1 and Claim.objects.count() == 1
    assert BenefitYear.objects.get().total_fen == 620000


def test_different_body_for_the_same_setl_id_conflicts(client, signer, person):
    first = send(client, signer, SETTLE, settle_body(person.certno))
    reply = send(client, signer, SETTLE, settle_body(person.certno, base="11000.00"))
    assert reply.status == 409
    assert "已以不同内容提交过" in reply.body["detail"]
    assert Claim.objects.get().benefit_fen == 620000
    assert first.status == 200


def test_cancel_and_repeat(client, signer, person):
    assert send(client, signer, SETTLE, settle_body(person.certno)).status == 200
    body = {"cancel_time": "2026-03-11 09:00:00"}
    first = send(client, signer, cancel_path("S0001"), body)
    assert first.status == 200
    assert first.body["status"] == "cancelled" and first.body["benefit"] == "-6200.00"
    assert first.body["setl_id"] == "S0001"
    again = send(client, signer, cancel_path("S0001"), json.dumps(body, indent=2).encode())
    assert again.status == 200 and again.body == first.body
    other = send(client, signer, cancel_path("S0001"), {"cancel_time": "2026-03-12 09:00:00"})
    assert other.status == 409
    assert Claim.objects.get().status == ClaimStatus.CANCELLED
    assert BenefitYear.objects.get().total_fen == 0
    assert ledger_clean()


def test_unknown_cancel_is_404(client, signer, person):
    reply = send(client, signer, cancel_path("S-NONE"), {"cancel_time": "2026-03-11 09:00:00"})
    assert reply.status == 404
    assert reply.body == {"detail": "本合作方没有结算ID为 S-NONE 的结算记录"}


def test_cancel_of_another_partners_settlement_is_404(client, signer, person, tree):
    assert send(client, signer, SETTLE, settle_body(person.certno)).status == 200
    other = make_partner(tree.city_a, partner_id="P430100002", key="22" * 32)
    reply = send(
        client,
        Signer(other.partner_id, key="22" * 32),
        cancel_path("S0001"),
        {"cancel_time": "2026-03-11 09:00:00"},
    )
    assert reply.status == 404
    assert Claim.objects.get().status == ClaimStatus.APPROVED


def test_invalid_cancel_body_is_422(client, signer, person):
    assert send(client, signer, SETTLE, settle_body(person.certno)).status == 200
    reply = send(client, signer, cancel_path("S0001"), {"cancel_time": "2026-03-11", "x": 1})
    assert reply.status == 422
    assert {item["field"] for item in reply.body["detail"]} == {"cancel_time", "x"}
    assert Claim.objects.get().status == ClaimStatus.APPROVED


def test_member_outside_the_partners_scope_is_forbidden(client, tree, plan):
    other = make_partner(tree.city_b, partner_id="P430200001", key="33" * 32)
    person = covered_person(tree, plan)  # a member of city_a's subtree
    reply = send(
        client, Signer(other.partner_id, key="33" * 32), SETTLE, settle_body(person.certno)
    )
    assert reply.status == 403
    assert reply.body == {"detail": "该职工不在本合作方的服务范围内"}
    assert nothing_stored()


def test_unknown_member_is_answered_rejected(client, signer, tree):
    reply = send(client, signer, SETTLE, settle_body(factories.id_number()))
    assert reply.status == 200
    assert (reply.body["status"], reply.body["reason"], reply.body["benefit"]) == (
        "rejected",
        "NOT_FOUND",
        "0.00",
    )


# --- no input makes it fail ------------------------------------------------------------------
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payload=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False)
            | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=12), children, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_arbitrary_signed_bodies_never_fail(client, signer, person, payload):
    reply = send(client, signer, SETTLE, payload)
    assert reply.status in (200, 403, 409, 422), reply.body
    reply = send(client, signer, cancel_path("S0001"), payload)
    assert reply.status in (200, 404, 409, 422), reply.body


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    info=st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(
                st.text(max_size=20),
                st.integers(min_value=-(10**20), max_value=10**20),
                st.decimals(allow_nan=False, allow_infinity=False).map(str),
                st.sampled_from(
                    ["0001-01-01", "9999-12-31", "0001-01-01 00:00:00", "9999-12-31 23:59:59"]
                ),
            )
            for name in (
                "setl_id",
                "certno",
                "setl_time",
                "adm_date",
                "dscg_date",
                "medfee_sumamt",
                "inscp_scp_amt",
                "fund_pay_sumamt",
                "age",
            )
        },
    )
)
def test_arbitrary_field_values_never_fail(client, signer, person, info):
    body = settle_body(person.certno, setl_id=f"H{secrets.token_hex(6)}")
    body["setlinfo"].update(info)
    reply = send(client, signer, SETTLE, body)
    assert reply.status in (200, 403, 409, 422), reply.body


@pytest.mark.parametrize(
    ("setl_time", "adm_date", "status"),
    [
        ("0001-01-01 00:00:00", "2026-03-01", 422),  # before UTC year 1: no database stores it
        ("9999-12-31 23:59:59", "9999-12-31", 200),
        ("2026-03-10 10:00:00", "0001-01-01", 200),
    ],
)
def test_extreme_dates_are_answered(client, signer, person, setl_time, adm_date, status):
    body = settle_body(person.certno, setl_time=setl_time, adm_date=adm_date)
    reply = send(client, signer, SETTLE, body)
    assert reply.status == status, reply.body
    if status == 422:
        assert [item["field"] for item in reply.body["detail"]] == ["setlinfo.setl_time"]
    else:
        assert reply.body["status"] == "rejected"


def test_openapi_documents_the_partner_operations(client):
    spec = json.loads(client.get("/api/v1/openapi.json").content)
    settle = spec["paths"]["/api/v1/settlements"]["post"]
    cancel = spec["paths"]["/api/v1/settlements/{setl_id}/cancel"]["post"]
    scheme = spec["components"]["securitySchemes"]["PartnerSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Signature")
    assert "SM3withSM2" in scheme["description"]
    for operation in (settle, cancel):
        assert operation["security"] == [{"PartnerSignature": []}]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"X-Partner-Id", "X-Timestamp", "X-Nonce"}
        assert {"200", "401", "403", "409", "422"} <= set(operation["responses"])
    assert "404" in cancel["responses"]
    body = settle["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    info = body["properties"]["setlinfo"]
    assert info["additionalProperties"] is False
    assert set(info["required"]) == {
        "setl_id",
        "certno",
        "setl_time",
        "med_type",
        "medfee_sumamt",
        "inscp_scp_amt",
        "fund_pay_sumamt",
        "hosp_part_amt",
        "fulamt_ownpay_amt",
        "overlmt_selfpay",
        "preselfpay_amt",
        "psn_part_amt",
        "adm_date",
    }
    money = info["properties"]["medfee_sumamt"]["anyOf"]
    assert {m["type"] for m in money} == {"number", "string"}
    assert "$ref" not in json.dumps(body)  # self-contained
