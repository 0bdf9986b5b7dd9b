"""Background tasks of claims (django-tasks; the worker is ``huzhu worker``)."""

from __future__ import annotations

from django_tasks import task


@task()
def release_quarantined_task(member_id: int) -> int:
    from huzhu.claims.services import release_quarantined

    return release_quarantined(member_id=member_id)
