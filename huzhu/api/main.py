"""The HTTP API under /api/v1 (django-ninja): one router per domain, one error shape.

Every staff operation needs ``Authorization: Bearer <token>`` (``huzhu token create USERNAME``);
reads are limited to the caller's organisation subtree and an object outside it answers 404
(``huzhu.api.errors`` holds the answers for 401/403/404/409/422). The interactive documentation
at /api/v1/docs uses Swagger UI files served by this application (``huzhu.api.docs``): union
intranets have no internet access, so nothing is loaded from a CDN.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.renderers import JSONRenderer

from huzhu.api import docs, errors, members, orgs
from huzhu.api.auth import StaffToken


class Utf8JSONRenderer(JSONRenderer):
    # Chinese text as UTF-8 rather than \uXXXX escapes: readable by the unions' scripts and
    # operators (the Content-Type names the charset).
    json_dumps_params = {"ensure_ascii": False}


class HuzhuAPI(NinjaAPI):
    def create_response(
        self,
        request: HttpRequest,
        data: Any,
        *,
        status: int | None = None,
        temporal_response: HttpResponse | None = None,
    ) -> HttpResponse:
        response = super().create_response(
            request, data, status=status, temporal_response=temporal_response
        )
        # Answers carry personal data (even masked) and depend on the caller's scope (S4).
        response.headers["Cache-Control"] = "no-store"
        return response


api = HuzhuAPI(
    title="职工互助保障平台 API",
    version="1",
    description=(
        "工会职工互助保障平台接口。职员调用使用 `Authorization: Bearer <token>`"
        "（令牌由 `huzhu token create 用户名` 生成）；"
        "所有读取均限定在调用者所在组织及其下级范围内，"
        "范围外或不存在的对象一律答复 404。输入错误答复 422，`detail` 列出全部字段错误（中文）。"
    ),
    urls_namespace="api",
    auth=StaffToken(),  # routers narrow it with a permission: huzhu.api.auth.staff()
    docs=docs.LocalSwagger(),
    renderer=Utf8JSONRenderer(),
)
errors.install(api)
docs.install(api)

# --- routers: one per domain (each module's router carries its tags) --------------------------
api.add_router("/orgs", orgs.orgs_router)
api.add_router("/units", orgs.units_router)
api.add_router("/members", members.router)
api.add_router("/plans", "huzhu.api.plans.router")
api.add_router("/enrollment", "huzhu.api.enrollment.router")
api.add_router("/contributions", "huzhu.api.contributions.router")
api.add_router("/settlements", "huzhu.api.settlements.router")
api.add_router("/claims", "huzhu.api.claims.router")
api.add_router("/payments", "huzhu.api.payments.router")
api.add_router("/settlement-files", "huzhu.api.settlement_files.router")
api.add_router("/reconciliations", "huzhu.api.settlement_files.reconciliation_router")
