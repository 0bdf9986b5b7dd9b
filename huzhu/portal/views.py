"""Member portal pages (thin: parse, call one service or selector, render).

Public: login, activation, logout. Member pages (``member_required``): 我的保障, 我的票据 with
PDF and signed XML downloads, 我的信息 with the data download, 更正申请, 授权管理. Pages that
show the member's own data in plain text are marked ``X-Huzhu-Reveal: 1`` (it is their own;
the S9 test guard checks every other answer) and audited.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from huzhu.contributions.receipt_pdf import render_receipt_pdf, verification_url
from huzhu.core.errors import InvalidInput
from huzhu.members.models import CURRENT_NOTICE_VERSION, Member
from huzhu.portal.access import access_own_receipt
from huzhu.portal.auth import (
    EXPIRED_KEY,
    end_member_session,
    member_required,
    portal_channel,
    safe_next,
    session_account,
    start_member_session,
)
from huzhu.portal.forms import ActivationForm, CorrectionForm, MemberLoginForm
from huzhu.portal.models import MemberAccount
from huzhu.portal.selectors import (
    consents_of,
    corrections_of,
    enrollments_of,
    member_data_export,
    member_with_plain_data,
    receipts_of,
)
from huzhu.portal.services import (
    MAX_PENDING_CORRECTIONS,
    Outcome,
    PortalEvent,
    activate_account,
    authenticate_member,
    member_grant_consent,
    member_withdraw_consent,
    record_logout,
    record_member_access,
    request_correction,
)

LOGIN_FAILED = "身份证号码或密码错误"
LOCKED = "身份证号码或密码错误次数过多，已锁定30分钟，请稍后再试"
ACTIVATION_FAILED = (
    "身份证号码或激活码不正确，或激活码已使用、已过期。请核对通知书，或请所在工会重新开具激活码。"
)
ACTIVATION_LOCKED = "尝试次数过多，已锁定30分钟，请稍后再试"
REVEAL_HEADER = "X-Huzhu-Reveal"


def _plain(response: HttpResponse) -> HttpResponse:
    """Mark an answer that shows the member's own data in plain text (see the module doc)."""
    response.headers[REVEAL_HEADER] = "1"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- public: login, activation, logout -------------------------------------------------------
@never_cache
@sensitive_post_parameters("id_number", "password")
def login_view(request: HttpRequest) -> HttpResponse:
    if request.session.pop(EXPIRED_KEY, False):
        messages.warning(request, "您长时间未操作，已自动退出，请重新登录")
    if not request.user.is_authenticated and session_account(request) is not None:
        return redirect("portal:home")
    form = MemberLoginForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        with portal_channel(request):
            result = authenticate_member(
                id_number=form.cleaned_data["id_number"], password=form.cleaned_data["password"]
            )
        if result.ok:
            assert result.account is not None
            next_url = safe_next(request, request.POST.get("next", ""))
            start_member_session(request, result.account)
            return redirect(next_url or "portal:home")
        # The same answer for an unknown ID number, a wrong password, an account not activated
        # and a disabled one; the lock answers alike for known and unknown ID numbers (S2).
        error, status = (LOCKED, 429) if result.outcome == Outcome.LOCKED else (LOGIN_FAILED, 200)
        form = MemberLoginForm()
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    context = {"form": form, "error": error, "next": next_url}
    return render(request, "portal/login.html", context, status=status)


@never_cache
@sensitive_post_parameters("id_number", "code", "password", "password2")
def activate_view(request: HttpRequest) -> HttpResponse:
    form = ActivationForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with portal_channel(request):
                result = activate_account(
                    id_number=data["id_number"], code=data["code"], password=data["password"]
                )
        except InvalidInput as exc:
            form.add_service_errors(exc)
            status = 422
        else:
            if result.ok:
                assert result.account is not None
                start_member_session(request, result.account)
                messages.success(request, "账号已激活，欢迎使用职工互助保障会员服务")
                return redirect("portal:home")
            locked = result.outcome == Outcome.LOCKED
            error = ACTIVATION_LOCKED if locked else ACTIVATION_FAILED
            status = 429 if locked else 200
            form = ActivationForm()
    elif form.errors:
        status = 422
    return render(request, "portal/activate.html", {"form": form, "error": error}, status=status)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        # A staff session is not ended here (the staff logout audits it): nothing to log out of.
        return redirect("portal:login")
    account: MemberAccount | None = session_account(request)
    if account is not None:
        with portal_channel(request):
            record_logout(member=account.member)
    end_member_session(request)  # flushes the server-side session (S4)
    messages.info(request, "您已安全退出")
    return redirect("portal:login")


# --- member pages --------------------------------------------------------------------------------
@member_required
def home(request: HttpRequest, member: Member) -> HttpResponse:
    """我的保障."""
    enrollments = list(enrollments_of(member))
    today = timezone.localdate()
    return render(
        request,
        "portal/home.html",
        {
            "member": member,
            "enrollments": enrollments,
            "covered_now": any(e.covered_on(today) for e in enrollments),
            "today": today,
            "section": "home",
        },
    )


