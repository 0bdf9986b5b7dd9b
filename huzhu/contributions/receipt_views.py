"""Receipt pages (thin: parse, call one service or selector, render).

Staff: the list (scoped, keyset pages), the detail with PDF/XML downloads and, for finance on the
issuer's side, void and reissue; the range register. Public (no login): the verification page and
the public key.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from huzhu.contributions import receipt_signing
from huzhu.contributions.receipt_access import access_receipt
from huzhu.contributions.receipt_forms import (
    RangeForm,
    ReceiptFilterForm,
    ReissueForm,
    VerifyForm,
    VoidForm,
)
from huzhu.contributions.receipt_models import Receipt
from huzhu.contributions.receipt_pdf import render_receipt_pdf, verification_url
from huzhu.contributions.receipt_selectors import (
    ReceiptFilter,
    issuing_unions_for,
    page_receipts,
    ranges_for,
    search_receipts,
    verify_public,
)
from huzhu.contributions.receipt_services import (
    allocate_range,
    record_receipt_download,
    reissue_receipt,
    void_receipt,
)
from huzhu.contributions.receipt_upload_selectors import (
    attach_range_upload_counts,
    attach_upload_badges,
    uploads_of,
)
from huzhu.core.errors import InvalidInput
from huzhu.core.middleware import client_ip
from huzhu.core.money import chinese_capital, format_fen
from huzhu.orgs.access import require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.web.auth import staff_required, staff_user

PAGE_SIZE = 20
RANGE_LIST_LIMIT = 200
VERIFY_PER_MINUTE_DEFAULT = 30


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def _base_url(request: HttpRequest) -> str:
    """Scheme and host printed into QR codes: a configured public address, else this request's."""
    configured = str(getattr(settings, "HUZHU_PUBLIC_BASE_URL", "") or "")
    return configured or request.build_absolute_uri("/")


def _can_manage(user: User, receipt: Receipt) -> bool:
    org = user.organisation
    return (
        user.has_perm_code(Perm.RECEIPT_ISSUE)
        and org is not None
        and receipt.issuer_path.startswith(org.path)
    )


# --- staff: list and detail ------------------------------------------------------------------
@staff_required(Perm.RECEIPT_VIEW)
def receipt_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    form = ReceiptFilterForm(request.GET or None)
    flt = ReceiptFilter()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        flt = ReceiptFilter(
            payer=data.get("payer") or "",
            number=data.get("number") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            status=data.get("status") or "",
        )
    page = page_receipts(
        search_receipts(user, flt).select_related("reissue_of").defer("reissue_of__signed_xml"),
        after=_int_param(request, "after"),
        before=_int_param(request, "before"),
        size=PAGE_SIZE,
    )
    attach_upload_badges(page.rows)  # the 上传财政平台 column
    keep = {
        key: request.GET[key]
        for key in ("payer", "number", "date_from", "date_to", "status")
        if request.GET.get(key)
    }
    return render(
        request,
        "contributions/receipts/list.html",
        {
            "form": form,
            "rows": page.rows,
            "filtered": bool(keep),
            "prev_url": "?" + urlencode({**keep, "before": page.prev_cursor})
            if page.prev_cursor is not None
            else None,
            "next_url": "?" + urlencode({**keep, "after": page.next_cursor})
            if page.next_cursor is not None
            else None,
            "can_issue": user.has_perm_code(Perm.RECEIPT_ISSUE),
        },
    )


def _detail_context(user: User, receipt: Receipt, **extra: Any) -> dict[str, Any]:
    successor = Receipt.objects.filter(reissue_of=receipt).only("id", "code", "number").first()
    can_manage = _can_manage(user, receipt)
    return {
        "receipt": receipt,
        "items": [(str(i["name"]), format_fen(int(i["amount_fen"]))) for i in receipt.items],
        "total": format_fen(receipt.total_fen),
        "capital": chinese_capital(receipt.total_fen),
        "successor": successor,
        "can_void": can_manage and not receipt.is_voided,
        "can_reissue": can_manage and successor is None,
        "uploads": uploads_of(receipt),
        "void_form": extra.pop("void_form", None) or VoidForm(),
        "reissue_form": extra.pop("reissue_form", None) or ReissueForm(),
        "verify_query": urlencode(
            {"code": receipt.code, "number": receipt.number_text, "check": receipt.check_code}
        ),
        **extra,
    }


@staff_required(Perm.RECEIPT_VIEW)
def receipt_detail(request: HttpRequest, receipt_id: int) -> HttpResponse:
    user = staff_user(request)
    receipt = access_receipt(user, receipt_id)
    return render(request, "contributions/receipts/detail.html", _detail_context(user, receipt))


def _filename(receipt: Receipt, extension: str) -> str:
    return f"receipt-{receipt.code}-{receipt.number_text}.{extension}"


@staff_required(Perm.RECEIPT_VIEW)
@require_GET
def receipt_pdf(request: HttpRequest, receipt_id: int) -> HttpResponse:
    user = staff_user(request)
    receipt = access_receipt(user, receipt_id)
    content = render_receipt_pdf(receipt, verify_url=verification_url(receipt, _base_url(request)))
    record_receipt_download(acting_user=user, receipt=receipt, file_format="pdf")
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{_filename(receipt, "pdf")}"'
    return response


