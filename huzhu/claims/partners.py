"""Settlement partners (R12, S14): accounts, keys, and the authentication of their requests.

A partner (the medical-insurance agency of a city, a hospital system) calls the one-stop
settlement API with four headers — ``X-Partner-Id``, ``X-Timestamp``, ``X-Nonce``,
``X-Signature`` — over the string of ``huzhu.claims.partner_signing``. ``authenticate_request``
checks, in this order: the partner exists; the caller's address is on its IP allow-list (403);
the timestamp is within ±300 s; the signature (HMAC-SHA256 with the partner's key, or SM3withSM2
with its SM2 public key; constant-time comparison); the nonce was not used by this partner in the
last 10 minutes (replay); the partner is active; the operation is within its scopes (403). Every
refusal for a known partner is written to the audit log (``claims.partner_auth_failed``, outcome
``denied``, no secrets); requests naming no known partner are only logged, so that anonymous
noise cannot flood the tamper-evident chain.

Nonces: one row per (partner, nonce) in ``PartnerNonce`` with the time it was first seen, inserted
with ``INSERT … ON CONFLICT`` in one statement (no savepoint, no exception on a replay). A row
older than the 10-minute window is taken over by the new request (the window of ±300 s on the
timestamp makes any request older than 10 minutes unacceptable anyway), and every
``NONCE_PURGE_EVERY``-th accepted request deletes the rows older than the window.

Partner rows are read through a small per-process cache (``PARTNER_CACHE_SECONDS``): the settlement
endpoint is the hot path (≥ 500 requests/s). Changes made here invalidate the entry at once in this
process; other processes see a rotated key, a deactivation or a new allow-list within that time.

Client address: ``REMOTE_ADDR``. Behind a reverse proxy the proxy's own address must be listed in
``settings.HUZHU_TRUSTED_PROXIES`` (addresses or CIDR networks); only then is ``X-Forwarded-For``
read, from the right, skipping the trusted proxies. Without that setting the header is ignored:
anybody can send it.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from django.utils import timezone

from huzhu.claims.models import Partner, PartnerNonce, PartnerScope, SignatureMethod
from huzhu.claims.partner_signing import (
    new_hmac_key,
    normalize_sm2_public_key,
    string_to_sign,
    verify_hmac,
    verify_sm2,
)
from huzhu.core.audit import record_event, register_event_labels
from huzhu.core.errors import ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.orgs.models import Union, User, subtree_q
from huzhu.orgs.selectors import scope_path

logger = logging.getLogger(__name__)

EVENT_PARTNER_CREATED = "claims.partner_created"
EVENT_PARTNER_UPDATED = "claims.partner_updated"
EVENT_PARTNER_KEY_ROTATED = "claims.partner_key_rotated"
EVENT_PARTNER_DEACTIVATED = "claims.partner_deactivated"
EVENT_PARTNER_ACTIVATED = "claims.partner_activated"
EVENT_PARTNER_AUTH_FAILED = "claims.partner_auth_failed"
register_event_labels(
    {
        EVENT_PARTNER_CREATED: "新建结算合作方",
        EVENT_PARTNER_UPDATED: "修改结算合作方",
        EVENT_PARTNER_KEY_ROTATED: "更换结算合作方密钥",
        EVENT_PARTNER_DEACTIVATED: "停用结算合作方",
        EVENT_PARTNER_ACTIVATED: "启用结算合作方",
        EVENT_PARTNER_AUTH_FAILED: "结算合作方请求被拒绝（签名/时间戳/重放/来源/权限）",
    }
)

TIMESTAMP_WINDOW_SECONDS = 300
NONCE_WINDOW = timedelta(minutes=10)
NONCE_PURGE_EVERY = 1000
PARTNER_CACHE_SECONDS = 10.0
MAX_NAME_LENGTH = 100
MAX_IP_ENTRIES = 50
MAX_PARTNER_ID_LENGTH = 32

_NONCE_RE = re.compile(r"[A-Za-z0-9_\-]{8,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_IP_SPLIT_RE = re.compile(r"[\s,;，；、]+")
SCOPE_LABELS = dict(PartnerScope.choices)


# --- refusals ------------------------------------------------------------------------------------
class PartnerDenied(Exception):
    """A partner request refused before it reaches the settlement service: HTTP ``status`` with
    a Chinese ``message``; ``reason`` is the code written to the audit log."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


