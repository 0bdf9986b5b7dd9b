"""Shell views: errors and the lockout answer. (Login and dashboard: see web/auth_views.py.)"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def _error(request: HttpRequest, status: int, title: str, text: str) -> HttpResponse:
    return render(request, "web/error.html", {"status": status, "title": title, "text": text},
                  status=status)


def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, "请求无效", "请求格式不正确。")


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, "无权访问", "您没有执行此操作的权限。")


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 404, "页面不存在", "您访问的页面或记录不存在，或不在您的管辖范围内。")


def error_500(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, "系统错误", "系统暂时无法处理您的请求，请稍后再试。")


def lockout_response(request: HttpRequest, credentials: Any = None, *args: Any,
                     **kwargs: Any) -> HttpResponse:
    # The same answer whether or not the username exists (S2).
    return render(request, "web/login.html",
                  {"error": "用户名或密码错误次数过多，账号已锁定30分钟"}, status=429)
