"""Shell views: the dashboard, error pages and the lockout answer (login: web/auth_views.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from huzhu.members.selectors import active_consent, hardship_on, members_for
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import unions_for, units_for
from huzhu.web.auth import staff_required, staff_user, url_or_none
from huzhu.web.forms import LoginForm


def _error(request: HttpRequest, status: int, title: str, text: str) -> HttpResponse:
    return render(
        request, "web/error.html", {"status": status, "title": title, "text": text}, status=status
    )


def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, "请求无效", "请求格式不正确。")


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, "无权访问", "您没有执行此操作的权限，或页面已过期，请刷新后重试。")


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 404, "页面不存在", "您访问的页面或记录不存在，或不在您的管辖范围内。")


def error_500(request: HttpRequest) -> HttpResponse:
    # Rendered without the request's context processors: they may need the failing database.
    context = {"status": 500, "title": "系统错误", "text": "系统暂时无法处理您的请求，请稍后再试。"}
    return HttpResponse(render_to_string("web/error.html", context), status=500)


LOCKOUT_MESSAGE = "用户名或密码错误次数过多，账号已锁定30分钟"


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: Any = None,
    *args: Any,
    **kwargs: Any,
) -> HttpResponse:
    """django-axes' answer once an account is locked (AXES_LOCKOUT_CALLABLE): the login page with
    the same message whether or not the username exists (S2)."""
    return render(
        request,
        "web/login.html",
        {"form": LoginForm(), "error": LOCKOUT_MESSAGE, "next": ""},
        status=429,
    )


@dataclass(frozen=True)
class Figure:
    label: str
    value: int
    url: str | None
    hint: str = ""


@staff_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    """Real figures of the user's subtree; one COUNT each (the dashboard only, never per list)."""
    user = staff_user(request)
    perms = user.perms()
    today = timezone.localdate()
    figures: list[Figure] = []
    if Perm.ORG_VIEW in perms:
        figures.append(Figure("工会组织", unions_for(user).count(), reverse("orgs:tree")))
    if Perm.UNIT_VIEW in perms:
        figures.append(Figure("单位", units_for(user).count(), reverse("orgs:unit_list")))
    if Perm.MEMBER_VIEW in perms:
        members = members_for(user)
        members_url = reverse("members:list")
        figures += [
            Figure("参保职工", members.count(), members_url),
            Figure(
                "困难职工（当前）",
                members.filter(hardship_on(today)).count(),
                members_url + "?hardship=1",
                f"截至 {today:%Y-%m-%d} 仍在认定期内",
            ),
            Figure(
                "已授权医保数据",
                members.filter(active_consent()).count(),
                None,
                "授权有效、未撤回",
            ),
        ]
    if Perm.CLAIM_REVIEW in perms:
        from huzhu.claims.views import pending_review_count

        figures.append(
            Figure("待审核理赔", pending_review_count(user), url_or_none("claims:queue"))
        )
    actions: list[tuple[str, str]] = []
    if Perm.MEMBER_EDIT in perms:
        actions.append(("新增职工", reverse("members:create")))
    if Perm.UNIT_EDIT in perms:
        actions.append(("新建单位", reverse("orgs:unit_create")))
    if Perm.PLAN_VIEW in perms:
        plans = url_or_none("plans:list")
        if plans:
            actions.append(("保障方案", plans))
    if Perm.AUDIT_VIEW in perms:
        actions.append(("查看审计日志", reverse("core:audit_log")))
    return render(
        request,
        "web/dashboard.html",
        {"figures": figures, "actions": actions, "today": today},
    )
