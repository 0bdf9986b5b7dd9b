"""Staff pages of co-funding (Chinese), mounted at ``/contributions/``: invoices (scoped list,
detail per payer and per person, downloads), payment registration (finance), settlement of
withdrawals, split agreements per unit and per federation.

Thin: parse, call one service or selector, render; every object comes through an ``access_*``
function (out of scope → 404, S5).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from huzhu.contributions import funding_selectors as selectors
from huzhu.contributions import funding_services as services
from huzhu.contributions.funding_access import access_batch_for_funding, access_invoice
from huzhu.contributions.funding_documents import invoice_pdf, invoice_xlsx
from huzhu.contributions.funding_forms import InvoiceFilterForm, PaymentForm, SplitForm
from huzhu.contributions.funding_models import (
    Invoice,
    InvoiceStatus,
    PayerType,
    SplitAgreement,
)
from huzhu.core.errors import InvalidInput
from huzhu.core.money import chinese_capital, format_fen
from huzhu.enrollment.models import BatchStatus
from huzhu.orgs.access import access_union, access_unit
from huzhu.orgs.models import Union, UnionKind, Unit, User
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import unions_for, units_for
from huzhu.web.auth import staff_required, staff_user

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INVOICES_PER_PAGE = 30
LINES_PER_PAGE = 50
UNITS_PER_PAGE = 30
AWAITING_LIMIT = 50


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # pages with personal data (S4)
    return response


def _errors_to_messages(request: HttpRequest, exc: InvalidInput) -> None:
    for error in exc.errors:
        messages.error(request, error.message)


# --- invoices ----------------------------------------------------------------------------------
@staff_required(Perm.FUNDING_VIEW)
def invoice_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    form = InvoiceFilterForm(request.GET or None)
    status, year = "", None
    if form.is_bound and form.is_valid():
        status = form.cleaned_data.get("status") or ""
        year = form.cleaned_data.get("year")
    page = Paginator(selectors.list_invoices(user, status=status, year=year), INVOICES_PER_PAGE)
    invoices = page.get_page(request.GET.get("page"))
    awaiting = list(selectors.batches_awaiting_invoice(user)[: AWAITING_LIMIT + 1])
    keep = "&".join(f"{k}={v}" for k, v in (("status", status), ("year", year or "")) if v)
    return _no_store(
        render(
            request,
            "contributions/funding/invoice_list.html",
            {
                "form": form,
                "invoices": invoices,
                "keep": keep,
                "awaiting": awaiting[:AWAITING_LIMIT],
                "awaiting_more": len(awaiting) > AWAITING_LIMIT,
                "can_create": user.has_perm_code(Perm.FUNDING_EDIT),
            },
        )
    )


@staff_required(Perm.FUNDING_VIEW)
def batch_invoice(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The invoice of a batch (the link from the batch page): the invoice itself once it exists,
    else what the batch still needs."""
    user = staff_user(request)
    batch = access_batch_for_funding(user, batch_id)
    invoice = Invoice.objects.filter(batch=batch).only("pk").first()
    if invoice is not None:
        return redirect("funding:invoice", invoice_id=invoice.pk)
    return render(
        request,
        "contributions/funding/batch_invoice.html",
        {
            "batch": batch,
            "ready": batch.status == BatchStatus.AWAITING_PAYMENT,
            "can_create": user.has_perm_code(Perm.FUNDING_EDIT),
        },
    )


