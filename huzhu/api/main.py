"""The HTTP API under /api/v1 (django-ninja): one router per domain, one error shape."""

from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(
    title="职工互助保障平台 API",
    version="1",
    description="工会职工互助保障平台接口。职员调用使用 `Authorization: Bearer <token>`；"
    "所有读取均限定在调用者所在组织及其下级范围内。",
    urls_namespace="api",
)
