"""Staff login (S1–S4): password (django-axes counts failures and locks the account), then the
TOTP second factor (enrolment with a QR code on first login), forced password change after 90
days, logout.

The user is logged in to Django only once both factors passed: between the two steps the session
holds a short-lived "pending" marker, never an authenticated user, so no page is reachable with the
password alone.
"""

from __future__ import annotations

import time
from base64 import b32encode
from typing import Any, TypedDict
from urllib.parse import quote, urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, logout, update_session_auth_hash
from django.contrib.auth import login as auth_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.core.errors import InvalidInput
from huzhu.orgs.models import User
from huzhu.orgs.services import (
    change_password,
    confirmed_totp_device,
    password_expired,
    totp_device_for_enrolment,
    verify_second_factor,
)
from huzhu.web.auth import is_verified, staff_required, staff_user
from huzhu.web.forms import LoginForm, OtpForm, PasswordChangeForm
from huzhu.web.middleware import start_session_clock

PENDING = "huzhu_pending_login"
PENDING_SECONDS = 300
MAX_OTP_FAILURES = 5
LOGIN_FAILED = "用户名或密码错误"
ISSUER = "职工互助保障平台"


class Pending(TypedDict):
    uid: int
    backend: str
    at: int
    next: str
    fails: int


def _safe_next(request: HttpRequest, url: str) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


def _pending(request: HttpRequest) -> tuple[Pending | None, User | None]:
    pending: Pending | None = request.session.get(PENDING)
    if not pending or int(time.time()) - int(pending["at"]) > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None, None
    user = User.objects.filter(pk=pending["uid"], is_active=True).first()
    if user is None:
        request.session.pop(PENDING, None)
        return None, None
    return pending, user


def _restart(request: HttpRequest, text: str) -> HttpResponse:
    request.session.pop(PENDING, None)
    messages.warning(request, text)
    return redirect("web:login")


def _complete_login(
    request: HttpRequest,
    user: User,
    backend: str,
    device: TOTPDevice | None,
    next_url: str,
) -> HttpResponse:
    request.session.pop(PENDING, None)
    auth_login(request, user, backend=backend)  # audited by orgs.signals; resets axes failures
    if device is not None:
        otp_login(request, device)
    start_session_clock(request)
    if password_expired(user, settings.HUZHU_PASSWORD_MAX_AGE_DAYS):
        return redirect("web:password_change")
    return redirect(_safe_next(request, next_url) or "web:dashboard")


@never_cache
@sensitive_post_parameters("password")
def login_view(request: HttpRequest) -> HttpResponse:
    if request.session.pop("huzhu_expired", False):
        messages.warning(request, "您长时间未操作，已自动退出，请重新登录")
    if request.user.is_authenticated and is_verified(request):
        return redirect("web:dashboard")
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"].strip()
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if user is None:
            # The same answer for an unknown user, a wrong password and a disabled account (S2);
            # after 5 failures django-axes answers with ``lockout_response`` instead.
            error = LOGIN_FAILED
        else:
            assert isinstance(user, User)
            next_url = _safe_next(request, request.POST.get("next", ""))
            backend = str(getattr(user, "backend", settings.AUTHENTICATION_BACKENDS[-1]))
            if not settings.HUZHU_OTP_REQUIRED:
                return _complete_login(request, user, backend, None, next_url)
            request.session.cycle_key()
            request.session[PENDING] = Pending(
                uid=user.pk, backend=backend, at=int(time.time()), next=next_url, fails=0
            )
            if confirmed_totp_device(user) is None:
                return redirect("web:otp_enrol")
            return redirect("web:login_otp")
    context = {"form": form, "error": error, "next": request.GET.get("next", "")}
    return render(request, "web/login.html", context)


def _check_token(
    request: HttpRequest, form: OtpForm, pending: Pending, user: User, device: TOTPDevice
) -> HttpResponse | None:
    """Verify the submitted code; the response when the login is complete or must restart."""
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        form.add_error("token", "尝试过于频繁，请稍等几秒后再输入")
        return None
    if verify_second_factor(user=user, device=device, token=form.cleaned_data["token"]):
        return _complete_login(request, user, pending["backend"], device, pending["next"])
    pending["fails"] = int(pending["fails"]) + 1
    request.session[PENDING] = pending
    if pending["fails"] >= MAX_OTP_FAILURES:
        return _restart(request, "动态口令连续输入错误，请重新输入用户名和密码")
    form.add_error("token", "动态口令不正确或已使用过，请输入验证器上显示的最新口令")
    return None


@never_cache
def login_otp(request: HttpRequest) -> HttpResponse:
    pending, user = _pending(request)
    if pending is None or user is None:
        return _restart(request, "登录已超时，请重新输入用户名和密码")
    device = confirmed_totp_device(user)
    if device is None:
        return redirect("web:otp_enrol")
    form = OtpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        done = _check_token(request, form, pending, user, device)
        if done is not None:
            return done
    status = 422 if form.errors else 200
    return render(request, "web/otp.html", {"form": form, "username": user.username}, status=status)


def _otpauth_url(device: TOTPDevice, username: str) -> str:
    label = quote(f"{ISSUER}:{username}")
    params = urlencode(
        {
            "secret": b32encode(device.bin_key).decode(),
            "issuer": ISSUER,
            "algorithm": "SHA1",
            "digits": device.digits,
            "period": device.step,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{params}"


@never_cache
def otp_enrol(request: HttpRequest) -> HttpResponse:
    pending, user = _pending(request)
    if pending is None or user is None:
        return _restart(request, "登录已超时，请重新输入用户名和密码")
    if confirmed_totp_device(user) is not None:
        return redirect("web:login_otp")
    device = totp_device_for_enrolment(user)
    form = OtpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        done = _check_token(request, form, pending, user, device)
        if done is not None:
            return done
    url = _otpauth_url(device, user.username)
    qr = segno.make(url, error="m").svg_inline(scale=5, title="动态口令绑定二维码")
    secret = b32encode(device.bin_key).decode()
    context: dict[str, Any] = {
        "form": form,
        "username": user.username,
        "qr_svg": mark_safe(qr),  # noqa: S308 - generated by segno from our own data
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
    }
    status = 422 if form.errors else 200
    return render(request, "web/otp_enrol.html", context, status=status)


@never_cache
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@staff_required(check_password_age=False)
def password_change(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    expired = password_expired(user, settings.HUZHU_PASSWORD_MAX_AGE_DAYS)
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not user.check_password(form.cleaned_data["old_password"]):
            form.add_error("old_password", "原密码不正确")
        else:
            try:
                change_password(user=user, new_password=form.cleaned_data["new_password1"])
            except InvalidInput as exc:
                form.add_service_errors(exc)
            except ValidationError as exc:  # pragma: no cover - validators raise via the service
                form.add_error("new_password1", exc)
            else:
                update_session_auth_hash(request, user)  # keep this session, end the others
                messages.success(request, "密码已修改")
                return redirect("web:dashboard")
    status = 422 if form.errors else 200
    return render(
        request,
        "web/password_change.html",
        {"form": form, "expired": expired, "max_age": settings.HUZHU_PASSWORD_MAX_AGE_DAYS},
        status=status,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the server-side session (S4); audited by orgs.signals
    messages.info(request, "您已安全退出")
    return redirect("web:login")