@require_POST
@staff_required(Perm.FUNDING_EDIT)
def invoice_create(request: HttpRequest, batch_id: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_batch_for_funding(user, batch_id, Perm.FUNDING_EDIT)
    try:
        invoice = services.create_invoice(acting_user=user, batch=batch)
    except InvalidInput as exc:
        _errors_to_messages(request, exc)
        return redirect("funding:batch_invoice", batch_id=batch.pk)
    messages.success(request, f"已生成缴费通知 {invoice.number}")
    return redirect("funding:invoice", invoice_id=invoice.pk)


def _agreements_of(invoice: Invoice) -> dict[int, SplitAgreement]:
    ids = (
        invoice.lines.filter(agreement__isnull=False)
        .values_list("agreement_id", flat=True)
        .distinct()
    )
    return SplitAgreement.objects.in_bulk(list(ids))


@staff_required(Perm.FUNDING_VIEW)
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = staff_user(request)
    invoice = access_invoice(user, invoice_id)
    payers = selectors.invoice_payers(invoice)
    lines = Paginator(selectors.invoice_lines(invoice), LINES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    groups = {
        "workers": sum(p.owed_fen for p in payers if p.payer_type == PayerType.INDIVIDUAL),
        "employers": sum(p.owed_fen for p in payers if p.payer_type == PayerType.EMPLOYER),
        "union": sum(
            p.owed_fen for p in payers if p.payer_type in (PayerType.UNION, PayerType.UNION_WAIVER)
        ),
    }
    owed = sum(p.owed_fen for p in payers)
    can_pay = user.has_perm_code(Perm.PAYMENT_REGISTER)
    unsettled = list(selectors.unsettled_withdrawals(invoice)[:20]) if can_pay else []
    return _no_store(
        render(
            request,
            "contributions/funding/invoice_detail.html",
            {
                "invoice": invoice,
                "payers": payers,
                "lines": lines,
                "payments": list(selectors.invoice_payments(invoice)),
                "refunds": list(selectors.invoice_refunds(invoice)),
                "groups": {k: format_fen(v) for k, v in groups.items()},
                "owed": format_fen(owed),
                "owed_capital": chinese_capital(owed),
                "paid": format_fen(sum(p.net_paid_fen for p in payers)),
                "outstanding": format_fen(sum(p.outstanding_fen for p in payers)),
                "can_pay": can_pay
                and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.PARTIAL)
                and invoice.batch.status == BatchStatus.AWAITING_PAYMENT,
                "unsettled": unsettled,
                "can_settle": can_pay and bool(unsettled),
            },
        )
    )


def _download(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _no_store(response)


@require_GET
@staff_required(Perm.FUNDING_VIEW)
def invoice_download_xlsx(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = staff_user(request)
    invoice = access_invoice(user, invoice_id)
    payers = selectors.invoice_payers(invoice)
    lines = selectors.invoice_lines(invoice).select_related(None).select_related("unit")
    content = invoice_xlsx(
        invoice, payers, lines.iterator(chunk_size=2000), _agreements_of(invoice)
    )
    services.record_invoice_export(
        acting_user=user, invoice=invoice, file_format="xlsx", rows=invoice.person_count
    )
    return _download(content, XLSX, f"invoice-{invoice.number}.xlsx")


@require_GET
@staff_required(Perm.FUNDING_VIEW)
def invoice_download_pdf(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = staff_user(request)
    invoice = access_invoice(user, invoice_id)
    content = invoice_pdf(invoice, selectors.invoice_payers(invoice))
    services.record_invoice_export(acting_user=user, invoice=invoice, file_format="pdf", rows=0)
    return _download(content, "application/pdf", f"invoice-{invoice.number}.pdf")


@staff_required(Perm.PAYMENT_REGISTER)
def payment_new(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = staff_user(request)
    invoice = access_invoice(user, invoice_id, Perm.PAYMENT_REGISTER)
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.PARTIAL):
        messages.info(request, f"缴费通知{invoice.get_status_display()}，无需再登记缴费")
        return redirect("funding:invoice", invoice_id=invoice.pk)
    payers = selectors.invoice_payers(invoice)
    initial: dict[str, Any] = {"paid_on": timezone.localdate()}
    chosen = request.GET.get("payer", "")
    if chosen.isdigit():
        initial["payer"] = chosen
        match = next((p for p in payers if str(p.pk) == chosen), None)
        if match is not None and match.outstanding_fen > 0:
            initial["amount"] = format_fen(match.outstanding_fen)
    form = PaymentForm(request.POST or None, payers=payers, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                payment = services.register_payment(
                    acting_user=user,
                    invoice=invoice,
                    payer=data["payer_obj"],
                    amount_fen=data["amount_fen"],
                    bank_reference=data.get("bank_reference") or "",
                    paid_on=data["paid_on"],
                )
            except InvalidInput as exc:
                form.add_service_errors(exc)
            else:
                invoice.refresh_from_db()
                note = f"已登记 {payment.payer.name} 到账 {format_fen(payment.amount_fen)} 元"
                if payment.receipt is not None:
                    note += f"，已开具电子票据 {payment.receipt.code}-{payment.receipt.number_text}"
                if invoice.status == InvoiceStatus.PAID:
                    note += "；各缴费方均已缴清，参保人员保障已生效"
                messages.success(request, note)
                return redirect("funding:invoice", invoice_id=invoice.pk)
        status = 422
    return _no_store(
        render(
            request,
            "contributions/funding/payment_form.html",
            {"invoice": invoice, "payers": payers, "form": form},
            status=status,
        )
    )


@require_POST
@staff_required(Perm.PAYMENT_REGISTER)
def withdrawals_settle(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = staff_user(request)
    invoice = access_invoice(user, invoice_id, Perm.PAYMENT_REGISTER)
    try:
        done = services.settle_withdrawals(acting_user=user, invoice=invoice)
    except InvalidInput as exc:
        _errors_to_messages(request, exc)
    else:
        refunded = sum(r.amount_fen for s in done for r in s.refunds)
        if done:
            messages.success(
                request,
                f"已核减 {len(done)} 名退出人员的应缴金额"
                + (f"，退费 {format_fen(refunded)} 元" if refunded else ""),
            )
        else:
            messages.info(request, "没有待处理的退出人员")
    return redirect("funding:invoice", invoice_id=invoice.pk)


# --- split agreements --------------------------------------------------------------------------
@staff_required(Perm.FUNDING_VIEW)
def split_overview(request: HttpRequest) -> HttpResponse:
    """The units (and federations) of the actor's subtree with the agreement in force today."""
    user = staff_user(request)
    today = timezone.localdate()
    query = request.GET.get("q", "").strip()[:50]
    units = units_for(user).select_related("union").order_by("name", "pk")
    if query:
        units = units.filter(name__contains=query)
    page = Paginator(units, UNITS_PER_PAGE).get_page(request.GET.get("page"))
    current = selectors.current_agreements([u.pk for u in page.object_list], today)
    rows = [(unit, current.get(unit.pk)) for unit in page.object_list]
    federations = list(
        unions_for(user).filter(kind=UnionKind.FEDERATION).order_by("name")[:UNITS_PER_PAGE]
    )
    federation_rows = []
    for federation in federations:
        agreement = selectors.in_force(list(selectors.federation_agreements(federation)), today)
        federation_rows.append((federation, agreement))
    return render(
        request,
        "contributions/funding/split_overview.html",
        {"rows": rows, "page": page, "query": query, "federations": federation_rows},
    )


def _preview(union: Union, today: date) -> dict[str, Any]:
    """The plan contribution the agreement will split, for the page."""
    fen = services.plan_contribution_for(union, today)
    return {"contribution": format_fen(fen) if fen is not None else None}


def _split_page(
    request: HttpRequest,
    *,
    user: User,
    unit: Unit | None,
    union: Union,
    form: SplitForm | None = None,
    status: int = 200,
) -> HttpResponse:
    today = timezone.localdate()
    history = list(
        selectors.unit_agreements(unit)
        if unit is not None
        else selectors.federation_agreements(union)
    )
    can_edit = user.has_perm_code(Perm.FUNDING_EDIT) and (
        unit is not None or union.kind == UnionKind.FEDERATION
    )
    return render(
        request,
        "contributions/funding/split_detail.html",
        {
            "unit": unit,
            "union": union,
            "history": history,
            "current": selectors.in_force(history, today),
            "form": form
            or SplitForm(with_employer=unit is not None, initial={"valid_from": today}),
            "can_edit": can_edit,
            "is_federation": union.kind == UnionKind.FEDERATION,
            **_preview(union, today),
        },
        status=status,
    )


@staff_required(Perm.FUNDING_VIEW)
def unit_splits(request: HttpRequest, unit_id: int) -> HttpResponse:
    user = staff_user(request)
    unit = access_unit(user, unit_id)
    return _split_page(request, user=user, unit=unit, union=unit.union)


@staff_required(Perm.FUNDING_VIEW)
def union_splits(request: HttpRequest, union_id: int) -> HttpResponse:
    user = staff_user(request)
    union = access_union(user, union_id)
    return _split_page(request, user=user, unit=None, union=union)


def _create_split(
    request: HttpRequest, *, user: User, unit: Unit | None, union: Union
) -> HttpResponse:
    form = SplitForm(request.POST, with_employer=unit is not None)
    if form.is_valid():
        data = form.cleaned_data
        try:
            agreement = services.create_split_agreement(
                acting_user=user,
                unit=unit,
                federation=union if unit is None else None,
                data=services.SplitInput(
                    valid_from=data.get("valid_from"),
                    mode=data.get("mode") or "",
                    individual=data.get("individual") or "",
                    employer=data.get("employer") or "",
                    union=data.get("union") or "",
                    note=data.get("note") or "",
                ),
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                f"已登记分担协议：{agreement.describe()}，自{agreement.valid_from:%Y-%m-%d}起执行",
            )
            if unit is not None:
                return redirect("funding:unit_splits", unit_id=unit.pk)
            return redirect("funding:union_splits", union_id=union.pk)
    return _split_page(request, user=user, unit=unit, union=union, form=form, status=422)


@require_POST
@staff_required(Perm.FUNDING_EDIT)
def unit_split_create(request: HttpRequest, unit_id: int) -> HttpResponse:
    user = staff_user(request)
    unit = access_unit(user, unit_id)
    return _create_split(request, user=user, unit=unit, union=unit.union)


@require_POST
@staff_required(Perm.FUNDING_EDIT)
def union_split_create(request: HttpRequest, union_id: int) -> HttpResponse:
    user = staff_user(request)
    union = access_union(user, union_id)
    return _create_split(request, user=user, unit=None, union=union)


__all__ = [
    "batch_invoice",
    "invoice_create",
    "invoice_detail",
    "invoice_download_pdf",
    "invoice_download_xlsx",
    "invoice_list",
    "payment_new",
    "split_overview",
    "union_split_create",
    "union_splits",
    "unit_split_create",
    "unit_splits",
    "withdrawals_settle",
]
