"""Writes of the member portal: activation codes, activation, login attempts, corrections,
consents and the audit of downloads. Each outer service is one durable transaction with its audit
event (S8); events a member causes name the member (``member:<id>``) as the actor, never an ID
number.

Login and activation never raise for a wrong identifier or secret: the failure is counted (and may
lock) in the same committed transaction, and the caller gets an outcome to answer with. The answer
is the same whether or not the ID number has an account (S2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from huzhu.core.audit import Event, record_event, register_event_labels
from huzhu.core.errors import ErrorCode, ErrorCollector
from huzhu.core.ids import (
    InvalidIdentifier,
    mask_bank_account,
    mask_phone,
    validate_bank_account,
    validate_mobile,
)
from huzhu.members.models import ConsentChannel, ConsentPurpose, Member
from huzhu.members.selectors import members_for
from huzhu.members.services import grant_consent, id_number_index, withdraw_consent
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import UNMASKABLE_FIELDS, Perm
from huzhu.portal.models import (
    SENSITIVE_FIELDS,
    ActivationCode,
    CorrectionField,
    CorrectionRequest,
    CorrectionStatus,
    FailureCounter,
    LoginThrottle,
    MemberAccount,
)


class PortalEvent(StrEnum):
    LOGIN = "portal.login"
    LOGIN_FAILED = "portal.login_failed"
    LOCKOUT = "portal.lockout"
    LOGOUT = "portal.logout"
    CODE_ISSUED = "portal.activation_code_issue"
    ACTIVATED = "portal.activate"
    ACTIVATION_FAILED = "portal.activate_failed"
    PROFILE_VIEWED = "portal.profile_view"
    DATA_DOWNLOADED = "portal.data_download"
    RECEIPT_DOWNLOADED = "portal.receipt_download"
    CORRECTION_REQUESTED = "portal.correction_request"
    CORRECTION_HANDLED = "portal.correction_handle"


register_event_labels(
    {
        PortalEvent.LOGIN: "会员登录成功",
        PortalEvent.LOGIN_FAILED: "会员登录失败",
        PortalEvent.LOCKOUT: "会员账号锁定",
        PortalEvent.LOGOUT: "会员退出登录",
        PortalEvent.CODE_ISSUED: "开具会员服务激活码",
        PortalEvent.ACTIVATED: "会员激活账号",
        PortalEvent.ACTIVATION_FAILED: "会员激活失败",
        PortalEvent.PROFILE_VIEWED: "会员查看本人信息",
        PortalEvent.DATA_DOWNLOADED: "会员下载本人数据",
        PortalEvent.RECEIPT_DOWNLOADED: "会员下载电子票据",
        PortalEvent.CORRECTION_REQUESTED: "会员提交更正申请",
        PortalEvent.CORRECTION_HANDLED: "处理会员更正申请",
    }
)

ACTIVATION_VALIDITY = timedelta(days=7)
# Unambiguous characters (no 0/O, 1/I/L): the code is read off paper and typed by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12  # 31^12 ≈ 2^59, and 5 tries per 15 minutes before the account locks
PASSWORD_MIN_LENGTH = 10
MAX_PENDING_CORRECTIONS = 5


def member_actor(member: Member) -> str:
    """How the audit log names a member who acts in the portal (never an ID number)."""
    return f"member:{member.pk}"


# --- activation codes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedCode:
    member: Member
    code: str  # shown once on the printed letter, stored only as a hash
    expires_at: datetime

    @property
    def grouped(self) -> str:
        return "-".join(self.code[i : i + 4] for i in range(0, len(self.code), 4))


def normalize_code(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())


def _account_for_update(member: Member) -> MemberAccount:
    account, _ = MemberAccount.objects.get_or_create(
        member=member, defaults={"password": make_password(None)}
    )
    return MemberAccount.objects.select_for_update().get(pk=account.pk)


@transaction.atomic(durable=True)
def issue_activation_code(*, acting_user: User, member: Member) -> IssuedCode:
    """A one-time activation code for ``member`` (a clerk of the member's union subtree).

    Opens the member's portal account if needed; codes still open are revoked (only the newest
    letter works). Re-activating later sets a new password and ends the member's sessions.
    """
    require(acting_user, Perm.MEMBER_EDIT)
    if not members_for(acting_user).filter(pk=member.pk).exists():
        raise NotPermitted("职工不存在")
    if not member.is_active:
        errors = ErrorCollector()
        errors.add("member", "该职工已停用，不能开通会员服务", ErrorCode.STATE)
        errors.raise_if_any()
    _account_for_update(member)
    now = timezone.now()
    member.portal_activation_codes.filter(used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=now
    )
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + ACTIVATION_VALIDITY
    ActivationCode.objects.create(
        member=member,
        code_hash=make_password(code),
        issued_by=acting_user,
        issued_at=now,
        expires_at=expires_at,
    )
    record_event(
        actor=acting_user,
        event=PortalEvent.CODE_ISSUED,
        obj=member,
        organisation_id=member.union_id,
        detail={"expires": timezone.localdate(expires_at).isoformat()},
    )
    return IssuedCode(member=member, code=code, expires_at=expires_at)


def validate_member_password(password: str, id_number: str) -> list[str]:
    """The member password policy: ≥ 10 characters, 2 of 4 character classes, not a common
    password, not containing the ID number (or its last six characters)."""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"密码至少{PASSWORD_MIN_LENGTH}位")
    classes = [
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(classes) < 2:
        problems.append("密码须包含大写字母、小写字母、数字、符号中的至少两类")
    number = id_number.strip().upper()
    lowered = password.upper()
    if number and (number in lowered or (len(number) >= 6 and number[-6:] in lowered)):
        problems.append("密码不能包含身份证号码（或其后六位）")
    try:
        CommonPasswordValidator().validate(password)
    except ValidationError:
        problems.append("密码过于常见，请换一个")
    return problems


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    LOCKED = "locked"


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    account: MemberAccount | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


def _counter_for(index: str, account: MemberAccount | None) -> FailureCounter:
    if account is not None:
        return account
    LoginThrottle.objects.get_or_create(key=index)
    return LoginThrottle.objects.select_for_update().get(key=index)


def _audit_attempt(
    account: MemberAccount | None, event: PortalEvent, detail: dict[str, str]
) -> None:
    member = account.member if account is not None else None
    record_event(
        actor=None,
        actor_username=member_actor(member) if member is not None else "",
        event=event,
        obj=account,
        object_type="" if account is not None else "portal.memberaccount",
        organisation_id=member.union_id if member is not None else None,
        outcome="failure",
        detail=detail,
    )


def _fail(
    counter: FailureCounter,
    now: datetime,
    *,
    event: PortalEvent,
    account: MemberAccount | None,
    reason: str,
) -> AttemptResult:
    """Count a failure, audit it (and the lock it causes), answer FAILED or LOCKED."""
    locked = counter.count_failure(now)
    if isinstance(counter, LoginThrottle):
        counter.updated_at = now
    counter.save()
    _audit_attempt(account, event, {"reason": reason})
    if locked:
        _audit_attempt(account, PortalEvent.LOCKOUT, {"after": event.value})
        return AttemptResult(Outcome.LOCKED)
    return AttemptResult(Outcome.FAILED)


def _find_account(id_number: str) -> tuple[str, MemberAccount | None]:
    index = id_number_index(id_number)
    account = (
        MemberAccount.objects.select_for_update(of=("self",))
        .select_related("member")
        .filter(member__id_number_index=index)
        .first()
    )
    return index, account


@transaction.atomic(durable=True)
def authenticate_member(*, id_number: str, password: str) -> AttemptResult:
    """Check an ID number and password (S2). Every path hashes the password once, so the time
    taken does not tell whether the ID number has an account."""
    now = timezone.now()
    index, account = _find_account(id_number)
    counter = _counter_for(index, account)
    if counter.is_locked(now):
        make_password(password)
        _audit_attempt(account, PortalEvent.LOGIN_FAILED, {"reason": "locked"})
        return AttemptResult(Outcome.LOCKED)
    if account is None:
        make_password(password)
        return _fail(counter, now, event=PortalEvent.LOGIN_FAILED, account=None, reason="unknown")
    usable = account.is_activated and account.is_active and account.member.is_active
    if not usable:
        make_password(password)
        return _fail(
            counter, now, event=PortalEvent.LOGIN_FAILED, account=account, reason="inactive"
        )

    def upgrade(raw: str) -> None:
        account.password = make_password(raw)

    if not check_password(password, account.password, setter=upgrade):
        return _fail(
            counter, now, event=PortalEvent.LOGIN_FAILED, account=account, reason="password"
        )
    account.clear_failures()
    account.last_login_at = now
    account.save()
    record_event(
        actor=None,
        actor_username=member_actor(account.member),
        event=PortalEvent.LOGIN,
        obj=account,
        organisation_id=account.member.union_id,
    )
    return AttemptResult(Outcome.OK, account)


@transaction.atomic(durable=True)
def activate_account(*, id_number: str, code: str, password: str) -> AttemptResult:
    """Set the member's password with a one-time activation code.

    The password policy is checked first (``InvalidInput``, nothing written: it needs only what
    was typed). A wrong ID number, a wrong, used, revoked or expired code all answer FAILED alike
    and count towards the lock like a wrong password.
    """
    problems = validate_member_password(password, id_number)
    if problems:
        errors = ErrorCollector()
        for problem in problems:
            errors.add("password", problem)
        errors.raise_if_any()
    now = timezone.now()
    index, account = _find_account(id_number)
    counter = _counter_for(index, account)
    if counter.is_locked(now):
        make_password(code)
        _audit_attempt(account, PortalEvent.ACTIVATION_FAILED, {"reason": "locked"})
        return AttemptResult(Outcome.LOCKED)
    normalized = normalize_code(code)
    match: ActivationCode | None = None
    if account is not None and account.is_active and account.member.is_active:
        candidates = ActivationCode.objects.select_for_update().filter(
            member=account.member, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        )
        match = next((c for c in candidates if check_password(normalized, c.code_hash)), None)
    else:
        make_password(code)
    if match is None:
        return _fail(
            counter, now, event=PortalEvent.ACTIVATION_FAILED, account=account, reason="code"
        )
    assert account is not None
    match.used_at = now
    match.save(update_fields=["used_at"])
    account.password = make_password(password)
    account.activated_at = account.activated_at or now
    account.password_changed_at = now
    account.clear_failures()
    account.save()
    record_event(
        actor=None,
        actor_username=member_actor(account.member),
        event=PortalEvent.ACTIVATED,
        obj=account,
        organisation_id=account.member.union_id,
    )
    return AttemptResult(Outcome.OK, account)


def record_logout(*, member: Member) -> None:
    with transaction.atomic(durable=True):
        record_event(
            actor=None,
            actor_username=member_actor(member),
            event=PortalEvent.LOGOUT,
            obj=member,
            organisation_id=member.union_id,
        )


# --- what the member sees and downloads (audited: plain personal data, S8) -----------------------
def record_member_access(
    *, member: Member, event: PortalEvent, obj: object = None, detail: dict[str, str] | None = None
) -> None:
    """Audit a member seeing or downloading their own data (profile, data export, a receipt)."""
    with transaction.atomic(durable=True):
        record_event(
            actor=None,
            actor_username=member_actor(member),
            event=event,
            obj=obj if obj is not None else member,  # type: ignore[arg-type]
            organisation_id=member.union_id,
            detail=detail or {},
        )


# --- consent (S12): the members services, acted on by the member -----------------------------
@transaction.atomic(durable=True)
def member_grant_consent(*, member: Member) -> bool:
    """Grant the medical-data consent through the portal; False when one is already active."""
    already = member.consents.filter(
        purpose=ConsentPurpose.MEDICAL_DATA, withdrawn_at__isnull=True
    ).exists()
    if already:
        return False
    grant_consent(
        acting_user=None,
        member=member,
        channel=ConsentChannel.PORTAL,
        purpose=ConsentPurpose.MEDICAL_DATA,
        actor_username=member_actor(member),
    )
    return True


@transaction.atomic(durable=True)
def member_withdraw_consent(*, member: Member) -> bool:
    """Withdraw the medical-data consent; False when none was active."""
    count = withdraw_consent(
        acting_user=None,
        member=member,
        purpose=ConsentPurpose.MEDICAL_DATA,
        actor_username=member_actor(member),
    )
    return count > 0


# --- correction requests (S13) -------------------------------------------------------------------
def _clean_value(errors: ErrorCollector, field: str, value: str) -> tuple[str, str]:
    """(the value to store, its masked form) for the field; errors named ``value``."""
    text = value.strip()
    if not text:
        errors.add("value", "请填写正确的内容", ErrorCode.REQUIRED)
        return "", ""
    if field == CorrectionField.PHONE:
        try:
            phone = validate_mobile(text)
        except InvalidIdentifier as exc:
            errors.add("value", str(exc))
            return "", ""
        return phone, mask_phone(phone)
    if field == CorrectionField.BANK_ACCOUNT:
        try:
            account = validate_bank_account(text)
        except InvalidIdentifier as exc:
            errors.add("value", str(exc))
            return "", ""
        return account, mask_bank_account(account)
    limits = {CorrectionField.NAME: 50, CorrectionField.BANK_NAME: 60, CorrectionField.OTHER: 200}
    limit = limits.get(CorrectionField(field), 200)
    if len(text) > limit:
        errors.add("value", f"内容不能超过{limit}个字")
    return text, ""


@transaction.atomic(durable=True)
def request_correction(*, member: Member, field: str, value: str, reason: str) -> CorrectionRequest:
    errors = ErrorCollector()
    if field not in CorrectionField.values:
        errors.add("field", "请选择要更正的项目", ErrorCode.REQUIRED)
        stored, masked = "", ""
    else:
        stored, masked = _clean_value(errors, field, value)
    reason = reason.strip()
    if len(reason) < 4:
        errors.add("reason", "请说明更正理由（至少4个字）", ErrorCode.REQUIRED)
    elif len(reason) > 500:
        errors.add("reason", "更正理由不能超过500个字")
    # Locks the member row, so that two parallel requests cannot pass the limit together.
    Member.objects.select_for_update().filter(pk=member.pk).values_list("pk").first()
    pending = CorrectionRequest.objects.filter(member=member, status=CorrectionStatus.PENDING)
    if pending.count() >= MAX_PENDING_CORRECTIONS:
        errors.add(
            "field",
            f"您已有{MAX_PENDING_CORRECTIONS}条待处理的更正申请，请等工会处理后再提交",
            ErrorCode.STATE,
        )
    errors.raise_if_any()
    correction = CorrectionRequest(member=member, field=field, reason=reason)
    if field == CorrectionField.PHONE:
        correction.requested_phone_enc = stored
        correction.requested_masked = masked
    elif field == CorrectionField.BANK_ACCOUNT:
        correction.requested_bank_account_enc = stored
        correction.requested_masked = masked
    else:
        correction.requested_value = stored
    correction.save()
    record_event(
        actor=None,
        actor_username=member_actor(member),
        event=PortalEvent.CORRECTION_REQUESTED,
        obj=correction,
        organisation_id=member.union_id,
        detail={"member": member.pk, "field": field},
    )
    return correction


def _check_scope(acting_user: User, correction: CorrectionRequest, perm: Perm) -> None:
    require(acting_user, perm)
    if not members_for(acting_user).filter(pk=correction.member_id).exists():
        raise NotPermitted("更正申请不存在")


@transaction.atomic(durable=True)
def handle_correction(
    *, acting_user: User, correction: CorrectionRequest, status: str, note: str
) -> CorrectionRequest:
    """Mark a pending request done (the clerk made the change in the member's edit screen) or
    rejected (with the reason the member will read)."""
    _check_scope(acting_user, correction, Perm.MEMBER_EDIT)
    locked = CorrectionRequest.objects.select_for_update().get(pk=correction.pk)
    errors = ErrorCollector()
    if locked.status != CorrectionStatus.PENDING:
        errors.add("status", "该申请已处理，不能再次处理", ErrorCode.STATE)
    if status not in (CorrectionStatus.DONE, CorrectionStatus.REJECTED):
        errors.add("status", "请选择处理结果：已更正或未予更正", ErrorCode.REQUIRED)
    note = note.strip()
    if status == CorrectionStatus.REJECTED and len(note) < 4:
        errors.add(
            "note", "未予更正时须说明原因（至少4个字），职工会看到该说明", ErrorCode.REQUIRED
        )
    if len(note) > 500:
        errors.add("note", "处理说明不能超过500个字")
    errors.raise_if_any()
    locked.status = status
    locked.note = note
    locked.handled_by = acting_user
    locked.handled_at = timezone.now()
    locked.save(update_fields=["status", "note", "handled_by", "handled_at"])
    record_event(
        actor=acting_user,
        event=PortalEvent.CORRECTION_HANDLED,
        obj=locked,
        organisation_id=correction.member.union_id,
        detail={"member": locked.member_id, "field": locked.field, "status": status},
    )
    return locked


def correction_revealable(acting_user: User, correction: CorrectionRequest) -> bool:
    """Whether this user may see the requested phone/account in plain text (S7 field matrix)."""
    if correction.field not in SENSITIVE_FIELDS or not acting_user.has_perm_code(
        Perm.MEMBER_UNMASK
    ):
        return False
    allowed: set[str] = set()
    for role in acting_user.role_codes():
        allowed |= UNMASKABLE_FIELDS.get(role, frozenset())
    return correction.field in allowed


def reveal_correction_value(
    *, acting_user: User, correction: CorrectionRequest, reason: str
) -> str:
    """The requested phone/account in plain text, once, for the clerk who makes the change; the
    stated reason is audited (S8, S11)."""
    _check_scope(acting_user, correction, Perm.MEMBER_EDIT)
    errors = ErrorCollector()
    if not correction_revealable(acting_user, correction):
        errors.add("field", "您的角色无权查看该项明文")
    if len(reason.strip()) < 4:
        errors.add("reason", "请填写查看原因（至少4个字）", ErrorCode.REQUIRED)
    errors.raise_if_any()
    with transaction.atomic(durable=True):
        record_event(
            actor=acting_user,
            event=Event.MEMBER_UNMASKED,
            obj=correction,
            organisation_id=correction.member.union_id,
            detail={
                "member": correction.member_id,
                "field": f"correction.{correction.field}",
                "reason": reason.strip()[:200],
            },
        )
    fresh = CorrectionRequest.objects.get(pk=correction.pk)
    value = (
        fresh.requested_phone_enc
        if correction.field == CorrectionField.PHONE
        else fresh.requested_bank_account_enc
    )
    return str(value or "")