def _unauthorized(message: str, reason: str) -> PartnerDenied:
    return PartnerDenied(401, message, reason)


BAD_SIGNATURE_MESSAGE = (
    "签名验证失败：请核对合作方编号、密钥及待签名字符串（时间戳、随机数、方法、路径、请求体摘要）"
)


# --- input checks (services and forms share them) -----------------------------------------------
def _network_text(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def parse_ip_allowlist(value: str | Iterable[str], errors: ErrorCollector) -> list[str]:
    """IP addresses and CIDR networks (one per line, or separated by commas/spaces) in their
    normal form; each bad entry adds a Chinese error on ``ip_allowlist``."""
    raw = [value] if isinstance(value, str) else list(value)
    entries = [e for text in raw for e in _IP_SPLIT_RE.split(text.strip()) if e]
    result: list[str] = []
    for entry in entries:
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                errors.add(
                    "ip_allowlist",
                    f"“{entry[:60]}”不是有效的 IP 地址或网段（如 10.1.2.3 或 10.1.2.0/24）",
                )
            else:
                errors.add(
                    "ip_allowlist",
                    f"“{entry[:60]}”的主机位不为 0：网段应写作 {_network_text(loose)}",
                )
            continue
        text = _network_text(network)
        if text not in result:
            result.append(text)
    if len(result) > MAX_IP_ENTRIES:
        errors.add("ip_allowlist", f"IP 白名单最多 {MAX_IP_ENTRIES} 项")
    return result


def _check_scopes(scopes: Iterable[str], errors: ErrorCollector) -> list[str]:
    chosen = [str(s).strip() for s in scopes if str(s).strip()]
    unknown = [s for s in chosen if s not in PartnerScope.values]
    if unknown:
        allowed = "、".join(f"{v}（{label}）" for v, label in PartnerScope.choices)
        errors.add("scopes", f"未知的权限范围：{'、'.join(unknown)}；可选：{allowed}")
    elif not chosen:
        errors.add("scopes", "至少选择一项权限范围", ErrorCode.REQUIRED)
    # Stored in the enumeration's order, each once.
    return [v for v in PartnerScope.values if v in chosen]


def _check_name(name: str, errors: ErrorCollector) -> str:
    text = (name or "").strip()
    if not text:
        errors.add("name", "名称不能为空", ErrorCode.REQUIRED)
    elif len(text) > MAX_NAME_LENGTH:
        errors.add("name", f"名称不能超过{MAX_NAME_LENGTH}个字符")
    return text


def _check_sm2_key(text: str | None, errors: ErrorCollector) -> str:
    if not (text or "").strip():
        errors.add("sm2_public_key", "SM2 签名方式须填写合作方的 SM2 公钥", ErrorCode.REQUIRED)
        return ""
    key = normalize_sm2_public_key(text or "")
    if key is None:
        errors.add(
            "sm2_public_key",
            "SM2 公钥应为未压缩点的十六进制：04 开头共 130 位（或不含 04 的 128 位），"
            "且须在 SM2 曲线上",
        )
        return ""
    return key


def _in_scope(acting_user: User | None, organisation: Union) -> bool:
    if acting_user is None:  # command line: the operator of the installation
        return True
    path = scope_path(acting_user)
    return path is not None and Union.objects.filter(subtree_q(path), pk=organisation.pk).exists()


def _region_of(organisation: Union) -> str:
    """The six-digit region code for the partner number: the organisation's own, else the
    nearest ancestor's (a grassroots union has none of its own)."""
    if organisation.region_code:
        return organisation.region_code
    ids = [int(p) for p in organisation.path.strip("/").split("/") if p.isdigit()]
    codes = dict(Union.objects.filter(pk__in=ids).values_list("pk", "region_code"))
    for pk in reversed(ids):
        if codes.get(pk):
            return str(codes[pk])
    return "000000"


def _next_partner_id(organisation: Union) -> str:
    prefix = f"P{_region_of(organisation)}"
    taken = set(
        Partner.objects.filter(partner_id__startswith=prefix).values_list("partner_id", flat=True)
    )
    for seq in itertools.count(len(taken) + 1):
        candidate = f"{prefix}{seq:03d}"
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


# --- services --------------------------------------------------------------------------------
def create_partner(
    *,
    acting_user: User | None,
    name: str,
    organisation: Union,
    method: str = SignatureMethod.HMAC,
    scopes: Sequence[str] = (PartnerScope.SETTLE, PartnerScope.CANCEL),
    ip_allowlist: str | Iterable[str] = "",
    sm2_public_key: str | None = None,
) -> tuple[Partner, str]:
    """Register a partner scoped to ``organisation``'s subtree. Returns the partner and its HMAC
    key in hex — shown once, stored only encrypted — or ``""`` for an SM2 partner (it signs with
    its own private key; only its public key is stored)."""
    errors = ErrorCollector()
    clean_name = _check_name(name, errors)
    if method not in SignatureMethod.values:
        errors.add("method", "签名方式应为 hmac（HMAC-SHA256）或 sm2（SM3withSM2）")
    clean_scopes = _check_scopes(scopes, errors)
    networks = parse_ip_allowlist(ip_allowlist, errors)
    public_key = ""
    if method == SignatureMethod.SM2:
        public_key = _check_sm2_key(sm2_public_key, errors)
    elif (sm2_public_key or "").strip():
        errors.add("sm2_public_key", "只有 SM2 签名方式才填写 SM2 公钥")
    if organisation is None or not _in_scope(acting_user, organisation):
        errors.add("organisation", "该工会组织不存在或不在您的管辖范围内")
    errors.raise_if_any()
    key = new_hmac_key() if method == SignatureMethod.HMAC else ""
    with transaction.atomic(durable=True):
        for _attempt in range(5):
            try:
                with transaction.atomic():  # a concurrent creation took the number: next one
                    partner = Partner.objects.create(
                        partner_id=_next_partner_id(organisation),
                        name=clean_name,
                        organisation=organisation,
                        organisation_path=organisation.path,
                        signature_method=method,
                        key_enc=key or None,
                        sm2_public_key=public_key,
                        scopes=clean_scopes,
                        ip_allowlist="\n".join(networks),
                        created_by=acting_user,
                    )
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - five concurrent creations in one region
            raise InvalidInput([FieldError("name", "合作方编号分配冲突，请重试")])
        record_event(
            actor=acting_user,
            event=EVENT_PARTNER_CREATED,
            obj=partner,
            organisation_id=organisation.pk,
            detail={
                "partner": partner.partner_id,
                "name": partner.name,
                "method": method,
                "scopes": clean_scopes,
                "ip_allowlist": networks,
            },
        )
    return partner, key


def update_partner(
    *,
    acting_user: User | None,
    partner: Partner,
    name: str | None = None,
    scopes: Sequence[str] | None = None,
    ip_allowlist: str | Iterable[str] | None = None,
    sm2_public_key: str | None = None,
) -> Partner:
    """Change the name, scopes, IP allow-list or (SM2 partners) public key; ``None`` keeps."""
    errors = ErrorCollector()
    changes: dict[str, Any] = {}
    if name is not None:
        clean = _check_name(name, errors)
        if clean != partner.name:
            changes["name"] = clean
    if scopes is not None:
        clean_scopes = _check_scopes(scopes, errors)
        if clean_scopes != list(partner.scopes):
            changes["scopes"] = clean_scopes
    if ip_allowlist is not None:
        text = "\n".join(parse_ip_allowlist(ip_allowlist, errors))
        if text != partner.ip_allowlist:
            changes["ip_allowlist"] = text
    if sm2_public_key is not None:
        if partner.signature_method != SignatureMethod.SM2:
            if sm2_public_key.strip():
                errors.add("sm2_public_key", "只有 SM2 签名方式才填写 SM2 公钥")
        else:
            key = _check_sm2_key(sm2_public_key, errors)
            if key and key != partner.sm2_public_key:
                changes["sm2_public_key"] = key
    errors.raise_if_any()
    if not changes:
        return partner
    with transaction.atomic(durable=True):
        for field, value in changes.items():
            setattr(partner, field, value)
        partner.save(update_fields=list(changes))
        detail: dict[str, Any] = {"partner": partner.partner_id, "changed": sorted(changes)}
        for field in ("name", "scopes", "ip_allowlist"):
            if field in changes:
                value = changes[field]
                detail[field] = value.split("\n") if field == "ip_allowlist" and value else value
        record_event(
            actor=acting_user,
            event=EVENT_PARTNER_UPDATED,
            obj=partner,
            organisation_id=partner.organisation_id,
            detail=detail,
        )
    return partner


def rotate_key(*, acting_user: User | None, partner: Partner) -> str:
    """A new HMAC key (returned once, hex); the old key stops working at once in this process
    and within ``PARTNER_CACHE_SECONDS`` in the others."""
    if partner.signature_method != SignatureMethod.HMAC:
        raise InvalidInput(
            [FieldError("sm2_public_key", "SM2 合作方没有 HMAC 密钥：请更新其 SM2 公钥")]
        )
    key = new_hmac_key()
    with transaction.atomic(durable=True):
        partner.key_enc = key
        partner.key_rotated_at = timezone.now()
        partner.save(update_fields=["key_enc", "key_rotated_at"])
        record_event(
            actor=acting_user,
            event=EVENT_PARTNER_KEY_ROTATED,
            obj=partner,
            organisation_id=partner.organisation_id,
            detail={"partner": partner.partner_id},
        )
    return key


def set_active(*, acting_user: User | None, partner: Partner, active: bool) -> Partner:
    """Deactivate (every request then answers 401) or activate again; no change, no event."""
    if partner.is_active == active:
        return partner
    with transaction.atomic(durable=True):
        partner.is_active = active
        partner.save(update_fields=["is_active"])
        record_event(
            actor=acting_user,
            event=EVENT_PARTNER_ACTIVATED if active else EVENT_PARTNER_DEACTIVATED,
            obj=partner,
            organisation_id=partner.organisation_id,
            detail={"partner": partner.partner_id},
        )
    return partner


def deactivate(*, acting_user: User | None, partner: Partner) -> Partner:
    return set_active(acting_user=acting_user, partner=partner, active=False)


def activate(*, acting_user: User | None, partner: Partner) -> Partner:
    return set_active(acting_user=acting_user, partner=partner, active=True)


# --- the partner cache ---------------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Entry:
    partner: Partner
    networks: tuple[Network, ...]
    loaded_at: float


_cache: dict[str, _Entry] = {}


def networks_of(text: str) -> tuple[Network, ...]:
    result = []
    for entry in text.split():
        try:
            result.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:  # stored through parse_ip_allowlist: only a hand-edited row
            logger.warning("partner allow-list entry ignored (not an address or network)")
    return tuple(result)


def _cached(partner_id: str) -> _Entry | None:
    entry = _cache.get(partner_id)
    clock = time.monotonic()
    if entry is not None and clock - entry.loaded_at < PARTNER_CACHE_SECONDS:
        return entry
    partner = Partner.objects.filter(partner_id=partner_id).first()
    if partner is None:
        _cache.pop(partner_id, None)
        return None
    entry = _Entry(partner, networks_of(partner.ip_allowlist), clock)
    _cache[partner_id] = entry
    return entry


def forget_partner(partner_id: str) -> None:
    _cache.pop(partner_id, None)


def clear_partner_cache() -> None:
    _cache.clear()


def _invalidate(sender: Any, instance: Partner, **kwargs: Any) -> None:
    forget_partner(instance.partner_id)


post_save.connect(_invalidate, sender=Partner, dispatch_uid="huzhu.claims.partners.invalidate")
post_delete.connect(_invalidate, sender=Partner, dispatch_uid="huzhu.claims.partners.invalidate_d")


# --- client address ------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return networks_of("\n".join(entries))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Iterable[Network]
) -> bool:
    return any(address.version == n.version and address in n for n in nets)


