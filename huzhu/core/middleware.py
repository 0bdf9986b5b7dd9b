from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from huzhu.core.context import RequestInfo, current_request


def client_ip(request: HttpRequest) -> str:
    # Behind a reverse proxy set HUZHU_TRUST_X_FORWARDED_FOR; by default the socket address.
    return str(request.META.get("REMOTE_ADDR", ""))


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        channel = "api" if request.path.startswith("/api/") else "web"
        token = current_request.set(RequestInfo(ip=client_ip(request), channel=channel))
        try:
            return self.get_response(request)
        finally:
            current_request.reset(token)
