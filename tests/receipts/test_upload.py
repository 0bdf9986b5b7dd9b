"""Uploading receipts to the finance department's platform (RULES.md §6, docs/finance-platform.md).

Against a real HTTP server on 127.0.0.1 (``FakePlatform``), started per test, which checks every
request the way the platform does: the AppId, a fresh Timestamp and Nonce, the HMAC-SHA256
signature (recomputed here from the documented string to sign, not with the code under test) and,
for an issue, the Ed25519 signature of the receipt XML (``check_receipt_xml``). It deduplicates by
kind + receipt code + number (a repeat gets the original reference) and answers as the test asks:
accepted, rejected, HTTP 500, or not at all (timeout).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import DatabaseError, connections, transaction
from django.urls import reverse
from django.utils import timezone

from huzhu.cli import main as huzhu_main
from huzhu.contributions import receipt_upload
from huzhu.contributions.receipt_models import (
    PayerKind,
    Receipt,
    ReceiptRange,
    ReceiptUpload,
    UploadKind,
    UploadStatus,
)
from huzhu.contributions.receipt_services import (
    allocate_range,
    issue_receipt,
    reissue_receipt,
    void_receipt,
)
from huzhu.contributions.receipt_upload import (
    NOT_CONFIGURED,
    HmacXmlPlatformClient,
    Outcome,
    PlatformAnswer,
    PlatformNotConfigured,
    UploadRequest,
    UploadSummary,
    claim_next,
    configuration_problems,
    platform_config,
    record_answer,
    retry_delay,
    send_claimed,
    upload_due,
    upload_one,
)
from huzhu.contributions.receipt_xml import check_receipt_xml
from huzhu.core.models import AuditEvent
from tests import factories
from tests.receipts.conftest import ReceiptWorld, code_for, login

APP_ID = "huzhu-test-app"
KEY = "shared-secret-分配的密钥-0123456789"
ISSUE, VOID = UploadKind.ISSUE.value, UploadKind.VOID.value


# --- the fake platform: a real HTTP server that verifies what it gets --------------------------
@dataclass
class Received:
    kind: str
    code: str
    number: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakePlatform:
    mode: str = "accept"  # accept | reject | error | slow
    # per (kind, number) overrides of ``mode``
    modes: dict[tuple[str, str], str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused (auth, XML)
    refs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    delay: float = 0.0  # seconds before answering (widens race windows; never asserted)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def sends(self) -> Counter[tuple[str, str, str]]:
        return Counter((r.kind, r.code, r.number) for r in self.received)


def _expected_signature(path: str, headers: Any, body: bytes) -> str:
    base = "\n".join(
        [
            "POST",
            path,
            headers.get("AppId", ""),
            headers.get("Timestamp", ""),
            headers.get("Nonce", ""),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    return hmac.new(KEY.encode("utf-8"), base.encode("utf-8"), hashlib.sha256).hexdigest()


def _handler(platform: FakePlatform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _answer(self, status: int, payload: dict[str, str] | str) -> None:
            data = (
                json.dumps(payload, ensure_ascii=False).encode("utf-8")
                if isinstance(payload, dict)
                else payload.encode("utf-8")
            )
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout test)
                pass

        def _refuse(self, status: int, code: str, why: str) -> None:
            with platform.lock:
                platform.refused.append(why)
            self._answer(status, {"code": code, "message": why})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            kind = self.path.rsplit("/", 1)[-1]
            if self.path not in ("/api/receipts/issue", "/api/receipts/void"):
                self._refuse(404, "4040", "未知接口")
                return
            signature = self.headers.get("Signature", "")
            nonce = self.headers.get("Nonce", "")
            fresh = abs(time.time() - int(self.headers.get("Timestamp", "0"))) <= 300
            with platform.lock:
                replayed = nonce in platform.nonces
                platform.nonces.add(nonce)
            if (
                self.headers.get("AppId") != APP_ID
                or not fresh
                or replayed
                or len(nonce) < 16
                or not hmac.compare_digest(
                    signature, _expected_signature(self.path, self.headers, body)
                )
            ):
                self._refuse(401, "4010", "签名验证失败")
                return
            if kind == ISSUE:
                check = check_receipt_xml(body)
                if not check.valid:
                    self._refuse(200, "2002", f"电子签名无效：{check.message}")
                    return
                code, number = check.code, check.number
            else:
                root = ET.fromstring(body)  # noqa: S314 - our own test document
                code = root.findtext("ReceiptCode") or ""
                number = root.findtext("ReceiptNumber") or ""
                if (ISSUE, code, number) not in platform.refs:
                    self._refuse(200, "2003", "该票据尚未上传，不能作废")
                    return
            if self.headers.get("Idempotency-Key") != f"{kind}-{code}-{number}":
                self._refuse(400, "4000", "Idempotency-Key 不符")
                return
            with platform.lock:
                platform.received.append(
                    Received(kind, code, number, body, dict(self.headers.items()))
                )
                mode = platform.modes.get((kind, number), platform.mode)
            if platform.delay:
                time.sleep(platform.delay)
            if mode == "slow":
                platform.release.wait(timeout=30)
                self._answer(200, {"code": "0000", "message": "成功", "ref": "LATE"})
            elif mode == "error":
                self._answer(500, "Internal Server Error")
            elif mode == "reject":
                self._answer(200, {"code": "2001", "message": "票据号码不在财政部门分配的号段内"})
            else:
                with platform.lock:
                    ref = platform.refs.setdefault(
                        (kind, code, number), f"CZ{len(platform.refs) + 1:08d}"
                    )
                self._answer(200, {"code": "0000", "message": "成功", "ref": ref})

    return Handler


@pytest.fixture
def platform(settings: Any) -> Iterator[FakePlatform]:
    fake = FakePlatform()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/api/receipts"
    settings.HUZHU_FINANCE_PLATFORM_URL = fake.url
    settings.HUZHU_FINANCE_PLATFORM_APPID = APP_ID
    settings.HUZHU_FINANCE_PLATFORM_KEY = KEY
    settings.HUZHU_FINANCE_PLATFORM_TIMEOUT = 5
    settings.HUZHU_FINANCE_PLATFORM_MAX_ATTEMPTS = 3
    try:
        yield fake
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def unconfigured(settings: Any) -> None:
    settings.HUZHU_FINANCE_PLATFORM_URL = ""
    settings.HUZHU_FINANCE_PLATFORM_APPID = ""
    settings.HUZHU_FINANCE_PLATFORM_KEY = ""


def upload_of(receipt: Receipt, kind: str = ISSUE) -> ReceiptUpload:
    return ReceiptUpload.objects.get(receipt=receipt, kind=kind)


def snapshot() -> list[tuple[Any, ...]]:
    return list(
        ReceiptUpload.objects.order_by("id").values_list(
            "id", "receipt_id", "kind", "status", "attempts", "next_attempt_at", "last_error"
        )
    )


# --- the outbox ---------------------------------------------------------------------------------
def test_issue_queues_an_upload_row(world: ReceiptWorld, unconfigured: None) -> None:
    before = timezone.now()
    receipt = world.issue("o1")
    upload = upload_of(receipt)
    assert (upload.kind, upload.status, upload.attempts) == (ISSUE, UploadStatus.PENDING, 0)
    assert upload.issuer_path == world.issuer.path
    assert upload.next_attempt_at is not None and upload.next_attempt_at >= before
    assert (upload.platform_reference, upload.last_error, upload.claim_token) == ("", "", "")
    # A retried issue for the same payment returns the same receipt and queues nothing more.
    assert world.issue("o1") == receipt
    assert ReceiptUpload.objects.count() == 1


def test_a_rolled_back_issue_leaves_no_upload_row(world: ReceiptWorld, unconfigured: None) -> None:
    world.issue("kept")
    before = snapshot()
    with pytest.raises(RuntimeError), transaction.atomic():
        receipt = world.issue("rolled-back")
        assert upload_of(receipt).status == UploadStatus.PENDING  # written with the receipt
        raise RuntimeError("the payment failed after the receipt was issued")
    assert snapshot() == before
    assert not Receipt.objects.filter(source_id="rolled-back").exists()


def test_an_outbox_failure_rolls_the_issue_back(
    world: ReceiptWorld, unconfigured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other half of "the same transaction": no receipt without its upload row."""

    def broken(receipt: Receipt, kind: UploadKind) -> ReceiptUpload:
        raise DatabaseError("outbox unavailable")

    monkeypatch.setattr(receipt_upload, "_queue", broken)
    with pytest.raises(DatabaseError):
        world.issue("no-outbox")
    assert not Receipt.objects.exists()
    assert ReceiptRange.objects.get(pk=world.range_.pk).next_number == 1