@staff_required(Perm.RECEIPT_VIEW)
@require_GET
def receipt_xml(request: HttpRequest, receipt_id: int) -> HttpResponse:
    user = staff_user(request)
    receipt = access_receipt(user, receipt_id)
    record_receipt_download(acting_user=user, receipt=receipt, file_format="xml")
    response = HttpResponse(receipt.signed_xml.encode("utf-8"), content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="{_filename(receipt, "xml")}"'
    return response


@staff_required(Perm.RECEIPT_ISSUE)
@require_POST
def receipt_void(request: HttpRequest, receipt_id: int) -> HttpResponse:
    user = staff_user(request)
    receipt = access_receipt(user, receipt_id, Perm.RECEIPT_ISSUE)
    form = VoidForm(request.POST)
    if form.is_valid():
        try:
            void_receipt(acting_user=user, receipt=receipt, reason=form.cleaned_data["reason"])
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"票据 {receipt.code}-{receipt.number_text} 已作废")
            return redirect("contributions:receipt_detail", receipt_id=receipt.pk)
    return render(
        request,
        "contributions/receipts/detail.html",
        _detail_context(user, receipt, void_form=form, open_panel="void"),
        status=422,
    )


@staff_required(Perm.RECEIPT_ISSUE)
@require_POST
def receipt_reissue(request: HttpRequest, receipt_id: int) -> HttpResponse:
    user = staff_user(request)
    receipt = access_receipt(user, receipt_id, Perm.RECEIPT_ISSUE)
    form = ReissueForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            new = reissue_receipt(
                acting_user=user,
                receipt=receipt,
                reason=data["reason"],
                payer_name=data["payer_name"].strip() or None,
                payer_reference=data["payer_reference"].strip() or None,
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                f"已换开新票据 {new.code}-{new.number_text}，原票据 "
                f"{receipt.code}-{receipt.number_text} 已作废",
            )
            return redirect("contributions:receipt_detail", receipt_id=new.pk)
    return render(
        request,
        "contributions/receipts/detail.html",
        _detail_context(user, receipt, reissue_form=form, open_panel="reissue"),
        status=422,
    )


# --- staff: ranges --------------------------------------------------------------------------------
@staff_required(Perm.RECEIPT_VIEW)
def range_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    can_allocate = user.has_perm_code(Perm.RECEIPT_ISSUE)
    form: RangeForm | None = None
    status = 200
    if can_allocate:
        issuers = issuing_unions_for(user)
        initial = {"year": timezone.localdate().year}
        if request.method == "POST":
            form = RangeForm(request.POST, issuers=issuers, initial=initial)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    created = allocate_range(
                        acting_user=user,
                        issuer=data["union_obj"],
                        code=data["code"] or "",
                        year=int(data["year"]),
                        first_number=data["first_number"] or "",
                        last_number=data["last_number"] or "",
                        platform_reference=data["platform_reference"] or "",
                        note=data["note"] or "",
                    )
                except InvalidInput as exc:
                    form.add_service_errors(exc)
                else:
                    messages.success(
                        request,
                        f"已登记 {created.issuer.name} 的号段 {created.code} "
                        f"{created.first_text}–{created.last_text}",
                    )
                    return redirect("contributions:range_list")
            status = 422
        else:
            form = RangeForm(issuers=issuers, initial=initial)
    elif request.method == "POST":
        require(user, Perm.RECEIPT_ISSUE)  # a 404, like every write without the permission
    ranges = list(
        ranges_for(user)
        .select_related("issuer", "allocated_by")
        .order_by("-year", "issuer_path", "id")[:RANGE_LIST_LIMIT]
    )
    attach_range_upload_counts(ranges)
    return render(
        request,
        "contributions/receipts/ranges.html",
        {"ranges": ranges, "form": form, "limit": RANGE_LIST_LIMIT},
        status=status,
    )


# --- public: verification and the public key ---------------------------------------------------
def _rate_limited(request: HttpRequest) -> bool:
    """A per-IP counter per minute in the cache (modest: stops enumeration, not people)."""
    limit = int(getattr(settings, "HUZHU_RECEIPT_VERIFY_PER_MINUTE", VERIFY_PER_MINUTE_DEFAULT))
    minute = int(timezone.now().timestamp() // 60)
    key = f"receipt-verify:{client_ip(request)}:{minute}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=120)
        count = 1
    return count > limit


@require_GET
def verify(request: HttpRequest) -> HttpResponse:
    """「电子票据查验」: 有效 / 已作废 / 未找到 with amounts, issuer, date; nothing personal."""
    asked = any(request.GET.get(k) for k in ("code", "number", "check"))
    form = VerifyForm(request.GET if asked else None)
    context: dict[str, Any] = {"form": form, "asked": asked}
    status = 200
    if asked:
        if _rate_limited(request):
            context["limited"] = True
            status = 429
        elif form.is_valid():
            data = form.cleaned_data
            found = verify_public(data["code"], data["number"], data["check"])
            context["result"] = found
            if found is not None:
                context["items"] = [(name, format_fen(fen)) for name, fen in found.items]
                context["total"] = format_fen(found.total_fen)
                context["capital"] = chinese_capital(found.total_fen)
        else:
            status = 422
    return render(request, "contributions/receipts/verify.html", context, status=status)


@require_GET
@cache_control(public=True, max_age=3600)
def public_key(request: HttpRequest) -> HttpResponse:
    """The Ed25519 public key that signs the XML originals (PEM); its key id in a header."""
    response = HttpResponse(receipt_signing.public_key_pem(), content_type="application/x-pem-file")
    response["X-Key-Id"] = receipt_signing.key_id()
    response["Content-Disposition"] = 'inline; filename="huzhu-receipt-public-key.pem"'
    return response