def client_ip(request: HttpRequest) -> str:
    """The caller's address: ``REMOTE_ADDR``, or — only when that is a trusted proxy
    (``settings.HUZHU_TRUSTED_PROXIES``) — the right-most ``X-Forwarded-For`` hop that is not."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    configured = getattr(settings, "HUZHU_TRUSTED_PROXIES", ())
    if not configured:
        return remote
    trusted = _trusted(tuple(configured))
    address = _address(remote)
    if address is None or not _within(address, trusted):
        return remote
    hops = [h.strip() for h in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    for hop in reversed([h for h in hops if h]):
        hop_address = _address(hop)
        if hop_address is None:
            return remote  # a garbled header: do not guess
        if not _within(hop_address, trusted):
            return str(hop_address)
    return remote


def ip_allowed(networks: Sequence[Network], ip: str) -> bool:
    if not networks:
        return True  # no allow-list: any address
    address = _address(ip)
    return address is not None and _within(address, networks)


# --- verification --------------------------------------------------------------------------------
_accepted = itertools.count(1)


def now() -> datetime:
    """The server's clock for the timestamp window and the nonce store (tests move it)."""
    return timezone.now()


def purge_nonces(at: datetime | None = None) -> int:
    """Delete the nonces older than the replay window; returns how many."""
    cutoff = (at or now()) - NONCE_WINDOW
    deleted, _ = PartnerNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


