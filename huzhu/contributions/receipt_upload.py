"""Uploading issued receipts and voids to the finance department's platform (RULES.md §6).

The outbox: ``receipt_services`` writes a ``ReceiptUpload`` row in the very transaction that issues
a receipt (kind "issue") or voids one (kind "void"; a reissue is a void of the old receipt plus an
issue of the new one), so a committed receipt always has its upload row and a rolled-back issue has
neither. Uploaders then send the rows:

- the background task (``receipt_upload_tasks.upload_receipt_task``), queued on commit for each new
  row when the platform is configured, and again with a delay after a failure (when the task
  backend supports deferred tasks);
- ``huzhu receipt upload`` (run it from cron as the safety net: it sends everything due).

A row is claimed before it is sent (status "sent", a random claim token, ``claimed_at``): on
PostgreSQL candidates are picked with ``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent uploaders
take different rows; on both databases the claim itself is a conditional UPDATE that re-checks that
the row is still due, so two uploaders never both own a row. The outcome is recorded only by the
claim's owner. An uploader that crashes after sending but before recording leaves a "sent" row whose
claim grows older than the lease; it is then sent again — safe, because the platform deduplicates
by receipt code + number (docs/finance-platform.md) and answers the repeat with the original
reference.

A void is sent only after the platform has accepted the receipt's issue (the platform cannot void
a number it does not know); a voided receipt whose issue was never uploaded is uploaded as issued
first, then as voided, so the platform accounts for every number of its ranges.

Outcomes: accepted (code 0000), rejected (a business answer from the platform: not retried, shown to
finance, who may retry by hand), failed (network error, timeout, HTTP 5xx/408/429, authentication
refused, an unreadable answer: retried with exponential backoff up to the configured number of
attempts). Nothing here logs a document or the platform's message: the XML carries payer names.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import ssl
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from huzhu.contributions.receipt_models import (
    Receipt,
    ReceiptUpload,
    UploadKind,
    UploadStatus,
)
from huzhu.core.audit import record_event, register_event_labels
from huzhu.core.errors import ErrorCode, FieldError, InvalidInput
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "未配置财政电子票据平台地址（HUZHU_FINANCE_PLATFORM_URL）"
SUCCESS_CODE = "0000"
RETRY_BASE = timedelta(minutes=1)  # 1, 2, 4, 8 … minutes after each failure
RETRY_MAX = timedelta(hours=6)
MAX_ANSWER_BYTES = 64 * 1024
CLAIM_PROBE = 20  # candidates tried per claim where SKIP LOCKED is not available (SQLite)
VOID_FORMAT_VERSION = "1"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


class UploadEvent(StrEnum):
    RETRIED = "receipt.upload_retry"
    REJECTED = "receipt.upload_rejected"


register_event_labels(
    {
        UploadEvent.RETRIED: "重新上传财政平台",
        UploadEvent.REJECTED: "财政平台拒收票据",
    }
)


# --- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlatformConfig:
    url: str
    app_id: str
    key: str
    timeout: float
    max_attempts: int

    @property
    def lease(self) -> timedelta:
        """How long a claim is trusted: well above one request's timeout, so only an uploader that
        died loses its rows."""
        return max(timedelta(minutes=5), timedelta(seconds=3 * self.timeout))


def platform_config() -> PlatformConfig:
    return PlatformConfig(
        url=str(getattr(settings, "HUZHU_FINANCE_PLATFORM_URL", "") or "").strip(),
        app_id=str(getattr(settings, "HUZHU_FINANCE_PLATFORM_APPID", "") or "").strip(),
        key=str(getattr(settings, "HUZHU_FINANCE_PLATFORM_KEY", "") or ""),
        timeout=float(getattr(settings, "HUZHU_FINANCE_PLATFORM_TIMEOUT", 10)),
        max_attempts=int(getattr(settings, "HUZHU_FINANCE_PLATFORM_MAX_ATTEMPTS", 8)),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configuration_problems(config: PlatformConfig | None = None) -> list[str]:
    """Why uploads cannot run (Chinese, for the page and the command line); empty when they can."""
    config = config or platform_config()
    if not config.url:
        return [NOT_CONFIGURED]
    problems = []
    parts = urlsplit(config.url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        problems.append("财政电子票据平台地址（HUZHU_FINANCE_PLATFORM_URL）不是有效的网址")
    elif parts.scheme == "http" and not _is_loopback(parts.hostname):
        # Receipts carry payer names: only a test platform on this machine may go without TLS.
        problems.append("财政电子票据平台地址必须使用 HTTPS（仅本机测试地址可用 HTTP）")
    if not config.app_id:
        problems.append("未配置财政电子票据平台应用编号（HUZHU_FINANCE_PLATFORM_APPID）")
    if not config.key:
        problems.append("未配置财政电子票据平台签名密钥（HUZHU_FINANCE_PLATFORM_KEY）")
    if config.timeout <= 0:
        problems.append("财政电子票据平台超时时间（HUZHU_FINANCE_PLATFORM_TIMEOUT）应大于0秒")
    if config.max_attempts < 1:
        problems.append(
            "财政电子票据平台最大尝试次数（HUZHU_FINANCE_PLATFORM_MAX_ATTEMPTS）应至少为1"
        )
    return problems


def is_configured() -> bool:
    return not configuration_problems()


class PlatformNotConfigured(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("；".join(problems))
        self.problems = problems


# --- the outbox (called by receipt_services inside the issuing / voiding transaction) -----------
def queue_issue(receipt: Receipt) -> ReceiptUpload:
    return _queue(receipt, UploadKind.ISSUE)


def queue_void(receipt: Receipt) -> ReceiptUpload:
    return _queue(receipt, UploadKind.VOID)


def _queue(receipt: Receipt, kind: UploadKind) -> ReceiptUpload:
    now = timezone.now()
    upload = ReceiptUpload.objects.create(
        receipt=receipt,
        kind=kind,
        issuer_path=receipt.issuer_path,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    schedule_on_commit(upload.pk)
    return upload


def schedule_on_commit(upload_id: int) -> None:
    """Queue the background upload of one row once the current transaction commits (not at all when
    the platform is not configured: the row waits, honestly pending)."""
    if not is_configured():
        return

    def enqueue() -> None:
        from huzhu.contributions.receipt_upload_tasks import upload_receipt_task

        upload_receipt_task.enqueue(upload_id)

    # robust: a queue that is down must not turn a committed issue into an error for the payer;
    # the row stays pending and `huzhu receipt upload` sends it.
    transaction.on_commit(enqueue, robust=True)


def _schedule_retry(upload_id: int, at: datetime) -> None:
    from huzhu.contributions.receipt_upload_tasks import upload_receipt_task

    if not upload_receipt_task.get_backend().supports_defer:
        return  # the immediate backend (tests) cannot wait: the command line retries
    try:
        upload_receipt_task.using(run_after=at).enqueue(upload_id)
    except Exception:  # the queue is a convenience; the outbox row is the truth
        logger.exception("could not queue the retry of receipt upload %s", upload_id)


# --- documents ----------------------------------------------------------------------------------
def void_xml(receipt: Receipt) -> bytes:
    """The void notice: which receipt, when, why, and its replacement when it was reissued."""
    root = ET.Element("EReceiptVoid", {"version": VOID_FORMAT_VERSION})
    for tag, text in (
        ("ReceiptCode", receipt.code),
        ("ReceiptNumber", receipt.number_text),
        ("CheckCode", receipt.check_code),
        ("IssuerCode", receipt.issuer.code),
        ("VoidTime", timezone.localtime(receipt.voided_at).isoformat(timespec="seconds")),
        ("Reason", receipt.void_reason),
    ):
        ET.SubElement(root, tag).text = text
    successor = Receipt.objects.filter(reissue_of=receipt).only("code", "number").first()
    if successor is not None:
        ET.SubElement(root, "ReplacedBy", {"code": successor.code, "number": successor.number_text})
    return (XML_DECLARATION + "\n" + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")


def document_for(upload: ReceiptUpload) -> bytes:
    if upload.kind == UploadKind.ISSUE:
        return upload.receipt.signed_xml.encode("utf-8")
    return void_xml(upload.receipt)


# --- the client -----------------------------------------------------------------------------------
class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class UploadRequest:
    kind: str  # "issue" | "void"
    code: str  # 票据代码
    number: str  # 票据号码, 10 digits
    document: bytes  # the signed receipt XML, or the void XML


@dataclass(frozen=True)
class PlatformAnswer:
    outcome: Outcome
    message: str = ""  # Chinese, shown to finance (rejections, failures)
    code: str = ""  # the platform's answer code
    reference: str = ""  # the platform's reference (受理号) when accepted


class FinancePlatformClient(Protocol):
    """What an uploader needs from a platform. A province whose platform differs implements this
    (constructor taking a ``PlatformConfig``) and names the class in
    ``HUZHU_FINANCE_PLATFORM_CLIENT``. ``send`` must not raise for network or platform trouble:
    it answers ``Outcome.FAILED`` with a Chinese message."""

    def send(self, request: UploadRequest) -> PlatformAnswer: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a misconfigured address, never followed (urllib would turn the POST into a GET
    without the document)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def signature_base(*, path: str, app_id: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the HMAC covers (docs/finance-platform.md): method, path, the three headers and the
    SHA-256 of the body, one per line."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(["POST", path, app_id, timestamp, nonce, digest]).encode("utf-8")


def sign(key: str, base: bytes) -> str:
    return hmac.new(key.encode("utf-8"), base, hashlib.sha256).hexdigest()


class HmacXmlPlatformClient:
    """The interface described in docs/finance-platform.md: HTTPS POST of the XML to
    ``<URL>/issue`` or ``<URL>/void`` with AppId, Timestamp, Nonce and an HMAC-SHA256 Signature;
    a JSON answer ``{"code", "message", "ref"}``. Standard library only."""

    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self._opener = urllib.request.build_opener(
            _NoRedirect(), urllib.request.HTTPSHandler(context=ssl.create_default_context())
        )

    def endpoint(self, kind: str) -> str:
        return f"{self.config.url.rstrip('/')}/{kind}"

    def headers(self, *, path: str, body: bytes, request: UploadRequest) -> dict[str, str]:
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        base = signature_base(
            path=path, app_id=self.config.app_id, timestamp=timestamp, nonce=nonce, body=body
        )
        return {
            "Content-Type": "application/xml; charset=utf-8",
            "Accept": "application/json",
            "AppId": self.config.app_id,
            "Timestamp": timestamp,
            "Nonce": nonce,
            "Signature": sign(self.config.key, base),
            "Idempotency-Key": f"{request.kind}-{request.code}-{request.number}",
        }

    def send(self, request: UploadRequest) -> PlatformAnswer:
        url = self.endpoint(request.kind)
        body = request.document
        headers = self.headers(path=urlsplit(url).path or "/", body=body, request=request)
        # The scheme is https (or http to a loopback test platform): configuration_problems.
        http_request = urllib.request.Request(  # noqa: S310
            url, data=body, headers=headers, method="POST"
        )
        timeout = self.config.timeout
        try:
            try:
                with self._opener.open(http_request, timeout=timeout) as response:
                    status = int(response.status)
                    raw = response.read(MAX_ANSWER_BYTES + 1)
            except urllib.error.HTTPError as exc:
                status = exc.code
                with exc:
                    raw = exc.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            return _failed(f"财政平台在{timeout:g}秒内未应答（超时）")
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return _failed(f"财政平台在{timeout:g}秒内未应答（超时）")
            return _failed(f"无法连接财政平台（{exc.reason}）")
        except (http.client.HTTPException, OSError) as exc:
            return _failed(f"与财政平台的连接中断（{type(exc).__name__}）")
        return self.interpret(status, raw)

    def interpret(self, status: int, raw: bytes) -> PlatformAnswer:
        if status >= 500 or status in (408, 429):
            return _failed(f"财政平台暂时无法处理（HTTP {status}）")
        if status in (401, 403):
            # The platform refused *us*, not this receipt: a configuration matter, retried.
            return _failed(
                f"财政平台拒绝了本系统的身份认证（HTTP {status}），请核对应用编号和签名密钥"
            )
        if 300 <= status < 400:
            return _failed(f"财政平台返回了重定向（HTTP {status}），请核对平台地址")
        if len(raw) > MAX_ANSWER_BYTES:
            return _failed(f"财政平台的应答过长（HTTP {status}）")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _failed(f"财政平台的应答不是约定的 JSON（HTTP {status}）")
        code = data.get("code") if isinstance(data, dict) else None
        if not isinstance(code, str) or not code.strip():
            return _failed(f"财政平台的应答缺少应答代码 code（HTTP {status}）")
        code = code.strip()[:16]
        message = str(data.get("message") or "").strip()[:300]
        reference = str(data.get("ref") or "").strip()[:64]
        if code == SUCCESS_CODE:
            if 200 <= status < 300:
                return PlatformAnswer(Outcome.ACCEPTED, message, code, reference)
            return _failed(f"财政平台的应答不一致（HTTP {status}，代码 {code}）", code)
        return PlatformAnswer(
            Outcome.REJECTED,
            f"财政平台拒收（代码 {code}）：{message or '平台未说明原因'}",
            code,
        )


def _failed(message: str, code: str = "") -> PlatformAnswer:
    return PlatformAnswer(Outcome.FAILED, message, code)


def make_client(config: PlatformConfig | None = None) -> FinancePlatformClient:
    config = config or platform_config()
    path = str(
        getattr(
            settings,
            "HUZHU_FINANCE_PLATFORM_CLIENT",
            "huzhu.contributions.receipt_upload.HmacXmlPlatformClient",
        )
    )
    client_class = import_string(path)
    client: FinancePlatformClient = client_class(config)
    return client


# --- claiming, sending, recording ---------------------------------------------------------------
def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1, 2, 4 … minutes, at most 6 hours."""
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_MAX)


