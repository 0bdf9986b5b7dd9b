"""The only way to fetch a protected organisation or unit for an actor (S5): outside the actor's
subtree, or without the permission, the object does not exist for them (404)."""

from __future__ import annotations

from django.http import Http404

from huzhu.orgs import selectors
from huzhu.orgs.models import Union, Unit, User
from huzhu.orgs.roles import Perm


class NotPermitted(Http404):
    """Raised as a 404 so an outsider learns nothing about the object's existence."""


def require(actor: User, perm: Perm) -> None:
    if not actor.is_authenticated or not actor.has_perm_code(perm):
        raise NotPermitted("无权访问")


def access_union(actor: User, union_id: int, perm: Perm = Perm.ORG_VIEW) -> Union:
    require(actor, perm)
    union = selectors.unions_for(actor).filter(pk=union_id).first()
    if union is None:
        raise NotPermitted("组织不存在")
    return union


def access_union_by_code(actor: User, code: str, perm: Perm = Perm.ORG_VIEW) -> Union:
    require(actor, perm)
    union = selectors.unions_for(actor).filter(code=code).first()
    if union is None:
        raise NotPermitted("组织不存在")
    return union


def access_unit(actor: User, unit_id: int, perm: Perm = Perm.UNIT_VIEW) -> Unit:
    require(actor, perm)
    unit = selectors.units_for(actor).filter(pk=unit_id).select_related("union").first()
    if unit is None:
        raise NotPermitted("单位不存在")
    return unit
