"""First start of a real installation (``huzhu createsuperuser``, S1, S6).

There are no default accounts outside demo mode: the operator types the provincial federation's
name and region code (when no organisation exists yet) and then creates the three administrators —
system, security and audit administrator, three different accounts (三员分立, GB/T 22239) — each
with a password that passes the full policy (length, character classes, common list, no username
or organisation name). Passwords are read without echo.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass

from huzhu.core.context import RequestInfo, current_request
from huzhu.core.errors import InvalidInput
from huzhu.orgs.models import Union, UnionKind, User
from huzhu.orgs.roles import Role
from huzhu.orgs.services import create_staff_user, create_union

MAX_ATTEMPTS = 3
EXIT_OK = 0
EXIT_FAILED = 1


@dataclass(frozen=True)
class AdminSlot:
    role: Role
    default_username: str
    label: str


ADMIN_SLOTS = (
    AdminSlot(Role.SYSTEM_ADMIN, "sysadmin", "系统管理员（管理账号）"),
    AdminSlot(Role.SECURITY_ADMIN, "secadmin", "安全管理员（管理角色与安全策略）"),
    AdminSlot(Role.AUDIT_ADMIN, "auditadmin", "审计管理员（唯一可查看审计日志的账号）"),
)


def _say(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ask(prompt: str, default: str = "") -> str:
    suffix = f"［{default}］" if default else ""
    answer = input(f"{prompt}{suffix}：").strip()
    return answer or default


def _provincial_union() -> Union | None:
    """The root of the tree, created here on first start."""
    root = Union.objects.filter(parent__isnull=True, kind=UnionKind.PROVINCIAL).first()
    if root is not None:
        return root
    if Union.objects.exists():
        _err("数据库中已有组织但没有省级总工会，无法确定管理员所属组织。")
        return None
    _say("尚未建立任何组织。请先登记省级总工会（组织树的根）。")
    for _ in range(MAX_ATTEMPTS):
        name = _ask("省级总工会名称", "湖南省总工会")
        region = _ask("行政区划代码（6位，如 430000）", "430000")
        try:
            return create_union(
                acting_user=None,
                parent=None,
                name=name,
                kind=UnionKind.PROVINCIAL,
                region_code=region,
            )
        except InvalidInput as exc:
            for error in exc.errors:
                _err(f"  {error.message}")
    _err("多次输入无效，已放弃。")
    return None


def _create_admin(slot: AdminSlot, organisation: Union, taken: set[str]) -> User | None:
    _say(f"\n创建{slot.label}：")
    for _ in range(MAX_ATTEMPTS):
        default = slot.default_username if slot.default_username not in taken else ""
        username = _ask("用户名", default)
        full_name = _ask("姓名（可留空）")
        password = getpass.getpass("密码（至少12位，含大写、小写、数字、符号中的三类）：")
        again = getpass.getpass("再次输入密码：")
        if password != again:
            _err("  两次输入的密码不一致，请重新输入。")
            continue
        try:
            user = create_staff_user(
                acting_user=None,
                username=username,
                password=password,
                organisation=organisation,
                roles={slot.role},
                full_name=full_name,
            )
        except InvalidInput as exc:
            for error in exc.errors:
                _err(f"  {error.message}")
            continue
        _say(f"已创建{slot.label}账号：{user.username}")
        return user
    _err(f"多次输入无效，未创建{slot.label}。")
    return None


def create_first_admins_interactive() -> int:
    """Ask for what is missing and create it. Existing administrators are kept (a second run
    only completes what an interrupted first run left undone). Returns the exit status."""
    token = current_request.set(RequestInfo(channel="cli"))
    try:
        organisation = _provincial_union()
        if organisation is None:
            return EXIT_FAILED
        taken = set(User.objects.values_list("username", flat=True))
        failed = False
        for slot in ADMIN_SLOTS:
            holder = User.objects.filter(roles__role=slot.role, is_active=True).first()
            if holder is not None:
                _say(f"{slot.label}已存在：{holder.username}（跳过）")
                continue
            user = _create_admin(slot, organisation, taken)
            if user is None:
                failed = True
                break
            taken.add(user.username)
        if failed:
            return EXIT_FAILED
        _say("\n三员账号已就绪。请各自登录并绑定动态口令（TOTP）。")
        return EXIT_OK
    except (EOFError, KeyboardInterrupt):
        _err("\n已取消。")
        return EXIT_FAILED
    finally:
        current_request.reset(token)
