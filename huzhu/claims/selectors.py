"""Every read of claims, settlements and partners, scoped to the actor's subtree (S5).

A claim belongs to the insured member's union (``union_path``); a settlement to its member's union
(empty path when the member was not found: only the partner's organisation sees it); a partner and
its files to the partner's organisation. Lists never select the encrypted diagnoses (S7).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from huzhu.claims.models import (
    Claim,
    Partner,
    PaymentBatch,
    Settlement,
    SettlementFile,
)
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.selectors import scope_path

#: Never loaded in lists (S7: lists never show diagnoses).
LIST_DEFERRED = ("diagnoses_enc", "explanation")


def claims_for(actor: User) -> QuerySet[Claim]:
    path = scope_path(actor)
    if path is None:
        return Claim.objects.none()
    return Claim.objects.filter(subtree_q(path, "union_path"))


def claim_list(actor: User) -> QuerySet[Claim]:
    """Claims for list screens: no diagnoses, no explanation, member and union joined."""
    return (
        claims_for(actor)
        .defer(*LIST_DEFERRED)
        .select_related("member", "union", "family_member")
        .order_by("-id")
    )


def settlements_for(actor: User) -> QuerySet[Settlement]:
    path = scope_path(actor)
    if path is None:
        return Settlement.objects.none()
    return Settlement.objects.filter(
        subtree_q(path, "union_path")
        | Q(union_path="", partner__organisation_path__startswith=path)
    ).defer("body_enc")


def partners_for(actor: User) -> QuerySet[Partner]:
    path = scope_path(actor)
    if path is None:
        return Partner.objects.none()
    return Partner.objects.filter(subtree_q(path, "organisation_path")).defer("key_enc")


def files_for(actor: User) -> QuerySet[SettlementFile]:
    path = scope_path(actor)
    if path is None:
        return SettlementFile.objects.none()
    return SettlementFile.objects.filter(subtree_q(path, "partner__organisation_path"))


def payment_batches_for(actor: User) -> QuerySet[PaymentBatch]:
    path = scope_path(actor)
    if path is None:
        return PaymentBatch.objects.none()
    return PaymentBatch.objects.filter(subtree_q(path, "union_path"))
