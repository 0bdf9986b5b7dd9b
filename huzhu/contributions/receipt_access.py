"""The only way to fetch a receipt or range for a staff actor: outside scope it answers 404 (S5)."""

from __future__ import annotations

from huzhu.contributions.receipt_models import Receipt, ReceiptRange
from huzhu.contributions.receipt_selectors import ranges_for, receipts_for
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm


def access_receipt(actor: User, receipt_id: int, perm: Perm = Perm.RECEIPT_VIEW) -> Receipt:
    require(actor, perm)
    receipt = (
        receipts_for(actor)
        .select_related("issuer", "reissue_of", "issued_by", "voided_by")
        .filter(pk=receipt_id)
        .first()
    )
    if receipt is None:
        raise NotPermitted("票据不存在")
    if perm == Perm.RECEIPT_ISSUE and not receipt.issuer_path.startswith(
        actor.organisation.path  # type: ignore[union-attr]
    ):
        # The payer's union sees the receipt, but only the issuer's side may void or reissue it.
        raise NotPermitted("票据不存在")
    return receipt


def access_range(actor: User, range_id: int, perm: Perm = Perm.RECEIPT_VIEW) -> ReceiptRange:
    require(actor, perm)
    receipt_range = ranges_for(actor).select_related("issuer").filter(pk=range_id).first()
    if receipt_range is None:
        raise NotPermitted("号段不存在")
    return receipt_range
