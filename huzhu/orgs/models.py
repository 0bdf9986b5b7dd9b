"""The union tree (R16, R17), employers, staff accounts and their roles (S1–S7)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone

from huzhu.orgs.roles import Perm, Role, permissions_for

PATH_WIDTH = 8  # digits per level: "00000001/00000012/"; '/' sorts before '0' (see subtree_q)


class UnionKind(models.TextChoices):
    PROVINCIAL = "provincial", "省总工会"
    CITY = "city", "市（州）总工会"
    COUNTY = "county", "县（市、区）总工会"
    GRASSROOTS = "grassroots", "基层工会"
    INDUSTRY = "industry", "产业工会"
    FEDERATION = "federation", "工会联合会（行业性、区域性）"


ENROLLING_KINDS = frozenset({UnionKind.GRASSROOTS, UnionKind.FEDERATION})


def subtree_q(path: str, field: str = "path") -> Q:
    """Rows whose materialized path starts with ``path`` — as a range, so a plain B-tree index
    serves it on SQLite and PostgreSQL alike (no LIKE, no collation dependence)."""
    upper = path[:-1] + "0"  # path ends with "/", and "/" < "0"
    return Q(**{f"{field}__gte": path, f"{field}__lt": upper})


class Union(models.Model):
    """A node of the union tree: 总工会 at each level, grassroots unions, federations."""

    name = models.CharField("名称", max_length=100)
    kind = models.CharField("类型", max_length=16, choices=UnionKind.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=255, unique=True, editable=False)
    depth = models.PositiveSmallIntegerField(default=0, editable=False)
    region_code = models.CharField("行政区划代码", max_length=6, blank=True)
    uscc = models.CharField("统一社会信用代码", max_length=18, null=True, blank=True, unique=True)
    code = models.CharField("组织代码", max_length=18, unique=True)
    address = models.CharField("地址", max_length=200, blank=True)
    contact_name = models.CharField("联系人", max_length=50, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "工会组织"
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in UnionKind]), name="union_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["region_code"]), models.Index(fields=["parent", "name"])]

    def __str__(self) -> str:
        return self.name

    def contains(self, other_path: str) -> bool:
        return other_path.startswith(self.path)

    @property
    def can_enroll(self) -> bool:
        return self.kind in ENROLLING_KINDS


class Unit(models.Model):
    """An employer (用人单位) whose workers enroll through a grassroots union or federation."""

    name = models.CharField("单位名称", max_length=100)
    uscc = models.CharField("统一社会信用代码", max_length=18, unique=True)
    union = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="units")
    union_path = models.CharField(max_length=255, editable=False, db_index=True)
    address = models.CharField("地址", max_length=200, blank=True)
    contact_name = models.CharField("联系人", max_length=50, blank=True)
    contact_phone_masked = models.CharField("联系电话", max_length=20, blank=True)
    industry = models.CharField("行业", max_length=50, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "单位"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    def create_user(self, username: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(username=username, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_superuser", True)
        extra.setdefault("is_staff", True)
        return self.create_user(username, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A named staff account belonging to one organisation (S1)."""

    username = models.CharField("用户名", max_length=150, unique=True)
    full_name = models.CharField("姓名", max_length=50, blank=True)
    organisation = models.ForeignKey(
        Union, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)  # Django admin access only (system admin)
    password_changed_at = models.DateTimeField(default=timezone.now)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()
    USERNAME_FIELD = "username"
    REQUIRED_FIELDS = []

    class Meta:
        verbose_name = "账号"

    def __str__(self) -> str:
        return self.username

    def role_codes(self) -> set[str]:
        cached: set[str] | None = getattr(self, "_role_cache", None)
        if cached is None:
            cached = set(self.roles.values_list("role", flat=True)) if self.pk else set()
            self._role_cache = cached
        return cached

    def perms(self) -> frozenset[Perm]:
        return permissions_for(self.role_codes())

    def has_perm_code(self, perm: Perm) -> bool:
        return perm in self.perms()

    def role_labels(self) -> list[str]:
        return [Role(r).label for r in sorted(self.role_codes())]


class UserRole(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=16, choices=Role.choices)
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="user_role_unique"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="user_role_valid"
            ),
        ]


class PasswordHistory(models.Model):
    """The last password hashes, so a new password is not one of the last 5 (S1)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=256)
    created_at = models.DateTimeField(default=timezone.now)


class ApiToken(models.Model):
    """A bearer token for the API: only a SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @staticmethod
    def new_token() -> str:
        return "hz_" + secrets.token_urlsafe(32)
