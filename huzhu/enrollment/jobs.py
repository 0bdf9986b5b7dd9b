"""Background jobs of enrollment: roster validation, confirmation and renewal (django-tasks via
``huzhu.jobs``), with progress in the database for the UI's progress bar and the CLI's tqdm bar.

``submit_*`` create the job row in the caller's transaction and queue it on commit; the handlers
are what the worker runs (``huzhu worker``) — and what the command line runs inline.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from huzhu.enrollment.models import BatchStatus, EnrollmentBatch
from huzhu.enrollment.roster import RosterFileError
from huzhu.enrollment.services import (
    DEFAULT_CHUNK_SIZE,
    draft_renewals,
    run_confirmation,
    start_confirmation,
    validate_batch,
)
from huzhu.jobs.models import Job
from huzhu.jobs.selectors import latest_job_for
from huzhu.jobs.services import JobFailed, Progress, create_job, submit_job
from huzhu.orgs.models import User

BATCH_OBJECT = "enrollment.enrollmentbatch"
KIND_VALIDATE = "enrollment.validate"
KIND_CONFIRM = "enrollment.confirm"
KIND_RENEWAL = "enrollment.renewal"


def batch_job(batch: EnrollmentBatch) -> Job | None:
    return latest_job_for(BATCH_OBJECT, batch.pk)


def _batch_job(
    acting_user: User | None,
    batch: EnrollmentBatch,
    kind: str,
    label: str,
    handler: str,
    **params: Any,
) -> Job:
    return create_job(
        acting_user=acting_user,
        kind=kind,
        label=label,
        handler=handler,
        params={"batch_id": batch.pk, **params},
        organisation=batch.union,
        object_type=BATCH_OBJECT,
        object_id=batch.pk,
    )


def validation_job(acting_user: User | None, batch: EnrollmentBatch) -> Job:
    return _batch_job(
        acting_user,
        batch,
        KIND_VALIDATE,
        f"校验花名册（批次 #{batch.pk}）",
        "huzhu.enrollment.jobs.validate_handler",
    )


def confirmation_job(acting_user: User | None, batch: EnrollmentBatch) -> Job:
    return _batch_job(
        acting_user,
        batch,
        KIND_CONFIRM,
        f"确认参保（批次 #{batch.pk}）",
        "huzhu.enrollment.jobs.confirm_handler",
    )


@transaction.atomic
def submit_validation(*, acting_user: User | None, batch: EnrollmentBatch) -> Job:
    job = validation_job(acting_user, batch)
    submit_job(job)
    return job


@transaction.atomic
def submit_confirmation(
    *,
    acting_user: User | None,
    batch: EnrollmentBatch,
    accept_invalid_rows: bool = False,
    include_family: bool = False,
) -> Job:
    """Start (or resume) the confirmation and queue its writing as a job."""
    start_confirmation(
        acting_user=acting_user,
        batch=batch,
        accept_invalid_rows=accept_invalid_rows,
        include_family=include_family,
    )
    job = confirmation_job(acting_user, batch)
    submit_job(job)
    return job


def renewal_job(acting_user: User | None, year: int) -> Job:
    return create_job(
        acting_user=acting_user,
        kind=KIND_RENEWAL,
        label=f"生成{year}年度续保批次",
        handler="huzhu.enrollment.jobs.renewal_handler",
        params={"year": year},
        organisation=acting_user.organisation if acting_user is not None else None,
    )


@transaction.atomic
def submit_renewal(*, acting_user: User, year: int) -> Job:
    job = renewal_job(acting_user, year)
    submit_job(job)
    return job


# --- handlers (run by the worker) -------------------------------------------------------------
def validate_handler(job: Job, progress: Progress) -> dict[str, Any]:
    batch = EnrollmentBatch.objects.get(pk=job.params["batch_id"])
    try:
        result = validate_batch(batch=batch, progress=progress)
    except RosterFileError as exc:
        raise JobFailed(f"花名册无法使用：{exc}") from None
    return {"rows": result.row_count, "valid": len(result.valid), "error_rows": result.error_rows}


def confirm_handler(job: Job, progress: Progress) -> dict[str, Any]:
    batch = EnrollmentBatch.objects.get(pk=job.params["batch_id"])
    done = run_confirmation(
        batch=batch,
        acting_user=job.created_by,
        progress=progress,
        chunk_size=int(job.params.get("chunk_size") or DEFAULT_CHUNK_SIZE),
    )
    if done.status not in (BatchStatus.AWAITING_PAYMENT, BatchStatus.ACTIVE):
        raise JobFailed(f"批次状态为“{done.get_status_display()}”，确认未完成")
    return {"enrolled": done.enrolled_count, "skipped_rows": done.error_count}


def renewal_handler(job: Job, progress: Progress) -> dict[str, Any]:
    outcome = draft_renewals(
        acting_user=job.created_by, year=int(job.params["year"]), progress=progress
    )
    return {
        "year": outcome.year,
        "unions": [
            {
                "union": item.union.name,
                "batch_id": item.batch.pk if item.batch is not None else None,
                "existing": item.existing,
                "carried": item.carried,
                "dropped": len(item.dropped),
                "dropped_people": [f"{n} {m}：{r}" for n, m, r in item.dropped],
            }
            for item in outcome.unions
        ],
    }