def test_void_and_reissue_queue_their_uploads(world: ReceiptWorld, unconfigured: None) -> None:
    first = world.issue("v1")
    void_receipt(acting_user=world.finance, receipt=first, reason="金额有误")
    assert [(u.kind, u.status) for u in first.uploads.order_by("id")] == [
        (ISSUE, UploadStatus.PENDING),
        (VOID, UploadStatus.PENDING),
    ]
    second = world.issue("v2")
    new = reissue_receipt(acting_user=world.finance, receipt=second, reason="单位名称变更")
    assert [(u.kind, u.receipt_id) for u in ReceiptUpload.objects.order_by("id")][2:] == [
        (ISSUE, second.pk),
        (VOID, second.pk),
        (ISSUE, new.pk),
    ]
    # Reissuing an already voided receipt: only the new receipt's issue is queued.
    newer = reissue_receipt(acting_user=world.finance, receipt=first, reason="重新开具")
    assert list(newer.uploads.values_list("kind", flat=True)) == [ISSUE]
    assert first.uploads.count() == 2


# --- sending -----------------------------------------------------------------------------------
def test_accepted_uploads(world: ReceiptWorld, platform: FakePlatform) -> None:
    receipts = [world.issue(f"a{i}") for i in range(3)]
    summary = upload_due()
    assert summary == UploadSummary(accepted=3, rejected=0, failed=0, pending=0)
    assert summary.line() == "财政平台上传：已接收 3，被拒收 0，失败 0，待上传 0"
    assert platform.refused == []
    assert [(r.kind, r.number) for r in platform.received] == [
        (ISSUE, r.number_text) for r in receipts
    ]
    for receipt, got in zip(receipts, platform.received, strict=True):
        assert got.body == receipt.signed_xml.encode("utf-8")  # the signed original, unchanged
        assert got.headers["Content-Type"] == "application/xml; charset=utf-8"
        upload = upload_of(receipt)
        assert upload.status == UploadStatus.ACCEPTED
        assert (
            upload.platform_reference == platform.refs[(ISSUE, receipt.code, receipt.number_text)]
        )
        assert (upload.attempts, upload.platform_code, upload.last_error) == (1, "0000", "")
        assert upload.next_attempt_at is None and upload.accepted_at is not None
        assert upload.claim_token == "" and upload.claimed_at is None
    # Nothing is due any more: a second run sends nothing.
    assert upload_due() == UploadSummary()
    assert len(platform.received) == 3


