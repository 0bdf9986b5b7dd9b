"""Roles and the permissions they carry (S5–S7).

The three administrators (三员分立, GB/T 22239) hold no business permission: the system
administrator manages accounts, the security administrator manages roles and security settings, the
audit administrator alone reads the audit log.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    CLERK = "clerk", "经办"
    REVIEWER = "reviewer", "审核"
    FINANCE = "finance", "财务"
    AUDITOR = "auditor", "稽核"
    PLAN_MANAGER = "plan_manager", "方案管理"
    SYSTEM_ADMIN = "sysadmin", "系统管理员"
    SECURITY_ADMIN = "secadmin", "安全管理员"
    AUDIT_ADMIN = "auditadmin", "审计管理员"


ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})


class Perm(StrEnum):
    ORG_VIEW = "org.view"
    ORG_EDIT = "org.edit"
    UNIT_VIEW = "unit.view"
    UNIT_EDIT = "unit.edit"
    MEMBER_VIEW = "member.view"
    MEMBER_EDIT = "member.edit"
    MEMBER_UNMASK = "member.unmask"
    PLAN_VIEW = "plan.view"
    PLAN_IMPORT = "plan.import"
    PLAN_ACTIVATE = "plan.activate"
    AUDIT_VIEW = "audit.view"
    USER_MANAGE = "user.manage"
    ROLE_MANAGE = "role.manage"


_BUSINESS_VIEW = {Perm.ORG_VIEW, Perm.UNIT_VIEW, Perm.MEMBER_VIEW, Perm.PLAN_VIEW}

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.CLERK: frozenset(
        _BUSINESS_VIEW | {Perm.ORG_EDIT, Perm.UNIT_EDIT, Perm.MEMBER_EDIT, Perm.MEMBER_UNMASK}
    ),
    Role.REVIEWER: frozenset(_BUSINESS_VIEW | {Perm.MEMBER_UNMASK}),
    Role.FINANCE: frozenset(_BUSINESS_VIEW | {Perm.MEMBER_UNMASK}),
    Role.AUDITOR: frozenset(_BUSINESS_VIEW),
    Role.PLAN_MANAGER: frozenset({Perm.PLAN_VIEW, Perm.PLAN_IMPORT, Perm.PLAN_ACTIVATE}),
    Role.SYSTEM_ADMIN: frozenset({Perm.USER_MANAGE, Perm.ORG_VIEW}),
    Role.SECURITY_ADMIN: frozenset({Perm.ROLE_MANAGE, Perm.ORG_VIEW}),
    Role.AUDIT_ADMIN: frozenset({Perm.AUDIT_VIEW, Perm.ORG_VIEW}),
}

# Field matrix (S7): which personal fields a role may see in plain text after stating a reason.
# Everyone with MEMBER_VIEW sees the masked forms only; lists never show diagnoses.
UNMASKABLE_FIELDS: dict[str, frozenset[str]] = {
    Role.CLERK: frozenset({"id_number", "phone", "bank_account"}),
    Role.REVIEWER: frozenset({"id_number", "phone"}),
    Role.FINANCE: frozenset({"id_number", "bank_account"}),
}


def permissions_for(roles: set[str]) -> frozenset[Perm]:
    result: set[Perm] = set()
    for role in roles:
        result |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(result)


def check_separation(roles: set[str]) -> str | None:
    """Return a Chinese error when a role set breaks 三员分立, else None."""
    admins = roles & ADMIN_ROLES
    if len(admins) > 1:
        return "系统管理员、安全管理员、审计管理员必须由三个不同的账号担任（三员分立）"
    if admins and roles - ADMIN_ROLES:
        return "管理员账号不能同时担任业务角色（三员分立）"
    return None
