"""Background jobs with their progress in the database (ARCHITECTURE.md: background jobs).

A ``Job`` row is what the UI polls (htmx) and the command line follows (tqdm): rows done of a
total, a status, a Chinese message, and the error text when it failed (never a stack trace, never
personal data). The queue itself is django-tasks (database backend, ``huzhu worker``); a job row
outlives its queue entry, so a job whose worker was killed is seen as stalled and can be resumed
by the domain code that owns it.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from huzhu.orgs.models import Union, User

#: A running job that has not reported progress for this long is considered stalled (its worker
#: died): the domain code may offer to resume it.
STALL_AFTER = timedelta(seconds=90)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "排队中"
    RUNNING = "running", "进行中"
    SUCCEEDED = "succeeded", "已完成"
    FAILED = "failed", "失败"


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})


class Job(models.Model):
    kind = models.CharField("任务类型", max_length=64)
    label = models.CharField("任务名称", max_length=200)
    #: Dotted path of the handler ``(job, progress) -> dict`` (only ``huzhu.`` modules run).
    handler = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        "状态", max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    total = models.PositiveIntegerField("总数", default=0)
    done = models.PositiveIntegerField("已完成", default=0)
    message = models.CharField("进度说明", max_length=200, blank=True)
    error = models.TextField("错误信息", blank=True)
    result = models.JSONField(default=dict, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    organisation = models.ForeignKey(
        Union, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    organisation_path = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "后台任务"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="job_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="job_object_idx"),
            models.Index(fields=["organisation_path", "id"], name="job_scope_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.label}（{self.get_status_display()}）"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        if not self.total:
            return 0
        return min(100, int(self.done * 100 / self.total))

    @property
    def stalled(self) -> bool:
        """Running (or queued) without a sign of life for ``STALL_AFTER``: its worker is gone."""
        return not self.finished and timezone.now() - self.updated_at > STALL_AFTER