def test_a_void_is_sent_after_its_issue_was_accepted(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    receipt = world.issue("vv")
    void_receipt(acting_user=world.finance, receipt=receipt, reason="交款人名称错误")
    # The issue fails: the void waits for it (the platform cannot void an unknown number).
    platform.mode = "error"
    t0 = timezone.now()
    assert upload_due(now=t0) == UploadSummary(failed=1, pending=2)
    assert [(r.kind, r.number) for r in platform.received] == [(ISSUE, "0000000001")]
    assert upload_of(receipt, VOID).status == UploadStatus.PENDING
    # Once the issue is accepted, the void follows in the same run.
    platform.mode = "accept"
    assert upload_due(now=t0 + timedelta(minutes=1)) == UploadSummary(accepted=2)
    assert [(r.kind, r.number) for r in platform.received] == [
        (ISSUE, "0000000001"),
        (ISSUE, "0000000001"),
        (VOID, "0000000001"),
    ]
    assert platform.refused == []
    notice = ET.fromstring(platform.received[-1].body)  # noqa: S314
    assert notice.tag == "EReceiptVoid" and notice.get("version") == "1"
    assert {child.tag: child.text for child in notice} == {
        "ReceiptCode": receipt.code,
        "ReceiptNumber": "0000000001",
        "CheckCode": receipt.check_code,
        "IssuerCode": world.issuer.code,
        "VoidTime": timezone.localtime(Receipt.objects.get(pk=receipt.pk).voided_at).isoformat(
            timespec="seconds"
        ),
        "Reason": "交款人名称错误",
    }
    void = upload_of(receipt, VOID)
    assert (void.status, void.attempts) == (UploadStatus.ACCEPTED, 1)
    assert void.platform_reference == platform.refs[(VOID, receipt.code, "0000000001")]


def test_a_reissue_uploads_the_void_with_its_replacement(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    old = world.issue("ri")
    assert upload_due().accepted == 1
    new = reissue_receipt(acting_user=world.finance, receipt=old, reason="单位名称变更")
    assert upload_due() == UploadSummary(accepted=2)
    assert [(r.kind, r.number) for r in platform.received] == [
        (ISSUE, old.number_text),
        (VOID, old.number_text),
        (ISSUE, new.number_text),
    ]
    notice = ET.fromstring(platform.received[1].body)  # noqa: S314
    replaced = notice.find("ReplacedBy")
    assert replaced is not None and replaced.attrib == {
        "code": new.code,
        "number": new.number_text,
    }
    assert notice.findtext("Reason") == "换开：单位名称变更"


def test_a_rejection_is_final_audited_and_retried_by_finance(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    receipt = world.issue("rj")
    platform.mode = "reject"
    assert upload_due() == UploadSummary(rejected=1)
    upload = upload_of(receipt)
    assert upload.status == UploadStatus.REJECTED
    assert upload.last_error == "财政平台拒收（代码 2001）：票据号码不在财政部门分配的号段内"
    assert (upload.platform_code, upload.next_attempt_at, upload.attempts) == ("2001", None, 1)
    event = AuditEvent.objects.get(event="receipt.upload_rejected")
    assert event.object_id == str(receipt.pk) and event.organisation_id == world.issuer.pk
    assert event.detail == {
        "code": receipt.code,
        "number": "0000000001",
        "kind": ISSUE,
        "platform_code": "2001",
    }
    # Not retried automatically, even much later.
    assert upload_due(now=timezone.now() + timedelta(days=3)) == UploadSummary()
    assert len(platform.received) == 1
    # Finance retries by hand from the uploads page (after the range was registered).
    client = login(world.finance)
    page = client.get(reverse("contributions:upload_list")).content.decode()
    assert "被拒收" in page and "票据号码不在财政部门分配的号段内" in page and "重新上传" in page
    response = client.post(reverse("contributions:upload_retry", args=[upload.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("contributions:upload_list")
    upload.refresh_from_db()
    assert (upload.status, upload.attempts, upload.last_error) == (UploadStatus.PENDING, 0, "")
    retried = AuditEvent.objects.get(event="receipt.upload_retry")
    assert retried.actor_id == world.finance.pk
    assert retried.detail == {
        "code": receipt.code,
        "number": "0000000001",
        "kind": ISSUE,
        "previous": "rejected",
    }
    platform.mode = "accept"
    assert upload_due() == UploadSummary(accepted=1)
    assert upload_of(receipt).status == UploadStatus.ACCEPTED


def test_server_errors_are_retried_with_exponential_backoff(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    receipt = world.issue("bo")
    platform.mode = "error"
    t0 = timezone.now()
    assert upload_due(now=t0) == UploadSummary(failed=1, pending=1)
    upload = upload_of(receipt)
    assert upload.status == UploadStatus.FAILED
    assert upload.last_error == "财政平台暂时无法处理（HTTP 500）"
    assert (upload.attempts, upload.next_attempt_at) == (1, t0 + timedelta(minutes=1))
    # Not due before its time.
    assert upload_due(now=t0 + timedelta(seconds=59)) == UploadSummary(pending=1)
    assert len(platform.received) == 1
    t1 = t0 + timedelta(minutes=1)
    assert upload_due(now=t1) == UploadSummary(failed=1, pending=1)
    upload.refresh_from_db()
    assert (upload.attempts, upload.next_attempt_at) == (2, t1 + timedelta(minutes=2))
    # The third attempt is the configured maximum: automatic retries stop.
    t2 = t1 + timedelta(minutes=2)
    assert upload_due(now=t2) == UploadSummary(failed=1, pending=0)
    upload.refresh_from_db()
    assert (upload.attempts, upload.next_attempt_at) == (3, None)
    assert upload_due(now=t2 + timedelta(days=1)) == UploadSummary()
    assert len(platform.received) == 3
    # --retry-failed queues it again with a fresh series of attempts.
    platform.mode = "accept"
    assert upload_due(retry_failed=True) == UploadSummary(accepted=1)
    upload.refresh_from_db()
    assert (upload.status, upload.attempts) == (UploadStatus.ACCEPTED, 1)
    assert [r.number for r in platform.received] == ["0000000001"] * 4


def test_retry_delay_doubles_up_to_six_hours() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert retry_delay(9) == timedelta(minutes=256)
    assert retry_delay(10) == retry_delay(30) == timedelta(hours=6)


def test_a_platform_that_does_not_answer_times_out(
    world: ReceiptWorld, platform: FakePlatform, settings: Any
) -> None:
    settings.HUZHU_FINANCE_PLATFORM_TIMEOUT = 0.5
    receipt = world.issue("slow")
    platform.mode = "slow"
    assert upload_due() == UploadSummary(failed=1, pending=1)
    upload = upload_of(receipt)
    assert upload.status == UploadStatus.FAILED
    assert upload.last_error == "财政平台在0.5秒内未应答（超时）"
    assert upload.next_attempt_at is not None


def test_the_platform_checks_our_hmac(
    world: ReceiptWorld, platform: FakePlatform, settings: Any
) -> None:
    """Control for the signature check: with another key the platform refuses every request, and
    that is a failure to retry (our configuration), not a rejection of the receipt."""
    settings.HUZHU_FINANCE_PLATFORM_KEY = "not-the-shared-secret"
    receipt = world.issue("hmac")
    assert upload_due() == UploadSummary(failed=1, pending=1)
    assert platform.refused == ["签名验证失败"] and platform.received == []
    upload = upload_of(receipt)
    assert upload.last_error == (
        "财政平台拒绝了本系统的身份认证（HTTP 401），请核对应用编号和签名密钥"
    )
    assert upload.next_attempt_at is not None


def test_the_platform_checks_the_xml_signature(world: ReceiptWorld, platform: FakePlatform) -> None:
    """Control for the XML check: a tampered original is rejected by the platform."""
    receipt = world.issue("xml")
    Receipt.objects.filter(pk=receipt.pk).update(
        signed_xml=receipt.signed_xml.replace("单位承担互助金", "单位承担互助费")
    )
    assert upload_due() == UploadSummary(rejected=1)
    assert platform.refused == ["电子签名无效：签名无效：票据内容已被修改或不是本平台签发"]
    assert upload_of(receipt).platform_code == "2002"


def test_nothing_personal_is_logged(
    world: ReceiptWorld, platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    receipt = world.issue("log")
    void_receipt(acting_user=world.finance, receipt=receipt, reason="交款人名称错误")
    platform.modes[(VOID, "0000000001")] = "reject"
    assert upload_due() == UploadSummary(accepted=1, rejected=1)
    text = caplog.text
    assert f"{receipt.code}-0000000001" in text  # which receipt: yes
    for private in (receipt.payer_name, receipt.payer_reference, "交款人名称错误", "<EReceipt"):
        assert private not in text


# --- concurrency and crashes -------------------------------------------------------------------
def test_a_claimed_row_cannot_be_claimed_or_recorded_by_another_uploader(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    receipt = world.issue("claim")
    config = platform_config()
    now = timezone.now()
    mine = claim_next(cutoff=now, lease=config.lease, token="a" * 32, now=now)
    assert mine is not None and mine.receipt_id == receipt.pk
    assert (mine.status, mine.attempts, mine.claim_token) == (UploadStatus.SENT, 1, "a" * 32)
    # Another uploader finds nothing due, even when it names the row.
    assert claim_next(cutoff=now, lease=config.lease, token="b" * 32, now=now) is None
    assert claim_next(cutoff=now, lease=config.lease, token="b" * 32, only=[mine.pk]) is None
    # An outcome recorded under another token is ignored.
    accepted = PlatformAnswer(Outcome.ACCEPTED, "成功", "0000", "FAKE")
    assert record_answer(mine, accepted, token="b" * 32, max_attempts=3) == UploadStatus.SENT
    assert upload_of(receipt).status == UploadStatus.SENT
    assert record_answer(mine, accepted, token="a" * 32, max_attempts=3) == UploadStatus.ACCEPTED
    assert upload_of(receipt).platform_reference == "FAKE"


def test_a_crash_after_sending_is_resent_safely(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    receipt = world.issue("crash")
    config = platform_config()
    t0 = timezone.now()
    claimed = claim_next(cutoff=t0, lease=config.lease, token="c" * 32, now=t0)
    assert claimed is not None
    first = send_claimed(claimed, HmacXmlPlatformClient(config))
    assert first.outcome == Outcome.ACCEPTED  # … and the uploader dies before recording it
    assert upload_of(receipt).status == UploadStatus.SENT
    # Within the lease, the claim is trusted: nothing is sent again.
    assert upload_due(now=t0 + timedelta(minutes=1)) == UploadSummary(pending=1)
    assert len(platform.received) == 1
    # After the lease, the row is sent again; the platform answers with the same reference.
    assert upload_due(now=t0 + config.lease + timedelta(seconds=1)) == UploadSummary(accepted=1)
    assert platform.sends() == Counter({(ISSUE, receipt.code, "0000000001"): 2})
    upload = upload_of(receipt)
    assert (upload.status, upload.attempts) == (UploadStatus.ACCEPTED, 2)
    assert upload.platform_reference == first.reference


postgres_only = pytest.mark.skipif(
    django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="concurrent uploaders in threads need PostgreSQL (SKIP LOCKED)",
)


@postgres_only
def test_two_concurrent_uploaders_never_send_a_row_twice(
    transactional_db: None, settings: Any, platform: FakePlatform
) -> None:
    # Issued with no platform configured (no background upload), then configured for the run.
    url = settings.HUZHU_FINANCE_PLATFORM_URL
    settings.HUZHU_FINANCE_PLATFORM_URL = ""
    tree = factories.tree()
    today = timezone.localdate()
    allocate_range(
        acting_user=None,
        issuer=tree.city_a,
        code=code_for(today.year),
        year=today.year,
        first_number="1",
        last_number="100",
    )
    count = 40
    for i in range(count):
        receipt = issue_receipt(
            acting_user=None,
            issuer=tree.city_a,
            payer_name=tree.unit_1.name,
            payer_kind=PayerKind.UNIT,
            payer_reference=tree.unit_1.uscc,
            items=[("单位承担互助金", 12000)],
            total_fen=12000,
            issued_on=today,
            source_type="test.payment",
            source_id=f"pg{i}",
            payer=tree.unit_1,
        )
        if i % 4 == 0:
            void_receipt(acting_user=None, receipt=receipt, reason="测试作废")
    settings.HUZHU_FINANCE_PLATFORM_URL = url
    platform.delay = 0.005
    start = threading.Barrier(2)
    summaries: list[UploadSummary] = []
    errors: list[BaseException] = []

    def uploader() -> None:
        try:
            start.wait(timeout=30)
            summaries.append(upload_due())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=uploader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    expected = count + count // 4
    sends = platform.sends()
    assert len(sends) == expected and set(sends.values()) == {1}
    assert sum(s.accepted for s in summaries) == expected
    assert sum(s.failed + s.rejected for s in summaries) == 0
    assert set(ReceiptUpload.objects.values_list("status", "attempts")) == {
        (UploadStatus.ACCEPTED, 1)
    }


# --- the background task -----------------------------------------------------------------------
def test_issuing_schedules_the_upload_on_commit(
    world: ReceiptWorld, platform: FakePlatform, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        receipt = world.issue("task")
        assert platform.received == []  # nothing leaves before the commit
    assert [(r.kind, r.number) for r in platform.received] == [(ISSUE, "0000000001")]
    assert upload_of(receipt).status == UploadStatus.ACCEPTED


def test_the_task_sends_a_waiting_void_after_the_issue(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    receipt = world.issue("tv")
    void_receipt(acting_user=world.finance, receipt=receipt, reason="金额有误")
    assert upload_one(upload_of(receipt, VOID).pk) == "not_due"  # waits for the issue
    assert platform.received == []
    assert upload_one(upload_of(receipt).pk) == UploadStatus.ACCEPTED
    assert [r.kind for r in platform.received] == [ISSUE, VOID]
    assert upload_of(receipt, VOID).status == UploadStatus.ACCEPTED


def test_a_failed_task_queues_its_retry_for_later(
    world: ReceiptWorld, platform: FakePlatform, settings: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    from django_tasks import default_task_backend

    receipt = world.issue("deferred")
    platform.mode = "error"
    upload = upload_of(receipt)
    assert upload_one(upload.pk) == UploadStatus.FAILED
    upload.refresh_from_db()
    queued = default_task_backend.results  # type: ignore[attr-defined]
    assert [(r.task.name, list(r.args), r.task.run_after) for r in queued] == [
        ("upload_receipt_task", [upload.pk], upload.next_attempt_at)
    ]


def test_without_a_platform_nothing_is_scheduled_or_sent(
    world: ReceiptWorld, unconfigured: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        receipt = world.issue("demo")
    assert upload_one(upload_of(receipt).pk) == "not_configured"
    with pytest.raises(PlatformNotConfigured) as caught:
        upload_due()
    assert caught.value.problems == [NOT_CONFIGURED]
    assert upload_of(receipt).status == UploadStatus.PENDING


# --- the command line ----------------------------------------------------------------------------
def test_cli_upload(
    world: ReceiptWorld, platform: FakePlatform, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        world.issue(f"cli{i}")
    assert huzhu_main(["receipt", "upload", "--limit", "2"]) == 0
    assert capsys.readouterr().out == "财政平台上传：已接收 2，被拒收 0，失败 0，待上传 1\n"
    assert huzhu_main(["receipt", "upload"]) == 0
    assert capsys.readouterr().out == "财政平台上传：已接收 1，被拒收 0，失败 0，待上传 0\n"
    platform.modes[(ISSUE, "0000000004")] = "reject"
    platform.modes[(ISSUE, "0000000005")] = "error"
    world.issue("cli3")
    world.issue("cli4")
    world.issue("cli5")
    assert huzhu_main(["receipt", "upload"]) == 1
    assert capsys.readouterr().out == "财政平台上传：已接收 1，被拒收 1，失败 1，待上传 1\n"
    # --retry-failed: the failed one now goes through; the rejected one stays for finance.
    platform.modes.clear()
    assert huzhu_main(["receipt", "upload", "--retry-failed"]) == 0
    assert capsys.readouterr().out == "财政平台上传：已接收 1，被拒收 0，失败 0，待上传 0\n"
    assert set(ReceiptUpload.objects.values_list("status", flat=True)) == {
        UploadStatus.ACCEPTED,
        UploadStatus.REJECTED,
    }
    assert huzhu_main(["receipt", "upload", "--limit", "0"]) == 2
    assert capsys.readouterr().err == "--limit 应为正整数\n"


def test_cli_upload_without_a_platform(
    world: ReceiptWorld, unconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    world.issue("u1")
    world.issue("u2")
    assert huzhu_main(["receipt", "upload"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{NOT_CONFIGURED}：2 条待上传\n"
    assert set(ReceiptUpload.objects.values_list("status", flat=True)) == {UploadStatus.PENDING}


# --- configuration and the client's reading of answers ------------------------------------------
def test_configuration_problems(settings: Any) -> None:
    settings.HUZHU_FINANCE_PLATFORM_URL = ""
    assert configuration_problems() == [NOT_CONFIGURED]
    settings.HUZHU_FINANCE_PLATFORM_URL = "http://czpj.example.gov.cn/api"
    settings.HUZHU_FINANCE_PLATFORM_APPID = ""
    settings.HUZHU_FINANCE_PLATFORM_KEY = ""
    assert configuration_problems() == [
        "财政电子票据平台地址必须使用 HTTPS（仅本机测试地址可用 HTTP）",
        "未配置财政电子票据平台应用编号（HUZHU_FINANCE_PLATFORM_APPID）",
        "未配置财政电子票据平台签名密钥（HUZHU_FINANCE_PLATFORM_KEY）",
    ]
    settings.HUZHU_FINANCE_PLATFORM_URL = "https://czpj.example.gov.cn/api"
    settings.HUZHU_FINANCE_PLATFORM_APPID = APP_ID
    settings.HUZHU_FINANCE_PLATFORM_KEY = KEY
    assert configuration_problems() == []


@pytest.mark.parametrize(
    ("status", "body", "outcome", "message"),
    [
        (200, {"code": "0000", "message": "成功", "ref": "R1"}, Outcome.ACCEPTED, "成功"),
        (
            200,
            {"code": "2001", "message": "号段未登记"},
            Outcome.REJECTED,
            "财政平台拒收（代码 2001）：号段未登记",
        ),
        (409, {"code": "3001"}, Outcome.REJECTED, "财政平台拒收（代码 3001）：平台未说明原因"),
        (400, {"code": "0000"}, Outcome.FAILED, "财政平台的应答不一致（HTTP 400，代码 0000）"),
        (503, {"code": "0000"}, Outcome.FAILED, "财政平台暂时无法处理（HTTP 503）"),
        (429, {"code": "9999"}, Outcome.FAILED, "财政平台暂时无法处理（HTTP 429）"),
        (408, {"code": "9999"}, Outcome.FAILED, "财政平台暂时无法处理（HTTP 408）"),
        (
            403,
            {"code": "4030"},
            Outcome.FAILED,
            "财政平台拒绝了本系统的身份认证（HTTP 403），请核对应用编号和签名密钥",
        ),
        (302, {"code": "0000"}, Outcome.FAILED, "财政平台返回了重定向（HTTP 302），请核对平台地址"),
        (200, "<html>维护中</html>", Outcome.FAILED, "财政平台的应答不是约定的 JSON（HTTP 200）"),
        (200, {"message": "成功"}, Outcome.FAILED, "财政平台的应答缺少应答代码 code（HTTP 200）"),
        (200, [1, 2], Outcome.FAILED, "财政平台的应答缺少应答代码 code（HTTP 200）"),
    ],
)
def test_reading_answers(status: int, body: Any, outcome: Outcome, message: str) -> None:
    client = HmacXmlPlatformClient(
        receipt_upload.PlatformConfig("https://x.example/api", APP_ID, KEY, 5, 3)
    )
    raw = body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")
    answer = client.interpret(status, raw)
    assert (answer.outcome, answer.message) == (outcome, message)
    if outcome == Outcome.ACCEPTED:
        assert (answer.code, answer.reference) == ("0000", "R1")


class RecordingClient:
    """A province's own client, plugged in through HUZHU_FINANCE_PLATFORM_CLIENT."""

    sent: list[UploadRequest] = []

    def __init__(self, config: receipt_upload.PlatformConfig) -> None:
        self.config = config

    def send(self, request: UploadRequest) -> PlatformAnswer:
        RecordingClient.sent.append(request)
        return PlatformAnswer(Outcome.ACCEPTED, "ok", "0000", f"P-{request.number}")


def test_a_province_can_plug_in_its_own_client(world: ReceiptWorld, settings: Any) -> None:
    settings.HUZHU_FINANCE_PLATFORM_URL = "https://czpj.example.gov.cn/api"
    settings.HUZHU_FINANCE_PLATFORM_APPID = APP_ID
    settings.HUZHU_FINANCE_PLATFORM_KEY = KEY
    settings.HUZHU_FINANCE_PLATFORM_CLIENT = "tests.receipts.test_upload.RecordingClient"
    RecordingClient.sent = []
    receipt = world.issue("plug")
    assert upload_due() == UploadSummary(accepted=1)
    assert RecordingClient.sent == [
        UploadRequest(ISSUE, receipt.code, "0000000001", receipt.signed_xml.encode("utf-8"))
    ]
    assert upload_of(receipt).platform_reference == "P-0000000001"


# --- the screens ---------------------------------------------------------------------------------
def test_uploads_page_says_when_no_platform_is_configured(
    world: ReceiptWorld, unconfigured: None
) -> None:
    receipt = world.issue("page")
    page = login(world.finance).get("/receipts/uploads/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "未配置财政电子票据平台地址（HUZHU_FINANCE_PLATFORM_URL）" in text
    assert f"{receipt.code}-0000000001" in text and "待上传" in text
    assert "重新上传" not in text  # a pending row has nothing to retry
    assert [row.pk for row in page.context["rows"]] == [upload_of(receipt).pk]


def test_receipt_list_ranges_and_detail_show_the_upload_status(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    sent = world.issue("s1")
    upload_due()
    waiting = world.issue("s2")
    void_receipt(acting_user=world.finance, receipt=sent, reason="金额有误")
    client = login(world.finance)
    listing = client.get("/receipts/")
    rows = {r.pk: r.upload_badges for r in listing.context["rows"]}
    assert [(b.kind, b.label) for b in rows[sent.pk]] == [(ISSUE, "已接收"), (VOID, "待上传")]
    assert [(b.kind, b.label) for b in rows[waiting.pk]] == [(ISSUE, "待上传")]
    text = listing.content.decode()
    assert "上传财政平台" in text and "作废待上传" in text
    ranges = client.get("/receipts/ranges/")
    (listed,) = ranges.context["ranges"]
    assert listed.upload_counts == [
        ("待上传", 2, "text-bg-secondary"),
        ("已接收", 1, "text-bg-success"),
    ]
    detail = client.get(reverse("contributions:receipt_detail", args=[sent.pk])).content.decode()
    assert platform.refs[(ISSUE, sent.code, "0000000001")] in detail


def test_upload_pages_are_scoped_to_the_issuers_finance(
    world: ReceiptWorld, platform: FakePlatform
) -> None:
    receipt = world.issue("scope")
    platform.mode = "reject"
    upload_due()
    upload = upload_of(receipt)
    retry_url = reverse("contributions:upload_retry", args=[upload.pk])
    other = login(factories.staff(world.tree.city_b, "finance"))
    clerk = login(factories.staff(world.tree.grassroots_1, "clerk", "finance"))
    no_issue = login(factories.staff(world.tree.city_a, "clerk"))
    before = snapshot()
    audits = AuditEvent.objects.count()
    # Finance of another city: the row is not listed and cannot be retried (404, nothing changed).
    assert other.get("/receipts/uploads/").context["rows"] == []
    assert other.post(retry_url).status_code == 404
    # The payer's union sees the receipt, not its uploads; a clerk has no access to the page.
    assert clerk.get("/receipts/uploads/").context["rows"] == []
    assert clerk.post(retry_url).status_code == 404
    assert no_issue.get("/receipts/uploads/").status_code == 404
    assert no_issue.post(retry_url).status_code == 404
    assert snapshot() == before and AuditEvent.objects.count() == audits
    # The province's finance (above the issuer) may retry it.
    province = login(factories.staff(world.tree.province, "finance"))
    assert province.post(retry_url, {"status": "rejected"})["Location"] == (
        "/receipts/uploads/?status=rejected"
    )
    assert upload_of(receipt).status == UploadStatus.PENDING
    # Retrying a row that is not failed or rejected changes nothing and says why.
    response = province.post(retry_url, follow=True)
    assert "只有上传失败或被拒收的任务可以重新上传" in response.content.decode()
    assert AuditEvent.objects.filter(event="receipt.upload_retry").count() == 1
