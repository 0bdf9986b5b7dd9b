"""Bearer-token authentication of staff API calls, with the operation's permission checked before
anything else (so the answer never depends on whether the body happened to be valid).

A token is looked up by its SHA-256 digest (``ApiToken.digest_of``): the token itself is never
stored. It must be neither revoked nor expired, and its user must be active — disabling an account
ends API access at the next request, as it ends web sessions (S4). ``last_used_at`` is written at
most once a minute, so a busy script costs one UPDATE per minute rather than one per call.

Permissions (S5): an operation on a collection (list, create) answers 403 when the caller's roles
lack its permission; an operation on one object answers 404, exactly as for an object outside the
caller's subtree, so that an outsider learns nothing about the object's existence.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import ApiToken, User
from huzhu.orgs.roles import Perm

logger = logging.getLogger(__name__)

LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 200


class MissingPermission(AuthorizationError):
    """403: the caller lacks the permission of a collection-level action (list, create)."""

    def __init__(self, perm: Perm) -> None:
        super().__init__(message=f"您的角色无权执行此操作（需要权限 {perm.value}）")
        self.perm = perm


def user_for_token(token: str) -> User | None:
    """The active user of a valid (known, unrevoked, unexpired) token, else None."""
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = (
        ApiToken.objects.select_related("user", "user__organisation")
        .filter(digest=ApiToken.digest_of(token), revoked_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if not row.user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


class StaffToken(HttpBearer):
    """``Authorization: Bearer <token>`` of a staff account, optionally with a permission.

    ``StaffToken(perm, collection=True)``: 403 without ``perm``; ``StaffToken(perm)``: 404.
    """

    def __init__(self, perm: Perm | None = None, *, collection: bool = False) -> None:
        super().__init__()
        self.perm = perm
        self.collection = collection

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = user_for_token(token)
        if user is None:
            logger.info("API token rejected on %s %s", request.method, request.path)
            return None
        # Code that reads request.user (logging, audit context) sees the token's owner.
        request.user = user
        if self.perm is not None and not user.has_perm_code(self.perm):
            if self.collection:
                raise MissingPermission(self.perm)
            raise NotPermitted("无权访问")
        return user


def staff(perm: Perm, *, collection: bool = False) -> dict[str, Any]:
    """Keyword arguments of a staff operation: its authentication and the documentation of the
    permission it needs (``x-permission`` in the OpenAPI operation)."""
    return {
        "auth": StaffToken(perm, collection=collection),
        "openapi_extra": {"x-permission": perm.value},
    }


def require_permission(actor: User, perm: Perm) -> None:
    """In a view: 403 unless ``actor`` holds ``perm`` (prefer ``staff(perm, collection=True)``,
    which checks it before the body is validated)."""
    if not actor.has_perm_code(perm):
        raise MissingPermission(perm)


def actor_of(request: HttpRequest) -> User:
    """The authenticated staff user of an API request (set by ``StaffToken``)."""
    user = getattr(request, "auth", None)
    if not isinstance(user, User):  # pragma: no cover - every staff route requires the token
        raise AuthorizationError(message="未认证")
    return user
