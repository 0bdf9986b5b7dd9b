"""Every read of co-funding, scoped to the actor's organisation subtree (S5, R16, R17).

Invoices, split agreements and their rows belong to the enrolling union (``union_path``): the
grassroots union's clerk sees their own, a city's finance staff the whole city.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef, QuerySet

from huzhu.contributions.funding_models import (
    Invoice,
    InvoiceLine,
    InvoicePayer,
    Payment,
    Refund,
    SplitAgreement,
)
from huzhu.contributions.funding_services import GONE_STATUSES
from huzhu.enrollment.models import BatchStatus, EnrollmentBatch
from huzhu.orgs.models import Union, Unit, User, subtree_q
from huzhu.orgs.selectors import scope_path


def invoices_for(actor: User) -> QuerySet[Invoice]:
    path = scope_path(actor)
    if path is None:
        return Invoice.objects.none()
    return Invoice.objects.filter(subtree_q(path, "union_path"))


def list_invoices(
    actor: User, *, status: str = "", year: int | None = None, batch_id: int | None = None
) -> QuerySet[Invoice]:
    qs = invoices_for(actor).select_related("union", "plan_version")
    if status:
        qs = qs.filter(status=status)
    if year:
        qs = qs.filter(plan_year=year)
    if batch_id:
        qs = qs.filter(batch_id=batch_id)
    return qs.order_by("-pk")


def batches_awaiting_invoice(actor: User) -> QuerySet[EnrollmentBatch]:
    """Confirmed batches (待缴费) of the actor's subtree that have no invoice yet."""
    path = scope_path(actor)
    if path is None:
        return EnrollmentBatch.objects.none()
    return (
        EnrollmentBatch.objects.filter(
            subtree_q(path, "union_path"), status=BatchStatus.AWAITING_PAYMENT
        )
        .exclude(Exists(Invoice.objects.filter(batch=OuterRef("pk"))))
        .select_related("union", "plan_version")
        .defer("candidates")
        .order_by("-pk")
    )


def batch_in_scope(actor: User, batch_id: int) -> EnrollmentBatch | None:
    path = scope_path(actor)
    if path is None:
        return None
    return (
        EnrollmentBatch.objects.filter(subtree_q(path, "union_path"), pk=batch_id)
        .select_related("union", "plan_version")
        .defer("candidates")
        .first()
    )


def invoice_payers(invoice: Invoice) -> list[InvoicePayer]:
    return list(InvoicePayer.objects.filter(invoice=invoice).select_related("unit").order_by("pk"))


def invoice_lines(invoice: Invoice) -> QuerySet[InvoiceLine]:
    return (
        InvoiceLine.objects.filter(invoice=invoice)
        .select_related("unit", "enrollment")
        .only(
            "pk",
            "person_name",
            "id_number_masked",
            "family",
            "hardship",
            "contribution_fen",
            "individual_fen",
            "employer_fen",
            "union_fen",
            "waiver_fen",
            "removed_on",
            "unit__name",
            "enrollment__status",
            "enrollment__coverage_start",
        )
        .order_by("pk")
    )


def invoice_payments(invoice: Invoice) -> QuerySet[Payment]:
    return (
        Payment.objects.filter(invoice=invoice)
        .select_related("payer", "receipt", "registered_by", "ledger_entry")
        .defer("receipt__signed_xml")
        .order_by("-paid_on", "-pk")
    )


def invoice_refunds(invoice: Invoice) -> QuerySet[Refund]:
    return (
        Refund.objects.filter(invoice=invoice)
        .select_related("payer", "line", "requested_by", "processed_by", "ledger_entry")
        .order_by("-pk")
    )


def unsettled_withdrawals(invoice: Invoice) -> QuerySet[InvoiceLine]:
    """Persons withdrawn (or lapsed) whose share is still on the invoice: the automatic
    settlement after the withdrawal did not complete."""
    return InvoiceLine.objects.filter(
        invoice=invoice, removed_on__isnull=True, enrollment__status__in=GONE_STATUSES
    ).order_by("pk")


def agreements_for(actor: User) -> QuerySet[SplitAgreement]:
    path = scope_path(actor)
    if path is None:
        return SplitAgreement.objects.none()
    return SplitAgreement.objects.filter(subtree_q(path, "union_path"))


def unit_agreements(unit: Unit) -> QuerySet[SplitAgreement]:
    return (
        SplitAgreement.objects.filter(unit=unit)
        .select_related("created_by")
        .order_by("-valid_from", "-pk")
    )


def federation_agreements(union: Union) -> QuerySet[SplitAgreement]:
    return (
        SplitAgreement.objects.filter(union=union, unit__isnull=True)
        .select_related("created_by")
        .order_by("-valid_from", "-pk")
    )


def in_force(agreements: list[SplitAgreement], day: date) -> SplitAgreement | None:
    """Of one unit's agreements (newest first), the one in force on ``day``."""
    for agreement in agreements:
        if agreement.valid_from <= day:
            return agreement
    return None


def current_agreements(unit_ids: list[int], day: date) -> dict[int, SplitAgreement]:
    """The agreement in force on ``day`` for each of ``unit_ids`` (one query)."""
    found: dict[int, SplitAgreement] = {}
    for agreement in SplitAgreement.objects.filter(
        unit_id__in=unit_ids, valid_from__lte=day
    ).order_by("unit_id", "-valid_from", "-pk"):
        assert agreement.unit_id is not None
        found.setdefault(agreement.unit_id, agreement)
    return found
