"""The django-tasks entry point of every background job (the worker: ``huzhu worker``)."""

from __future__ import annotations

from django_tasks import task


@task()
def run_job_task(job_id: int) -> str:
    from huzhu.jobs.services import run_job

    return str(run_job(job_id).status)