def remember_nonce(partner: Partner, nonce: str, at: datetime | None = None) -> bool:
    """Record the nonce; False when this partner used it within the window (a replay).

    One statement on SQLite and PostgreSQL alike: a fresh row is inserted, a row older than the
    window is taken over, a row within the window is left alone and nothing comes back."""
    moment = at or now()
    ops = connection.ops
    table = ops.quote_name(PartnerNonce._meta.db_table)
    # The table name comes from the model, never from input; the values are parameters.
    sql = (
        f"INSERT INTO {table} (partner_id, nonce, seen_at) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (partner_id, nonce) DO UPDATE SET seen_at = excluded.seen_at "
        f"WHERE {table}.seen_at < %s RETURNING id"
    )
    params: list[Any] = [
        partner.pk,
        nonce,
        ops.adapt_datetimefield_value(moment),
        ops.adapt_datetimefield_value(moment - NONCE_WINDOW),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fresh = cursor.fetchone() is not None
    if fresh and next(_accepted) % NONCE_PURGE_EVERY == 0:
        purge_nonces(moment)
    return fresh


def verify_signature(partner: Partner, message: bytes, signature: str) -> bool:
    if partner.signature_method == SignatureMethod.SM2:
        return bool(partner.sm2_public_key) and verify_sm2(
            partner.sm2_public_key, message, signature
        )
    key = partner.key_enc
    return bool(key) and verify_hmac(str(key), message, signature)


def verify_request(
    partner: Partner,
    method: str,
    path: str,
    timestamp: str,
    nonce: str,
    body_bytes: bytes,
    signature: str,
    *,
    at: datetime | None = None,
) -> None:
    """Timestamp window, signature over the exact request, then the nonce (only a correctly
    signed request can use up a nonce). Raises ``PartnerDenied`` (401)."""
    moment = at or now()
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise _unauthorized("X-Timestamp 应为 Unix 时间戳（秒，整数）", "malformed_timestamp")
    if abs(moment.timestamp() - int(timestamp)) > TIMESTAMP_WINDOW_SECONDS:
        raise _unauthorized(
            f"请求时间戳超出允许范围（与服务器时间相差超过 {TIMESTAMP_WINDOW_SECONDS} 秒），"
            "请校准时钟后重新签名",
            "stale_timestamp",
        )
    if not _NONCE_RE.fullmatch(nonce):
        raise _unauthorized(
            "X-Nonce 应为 8–64 位字母、数字、下划线或连字符（每个请求不同）", "malformed_nonce"
        )
    message = string_to_sign(timestamp, nonce, method, path, body_bytes)
    if not verify_signature(partner, message, signature.strip()):
        raise _unauthorized(BAD_SIGNATURE_MESSAGE, "bad_signature")
    if not remember_nonce(partner, nonce, moment):
        raise _unauthorized("重复的请求：该 X-Nonce 已在 10 分钟内使用过", "replayed_nonce")


def _audit_refusal(
    partner: Partner, denied: PartnerDenied, method: str, path: str, ip: str
) -> None:
    logger.warning(
        "partner request refused: partner=%s reason=%s %s %s",
        partner.partner_id,
        denied.reason,
        method,
        path,
    )
    record_event(
        actor=None,
        actor_username=f"partner:{partner.partner_id}",
        event=EVENT_PARTNER_AUTH_FAILED,
        object_type="claims.partner",
        object_id=str(partner.pk),
        outcome="denied",
        organisation_id=partner.organisation_id,
        detail={
            "partner": partner.partner_id,
            "reason": denied.reason,
            "method": method[:10],
            "path": path[:200],
            "client_ip": ip[:64],
        },
    )


def authenticate_request(
    *,
    partner_id: str,
    timestamp: str,
    nonce: str,
    signature: str,
    method: str,
    path: str,
    body: bytes,
    ip: str,
    scope: str,
) -> Partner:
    """The partner of a correctly signed, fresh, allowed request for ``scope``; otherwise
    ``PartnerDenied`` (401 signature/time/replay/inactive, 403 address or scope), audited."""
    missing = [
        name
        for name, value in (
            ("X-Partner-Id", partner_id),
            ("X-Timestamp", timestamp),
            ("X-Nonce", nonce),
            ("X-Signature", signature),
        )
        if not value
    ]
    if missing:
        logger.info("partner request without %s on %s %s", ",".join(missing), method, path)
        raise _unauthorized(f"缺少签名请求头：{'、'.join(missing)}", "missing_headers")
    entry = _cached(partner_id) if len(partner_id) <= MAX_PARTNER_ID_LENGTH else None
    if entry is None:
        logger.info("partner request with an unknown partner id on %s %s", method, path)
        raise _unauthorized(BAD_SIGNATURE_MESSAGE, "unknown_partner")
    partner = entry.partner
    try:
        if not ip_allowed(entry.networks, ip):
            raise PartnerDenied(403, "请求来源地址不在该合作方的 IP 白名单内", "ip_not_allowed")
        verify_request(partner, method, path, timestamp, nonce, body, signature)
        if not partner.is_active:
            raise _unauthorized("该合作方已停用，请联系平台管理员", "inactive")
        if scope not in partner.scopes:
            raise PartnerDenied(
                403,
                f"该合作方未获授权调用此接口（需要权限：{SCOPE_LABELS.get(scope, scope)}）",
                "missing_scope",
            )
    except PartnerDenied as denied:
        _audit_refusal(partner, denied, method, path, ip)
        raise
    return partner
