"""Writing and verifying audit events (S8).

``record_event`` runs inside the caller's transaction (the change and its audit commit together or
not at all). The log is split into ``HUZHU_AUDIT_CHAINS`` independent hash chains (default 16,
ADR 0002): each event's hash covers its fields and the previous event's hash OF ITS CHAIN, and
each chain's head row (``AuditChain``: last seq and hash) is locked while the chain is appended
to, so every chain is linear while transactions on different chains run side by side.
``iter_problems`` recomputes every chain and finds an edited, inserted or deleted row (the head
makes deleting the newest row detectable). The database refuses UPDATE and DELETE on the table
(triggers on both SQLite and PostgreSQL, migration core 0002).

One transaction, one chain: the first audited write of a transaction (or the ledger's
``_lock_audit_chain``, which locks ahead of its counter lock) picks and locks a chain through
``lock_transaction_chain``; every later event of the same transaction goes to that chain, so a
transaction never waits for a second chain lock while holding one (no deadlock between chains).
On PostgreSQL the pick takes a FREE chain without waiting (``FOR UPDATE SKIP LOCKED``) and waits
only when all are busy; SQLite runs one writer at a time and simply rotates.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.db.models.functions import Mod
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from huzhu.core.context import current_request
from huzhu.core.models import AuditChain, AuditEvent

if TYPE_CHECKING:
    from huzhu.orgs.models import User


class Event(StrEnum):
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGOUT = "auth.logout"
    LOCKOUT = "auth.lockout"
    OTP_FAILED = "auth.otp_failed"
    PASSWORD_CHANGED = "auth.password_changed"
    TOKEN_CREATED = "auth.token_created"
    USER_CREATED = "user.create"
    USER_UPDATED = "user.update"
    ROLES_CHANGED = "user.roles_changed"
    ORG_CREATED = "org.create"
    ORG_UPDATED = "org.update"
    UNIT_CREATED = "unit.create"
    UNIT_UPDATED = "unit.update"
    MEMBER_CREATED = "member.create"
    MEMBER_UPDATED = "member.update"
    MEMBER_DELETED = "member.delete"
    MEMBER_UNMASKED = "member.unmask"
    FAMILY_CREATED = "family.create"
    HARDSHIP_RECORDED = "hardship.create"
    CONSENT_GRANTED = "consent.grant"
    CONSENT_WITHDRAWN = "consent.withdraw"
    EXPORT = "data.export"
    AUDIT_VIEWED = "audit.view"
    PLAN_IMPORTED = "plan.import"
    PLAN_ACTIVATED = "plan.activate"
    PLAN_RETIRED = "plan.retire"
    PLAN_UPDATED = "plan.update"
    PLAN_FIRST_USED = "plan.used"
    # --- ledger (huzhu.ledger) ---
    LEDGER_POSTED = "ledger.post"
    LEDGER_REVERSED = "ledger.reverse"
    LEDGER_PERIOD_CLOSED = "ledger.close_period"
    # --- end ledger ---
    # --- co-funding (huzhu.contributions funding_*) ---
    FUNDING_SPLIT_CREATED = "funding.split_create"
    FUNDING_INVOICE_CREATED = "funding.invoice_create"
    FUNDING_PAYMENT_REGISTERED = "funding.payment_register"
    FUNDING_WITHDRAWAL_SETTLED = "funding.withdrawal_settle"
    # --- end co-funding ---


EVENT_LABELS: dict[str, str] = {
    Event.LOGIN: "登录成功",
    Event.LOGIN_FAILED: "登录失败",
    Event.LOGOUT: "退出登录",
    Event.LOCKOUT: "账号锁定",
    Event.OTP_FAILED: "动态口令错误",
    Event.PASSWORD_CHANGED: "修改密码",
    Event.TOKEN_CREATED: "创建接口令牌",
    Event.USER_CREATED: "创建账号",
    Event.USER_UPDATED: "修改账号",
    Event.ROLES_CHANGED: "变更权限",
    Event.ORG_CREATED: "新建组织",
    Event.ORG_UPDATED: "修改组织",
    Event.UNIT_CREATED: "新建单位",
    Event.UNIT_UPDATED: "修改单位",
    Event.MEMBER_CREATED: "新增职工",
    Event.MEMBER_UPDATED: "修改职工",
    Event.MEMBER_DELETED: "删除职工",
    Event.MEMBER_UNMASKED: "查看明文个人信息",
    Event.FAMILY_CREATED: "新增家庭成员",
    Event.HARDSHIP_RECORDED: "登记困难职工",
    Event.CONSENT_GRANTED: "授权医保数据",
    Event.CONSENT_WITHDRAWN: "撤回授权",
    Event.EXPORT: "导出数据",
    Event.AUDIT_VIEWED: "查看审计日志",
    Event.PLAN_IMPORTED: "导入保障方案",
    Event.PLAN_ACTIVATED: "启用保障方案",
    Event.PLAN_RETIRED: "停用保障方案",
    Event.PLAN_UPDATED: "修改保障方案草稿",
    Event.PLAN_FIRST_USED: "方案版本首次使用",
    # --- ledger (huzhu.ledger) ---
    Event.LEDGER_POSTED: "记账",
    Event.LEDGER_REVERSED: "冲销凭证",
    Event.LEDGER_PERIOD_CLOSED: "会计期间结账",
    # --- end ledger ---
    # --- co-funding (huzhu.contributions funding_*) ---
    Event.FUNDING_SPLIT_CREATED: "登记分担协议",
    Event.FUNDING_INVOICE_CREATED: "生成缴费通知",
    Event.FUNDING_PAYMENT_REGISTERED: "登记缴费到账",
    Event.FUNDING_WITHDRAWAL_SETTLED: "退保核减与退费",
    # --- end co-funding ---
}


def register_event_labels(labels: dict[str, str]) -> None:
    """Apps with their own event enums add their Chinese labels for the audit log view."""
    EVENT_LABELS.update({str(k): v for k, v in labels.items()})


_HASHED_FIELDS = (
    "chain",
    "seq",
    "occurred_at",
    "actor_id",
    "actor_username",
    "actor_role",
    "organisation_id",
    "ip",
    "channel",
    "event",
    "object_type",
    "object_id",
    "outcome",
    "detail",
    "prev_hash",
)


def _canonical(event: AuditEvent) -> bytes:
    payload: dict[str, Any] = {}
    for name in _HASHED_FIELDS:
        value = getattr(event, name)
        if name == "occurred_at":
            value = value.astimezone(UTC).isoformat(timespec="microseconds")
        payload[name] = value
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


# --- chains ------------------------------------------------------------------------------------
DEFAULT_CHAINS = 16
MAX_CHAINS = 1024
GENESIS_HASH = "0" * 64


def chain_count() -> int:
    """How many chains new events are spread over: the Django setting ``HUZHU_AUDIT_CHAINS``, else
    the environment variable of that name, else 16. Lowering it later is safe: the chains above
    the new count keep their events and are still verified, they only receive no new ones."""
    raw: Any = getattr(settings, "HUZHU_AUDIT_CHAINS", None)
    if raw is None:
        raw = os.environ.get("HUZHU_AUDIT_CHAINS", DEFAULT_CHAINS)
    try:
        count = int(raw)
    except (TypeError, ValueError):
        count = 0
    if not 1 <= count <= MAX_CHAINS:
        raise ImproperlyConfigured(
            f"HUZHU_AUDIT_CHAINS 须为 1 至 {MAX_CHAINS} 之间的整数（当前为 {raw!r}）"
        )
    return count


class _ChainMarker:
    """A no-op ``on_commit`` callback: while it is pending on the connection, the chain picked
    with it is still the current transaction's. Django drops pending callbacks when the
    transaction commits or rolls back, and those registered inside a savepoint when that savepoint
    is rolled back — exactly when PostgreSQL releases a row lock taken there, too."""

    __slots__ = ()

    def __call__(self) -> None:
        return None


@dataclass
class _ConnectionChain:
    next_start: int  # where the next transaction of this connection starts looking
    chain: int | None = None  # the chain of the current transaction, valid while marker pends
    marker: _ChainMarker | None = None


# Per connection object (each thread has its own); weak, so a finished thread's state goes with it.
_by_connection: weakref.WeakKeyDictionary[BaseDatabaseWrapper, _ConnectionChain] = (
    weakref.WeakKeyDictionary()
)
_connection_numbers = itertools.count()


def _connection_chain(connection: BaseDatabaseWrapper) -> _ConnectionChain:
    state = _by_connection.get(connection)
    if state is None:
        # Concurrent connections start at different chains: a counter per process, shifted by
        # the process id so that the server's processes do not all start at chain 0.
        state = _ConnectionChain(next_start=os.getpid() + next(_connection_numbers))
        _by_connection[connection] = state
    return state


def _held_chain(connection: BaseDatabaseWrapper, state: _ConnectionChain) -> int | None:
    marker = state.marker
    if (
        state.chain is not None
        and marker is not None
        and connection.in_atomic_block
        and any(entry[1] is marker for entry in connection.run_on_commit)
    ):
        return state.chain
    state.chain = state.marker = None
    return None


def lock_transaction_chain() -> int:
    """The chain the current transaction appends its audit events to, its head row locked.

    The first call in a transaction picks a chain and locks it until the transaction ends (a
    rolled-back savepoint that picked it gives it up); later calls return the same chain. Call it
    inside ``transaction.atomic()``. A service that takes other row locks before writing its audit
    event (the ledger's entry counter) calls this first, so the lock order is "chain, then the
    rest" everywhere.
    """
    chain, _ = _lock_chain()
    return chain


def _lock_chain() -> tuple[int, AuditChain | None]:
    """(the transaction's chain, its head row when it was locked just now, else None)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise TransactionManagementError(
            "lock_transaction_chain() must be called inside transaction.atomic()"
        )
    state = _connection_chain(connection)
    held = _held_chain(connection, state)
    if held is not None:
        return held, None
    count = chain_count()
    start = state.next_start % count
    # The connection's next transaction starts one chain further on, so one busy connection
    # spreads its events over the chains too (and tests on one connection see several chains).
    state.next_start = start + 1
    if connection.vendor == "postgresql":
        head = _lock_free_chain(connection, count, start)
    else:
        # SQLite runs one write transaction at a time (IMMEDIATE): no chain is ever held by another.
        head, _ = AuditChain.objects.get_or_create(id=start)
    marker = _ChainMarker()
    transaction.on_commit(marker, using=connection.alias)
    state.chain, state.marker = head.id, marker
    return head.id, head


def _free_chain(count: int, start: int) -> AuditChain | None:
    """The first head no other transaction holds, in the order start, start+1, … (mod count),
    locked — without waiting; None when every one is held."""
    return (
        AuditChain.objects.filter(id__lt=count)
        .alias(position=Mod(F("id") + (count - start), count))
        .order_by("position")
        .select_for_update(skip_locked=True)
        .first()
    )


def _lock_free_chain(connection: BaseDatabaseWrapper, count: int, start: int) -> AuditChain:
    head = _free_chain(count, start)
    if head is None and AuditChain.objects.filter(id__lt=count).count() < count:
        # The heads come from migration core 0003, and from here when some are missing (a
        # flushed test database, HUZHU_AUDIT_CHAINS raised): inserting an existing one is a no-op.
        AuditChain.objects.bulk_create(
            [AuditChain(id=i) for i in range(count)], ignore_conflicts=True
        )
        head = _free_chain(count, start)
    if head is None:
        # Every chain is held: queue on one, chosen by the backend's pid so that waiters spread.
        # This transaction holds no chain yet, so this wait can never close a cycle of chains.
        pid = connection.connection.info.backend_pid
        head = AuditChain.objects.select_for_update().get(id=pid % count)
    return head


def record_event(
    *,
    actor: User | None,
    event: Event | str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
    organisation_id: int | None = None,
    actor_username: str = "",
) -> AuditEvent:
    """Append one event to the transaction's chain, in the caller's transaction (or a new one).

    ``detail`` must never hold sensitive values (ID numbers, phones, accounts, diagnoses).
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    info = current_request.get()
    # No savepoint of its own inside the caller's transaction: two round trips less per event,
    # and a failed audit write dooms the caller's transaction instead of letting it catch the
    # error and commit its change without the event (S8: together or not at all).
    with transaction.atomic(savepoint=False):
        chain, head = _lock_chain()
        if head is None:  # locked earlier in this transaction: read its current state
            head = AuditChain.objects.get(id=chain)
        org_id = organisation_id
        org_path = ""
        role = ""
        username = actor_username
        if actor is not None and actor.pk is not None:
            username = actor.username
            role = ",".join(sorted(actor.role_codes()))
            if org_id is None:
                org_id = actor.organisation_id
            if actor.organisation_id is not None and actor.organisation is not None:
                org_path = actor.organisation.path
        row = AuditEvent(
            chain=chain,
            seq=head.last_seq + 1,
            occurred_at=timezone.now(),
            actor_id=actor.pk if actor is not None else None,
            actor_username=username,
            actor_role=role,
            organisation_id=org_id,
            organisation_path=org_path,
            ip=info.ip,
            channel=info.channel,
            event=str(event),
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            detail=detail or {},
            prev_hash=head.last_hash,
        )
        row.hash = compute_hash(row)
        row.save(force_insert=True)
        AuditChain.objects.filter(id=chain).update(last_seq=row.seq, last_hash=row.hash)
    return row


# --- verification ------------------------------------------------------------------------------
MISSING = "第 {seq} 条审计事件缺失（已被删除）"
OUT_OF_ORDER = "序号不在链内（该条被插入）"
PREV_MISMATCH = "前序哈希不一致（前一条被修改或删除）"
HASH_MISMATCH = "内容与哈希不一致（该条被修改）"
TAIL_DELETED = "链尾与链头记录不一致（最新的事件被删除）"
TAIL_MISMATCH = "与链头记录的哈希不一致（最新的事件被修改，或链头被改动）"
BEYOND_HEAD = "链头记录之后多出的事件（被插入，或链头被改回）"
NO_HEAD = "该链没有链头记录（链头被删除，或事件被插入）"


@dataclass(frozen=True)
class ChainProblem:
    """The first bad row of one chain (``event_id`` None: the row is missing at the chain's end)."""

    event_id: int | None
    seq: int
    message: str
    chain: int = 0

    def describe(self) -> str:
        where = f"事件 id={self.event_id}" if self.event_id is not None else "链尾"
        return f"第 {self.chain} 号链第 {self.seq} 条（{where}）：{self.message}"


def _head(chain: int) -> tuple[int, str] | None:
    return AuditChain.objects.filter(id=chain).values_list("last_seq", "last_hash").first()


def _check_row(chain: int, row: AuditEvent, seq: int, prev: str) -> ChainProblem | None:
    if row.seq > seq:
        return ChainProblem(row.pk, row.seq, MISSING.format(seq=seq), chain)
    if row.seq < seq:
        return ChainProblem(row.pk, row.seq, OUT_OF_ORDER, chain)
    if row.prev_hash != prev:
        return ChainProblem(row.pk, row.seq, PREV_MISMATCH, chain)
    if compute_hash(row) != row.hash:
        return ChainProblem(row.pk, row.seq, HASH_MISMATCH, chain)
    return None


def _check_chain(chain: int) -> ChainProblem | None:
    """Walk one chain in seq order up to its head, then past it while the head moves on.

    The head is read BEFORE the rows: an event and its head update commit together, so every row
    up to that head is visible to the later query, and a row beyond it is either appended since
    (the head, read again, covers it: checked in the next pass) or not covered by any head — an
    insertion. Verification can run while events are being written.
    """
    head = _head(chain)
    if head is None:
        first = AuditEvent.objects.filter(chain=chain).order_by("seq").first()
        return None if first is None else ChainProblem(first.pk, first.seq, NO_HEAD, chain)
    seq, prev = 1, GENESIS_HASH
    last: AuditEvent | None = None
    while True:
        head_seq, head_hash = head
        rows = AuditEvent.objects.filter(chain=chain, seq__lte=head_seq)
        if last is not None:  # (no lower bound at first: a row numbered below 1 is checked too)
            rows = rows.filter(seq__gt=last.seq)
        for row in rows.order_by("seq").iterator(chunk_size=5000):
            problem = _check_row(chain, row, seq, prev)
            if problem is not None:
                return problem
            last, seq, prev = row, row.seq + 1, row.hash
        if seq - 1 != head_seq:
            return ChainProblem(None, seq, TAIL_DELETED, chain)
        if prev != head_hash:
            return ChainProblem(last.pk if last else None, head_seq, TAIL_MISMATCH, chain)
        beyond = AuditEvent.objects.filter(chain=chain, seq__gt=head_seq).order_by("seq").first()
        if beyond is None:
            return None
        newer = _head(chain)
        if newer is None or beyond.seq > newer[0]:
            return ChainProblem(beyond.pk, beyond.seq, BEYOND_HEAD, chain)
        head = newer


def iter_problems() -> Iterator[ChainProblem]:
    """The first bad row of every broken chain: chains in order of their number, then events of
    a chain that has no head at all."""
    checked: set[int] = set()
    while True:
        pending = list(
            AuditChain.objects.exclude(id__in=checked).order_by("id").values_list("id", flat=True)
        )
        for chain in pending:
            checked.add(chain)
            problem = _check_chain(chain)
            if problem is not None:
                yield problem
        orphan = AuditEvent.objects.exclude(chain__in=checked).order_by("chain", "seq").first()
        if orphan is None:
            return
        if not AuditChain.objects.filter(id=orphan.chain).exists():
            checked.add(orphan.chain)
            yield ChainProblem(orphan.pk, orphan.seq, NO_HEAD, orphan.chain)
        # else its head was created while we were checking: the next round checks that chain.


def first_problem() -> ChainProblem | None:
    return next(iter_problems(), None)