def _due(cutoff: datetime, lease: timedelta) -> Q:
    return Q(
        status__in=[UploadStatus.PENDING, UploadStatus.FAILED], next_attempt_at__lte=cutoff
    ) | Q(status=UploadStatus.SENT, claimed_at__lt=cutoff - lease)


def _ready() -> Q:
    accepted_issue = ReceiptUpload.objects.filter(
        receipt_id=OuterRef("receipt_id"), kind=UploadKind.ISSUE, status=UploadStatus.ACCEPTED
    )
    return Q(kind=UploadKind.ISSUE) | Q(Exists(accepted_issue))


def claim_next(
    *,
    cutoff: datetime,
    lease: timedelta,
    token: str,
    now: datetime | None = None,
    only: Sequence[int] | None = None,
) -> ReceiptUpload | None:
    """Claim the oldest row due at ``cutoff`` (or one of ``only``) for the uploader ``token``; None
    when there is none. Its own short transaction: the claim is visible to other uploaders before
    anything is sent."""
    moment = now or timezone.now()
    with transaction.atomic():
        candidates = ReceiptUpload.objects.filter(_due(cutoff, lease), _ready()).order_by("id")
        if only is not None:
            candidates = candidates.filter(pk__in=list(only))
        if connection.features.has_select_for_update_skip_locked:
            ids = list(
                candidates.select_for_update(skip_locked=True).values_list("id", flat=True)[:1]
            )
        else:
            ids = list(candidates.values_list("id", flat=True)[:CLAIM_PROBE])
        for pk in ids:
            # The claim re-checks that the row is still due: of two uploaders that picked the same
            # row, one updates it and the other updates nothing.
            claimed = (
                ReceiptUpload.objects.filter(_due(cutoff, lease), pk=pk).update(
                    status=UploadStatus.SENT,
                    claim_token=token,
                    claimed_at=moment,
                    attempts=F("attempts") + 1,
                    updated_at=moment,
                )
                == 1
            )
            if claimed:
                return ReceiptUpload.objects.select_related("receipt", "receipt__issuer").get(pk=pk)
    return None


