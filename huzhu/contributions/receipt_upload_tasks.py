"""The django-tasks entry point of the receipt upload (the worker: ``huzhu worker``).

Queued on commit for every new outbox row when the finance platform is configured, and again with a
delay after a failed attempt (``receipt_upload``). ``huzhu receipt upload`` sends whatever a lost or
missing task left behind.
"""

from __future__ import annotations

from django_tasks import task


@task()
def upload_receipt_task(upload_id: int) -> str:
    from huzhu.contributions.receipt_upload import upload_one

    return upload_one(upload_id)