@member_required
def receipts(request: HttpRequest, member: Member) -> HttpResponse:
    """我的票据."""
    rows = list(receipts_of(member)[:200])
    return render(
        request, "portal/receipts.html", {"member": member, "rows": rows, "section": "receipts"}
    )


@member_required
def claims(request: HttpRequest, member: Member) -> HttpResponse:
    """我的理赔: status, amount and why, in plain Chinese."""
    from huzhu.claims.history import history

    return render(
        request,
        "portal/claims.html",
        {"member": member, "rows": history(member), "section": "claims"},
    )


def _base_url(request: HttpRequest) -> str:
    """As the staff receipt pages: a configured public address, else this request's."""
    configured = str(getattr(settings, "HUZHU_PUBLIC_BASE_URL", "") or "")
    return configured or request.build_absolute_uri("/")


def _download(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@member_required
@require_GET
def receipt_pdf(request: HttpRequest, member: Member, receipt_id: int) -> HttpResponse:
    receipt = access_own_receipt(member, receipt_id)
    content = render_receipt_pdf(receipt, verify_url=verification_url(receipt, _base_url(request)))
    record_member_access(
        member=member,
        event=PortalEvent.RECEIPT_DOWNLOADED,
        obj=receipt,
        detail={"number": f"{receipt.code}-{receipt.number_text}", "format": "pdf"},
    )
    return _download(
        content, "application/pdf", f"receipt-{receipt.code}-{receipt.number_text}.pdf"
    )


@member_required
@require_GET
def receipt_xml(request: HttpRequest, member: Member, receipt_id: int) -> HttpResponse:
    receipt = access_own_receipt(member, receipt_id)
    record_member_access(
        member=member,
        event=PortalEvent.RECEIPT_DOWNLOADED,
        obj=receipt,
        detail={"number": f"{receipt.code}-{receipt.number_text}", "format": "xml"},
    )
    return _download(
        receipt.signed_xml.encode("utf-8"),
        "application/xml",
        f"receipt-{receipt.code}-{receipt.number_text}.xml",
    )


@member_required
def profile(request: HttpRequest, member: Member) -> HttpResponse:
    """我的信息: the member's own data, unmasked (audited)."""
    person = member_with_plain_data(member)
    record_member_access(member=member, event=PortalEvent.PROFILE_VIEWED)
    response = render(
        request,
        "portal/profile.html",
        {
            "member": person,
            "family": list(member.family.defer("id_number_enc").order_by("pk")),
            "hardship_records": list(member.hardship_records.order_by("-valid_from", "-pk")),
            "section": "profile",
        },
    )
    return _plain(response)


@member_required
@require_POST
def data_download(request: HttpRequest, member: Member) -> HttpResponse:
    """下载我的数据 (PIPL portability): JSON of everything held about the member, audited."""
    data = member_data_export(member)
    record_member_access(member=member, event=PortalEvent.DATA_DOWNLOADED)
    body = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    day = timezone.localdate().strftime("%Y%m%d")
    response = _download(body, "application/json; charset=utf-8", f"my-data-{day}.json")
    return _plain(response)


@member_required
def corrections(request: HttpRequest, member: Member) -> HttpResponse:
    """更正申请: the form and the member's requests with their status."""
    form = CorrectionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                request_correction(
                    member=member, field=data["field"], value=data["value"], reason=data["reason"]
                )
            except InvalidInput as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, "更正申请已提交，工会经办人员核实后会处理")
                return redirect("portal:corrections")
        status = 422
    return render(
        request,
        "portal/corrections.html",
        {
            "member": member,
            "form": form,
            "rows": list(corrections_of(member)[:100]),
            "max_pending": MAX_PENDING_CORRECTIONS,
            "section": "corrections",
        },
        status=status,
    )


@member_required
def consent(request: HttpRequest, member: Member) -> HttpResponse:
    """授权管理: the medical-data consent, its notice, grant and withdraw."""
    history = consents_of(member)
    return render(
        request,
        "portal/consent.html",
        {
            "member": member,
            "history": history,
            "active": next((c for c in history if c.active), None),
            "notice_version": CURRENT_NOTICE_VERSION,
            "section": "consent",
        },
    )


@member_required
@require_POST
def consent_grant(request: HttpRequest, member: Member) -> HttpResponse:
    if request.POST.get("agree") != "1":
        messages.error(request, "请先阅读告知书并勾选“我已阅读并同意”")
        return redirect("portal:consent")
    if member_grant_consent(member=member):
        messages.success(request, "已授权。您可以随时在本页撤回授权")
    else:
        messages.info(request, "您已授权，无需重复授权")
    return redirect("portal:consent")


@member_required
@require_POST
def consent_withdraw(request: HttpRequest, member: Member) -> HttpResponse:
    if member_withdraw_consent(member=member):
        messages.success(request, "已撤回授权。此后收到的医保结算数据将只隔离保存、不作处理")
    else:
        messages.info(request, "您当前没有有效的授权，无需撤回")
    return redirect("portal:consent")
