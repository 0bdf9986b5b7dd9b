"""Group enrollment (R1–R4, RULES.md §2): batches, enrollments and coverage.

A batch is one enrolling union's roster (or renewal) for one plan year. Its file is kept encrypted
(it holds ID numbers, S10) so that the preview, the error report and a resumed confirmation all read
the very bytes the clerk uploaded. An enrollment is one person's share of one plan year: the
database allows one live share per person and year (RULES.md §2 "an ID number may appear in one
active enrollment only"), whatever union enrolled them.

No health question, no waiting period, no exclusion of any disease exists anywhere in this model
(R2): coverage starts the day after payment is confirmed (never before Jan 1) and runs to Dec 31.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from huzhu.members.models import FamilyMember, Member
from huzhu.orgs.models import Union, Unit, User
from huzhu.plans.models import PlanVersion


class BatchStatus(models.TextChoices):
    DRAFT = "draft", "草稿"
    VALIDATED = "validated", "已校验"
    CONFIRMING = "confirming", "确认中"
    AWAITING_PAYMENT = "awaiting_payment", "待缴费"
    ACTIVE = "active", "已生效"
    CANCELLED = "cancelled", "已作废"


#: A batch in these states may still take a (new) roster file.
OPEN_STATUSES = frozenset({BatchStatus.DRAFT, BatchStatus.VALIDATED})


class BatchSource(models.TextChoices):
    ROSTER = "roster", "花名册"
    RENEWAL = "renewal", "续保"


class EnrollmentBatch(models.Model):
    union = models.ForeignKey(
        Union, on_delete=models.PROTECT, related_name="enrollment_batches", verbose_name="参保工会"
    )
    union_path = models.CharField(max_length=255, editable=False, db_index=True)
    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.PROTECT, related_name="+", verbose_name="保障方案"
    )
    plan_year = models.PositiveSmallIntegerField("保障年度")
    status = models.CharField(
        "状态", max_length=16, choices=BatchStatus.choices, default=BatchStatus.DRAFT
    )
    source = models.CharField(
        "来源", max_length=8, choices=BatchSource.choices, default=BatchSource.ROSTER
    )
    file_name = models.CharField("文件名", max_length=200, blank=True)
    #: SHA-256 of the uploaded bytes: the same file uploaded again creates nothing new.
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_size = models.PositiveIntegerField(default=0)
    #: Renewal batches: the people carried over, ``[[member_id, family_member_id|null], …]``.
    candidates = models.JSONField(default=list, blank=True)
    include_family = models.BooleanField("含家庭成员", default=False)
    row_count = models.PositiveIntegerField("数据行数", default=0)
    valid_count = models.PositiveIntegerField("有效行数", default=0)
    error_count = models.PositiveIntegerField("错误行数", default=0)
    #: Confirmation progress: the last row (file row number, or candidate position + 1) that was
    #: committed. A resumed confirmation continues after it (S17).
    last_row_done = models.PositiveIntegerField(default=0)
    enrolled_count = models.PositiveIntegerField("参保人数", default=0)
    members_created = models.PositiveIntegerField(default=0)
    members_updated = models.PositiveIntegerField(default=0)
    enrollment_date = models.DateField("参保日期", null=True, blank=True)
    paid_on = models.DateField("缴费确认日期", null=True, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    validated_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField("作废原因", max_length=200, blank=True)

    class Meta:
        verbose_name = "参保批次"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=BatchStatus.values), name="enrollbatch_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(source__in=BatchSource.values), name="enrollbatch_source_valid"
            ),
            models.UniqueConstraint(
                fields=["union", "plan_year", "file_sha256"],
                condition=~Q(status=BatchStatus.CANCELLED) & ~Q(file_sha256=""),
                name="enrollbatch_one_per_file",
            ),
            models.UniqueConstraint(
                fields=["union", "plan_year"],
                condition=~Q(status=BatchStatus.CANCELLED) & Q(source=BatchSource.RENEWAL),
                name="enrollbatch_one_renewal_per_year",
            ),
        ]
        indexes = [models.Index(fields=["union_path", "plan_year", "id"], name="batch_scope_idx")]

    def __str__(self) -> str:
        return f"参保批次 #{self.pk}（{self.plan_year}年度）"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class RosterFile(models.Model):
    """The uploaded roster, AES-256-GCM encrypted (it holds ID numbers, S10)."""

    batch = models.OneToOneField(EnrollmentBatch, on_delete=models.CASCADE, related_name="file")
    content_enc = models.BinaryField()
    uploaded_at = models.DateTimeField(default=timezone.now)


class RowErrorKind(models.TextChoices):
    ROW = "row", "数据错误"
    DROPPED = "dropped", "续保未纳入"


class RosterRowError(models.Model):
    """One reason why a row (or a renewal candidate) is not enrolled. No sensitive value is ever
    stored here: the reason names the column; the ID is kept masked for the preview."""

    batch = models.ForeignKey(EnrollmentBatch, on_delete=models.CASCADE, related_name="errors")
    kind = models.CharField(max_length=8, choices=RowErrorKind.choices, default=RowErrorKind.ROW)
    row_number = models.PositiveIntegerField("行号", null=True, blank=True)
    column = models.CharField("列", max_length=32, blank=True)
    message = models.CharField("错误原因", max_length=300)
    name = models.CharField("姓名", max_length=50, blank=True)
    id_number_masked = models.CharField("身份证号码", max_length=24, blank=True)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        verbose_name = "花名册错误"
        ordering = ["row_number", "id"]
        indexes = [models.Index(fields=["batch", "row_number"], name="rowerror_batch_idx")]


class ProductSet(models.TextChoices):
    SELF = "self", "职工本人"
    FAMILY = "family", "家庭成员"


class EnrollmentStatus(models.TextChoices):
    PENDING = "pending", "待缴费"
    ACTIVE = "active", "保障中"
    WITHDRAWN = "withdrawn", "已退出"
    REFUNDED = "refunded", "已退保（待退费）"
    LAPSED = "lapsed", "已失效"


#: The statuses that hold the person's one share of the plan year.
LIVE_STATUSES = (EnrollmentStatus.PENDING, EnrollmentStatus.ACTIVE)


class Enrollment(models.Model):
    # The single-column FK indexes are left out where a composite index below starts with the
    # column (batch, member, unit): fewer B-trees to maintain on a 100,000-row roster.
    batch = models.ForeignKey(
        EnrollmentBatch, on_delete=models.PROTECT, related_name="enrollments", db_index=False
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="enrollments", db_index=False
    )
    family_member = models.ForeignKey(
        FamilyMember, null=True, blank=True, on_delete=models.PROTECT, related_name="enrollments"
    )
    product_set = models.CharField(
        "保障对象", max_length=8, choices=ProductSet.choices, default=ProductSet.SELF
    )
    #: The insured person's ID blind index (the member's, or the family member's): the key of
    #: "one share per person per plan year".
    person_index = models.CharField(max_length=32)
    union = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="+")
    union_path = models.CharField(max_length=255, editable=False)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    plan_version = models.ForeignKey(
        PlanVersion, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    plan_year = models.PositiveSmallIntegerField("保障年度")
    status = models.CharField(
        "状态", max_length=10, choices=EnrollmentStatus.choices, default=EnrollmentStatus.PENDING
    )
    hardship = models.BooleanField("困难职工", default=False)
    enrollment_date = models.DateField("参保日期")
    coverage_start = models.DateField("保障起始日", null=True, blank=True)
    coverage_end = models.DateField("保障截止日", null=True, blank=True)
    left_unit_on = models.DateField("离开单位日期", null=True, blank=True)
    withdrawn_at = models.DateTimeField("退出时间", null=True, blank=True)
    #: Set when a paid share is withdrawn before its coverage starts: the contributions side owes
    #: the payers a refund (``huzhu.contributions`` clears it when the refund is made).
    refund_due = models.BooleanField("待退费", default=False)
    reason = models.CharField("说明", max_length=200, blank=True)
    row_number = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "参保记录"
        constraints = [
            models.UniqueConstraint(
                fields=["person_index", "plan_year"],
                condition=Q(status__in=["pending", "active"]),
                name="enrollment_one_share_per_year",
            ),
            models.CheckConstraint(
                condition=Q(status__in=EnrollmentStatus.values), name="enrollment_status_valid"
            ),
            models.CheckConstraint(
                condition=(Q(product_set="self") & Q(family_member__isnull=True))
                | (Q(product_set="family") & Q(family_member__isnull=False)),
                name="enrollment_product_set_valid",
            ),
            models.CheckConstraint(
                condition=Q(coverage_start__isnull=True)
                | (Q(coverage_end__isnull=False) & Q(coverage_end__gte=F("coverage_start"))),
                name="enrollment_coverage_ordered",
            ),
            models.CheckConstraint(
                condition=~Q(status="active") | Q(coverage_start__isnull=False),
                name="enrollment_active_has_coverage",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "plan_year"], name="enrollment_member_idx"),
            # The settlement's lookup of the insured person (every status: a withdrawn share
            # keeps its dates); the partial unique constraint above covers live shares only.
            models.Index(fields=["person_index", "plan_year"], name="enrollment_person_idx"),
            models.Index(fields=["batch", "id"], name="enrollment_batch_idx"),
            models.Index(fields=["unit", "plan_year"], name="enrollment_unit_idx"),
            models.Index(fields=["union_path", "plan_year"], name="enrollment_scope_idx"),
            models.Index(fields=["plan_year", "status"], name="enrollment_year_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.plan_year}年度参保 #{self.pk}"

    def covered_on(self, day: object) -> bool:
        return (
            self.status == EnrollmentStatus.ACTIVE
            and self.coverage_start is not None
            and self.coverage_end is not None
            and self.coverage_start <= day <= self.coverage_end  # type: ignore[operator]
        )