def send_claimed(upload: ReceiptUpload, client: FinancePlatformClient) -> PlatformAnswer:
    receipt = upload.receipt
    request = UploadRequest(
        kind=upload.kind,
        code=receipt.code,
        number=receipt.number_text,
        document=document_for(upload),
    )
    try:
        return client.send(request)
    except Exception:
        # Never the document in the log: only which receipt.
        logger.exception(
            "receipt upload %s-%s (%s): the client raised",
            receipt.code,
            receipt.number_text,
            upload.kind,
        )
        return _failed("上传程序出错（详细信息已记入系统日志）")


def record_answer(
    upload: ReceiptUpload,
    answer: PlatformAnswer,
    *,
    token: str,
    max_attempts: int,
    now: datetime | None = None,
) -> str:
    """Store the outcome of a claimed row; returns its new status ("sent" when the claim was lost
    to another uploader, whose outcome then stands)."""
    moment = now or timezone.now()
    receipt = upload.receipt
    fields: dict[str, Any] = {
        "platform_code": answer.code,
        "updated_at": moment,
        "claim_token": "",
        "claimed_at": None,
    }
    if answer.outcome == Outcome.ACCEPTED:
        fields.update(
            status=UploadStatus.ACCEPTED,
            platform_reference=answer.reference,
            last_error="",
            accepted_at=moment,
            next_attempt_at=None,
        )
    elif answer.outcome == Outcome.REJECTED:
        fields.update(status=UploadStatus.REJECTED, last_error=answer.message[:500])
        fields["next_attempt_at"] = None
    else:
        retry_at = moment + retry_delay(upload.attempts) if upload.attempts < max_attempts else None
        fields.update(
            status=UploadStatus.FAILED, last_error=answer.message[:500], next_attempt_at=retry_at
        )
    with transaction.atomic():
        stored = ReceiptUpload.objects.filter(
            pk=upload.pk, status=UploadStatus.SENT, claim_token=token
        ).update(**fields)
        if stored and answer.outcome == Outcome.REJECTED:
            record_event(
                actor=None,
                event=UploadEvent.REJECTED,
                obj=receipt,
                organisation_id=receipt.issuer_id,
                detail={
                    "code": receipt.code,
                    "number": receipt.number_text,
                    "kind": upload.kind,
                    "platform_code": answer.code,
                },
            )
    if not stored:
        logger.warning(
            "receipt upload %s-%s (%s): claim lost, outcome %s not recorded",
            receipt.code,
            receipt.number_text,
            upload.kind,
            answer.outcome,
        )
        return UploadStatus.SENT
    logger.info(
        "receipt upload %s-%s (%s) attempt %s: %s %s",
        receipt.code,
        receipt.number_text,
        upload.kind,
        upload.attempts,
        fields["status"],
        answer.code,
    )
    upload.status = fields["status"]
    upload.next_attempt_at = fields["next_attempt_at"]
    return str(fields["status"])


