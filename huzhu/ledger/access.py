"""The only way to fetch a ledger object for an actor (S5): outside the actor's subtree, or
without the permission, it does not exist for them (404)."""

from __future__ import annotations

from huzhu.ledger.models import Fund, JournalEntry
from huzhu.ledger.selectors import entries_for, funds_for
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm


def access_entry(actor: User, entry_id: int, perm: Perm = Perm.LEDGER_VIEW) -> JournalEntry:
    require(actor, perm)
    entry = (
        entries_for(actor)
        .select_related("fund", "organisation", "posted_by", "reverses")
        .filter(pk=entry_id)
        .first()
    )
    if entry is None:
        raise NotPermitted("凭证不存在")
    return entry


def access_fund(actor: User, fund_id: int, perm: Perm = Perm.LEDGER_VIEW) -> Fund:
    require(actor, perm)
    fund = funds_for(actor).filter(pk=fund_id).first()
    if fund is None:
        raise NotPermitted("基金不存在")
    return fund
