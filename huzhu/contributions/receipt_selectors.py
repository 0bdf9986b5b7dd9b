"""Every read of receipts and ranges, scoped (S5).

Staff see a receipt when its issuer or its payer's organisation lies in their subtree (the city
union's finance issues it; the grassroots union's clerk downloads it). Lists use keyset pagination
(``id < cursor``), newest first, without COUNT(*). The public verification lookup is the one
unscoped read, and it returns nothing personal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from huzhu.contributions.receipt_models import Receipt, ReceiptRange, ReceiptStatus
from huzhu.contributions.receipt_services import ISSUER_KINDS
from huzhu.contributions.receipt_signing import check_code_matches
from huzhu.core.paging import KeysetPage, keyset_page
from huzhu.members.models import Member
from huzhu.orgs.models import Union, Unit, User, subtree_q
from huzhu.orgs.selectors import ancestors_of, scope_path, unions_for

# Lists never need the signed original; detail and download views load it.
_LIST_DEFERRED = ("signed_xml",)


def receipts_for(actor: User) -> QuerySet[Receipt]:
    path = scope_path(actor)
    if path is None:
        return Receipt.objects.none()
    return Receipt.objects.filter(
        subtree_q(path, "issuer_path") | subtree_q(path, "payer_org_path")
    )


def ranges_for(actor: User) -> QuerySet[ReceiptRange]:
    path = scope_path(actor)
    if path is None:
        return ReceiptRange.objects.none()
    return ReceiptRange.objects.filter(subtree_q(path, "issuer_path"))


def issuing_unions_for(actor: User) -> QuerySet[Union]:
    """Unions in the actor's subtree that may hold receipt ranges."""
    return unions_for(actor).filter(kind__in=[k.value for k in ISSUER_KINDS]).order_by("path")


def receipts_for_payer(payer: Member | Unit | Union) -> QuerySet[Receipt]:
    """A payer's own receipts, newest first (member portal, unit self-service).

    Not scoped by a staff actor: the caller has already authenticated the payer themselves.
    """
    if isinstance(payer, Member):
        qs = Receipt.objects.filter(payer_member=payer)
    elif isinstance(payer, Unit):
        qs = Receipt.objects.filter(payer_unit=payer)
    else:
        qs = Receipt.objects.filter(payer_union=payer)
    return (
        qs.select_related("reissue_of")
        .defer(*_LIST_DEFERRED, "reissue_of__signed_xml")
        .order_by("-id")
    )


def receipt_issuer_for(union: Union, year: int) -> Union | None:
    """The union that issues receipts for payments collected by ``union``: the nearest of itself and
    its ancestors holding a range with numbers left for ``year`` (for the payments service)."""
    chain = [u for u in ancestors_of(union) if u.kind in ISSUER_KINDS]
    if not chain:
        return None
    with_numbers = set(
        ReceiptRange.objects.filter(
            issuer__in=chain, year=year, next_number__lte=F("last_number")
        ).values_list("issuer_id", flat=True)
    )
    for candidate in reversed(chain):
        if candidate.pk in with_numbers:
            return candidate
    return None


@dataclass(frozen=True)
class ReceiptFilter:
    payer: str = ""
    date_from: date | None = None
    date_to: date | None = None
    status: str = ""
    number: str = ""


ReceiptPage = KeysetPage[Receipt]


def search_receipts(actor: User, flt: ReceiptFilter) -> QuerySet[Receipt]:
    qs = receipts_for(actor).defer(*_LIST_DEFERRED)
    payer = flt.payer.strip()
    if payer:
        qs = qs.filter(Q(payer_name__startswith=payer) | Q(payer_reference=payer.upper()))
    if flt.date_from is not None:
        qs = qs.filter(issued_on__gte=flt.date_from)
    if flt.date_to is not None:
        qs = qs.filter(issued_on__lte=flt.date_to)
    if flt.status in ReceiptStatus.values:
        qs = qs.filter(status=flt.status)
    number = flt.number.strip()
    if number.isdigit() and len(number) <= 10:
        qs = qs.filter(number=int(number))
    return qs


def page_receipts(
    qs: QuerySet[Receipt], *, after: int | None, before: int | None, size: int
) -> ReceiptPage:
    """Newest first. ``after``: ids below the cursor; ``before``: the previous page."""
    return keyset_page(qs, after=after, before=before, size=size)


@dataclass(frozen=True)
class PublicReceipt:
    """What the public verification page may show: nothing about the payer."""

    code: str
    number: str
    status: str
    status_label: str
    issuer_name: str
    issued_on: date
    total_fen: int
    items: list[tuple[str, int]]
    voided_on: date | None


def verify_public(code: str, number: int, check_code: str) -> PublicReceipt | None:
    """The receipt with this code, number and check code, or None (a wrong check code answers
    exactly like an unknown number, so the page cannot be used to probe which numbers exist)."""
    receipt = (
        Receipt.objects.filter(code=code, number=number)
        .only(
            "code",
            "number",
            "check_code",
            "status",
            "issuer_name",
            "issued_on",
            "total_fen",
            "items",
            "voided_at",
        )
        .first()
    )
    if receipt is None or not check_code_matches(receipt.check_code, check_code):
        return None
    return PublicReceipt(
        code=receipt.code,
        number=receipt.number_text,
        status=receipt.status,
        status_label=ReceiptStatus(receipt.status).label,
        issuer_name=receipt.issuer_name,
        issued_on=receipt.issued_on,
        total_fen=receipt.total_fen,
        items=[(str(i["name"]), int(i["amount_fen"])) for i in receipt.items],
        voided_on=timezone.localdate(receipt.voided_at) if receipt.voided_at else None,
    )
