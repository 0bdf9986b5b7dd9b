"""The only way to fetch an invoice for an actor: outside their subtree, or without the
permission, it does not exist for them (404, S5)."""

from __future__ import annotations

from huzhu.contributions.funding_models import Invoice
from huzhu.contributions.funding_selectors import batch_in_scope, invoices_for
from huzhu.enrollment.models import EnrollmentBatch
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm


def access_invoice(actor: User, invoice_id: int, perm: Perm = Perm.FUNDING_VIEW) -> Invoice:
    require(actor, perm)
    invoice = (
        invoices_for(actor)
        .select_related("union", "batch", "plan_version", "ledger_entry", "created_by")
        .filter(pk=invoice_id)
        .first()
    )
    if invoice is None:
        raise NotPermitted("缴费通知不存在")
    return invoice


def access_batch_for_funding(
    actor: User, batch_id: int, perm: Perm = Perm.FUNDING_VIEW
) -> EnrollmentBatch:
    require(actor, perm)
    batch = batch_in_scope(actor, batch_id)
    if batch is None:
        raise NotPermitted("参保批次不存在")
    return batch