@dataclass
class UploadSummary:
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    pending: int = 0  # still to go after the run: pending, in flight, or failed awaiting a retry

    def count(self, status: str) -> None:
        if status == UploadStatus.ACCEPTED:
            self.accepted += 1
        elif status == UploadStatus.REJECTED:
            self.rejected += 1
        elif status == UploadStatus.FAILED:
            self.failed += 1

    @property
    def ok(self) -> bool:
        return not (self.rejected or self.failed)

    def line(self) -> str:
        return (
            f"财政平台上传：已接收 {self.accepted}，被拒收 {self.rejected}，"
            f"失败 {self.failed}，待上传 {self.pending}"
        )


def outstanding_count() -> int:
    return ReceiptUpload.objects.filter(
        Q(status__in=[UploadStatus.PENDING, UploadStatus.SENT])
        | Q(status=UploadStatus.FAILED, next_attempt_at__isnull=False)
    ).count()


def requeue_failed(*, now: datetime | None = None) -> int:
    """Make every failed row due again with a fresh series of attempts (``--retry-failed``; after
    a platform outage or a corrected key). Rejections are not touched: they need a person."""
    moment = now or timezone.now()
    with transaction.atomic():
        count = ReceiptUpload.objects.filter(status=UploadStatus.FAILED).update(
            next_attempt_at=moment, attempts=0, updated_at=moment
        )
        if count:
            record_event(
                actor=None,
                event=UploadEvent.RETRIED,
                detail={"count": count, "status": UploadStatus.FAILED.value},
            )
    return count


