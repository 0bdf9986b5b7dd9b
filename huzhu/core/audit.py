"""Writing and verifying audit events (S8).

``record_event`` runs inside the caller's transaction (the change and its audit commit together or
not at all). Each event's hash covers its fields and the previous event's hash; ``verify_chain``
recomputes every hash and finds an edited, inserted or deleted row. The database refuses UPDATE and
DELETE on the table (triggers on both SQLite and PostgreSQL, migration core 0002).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
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
    """Append one event to the chain, in the caller's transaction (or a new one).

    ``detail`` must never hold sensitive values (ID numbers, phones, accounts, diagnoses).
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    info = current_request.get()
    with transaction.atomic():
        head, _ = AuditChain.objects.select_for_update().get_or_create(id=0)
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
            chain=head.id,
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
        AuditChain.objects.filter(id=head.id).update(last_seq=row.seq, last_hash=row.hash)
    return row


@dataclass(frozen=True)
class ChainProblem:
    event_id: int | None
    seq: int
    message: str


def iter_problems() -> Iterator[ChainProblem]:
    for head in AuditChain.objects.order_by("id"):
        expected_prev = "0" * 64
        expected_seq = 1
        rows = AuditEvent.objects.filter(chain=head.id).order_by("seq").iterator(chunk_size=5000)
        for row in rows:
            if row.seq != expected_seq:
                yield ChainProblem(row.pk, row.seq, f"第 {expected_seq} 条审计事件缺失（已被删除）")
                return
            if row.prev_hash != expected_prev:
                yield ChainProblem(row.pk, row.seq, "前序哈希不一致（前一条被修改或删除）")
                return
            if compute_hash(row) != row.hash:
                yield ChainProblem(row.pk, row.seq, "内容与哈希不一致（该条被修改）")
                return
            expected_prev = row.hash
            expected_seq += 1
        if expected_seq - 1 != head.last_seq or expected_prev != head.last_hash:
            yield ChainProblem(None, expected_seq, "链尾与链头记录不一致（最新的事件被删除）")
            return


def first_problem() -> ChainProblem | None:
    return next(iter_problems(), None)
