"""Session policy (S4): idle and absolute timeouts, disabled users lose access at once, personal
pages are never cached."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

_STARTED = "huzhu_started"
_SEEN = "huzhu_seen"


def start_session_clock(request: HttpRequest) -> None:
    """Start the idle and absolute clocks of a session that has just logged in."""
    now = int(time.time())
    request.session[_STARTED] = now
    request.session[_SEEN] = now


class SessionPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            started = int(request.session.get(_STARTED, now))
            seen = int(request.session.get(_SEEN, now))
            idle = settings.HUZHU_STAFF_IDLE_SECONDS
            absolute = settings.HUZHU_STAFF_ABSOLUTE_SECONDS
            if not user.is_active or now - seen > idle or now - started > absolute:
                logout(request)  # flushes the server-side session
                request.session["huzhu_expired"] = True
            else:
                request.session[_STARTED] = started
                # Skip htmx polling so background refreshes do not keep a session alive.
                if request.headers.get("HX-Trigger-Name") != "poll":
                    request.session[_SEEN] = now
        response = self.get_response(request)
        if user is not None and user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        return response