def upload_due(
    *,
    limit: int | None = None,
    retry_failed: bool = False,
    now: datetime | None = None,
    client: FinancePlatformClient | None = None,
) -> UploadSummary:
    """Send every row due now (at most ``limit``), each at most once per run: a row that fails is
    due again only after its backoff, which is later than this run's cut-off."""
    config = platform_config()
    if client is None:
        problems = configuration_problems(config)
        if problems:
            raise PlatformNotConfigured(problems)
        client = make_client(config)
    if retry_failed:
        requeue_failed(now=now)
    cutoff = now or timezone.now()
    token = secrets.token_hex(16)
    summary = UploadSummary()
    processed = 0
    while limit is None or processed < limit:
        upload = claim_next(cutoff=cutoff, lease=config.lease, token=token, now=now)
        if upload is None:
            break
        answer = send_claimed(upload, client)
        status = record_answer(
            upload, answer, token=token, max_attempts=config.max_attempts, now=now
        )
        summary.count(status)
        processed += 1
    summary.pending = outstanding_count()
    return summary


def upload_one(
    upload_id: int, *, now: datetime | None = None, client: FinancePlatformClient | None = None
) -> str:
    """The background task's work: send one row if it is due; after an accepted issue, the
    receipt's void if it waited for it. Returns the row's status ("not_configured", "not_due")."""
    config = platform_config()
    if client is None:
        if configuration_problems(config):
            return "not_configured"
        client = make_client(config)
    token = secrets.token_hex(16)
    cutoff = now or timezone.now()
    status = "not_due"
    todo = [upload_id]
    while todo:
        upload = claim_next(
            cutoff=cutoff, lease=config.lease, token=token, now=now, only=[todo.pop()]
        )
        if upload is None:
            continue
        answer = send_claimed(upload, client)
        result = record_answer(
            upload, answer, token=token, max_attempts=config.max_attempts, now=now
        )
        if upload.pk == upload_id:
            status = result
        if result == UploadStatus.FAILED and upload.next_attempt_at is not None:
            _schedule_retry(upload.pk, upload.next_attempt_at)
        if result == UploadStatus.ACCEPTED and upload.kind == UploadKind.ISSUE:
            todo += ReceiptUpload.objects.filter(
                receipt_id=upload.receipt_id, kind=UploadKind.VOID
            ).values_list("pk", flat=True)
    return status


