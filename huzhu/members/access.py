"""The only way to fetch a member for an actor: outside the subtree it answers 404 (S5)."""

from __future__ import annotations

from huzhu.members.models import Member
from huzhu.members.selectors import members_for
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm


def access_member(actor: User, member_id: int, perm: Perm = Perm.MEMBER_VIEW) -> Member:
    require(actor, perm)
    member = members_for(actor).select_related("unit", "union").filter(pk=member_id).first()
    if member is None:
        raise NotPermitted("职工不存在")
    return member
