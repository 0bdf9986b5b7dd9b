"""The only way to fetch a batch or an enrollment for an actor: outside the actor's subtree, or
without the permission, it does not exist for them (404, S5)."""

from __future__ import annotations

from huzhu.enrollment.models import Enrollment, EnrollmentBatch
from huzhu.enrollment.selectors import batches_for, enrollments_for
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm


def access_batch(actor: User, batch_id: int, perm: Perm = Perm.ENROLLMENT_VIEW) -> EnrollmentBatch:
    require(actor, perm)
    batch = batches_for(actor).select_related("union", "plan_version").filter(pk=batch_id).first()
    if batch is None:
        raise NotPermitted("参保批次不存在")
    return batch


def access_enrollment(
    actor: User, enrollment_id: int, perm: Perm = Perm.ENROLLMENT_VIEW
) -> Enrollment:
    require(actor, perm)
    enrollment = (
        enrollments_for(actor).select_related("batch", "member").filter(pk=enrollment_id).first()
    )
    if enrollment is None:
        raise NotPermitted("参保记录不存在")
    return enrollment
