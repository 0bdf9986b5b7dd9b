from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.web.auth import url_or_none


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool = False


# Top-level pages of the other business apps: (label, URL name, permission code). Each is shown
# when the user holds the permission and the app's page exists (``url_or_none``), so an app can be
# listed here before its pages are merged. Apps add one line here for their entry page.
APP_PAGES: list[tuple[str, str, str]] = [
    ("参保登记", "enrollment:list", "enrollment.view"),
    ("缴费与分担", "funding:invoice_list", "funding.view"),
    ("电子票据", "contributions:receipt_list", "receipt.view"),
    ("基金账务", "ledger:journal", "ledger.view"),
    ("理赔审核", "claims:queue", "claim.view"),
    ("理赔审核规则", "claims:policy", "claim.policy"),
    ("结算合作方", "partners:list", "partner.manage"),
    ("补助金支付", "payments:list", "claim.pay"),
    ("结算数据", "feed:settlements", "claim.view"),
    ("会员更正申请", "portal:staff_corrections", "member.view"),
]


def _nav(request: HttpRequest, user: User) -> list[NavItem]:
    """The side navigation: only what the user's roles may open (S5, S7)."""
    perms = user.perms()
    candidates: list[tuple[str, str | None]] = [("工作台", reverse("web:dashboard"))]
    if Perm.ORG_VIEW in perms:
        candidates.append(("组织机构", reverse("orgs:tree")))
    if Perm.UNIT_VIEW in perms:
        candidates.append(("单位", reverse("orgs:unit_list")))
    if Perm.MEMBER_VIEW in perms:
        candidates.append(("职工", reverse("members:list")))
    if Perm.PLAN_VIEW in perms:
        candidates.append(("保障方案", url_or_none("plans:list")))
    codes = {str(p) for p in perms}
    candidates += [(label, url_or_none(name)) for label, name, code in APP_PAGES if code in codes]
    if Perm.AUDIT_VIEW in perms:
        candidates.append(("审计日志", reverse("core:audit_log")))
    items = [(label, url) for label, url in candidates if url]
    # The active item is the one whose address is the longest prefix of the current path.
    path = request.path
    best = max(
        (url for _, url in items if path == url or (url != "/" and path.startswith(url))),
        key=len,
        default=None,
    )
    return [NavItem(label, url, url == best) for label, url in items]


def platform(request: HttpRequest) -> dict[str, Any]:
    context: dict[str, Any] = {
        "DEMO_MODE": settings.DEMO_MODE,
        # The second factor is off only in demo mode (or a test that says so): always visible.
        "SHOW_DEMO_BANNER": settings.DEMO_MODE or not settings.HUZHU_OTP_REQUIRED,
        "OTP_REQUIRED": settings.HUZHU_OTP_REQUIRED,
        "PLATFORM_NAME": "职工互助保障平台",
    }
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["nav"] = _nav(request, cast(User, user))
    return context
