"""Creating, queueing and running background jobs, and reporting their progress.

``create_job`` writes the row; ``submit_job`` queues it with django-tasks once the surrounding
transaction commits (a worker never sees a job that might still roll back); ``run_job`` is what the
queue (``huzhu.jobs.tasks.run_job_task``) and the command line (inline, with a tqdm bar) both call.

A handler is ``handler(job, progress) -> dict`` (the dict becomes ``job.result``). It reports with
``progress.begin(total)`` and ``progress.update(done)``; an update made inside the handler's own
transaction commits or rolls back with that transaction's work, which is how an import makes its
progress and its rows one atomic step (S17).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from huzhu.core.errors import InvalidInput
from huzhu.jobs.models import Job, JobStatus
from huzhu.orgs.models import Union, User

logger = logging.getLogger(__name__)

GENERIC_FAILURE = "任务执行出错（详细信息已记入系统日志），请稍后重试或联系系统管理员"


class JobFailed(Exception):
    """A handler's failure with a Chinese message fit for the user (no personal data)."""


class Listener(Protocol):
    def __call__(self, done: int, total: int, message: str) -> None: ...


class Progress:
    """Progress of one job: kept in the job row (throttled) and passed to an optional listener."""

    def __init__(
        self, job: Job, listener: Listener | None = None, *, min_interval: float = 0.5
    ) -> None:
        self.job = job
        self.listener = listener
        self.min_interval = min_interval
        self._last_write = 0.0

    @property
    def done(self) -> int:
        return self.job.done

    @property
    def total(self) -> int:
        return self.job.total

    def begin(self, total: int, message: str = "", *, done: int = 0) -> None:
        self.job.total = total
        self.job.done = done
        if message:
            self.job.message = message[:200]
        self._write(force=True)

    def update(self, done: int, message: str | None = None, *, force: bool = False) -> None:
        self.job.done = min(done, self.job.total) if self.job.total else done
        if message is not None:
            self.job.message = message[:200]
        self._write(force=force)

    def _write(self, *, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last_write >= self.min_interval:
            self._last_write = now
            self.job.updated_at = timezone.now()
            Job.objects.filter(pk=self.job.pk).update(
                total=self.job.total,
                done=self.job.done,
                message=self.job.message,
                updated_at=self.job.updated_at,
            )
        if self.listener is not None:
            self.listener(self.job.done, self.job.total, self.job.message)


def create_job(
    *,
    acting_user: User | None,
    kind: str,
    label: str,
    handler: str,
    params: dict[str, Any] | None = None,
    organisation: Union | None = None,
    object_type: str = "",
    object_id: str | int = "",
) -> Job:
    if not handler.startswith("huzhu."):
        raise ValueError("job handlers must live in the huzhu package")
    return Job.objects.create(
        kind=kind,
        label=label[:200],
        handler=handler,
        params=params or {},
        organisation=organisation,
        organisation_path=organisation.path if organisation is not None else "",
        created_by=acting_user,
        object_type=object_type,
        object_id=str(object_id),
    )


def submit_job(job: Job) -> None:
    """Queue ``job`` with django-tasks after the current transaction commits."""

    def enqueue() -> None:
        from huzhu.jobs.tasks import run_job_task

        result = run_job_task.enqueue(job.pk)
        Job.objects.filter(pk=job.pk, task_id="").update(task_id=str(result.id)[:64])

    transaction.on_commit(enqueue)


def run_job(job_id: int, *, listener: Listener | None = None) -> Job:
    """Run one job now (in the worker, or inline from the command line)."""
    job = Job.objects.get(pk=job_id)
    if job.status == JobStatus.SUCCEEDED:
        return job
    now = timezone.now()
    job.status = JobStatus.RUNNING
    job.started_at = job.started_at or now
    job.updated_at = now
    job.error = ""
    job.save(update_fields=["status", "started_at", "updated_at", "error"])
    progress = Progress(job, listener)
    handler: Callable[[Job, Progress], dict[str, Any] | None] = import_string(job.handler)
    try:
        result = handler(job, progress) or {}
    except (JobFailed, InvalidInput) as exc:
        _finish(job, JobStatus.FAILED, error=str(exc))
    except Exception:
        logger.exception("job %s (%s) failed", job.pk, job.kind)
        _finish(job, JobStatus.FAILED, error=GENERIC_FAILURE)
    else:
        job.result = result
        _finish(job, JobStatus.SUCCEEDED)
    return job


def _finish(job: Job, status: str, *, error: str = "") -> None:
    now = timezone.now()
    job.status = status
    job.error = error[:4000]
    job.finished_at = now
    job.updated_at = now
    if status == JobStatus.SUCCEEDED and job.total:
        job.done = job.total
    job.save(update_fields=["status", "error", "finished_at", "updated_at", "result", "done"])
