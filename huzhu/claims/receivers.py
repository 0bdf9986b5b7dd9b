"""Consent granted → the member's quarantined settlements are processed (S12).

The members app sends ``consent_granted`` in the granting transaction; the work is scheduled on
commit as a background task so the clerk's (or member's) consent screen answers at once.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from huzhu.members.signals import consent_granted


@receiver(consent_granted, dispatch_uid="huzhu.claims.release_on_consent")
def _release_on_consent(sender: Any, *, member_ids: list[int], **kwargs: Any) -> None:
    from huzhu.claims.models import Claim, ClaimStatus
    from huzhu.claims.tasks import release_quarantined_task

    waiting: set[int] = set()
    for start in range(0, len(member_ids), 500):  # one query per 500 members, not one each
        waiting.update(
            Claim.objects.filter(
                member_id__in=member_ids[start : start + 500], status=ClaimStatus.QUARANTINED
            ).values_list("member_id", flat=True)
        )
    for member_id in sorted(waiting):
        transaction.on_commit(
            lambda member_id=member_id: release_quarantined_task.enqueue(member_id)  # type: ignore[misc]
        )
