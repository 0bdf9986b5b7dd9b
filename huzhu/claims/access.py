"""The only way to fetch a claim, settlement, partner or payment batch for a staff actor:
outside the actor's subtree, or without the permission, it does not exist for them (404, S5)."""

from __future__ import annotations

from huzhu.claims import selectors
from huzhu.claims.models import Claim, Partner, PaymentBatch, Settlement, SettlementFile
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm


def access_claim(actor: User, claim_id: int, perm: Perm = Perm.CLAIM_VIEW) -> Claim:
    require(actor, perm)
    claim = (
        selectors.claims_for(actor)
        .select_related("member", "union", "unit", "family_member", "settlement", "enrollment")
        .filter(pk=claim_id)
        .first()
    )
    if claim is None:
        raise NotPermitted("理赔申请不存在")
    return claim


def access_settlement(actor: User, settlement_id: int, perm: Perm = Perm.CLAIM_VIEW) -> Settlement:
    require(actor, perm)
    settlement = (
        selectors.settlements_for(actor)
        .select_related("partner", "member")
        .filter(pk=settlement_id)
        .first()
    )
    if settlement is None:
        raise NotPermitted("结算记录不存在")
    return settlement


def access_partner(actor: User, partner_id: int, perm: Perm = Perm.PARTNER_MANAGE) -> Partner:
    require(actor, perm)
    partner = selectors.partners_for(actor).select_related("organisation").filter(pk=partner_id)
    found = partner.first()
    if found is None:
        raise NotPermitted("合作方不存在")
    return found


def access_file(actor: User, file_id: int, perm: Perm = Perm.CLAIM_VIEW) -> SettlementFile:
    require(actor, perm)
    found = selectors.files_for(actor).select_related("partner").filter(pk=file_id).first()
    if found is None:
        raise NotPermitted("结算文件不存在")
    return found


def access_payment_batch(actor: User, batch_id: int, perm: Perm = Perm.CLAIM_VIEW) -> PaymentBatch:
    require(actor, perm)
    found = selectors.payment_batches_for(actor).select_related("union").filter(pk=batch_id).first()
    if found is None:
        raise NotPermitted("支付批次不存在")
    return found