# --- finance: retry by hand -----------------------------------------------------------------------
@transaction.atomic(durable=True)
def retry_upload(*, acting_user: User, upload: ReceiptUpload) -> ReceiptUpload:
    """Queue a failed or rejected row again with a fresh series of attempts (e.g. after the finance
    department corrected its range register)."""
    org = acting_user.organisation
    if (
        not acting_user.has_perm_code(Perm.RECEIPT_ISSUE)
        or org is None
        or not upload.issuer_path.startswith(org.path)
    ):
        raise NotPermitted("无权管理该票据的上传")
    locked = (
        ReceiptUpload.objects.select_for_update(of=("self",))
        .select_related("receipt")
        .get(pk=upload.pk)
    )
    if not locked.can_retry:
        raise InvalidInput(
            [
                FieldError(
                    "upload",
                    f"该上传任务状态为“{locked.get_status_display()}”，只有上传失败或被拒收的"
                    "任务可以重新上传",
                    ErrorCode.STATE,
                )
            ]
        )
    previous = locked.status
    now = timezone.now()
    locked.status = UploadStatus.PENDING
    locked.attempts = 0
    locked.next_attempt_at = now
    locked.last_error = ""
    locked.platform_code = ""
    locked.updated_at = now
    locked.save(
        update_fields=[
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "platform_code",
            "updated_at",
        ]
    )
    receipt = locked.receipt
    record_event(
        actor=acting_user,
        event=UploadEvent.RETRIED,
        obj=receipt,
        organisation_id=receipt.issuer_id,
        detail={
            "code": receipt.code,
            "number": receipt.number_text,
            "kind": locked.kind,
            "previous": previous,
        },
    )
    schedule_on_commit(locked.pk)
    return locked
