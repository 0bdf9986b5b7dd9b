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
    # --- e-receipts (contributions app) ---
    RECEIPT_VIEW = "receipt.view"
    RECEIPT_ISSUE = "receipt.issue"
    # --- end e-receipts ---
    # --- ledger (huzhu.ledger) ---
    LEDGER_VIEW = "ledger.view"
    LEDGER_POST = "ledger.post"
    # --- end ledger ---
    # --- enrollment (huzhu.enrollment) ---
    ENROLLMENT_VIEW = "enrollment.view"
    ENROLLMENT_EDIT = "enrollment.edit"
    # --- end enrollment ---
    # --- co-funding (huzhu.contributions funding_*) ---
    FUNDING_VIEW = "funding.view"
    FUNDING_EDIT = "funding.edit"
    PAYMENT_REGISTER = "funding.payment"
    # --- end co-funding ---
    # --- claims (huzhu.claims) ---
    CLAIM_VIEW = "claim.view"
    CLAIM_FILE = "claim.file"
    CLAIM_REVIEW = "claim.review"
    CLAIM_PAY = "claim.pay"
    CLAIM_POLICY = "claim.policy"
    PARTNER_MANAGE = "partner.manage"
    # --- end claims ---


_BUSINESS_VIEW = {Perm.ORG_VIEW, Perm.UNIT_VIEW, Perm.MEMBER_VIEW, Perm.PLAN_VIEW}

ROLE_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.CLERK: frozenset(
        _BUSINESS_VIEW | {Perm.ORG_EDIT, Perm.UNIT_EDIT, Perm.MEMBER_EDIT, Perm.MEMBER_UNMASK}
    ),
    Role.REVIEWER: frozenset(_BUSINESS_VIEW | {Perm.MEMBER_UNMASK}),
    # ledger: finance views and posts, the auditor views (huzhu.ledger)
    Role.FINANCE: frozenset(
        _BUSINESS_VIEW | {Perm.MEMBER_UNMASK, Perm.LEDGER_VIEW, Perm.LEDGER_POST}
    ),
    Role.AUDITOR: frozenset(_BUSINESS_VIEW | {Perm.LEDGER_VIEW}),
    Role.PLAN_MANAGER: frozenset({Perm.PLAN_VIEW, Perm.PLAN_IMPORT, Perm.PLAN_ACTIVATE}),
    Role.SYSTEM_ADMIN: frozenset({Perm.USER_MANAGE, Perm.ORG_VIEW}),
    Role.SECURITY_ADMIN: frozenset({Perm.ROLE_MANAGE, Perm.ORG_VIEW}),
    Role.AUDIT_ADMIN: frozenset({Perm.AUDIT_VIEW, Perm.ORG_VIEW}),
}

# --- e-receipts (huzhu.contributions): finance issues and views; clerk and auditor view ---
_RECEIPT_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.FINANCE: frozenset({Perm.RECEIPT_VIEW, Perm.RECEIPT_ISSUE}),
    Role.CLERK: frozenset({Perm.RECEIPT_VIEW}),
    Role.AUDITOR: frozenset({Perm.RECEIPT_VIEW}),
}
for _role, _perms in _RECEIPT_PERMISSIONS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _perms
# --- end e-receipts ---

# --- enrollment (huzhu.enrollment): the clerk enrolls; business roles see batches and coverage ---
_ENROLLMENT_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.CLERK: frozenset({Perm.ENROLLMENT_VIEW, Perm.ENROLLMENT_EDIT}),
    Role.REVIEWER: frozenset({Perm.ENROLLMENT_VIEW}),
    Role.FINANCE: frozenset({Perm.ENROLLMENT_VIEW}),
    Role.AUDITOR: frozenset({Perm.ENROLLMENT_VIEW}),
}
for _role, _perms in _ENROLLMENT_PERMISSIONS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _perms
# --- end enrollment ---

# --- co-funding (huzhu.contributions funding_*): the clerk agrees splits and issues invoices and
# sees what is paid; finance registers payments (and may issue invoices); the auditor views ---
_FUNDING_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.CLERK: frozenset({Perm.FUNDING_VIEW, Perm.FUNDING_EDIT}),
    Role.FINANCE: frozenset({Perm.FUNDING_VIEW, Perm.FUNDING_EDIT, Perm.PAYMENT_REGISTER}),
    Role.AUDITOR: frozenset({Perm.FUNDING_VIEW}),
}
for _role, _perms in _FUNDING_PERMISSIONS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _perms
# --- end co-funding ---

# --- claims (huzhu.claims): the clerk files manual claims, the reviewer reviews (and a city-level
# reviewer gives the second approval), finance pays, the auditor views; the plan manager sets the
# review policy; partner accounts (keys) are system accounts, managed by the system administrator
_CLAIM_PERMISSIONS: dict[str, frozenset[Perm]] = {
    Role.CLERK: frozenset({Perm.CLAIM_VIEW, Perm.CLAIM_FILE}),
    Role.REVIEWER: frozenset({Perm.CLAIM_VIEW, Perm.CLAIM_REVIEW}),
    Role.FINANCE: frozenset({Perm.CLAIM_VIEW, Perm.CLAIM_PAY}),
    Role.AUDITOR: frozenset({Perm.CLAIM_VIEW}),
    Role.PLAN_MANAGER: frozenset({Perm.CLAIM_POLICY}),
    Role.SYSTEM_ADMIN: frozenset({Perm.PARTNER_MANAGE}),
}
for _role, _perms in _CLAIM_PERMISSIONS.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] | _perms
# --- end claims ---

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
