"""Plan versions kept as dated data (ARCHITECTURE.md convention 2, RULES.md §1).

A plan file is validated by the engine (``huzhu.rules.plan``) and stored as it was uploaded, with
its canonical parameters and their hash. A version that has priced a benefit (``used_at`` set) never
changes again: the services refuse it, and so does the database (triggers on SQLite and PostgreSQL,
migration plans 0002), because a benefit must always be explainable by the exact rules that priced
it. A rule change is a new version (a copy with its own code and effective date).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from huzhu.orgs.models import User


class PlanStatus(models.TextChoices):
    DRAFT = "draft", "草稿"
    ACTIVE = "active", "已启用"
    RETIRED = "retired", "已停用"


class PlanVersion(models.Model):
    code = models.CharField("计划编码", max_length=64, unique=True)
    name = models.CharField("计划名称", max_length=200)
    region = models.CharField("统筹地区行政区划代码", max_length=6)
    year = models.PositiveSmallIntegerField("保障年度")
    effective_from = models.DateField("生效日期", null=True, blank=True)
    #: The first admission date the version prices: ``effective_from``, else Jan 1 of ``year``
    #: (``Plan.start_date``). Not null, so that "one active version per start" is a plain unique
    #: constraint (NULLs would be distinct) and a version without ``effective_from`` collides with
    #: one dated Jan 1, as the engine's ``PlanVersions`` requires.
    starts_on = models.DateField("起始日期")
    status = models.CharField(
        "状态", max_length=8, choices=PlanStatus.choices, default=PlanStatus.DRAFT
    )
    source_yaml = models.TextField("方案文件原文")
    source_filename = models.CharField("文件名", max_length=200, blank=True)
    parameters = models.TextField("规范化参数（JSON）")
    parameters_hash = models.CharField("参数哈希", max_length=64, db_index=True)
    previous = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="copies",
        verbose_name="复制自",
    )
    imported_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField("导入时间", default=timezone.now)
    activated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField("启用时间", null=True, blank=True)
    retired_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    retired_at = models.DateTimeField("停用时间", null=True, blank=True)
    used_at = models.DateTimeField("首次使用时间", null=True, blank=True)

    class Meta:
        verbose_name = "保障方案版本"
        ordering = ["-year", "region", "starts_on", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PlanStatus.values), name="planversion_status_valid"
            ),
            models.UniqueConstraint(
                fields=["region", "year", "starts_on"],
                condition=Q(status=PlanStatus.ACTIVE),
                name="planversion_one_active_per_start",
            ),
        ]
        indexes = [models.Index(fields=["region", "year", "status"])]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def is_used(self) -> bool:
        return self.used_at is not None

    @property
    def is_editable(self) -> bool:
        """Only a draft that was never active and never priced anything may be corrected."""
        return (
            self.status == PlanStatus.DRAFT and self.used_at is None and self.activated_at is None
        )

    @property
    def hash_prefix(self) -> str:
        return self.parameters_hash[:12]
