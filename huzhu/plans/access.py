"""The only way to fetch a plan version for an actor: outside their scope, or without the
permission, it does not exist for them (404, S5)."""

from __future__ import annotations

from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.plans.models import PlanVersion
from huzhu.plans.selectors import may_import_region, may_manage_region, plans_for


def access_plan_version(actor: User, plan_id: int, perm: Perm = Perm.PLAN_VIEW) -> PlanVersion:
    """Fetch a version ``actor`` may see; with ``PLAN_ACTIVATE`` also one they may manage
    (provincial staff, the province's or one of its cities' plans)."""
    require(actor, perm)
    version = plans_for(actor).select_related("previous").filter(pk=plan_id).first()
    if version is None:
        raise NotPermitted("保障方案不存在")
    if perm == Perm.PLAN_ACTIVATE and not may_manage_region(actor, version.region):
        raise NotPermitted("保障方案不存在")
    return version


def can_import(actor: User) -> bool:
    return actor.is_authenticated and actor.has_perm_code(Perm.PLAN_IMPORT)


def can_manage(actor: User, version: PlanVersion) -> bool:
    """May ``actor`` activate or retire ``version`` (the buttons are shown only then)?"""
    return (
        actor.is_authenticated
        and actor.has_perm_code(Perm.PLAN_ACTIVATE)
        and may_manage_region(actor, version.region)
    )


def can_copy(actor: User, version: PlanVersion) -> bool:
    """May ``actor`` draft a new version from ``version``?"""
    return can_import(actor) and may_import_region(actor, version.region)
