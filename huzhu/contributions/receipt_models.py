"""Fiscal electronic receipts for contributions (R11; RULES.md §6 "Receipts").

A receipt (财政电子票据, 财综〔2017〕32号) carries a code (票据代码), a number (票据号码)
and a check code (校验码). The finance department's platform allocates number ranges (号段) to
an issuing union; we record them (``ReceiptRange``) and never issue outside them. Numbers are
gapless per range: the range row is locked while a number is taken (see ``receipt_services``).

Receipt code layout used here (8 digits, the 财政电子票据 data standard's layout):

    RR CC KK YY
    |  |  |  +- year: the last two digits of the receipt year (2026 → 26)
    |  |  +---- kind (票据种类) as given by the finance platform
    |  +------- class (票据分类) as given by the finance platform
    +---------- region: the first two digits of the province's GB/T 2260 code (湖南 43)

Class and kind are whatever the finance platform allocated (the system checks only that they are
digits); region and year are checked against the issuer and the range's year.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from huzhu.core.money import format_fen
from huzhu.orgs.models import Union, Unit

RECEIPT_NUMBER_MAX = 9_999_999_999  # 10 digits


class PayerKind(models.TextChoices):
    INDIVIDUAL = "individual", "个人"
    UNIT = "unit", "单位"
    UNION = "union", "工会"


class ReceiptStatus(models.TextChoices):
    ISSUED = "issued", "有效"
    VOIDED = "voided", "已作废"


class ReceiptRange(models.Model):
    """A range of receipt numbers (号段) allocated by the finance platform to one issuing union."""

    issuer = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="receipt_ranges")
    issuer_path = models.CharField(max_length=255, editable=False)
    code = models.CharField("票据代码", max_length=8)
    year = models.PositiveSmallIntegerField("年度")
    first_number = models.BigIntegerField("起始号码")
    last_number = models.BigIntegerField("终止号码")
    # The next number to issue; last_number + 1 once the range is used up.
    next_number = models.BigIntegerField("下一号码")
    platform_reference = models.CharField("财政平台分配批次号", max_length=64, blank=True)
    note = models.CharField("备注", max_length=200, blank=True)
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    allocated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "票据号段"
        constraints = [
            models.CheckConstraint(
                condition=Q(first_number__gte=1)
                & Q(last_number__gte=F("first_number"))
                & Q(last_number__lte=RECEIPT_NUMBER_MAX),
                name="receipt_range_bounds",
            ),
            models.CheckConstraint(
                condition=Q(next_number__gte=F("first_number"))
                & Q(next_number__lte=F("last_number") + 1),
                name="receipt_range_next_within",
            ),
            models.UniqueConstraint(fields=["code", "first_number"], name="receipt_range_start"),
        ]
        indexes = [models.Index(fields=["issuer", "year", "id"], name="receipt_range_issuer_idx")]

    def __str__(self) -> str:
        return f"{self.code} {self.first_number:010d}–{self.last_number:010d}"

    @property
    def size(self) -> int:
        return self.last_number - self.first_number + 1

    @property
    def used(self) -> int:
        return self.next_number - self.first_number

    @property
    def remaining(self) -> int:
        return self.last_number - self.next_number + 1

    @property
    def is_exhausted(self) -> bool:
        return self.next_number > self.last_number

    @property
    def first_text(self) -> str:
        return f"{self.first_number:010d}"

    @property
    def last_text(self) -> str:
        return f"{self.last_number:010d}"


class Receipt(models.Model):
    """One issued receipt. Immutable once issued except for voiding (status, void fields)."""

    issuer = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="receipts")
    # Scope: staff of the issuer's subtree and of the payer's organisation subtree see a receipt.
    issuer_path = models.CharField(max_length=255, editable=False)
    payer_org_path = models.CharField(max_length=255, editable=False, blank=True)
    issuer_name = models.CharField("开票单位", max_length=100)
    receipt_range = models.ForeignKey(ReceiptRange, on_delete=models.PROTECT, related_name="+")
    code = models.CharField("票据代码", max_length=8)
    number = models.BigIntegerField("票据号码")
    year = models.PositiveSmallIntegerField("年度")
    check_code = models.CharField("校验码", max_length=6)
    payer_kind = models.CharField("交款人类型", max_length=16, choices=PayerKind.choices)
    payer_name = models.CharField("交款人", max_length=100)
    # Never a full ID number: individuals' references are stored masked (S11).
    payer_reference = models.CharField("交款人代码", max_length=32, blank=True)
    payer_member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payer_unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    payer_union = models.ForeignKey(
        Union, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    items = models.JSONField("项目")  # [{"name": "...", "amount_fen": 12000}, ...]
    total_fen = models.BigIntegerField("合计（分）")
    issued_on = models.DateField("开票日期")
    issued_at = models.DateTimeField(default=timezone.now)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    source_type = models.CharField(max_length=32)
    source_id = models.CharField(max_length=64)
    status = models.CharField(
        "状态", max_length=8, choices=ReceiptStatus.choices, default=ReceiptStatus.ISSUED
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    void_reason = models.CharField("作废原因", max_length=200, blank=True)
    reissue_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reissued_as"
    )
    # The legal original: canonical XML signed with the deployment's Ed25519 key.
    signed_xml = models.TextField()
    signing_key_id = models.CharField(max_length=16)

    class Meta:
        verbose_name = "电子票据"
        constraints = [
            models.UniqueConstraint(fields=["code", "number"], name="receipt_code_number_unique"),
            # Idempotency: one original receipt per source; reissues chain through reissue_of.
            models.UniqueConstraint(
                fields=["source_type", "source_id"],
                condition=Q(reissue_of__isnull=True),
                name="receipt_source_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ReceiptStatus.values), name="receipt_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(payer_kind__in=PayerKind.values), name="receipt_payer_kind_valid"
            ),
            models.CheckConstraint(condition=Q(total_fen__gt=0), name="receipt_total_positive"),
            models.CheckConstraint(
                condition=(Q(status=ReceiptStatus.ISSUED) & Q(voided_at__isnull=True))
                | (Q(status=ReceiptStatus.VOIDED) & Q(voided_at__isnull=False)),
                name="receipt_void_consistent",
            ),
        ]
        indexes = [
            models.Index(fields=["issuer_path", "id"], name="receipt_issuer_scope_idx"),
            models.Index(fields=["payer_org_path", "id"], name="receipt_payer_scope_idx"),
            models.Index(fields=["issuer", "year", "number"], name="receipt_issuer_year_idx"),
            models.Index(fields=["payer_unit", "id"], name="receipt_payer_unit_idx"),
            models.Index(fields=["payer_member", "id"], name="receipt_payer_member_idx"),
            models.Index(fields=["payer_union", "id"], name="receipt_payer_union_idx"),
            models.Index(fields=["source_type", "source_id", "id"], name="receipt_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code}-{self.number_text}"

    @property
    def number_text(self) -> str:
        return f"{self.number:010d}"

    @property
    def is_voided(self) -> bool:
        return self.status == ReceiptStatus.VOIDED

    @property
    def total_text(self) -> str:
        """The total in yuan with two decimals ("120.00")."""
        return format_fen(self.total_fen)


# --- upload to the finance department's platform (outbox; see ``receipt_upload``) ----------------
class UploadKind(models.TextChoices):
    ISSUE = "issue", "开具"
    VOID = "void", "作废"


class UploadStatus(models.TextChoices):
    PENDING = "pending", "待上传"
    SENT = "sent", "上传中"
    ACCEPTED = "accepted", "已接收"
    REJECTED = "rejected", "被拒收"
    FAILED = "failed", "上传失败"


class ReceiptUpload(models.Model):
    """One thing to report to the finance department's platform: an issued receipt or the void of
    one. Written in the transaction that issues or voids the receipt (an outbox): a receipt that
    exists always has its upload row, a rolled-back issue has neither."""

    receipt = models.ForeignKey(Receipt, on_delete=models.PROTECT, related_name="uploads")
    kind = models.CharField("上传类型", max_length=8, choices=UploadKind.choices)
    status = models.CharField(
        "上传状态", max_length=8, choices=UploadStatus.choices, default=UploadStatus.PENDING
    )
    # Scope: the issuer's subtree (the finance staff who issue the receipts handle their upload).
    issuer_path = models.CharField(max_length=255, editable=False)
    # Attempts since the row was queued or last retried by hand (automatic retries stop at the
    # configured maximum).
    attempts = models.PositiveIntegerField("尝试次数", default=0)
    # When the row is next due; None once finished or when automatic retries have stopped.
    next_attempt_at = models.DateTimeField("下次上传时间", null=True, blank=True)
    # The uploader that claimed the row (status "sent") and when: a claim older than the lease is
    # an uploader that crashed, and the row is sent again (the platform deduplicates).
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    platform_code = models.CharField("平台应答代码", max_length=16, blank=True)
    last_error = models.CharField("最近错误", max_length=500, blank=True)
    platform_reference = models.CharField("平台受理号", max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "票据上传任务"
        constraints = [
            models.UniqueConstraint(fields=["receipt", "kind"], name="receipt_upload_once"),
            models.CheckConstraint(
                condition=Q(kind__in=UploadKind.values), name="receipt_upload_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=UploadStatus.values), name="receipt_upload_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at", "id"], name="receipt_upload_due_idx"),
            models.Index(fields=["issuer_path", "id"], name="receipt_upload_scope_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.receipt_id} {self.status}"

    @property
    def can_retry(self) -> bool:
        return self.status in (UploadStatus.FAILED, UploadStatus.REJECTED)
