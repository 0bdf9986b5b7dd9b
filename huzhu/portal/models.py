"""Member self-service (会员服务门户, S4, S12, S13; R11 e-receipts).

Members are not staff users (``huzhu.orgs.models.User`` is staff only): a member logs in with
their ID number and a password of their own, set once with a one-time activation code that a union
clerk hands over on paper. Shape:

- ``MemberAccount``: one per member; the Argon2id password hash (``make_password``), when it was
  activated and last used, and the failed-attempt counter with its lock (5 failures within
  15 minutes lock the account for 30 minutes).
- ``LoginThrottle``: the same counter for identifiers that have no account, keyed by the blind
  index of what was typed, so an unknown ID number is answered and locked exactly like a known one
  (S2: identical answers).
- ``ActivationCode``: the hash of a one-time code (never the code), valid for 7 days, with the clerk
  who issued it; a new code revokes the ones still open.
- ``CorrectionRequest``: a member's request to correct their data (S13), with the new value
  encrypted when it is a phone number or bank account (S10), handled by a clerk.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.hashers import is_password_usable
from django.db import models
from django.db.models import Q
from django.utils import timezone

from huzhu.core.crypto import EncryptedTextField
from huzhu.members.models import Member
from huzhu.orgs.models import User

LOCK_THRESHOLD = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=30)


class FailureCounter(models.Model):
    """Failed attempts within the window and the lock they lead to (S2)."""

    failed_attempts = models.PositiveSmallIntegerField("连续失败次数", default=0)
    first_failed_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField("锁定至", null=True, blank=True)

    class Meta:
        abstract = True

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def count_failure(self, now: datetime) -> bool:
        """Count one failure; True when it locks the account now. The caller saves."""
        if self.first_failed_at is None or now - self.first_failed_at > FAILURE_WINDOW:
            self.failed_attempts = 0
            self.first_failed_at = now
        self.failed_attempts += 1
        if self.failed_attempts >= LOCK_THRESHOLD:
            self.locked_until = now + LOCK_DURATION
            self.failed_attempts = 0
            self.first_failed_at = None
            return True
        return False

    def clear_failures(self) -> None:
        self.failed_attempts = 0
        self.first_failed_at = None
        self.locked_until = None


class MemberAccount(FailureCounter):
    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, related_name="portal_account", verbose_name="职工"
    )
    # Argon2id via make_password; unusable ("!…") until the member activates the account.
    password = models.CharField(max_length=128)
    activated_at = models.DateTimeField("激活时间", null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    last_login_at = models.DateTimeField("最近登录", null=True, blank=True)
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "会员服务账号"

    def __str__(self) -> str:
        return f"会员服务账号 #{self.pk}"

    @property
    def is_activated(self) -> bool:
        return self.activated_at is not None and is_password_usable(self.password)


class LoginThrottle(FailureCounter):
    """Failures for an identifier without an account; ``key`` is the typed ID number's blind index
    (never the number itself)."""

    key = models.CharField(max_length=32, unique=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "登录失败计数"


class ActivationCode(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="portal_activation_codes"
    )
    code_hash = models.CharField(max_length=128)  # make_password of the normalised code
    issued_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField("有效期至")
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "会员服务激活码"
        indexes = [models.Index(fields=["member", "used_at", "revoked_at"], name="portal_code_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("issued_at")), name="portal_code_expiry_after"
            )
        ]

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > now


class CorrectionField(models.TextChoices):
    NAME = "name", "姓名"
    PHONE = "phone", "手机号码"
    BANK_ACCOUNT = "bank_account", "银行账号"
    BANK_NAME = "bank_name", "开户银行"
    OTHER = "other", "其他"


#: Fields whose requested value is personal data: stored encrypted, shown masked (S10, S11).
SENSITIVE_FIELDS = frozenset({CorrectionField.PHONE, CorrectionField.BANK_ACCOUNT})


class CorrectionStatus(models.TextChoices):
    PENDING = "pending", "待处理"
    DONE = "done", "已更正"
    REJECTED = "rejected", "未予更正"


class CorrectionRequest(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="correction_requests", verbose_name="职工"
    )
    field = models.CharField("更正项目", max_length=16, choices=CorrectionField.choices)
    # The requested value: plain for a name, a bank's name or free text; encrypted for a phone
    # number or a bank account (with a masked copy for lists).
    requested_value = models.CharField("更正为", max_length=200, blank=True)
    requested_phone_enc = EncryptedTextField(null=True, blank=True)
    requested_bank_account_enc = EncryptedTextField(null=True, blank=True)
    requested_masked = models.CharField(max_length=32, blank=True)
    reason = models.CharField("更正理由", max_length=500)
    status = models.CharField(
        "状态", max_length=10, choices=CorrectionStatus.choices, default=CorrectionStatus.PENDING
    )
    created_at = models.DateTimeField("申请时间", default=timezone.now)
    handled_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    handled_at = models.DateTimeField("处理时间", null=True, blank=True)
    note = models.CharField("处理说明", max_length=500, blank=True)

    class Meta:
        verbose_name = "更正申请"
        indexes = [
            models.Index(fields=["member", "id"], name="portal_corr_member_idx"),
            models.Index(fields=["status", "id"], name="portal_corr_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(field__in=CorrectionField.values), name="portal_corr_field_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=CorrectionStatus.values), name="portal_corr_status_valid"
            ),
            models.CheckConstraint(
                condition=(Q(status=CorrectionStatus.PENDING) & Q(handled_at__isnull=True))
                | (~Q(status=CorrectionStatus.PENDING) & Q(handled_at__isnull=False)),
                name="portal_corr_handled_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"更正申请 #{self.pk}"

    @property
    def shown_value(self) -> str:
        """The requested value as lists show it (masked for a phone or an account)."""
        return self.requested_masked if self.field in SENSITIVE_FIELDS else self.requested_value
