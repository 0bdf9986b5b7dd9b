"""Reads of jobs, scoped: a user sees the jobs of their organisation's subtree and their own."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from huzhu.jobs.models import Job
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.selectors import scope_path


def jobs_for(actor: User) -> QuerySet[Job]:
    path = scope_path(actor)
    if path is None:
        return Job.objects.none()
    return Job.objects.filter(
        (subtree_q(path, "organisation_path") & ~Q(organisation_path=""))
        | Q(created_by_id=actor.pk)
    )


def latest_job_for(object_type: str, object_id: str | int) -> Job | None:
    return (
        Job.objects.filter(object_type=object_type, object_id=str(object_id))
        .order_by("-pk")
        .first()
    )
