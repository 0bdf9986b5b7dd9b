"""Every read of enrollment, scoped to the actor's organisation subtree (S5, R16, R17)."""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Q, QuerySet

from huzhu.enrollment.models import (
    LIVE_STATUSES,
    Enrollment,
    EnrollmentBatch,
    EnrollmentStatus,
    RosterRowError,
)
from huzhu.members.models import Member
from huzhu.orgs.models import Unit, User, subtree_q
from huzhu.orgs.selectors import scope_path


def batches_for(actor: User) -> QuerySet[EnrollmentBatch]:
    path = scope_path(actor)
    if path is None:
        return EnrollmentBatch.objects.none()
    return EnrollmentBatch.objects.filter(subtree_q(path, "union_path")).defer("candidates")


def list_batches(
    actor: User, *, year: int | None = None, status: str = ""
) -> QuerySet[EnrollmentBatch]:
    qs = batches_for(actor).select_related("union", "plan_version")
    if year:
        qs = qs.filter(plan_year=year)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-pk")


def enrollments_for(actor: User) -> QuerySet[Enrollment]:
    path = scope_path(actor)
    if path is None:
        return Enrollment.objects.none()
    return Enrollment.objects.filter(subtree_q(path, "union_path"))


def batch_enrollments(batch: EnrollmentBatch) -> QuerySet[Enrollment]:
    return (
        Enrollment.objects.filter(batch=batch)
        .select_related("member", "family_member", "unit")
        .defer("member__id_number_enc", "member__phone_enc", "member__bank_account_enc")
        .order_by("pk")
    )


def batch_errors(batch: EnrollmentBatch) -> QuerySet[RosterRowError]:
    return RosterRowError.objects.filter(batch=batch).order_by("row_number", "pk")


def member_enrollments(member: Member) -> QuerySet[Enrollment]:
    """A member's shares, every year, with the family members' (the member is already accessed
    by the caller, so the person is in scope whatever union enrolled them)."""
    return (
        Enrollment.objects.filter(member=member)
        .select_related("batch", "union", "unit", "family_member", "plan_version")
        .order_by("-plan_year", "product_set", "pk")
    )


def unit_enrollments(unit: Unit, year: int) -> QuerySet[Enrollment]:
    return (
        Enrollment.objects.filter(unit=unit, plan_year=year)
        .select_related("member", "family_member")
        .defer("member__id_number_enc", "member__phone_enc", "member__bank_account_enc")
        .order_by("member__name", "pk")
    )


def status_counts(qs: QuerySet[Enrollment]) -> dict[str, int]:
    """Enrollments per status, keyed by the status's Chinese label."""
    counts = {
        row["status"]: row["n"] for row in qs.values("status").annotate(n=Count("pk")).order_by()
    }
    return {label: counts[value] for value, label in EnrollmentStatus.choices if value in counts}


def is_covered(person_index: str, day: date) -> bool:
    """Is the person (ID blind index) covered on ``day``? (RULES.md §2: the coverage year that
    contains the admission date; the share must be active on that date.) System-level helper for
    the claims side."""
    return Enrollment.objects.filter(
        person_index=person_index,
        plan_year=day.year,
        status=EnrollmentStatus.ACTIVE,
        coverage_start__lte=day,
        coverage_end__gte=day,
    ).exists()


def live_share(person_index: str, year: int) -> Enrollment | None:
    return (
        Enrollment.objects.filter(person_index=person_index, plan_year=year)
        .filter(Q(status__in=LIVE_STATUSES))
        .first()
    )
