"""Member sessions (S4): separate from staff sessions in every direction.

A member session holds the member's id, the login time, the last activity and a fingerprint of the
password hash under the ``portal_*`` keys; it never holds a Django user. The idle (30 min) and
absolute (12 h) limits are checked on every member page the way ``huzhu.web.middleware`` checks
staff sessions: a session past either limit is flushed on the server. A session where a staff user
is logged in is never a member session (``member_required`` drops the member keys), and a member
session is never a staff session (it has no Django user, so ``staff_required`` sends it to the
staff login). Logging in as a member flushes whatever the session held before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme

from huzhu.core.context import RequestInfo, current_request
from huzhu.core.middleware import client_ip
from huzhu.portal.models import MemberAccount

MEMBER_KEY = "portal_member_id"
STARTED_KEY = "portal_started"
SEEN_KEY = "portal_seen"
AUTH_KEY = "portal_auth"
EXPIRED_KEY = "portal_expired"
_MEMBER_KEYS = (MEMBER_KEY, STARTED_KEY, SEEN_KEY, AUTH_KEY)

View = TypeVar("View", bound=Callable[..., HttpResponse])


def _fingerprint(account: MemberAccount) -> str:
    """Changes with the password hash: re-activating ends every other session of the member."""
    return salted_hmac("huzhu.portal.session", account.password).hexdigest()


@contextmanager
def portal_channel(request: HttpRequest) -> Iterator[None]:
    """Audit events written while serving the portal carry the channel ``portal``."""
    token = current_request.set(RequestInfo(ip=client_ip(request), channel="portal"))
    try:
        yield
    finally:
        current_request.reset(token)


def start_member_session(request: HttpRequest, account: MemberAccount) -> None:
    """Log the member in: a fresh session (new key, nothing carried over, a staff login ended)."""
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        logout(request)  # flushes; the staff logout is audited by huzhu.orgs.signals
    else:
        request.session.flush()
    now = int(time.time())
    request.session[MEMBER_KEY] = account.member_id
    request.session[STARTED_KEY] = now
    request.session[SEEN_KEY] = now
    request.session[AUTH_KEY] = _fingerprint(account)


def end_member_session(request: HttpRequest) -> None:
    request.session.flush()


def _drop_member_keys(request: HttpRequest) -> None:
    for key in _MEMBER_KEYS:
        request.session.pop(key, None)


def session_member_id(request: HttpRequest) -> int | None:
    value = request.session.get(MEMBER_KEY)
    return int(value) if isinstance(value, int) else None


def session_account(request: HttpRequest) -> MemberAccount | None:
    """The member account of a valid member session (clocks advanced), else None. A session past
    its idle or absolute limit, or whose account was disabled or re-activated since, is flushed."""
    member_id = session_member_id(request)
    if member_id is None:
        return None
    now = int(time.time())
    started = int(request.session.get(STARTED_KEY, 0))
    seen = int(request.session.get(SEEN_KEY, 0))
    account = (
        MemberAccount.objects.select_related("member", "member__union", "member__unit")
        .defer("member__id_number_enc", "member__phone_enc", "member__bank_account_enc")
        .filter(member_id=member_id)
        .first()
    )
    timed_out = (
        now - seen > settings.HUZHU_MEMBER_IDLE_SECONDS
        or now - started > settings.HUZHU_MEMBER_ABSOLUTE_SECONDS
    )
    valid = (
        account is not None
        and account.is_active
        and account.is_activated
        and account.member.is_active
        and constant_time_compare(str(request.session.get(AUTH_KEY, "")), _fingerprint(account))
    )
    if timed_out or not valid:
        request.session.flush()
        if timed_out:
            request.session[EXPIRED_KEY] = True
        return None
    request.session[SEEN_KEY] = now
    return account


def safe_next(request: HttpRequest, url: str) -> str:
    """A redirect target after login: a portal page of this site, else empty."""
    portal = reverse("portal:home")
    if (
        url
        and url.startswith(portal)
        and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return url
    return ""


def to_login(request: HttpRequest) -> HttpResponse:
    login = reverse("portal:login")
    if request.method == "GET":
        login += "?" + urlencode({"next": request.get_full_path()})
    return redirect(login)


def member_required(view: View) -> View:
    """Decorate a member page: a valid member session or the portal login. The view receives the
    authenticated ``member`` after the request; every answer is ``Cache-Control: no-store``."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            # A staff session is never a member session (S4): member keys it may carry are dropped.
            _drop_member_keys(request)
            response = to_login(request)
        else:
            account = session_account(request)
            if account is None:
                response = to_login(request)
            else:
                with portal_channel(request):
                    response = view(request, account.member, *args, **kwargs)
        response.headers["Cache-Control"] = "no-store"
        return response

    wrapper.portal_member_only = True  # type: ignore[attr-defined]  # read by the access matrix
    return cast(View, wrapper)
