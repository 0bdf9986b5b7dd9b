"""Every read of plan versions, scoped to the actor (S5), and the engine's look-up by year.

A plan applies to a pooling area (GB/T 2260 region code: a province, or a city that runs its own
plan). A staff member sees the plans of the areas above them (their province's, their city's) and
those inside their own subtree (a provincial user: every plan of the province). Managing a plan
(import, copy, activate, retire) is for the provincial level (R17 provincial pooling), over the
province's own plan and the plans of its cities.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Q, QuerySet

from huzhu.orgs.models import Union, UnionKind, User
from huzhu.orgs.selectors import ancestors_of
from huzhu.plans.models import PlanStatus, PlanVersion


def _organisation(actor: User) -> Union | None:
    if not actor.is_authenticated or actor.organisation_id is None:
        return None
    return actor.organisation


def _own_prefix(union: Union) -> str | None:
    """The region-code prefix that covers ``union``'s subtree (GB/T 2260: 2 digits province,
    4 digits city, 6 digits county)."""
    code = union.region_code
    if not code:
        return None
    if union.kind == UnionKind.PROVINCIAL:
        return code[:2]
    if union.kind == UnionKind.CITY:
        return code[:4]
    if union.kind == UnionKind.COUNTY:
        return code
    return None


def plans_for(actor: User) -> QuerySet[PlanVersion]:
    """The plan versions ``actor`` may see: their ancestors' pooling areas and their subtree's."""
    union = _organisation(actor)
    if union is None:
        return PlanVersion.objects.none()
    regions = {u.region_code for u in ancestors_of(union) if u.region_code}
    condition = Q(region__in=regions)
    prefix = _own_prefix(union)
    if prefix:
        condition |= Q(region__startswith=prefix)
    return PlanVersion.objects.filter(condition)


def is_city_of(region: str, province_code: str) -> bool:
    """``region`` is a prefecture-level code (XXYY00, YY ≠ 00) inside the province XX0000."""
    return (
        len(region) == 6
        and region[:2] == province_code[:2]
        and region[2:4] != "00"
        and region[4:] == "00"
    )


def may_manage_region(actor: User, region: str) -> bool:
    """Activation, retirement and copies: staff of a provincial organisation, for the province's
    own plan or one of its cities' plans."""
    union = _organisation(actor)
    if union is None or union.kind != UnionKind.PROVINCIAL or not union.region_code:
        return False
    return region == union.region_code or is_city_of(region, union.region_code)


def may_import_region(actor: User, region: str) -> bool:
    """Importing a draft: the provincial level for its area, or a city that runs its own plan for
    its own region code. (Activation stays with the province.)"""
    if may_manage_region(actor, region):
        return True
    union = _organisation(actor)
    return (
        union is not None
        and union.kind == UnionKind.CITY
        and bool(union.region_code)
        and region == union.region_code
    )


def list_plans(actor: User) -> QuerySet[PlanVersion]:
    return (
        plans_for(actor)
        .select_related("previous")
        .order_by("-year", "region", "starts_on", "-imported_at")
    )


def active_with_same_start(version: PlanVersion) -> PlanVersion | None:
    """The version that activating ``version`` would retire (same area, year and start)."""
    return (
        PlanVersion.objects.filter(
            region=version.region,
            year=version.year,
            starts_on=version.starts_on,
            status=PlanStatus.ACTIVE,
        )
        .exclude(pk=version.pk)
        .first()
    )


# --- engine look-ups (system level: the claims code prices with these, unscoped) -------------


def versions_for_year(region: str, year: int) -> list[PlanVersion]:
    """The active versions of one pooling area and coverage year, by start date.

    The engine prices a record by the latest version whose start (``effective_from``, else Jan 1)
    is on or before the admission date (``huzhu.rules.plan.PlanVersions.select``).
    """
    return list(
        PlanVersion.objects.filter(region=region, year=year, status=PlanStatus.ACTIVE).order_by(
            "starts_on"
        )
    )


def version_for(region: str, admission: date) -> PlanVersion | None:
    """The active version that prices a record of ``region`` admitted on ``admission``: the latest
    whose start is on or before that date, in the coverage year of the date (RULES.md §1, §2)."""
    return (
        PlanVersion.objects.filter(
            region=region,
            year=admission.year,
            status=PlanStatus.ACTIVE,
            starts_on__lte=admission,
        )
        .order_by("-starts_on")
        .first()
    )
