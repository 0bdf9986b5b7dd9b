"""The only way to fetch a job for an actor: outside the actor's scope it answers 404 (S5)."""

from __future__ import annotations

from huzhu.jobs.models import Job
from huzhu.jobs.selectors import jobs_for
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import User


def access_job(actor: User, job_id: int) -> Job:
    job = jobs_for(actor).filter(pk=job_id).first()
    if job is None:
        raise NotPermitted("任务不存在")
    return job
