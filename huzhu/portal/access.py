"""The only ways to fetch a protected portal object: for a staff actor within their subtree, for
a member only their own — anything else is a 404 (S5)."""

from __future__ import annotations

from django.http import Http404

from huzhu.contributions.receipt_models import Receipt
from huzhu.members.models import Member
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.portal.models import CorrectionRequest
from huzhu.portal.selectors import corrections_for, own_receipt


def access_correction(
    actor: User, correction_id: int, perm: Perm = Perm.MEMBER_VIEW
) -> CorrectionRequest:
    require(actor, perm)
    correction = (
        corrections_for(actor)
        .select_related("member", "member__union", "member__unit", "handled_by")
        .defer("member__id_number_enc", "member__phone_enc", "member__bank_account_enc")
        .filter(pk=correction_id)
        .first()
    )
    if correction is None:
        raise NotPermitted("更正申请不存在")
    return correction


def access_own_receipt(member: Member, receipt_id: int) -> Receipt:
    receipt = own_receipt(member, receipt_id)
    if receipt is None:
        raise Http404("票据不存在")
    return receipt
