"""Access to staff pages (S3–S5): logged in, second factor verified, password not expired, and the
permission the page needs — otherwise the login page, the password page or a 404.

Every staff view is wrapped in ``staff_required(perm=...)``; the scope of the objects a view
shows is then enforced by the ``access_*`` functions and the scoped selectors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django_htmx.http import HttpResponseClientRedirect

from huzhu.orgs.access import require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.orgs.services import password_expired

View = TypeVar("View", bound=Callable[..., HttpResponse])


def staff_user(request: HttpRequest) -> User:
    """The logged-in staff user of a request already checked by ``staff_required``."""
    return cast(User, request.user)


def is_verified(request: HttpRequest) -> bool:
    """Whether the session passed the second factor (or the factor is switched off)."""
    if not settings.HUZHU_OTP_REQUIRED:
        return True
    check = getattr(request.user, "is_verified", None)
    return bool(check and check())


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    # An htmx request must not swap a login page into a fragment: ask htmx to navigate instead.
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _to_login(request: HttpRequest) -> HttpResponse:
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(reverse(settings.LOGIN_URL))
    return redirect_to_login(request.get_full_path(), reverse(settings.LOGIN_URL))


def staff_required(
    perm: Perm | None = None, *, check_password_age: bool = True
) -> Callable[[View], View]:
    """Decorate a view: login + second factor + unexpired password + ``perm`` (else 404, S5)."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return _to_login(request)
            if not is_verified(request):
                # A session without the second factor is not a staff session at all.
                logout(request)
                return _to_login(request)
            staff = cast(User, user)
            if check_password_age and password_expired(staff, settings.HUZHU_PASSWORD_MAX_AGE_DAYS):
                return _redirect(request, reverse("web:password_change"))
            if perm is not None:
                require(staff, perm)  # NotPermitted is a 404
            return view(request, *args, **kwargs)

        return cast(View, wrapper)

    return decorator


def url_or_none(name: str, *args: Any) -> str | None:
    """``reverse`` for a page another app may not have built yet (the link is then hidden)."""
    try:
        return reverse(name, args=args or None)
    except NoReverseMatch:
        return None
