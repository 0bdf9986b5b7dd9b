"""Writes for organisations, units and staff accounts: atomic, audited, validated in Chinese."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from huzhu.core.audit import Event, record_event
from huzhu.core.errors import ErrorCode, ErrorCollector
from huzhu.core.ids import InvalidIdentifier, validate_region_code, validate_uscc
from huzhu.orgs.models import PATH_WIDTH, ApiToken, PasswordHistory, Union, UnionKind, Unit, User
from huzhu.orgs.passwords import HISTORY_DEPTH
from huzhu.orgs.roles import Role, check_separation

_CHILD_KINDS: dict[str | None, set[str]] = {
    None: {UnionKind.PROVINCIAL},
    UnionKind.PROVINCIAL: {UnionKind.CITY, UnionKind.INDUSTRY, UnionKind.FEDERATION},
    UnionKind.CITY: {
        UnionKind.COUNTY,
        UnionKind.INDUSTRY,
        UnionKind.FEDERATION,
        UnionKind.GRASSROOTS,
    },
    UnionKind.COUNTY: {UnionKind.GRASSROOTS, UnionKind.FEDERATION, UnionKind.INDUSTRY},
    UnionKind.INDUSTRY: {UnionKind.GRASSROOTS, UnionKind.FEDERATION},
    UnionKind.FEDERATION: {UnionKind.GRASSROOTS},
    UnionKind.GRASSROOTS: set(),
}


def _check_union_fields(
    errors: ErrorCollector, *, name: str, kind: str, region_code: str, uscc: str | None
) -> tuple[str, str | None]:
    if not name.strip():
        errors.add("name", "名称不能为空", ErrorCode.REQUIRED)
    if kind not in UnionKind.values:
        errors.add("kind", "组织类型无效")
    region = region_code.strip()
    if region:
        try:
            region = validate_region_code(region)
        except InvalidIdentifier as exc:
            errors.add("region_code", str(exc))
    code_uscc: str | None = None
    if uscc:
        try:
            code_uscc = validate_uscc(uscc)
        except InvalidIdentifier as exc:
            errors.add("uscc", str(exc))
        else:
            if kind == UnionKind.GRASSROOTS and not code_uscc.startswith("81"):
                errors.add("uscc", "基层工会的统一社会信用代码应以“81”开头（工会、基层工会）")
    elif kind == UnionKind.GRASSROOTS:
        errors.add("uscc", "基层工会必须填写统一社会信用代码", ErrorCode.REQUIRED)
    return region, code_uscc


@transaction.atomic
def create_union(
    *,
    acting_user: User | None,
    parent: Union | None,
    name: str,
    kind: str,
    region_code: str = "",
    uscc: str | None = None,
    address: str = "",
    contact_name: str = "",
) -> Union:
    errors = ErrorCollector()
    region, code_uscc = _check_union_fields(
        errors, name=name, kind=kind, region_code=region_code, uscc=uscc
    )
    parent_kind = parent.kind if parent else None
    if kind in UnionKind.values and kind not in _CHILD_KINDS.get(parent_kind, set()):
        parent_label = UnionKind(parent_kind).label if parent_kind else "（无上级）"
        errors.add("kind", f"{parent_label}下不能设立{UnionKind(kind).label}")
    code = code_uscc or region
    # An invalid or missing code already has its own error; say nothing more about it.
    code_errors = {e.field for e in errors.errors} & {"uscc", "region_code"}
    if not code:
        if not code_errors:
            errors.add(
                "region_code",
                "非基层工会须填写行政区划代码或统一社会信用代码",
                ErrorCode.REQUIRED,
            )
    elif not code_errors and Union.objects.filter(code=code).exists():
        errors.add(
            "uscc" if code_uscc else "region_code", "该代码已被其他组织使用", ErrorCode.DUPLICATE
        )
    errors.raise_if_any()
    union = Union(
        name=name.strip(),
        kind=kind,
        parent=parent,
        region_code=region,
        uscc=code_uscc,
        code=code,
        address=address,
        contact_name=contact_name,
        path="pending:" + code,
        depth=(parent.depth + 1) if parent else 0,
    )
    union.save()
    union.path = (parent.path if parent else "") + f"{union.pk:0{PATH_WIDTH}d}/"
    Union.objects.filter(pk=union.pk).update(path=union.path)
    record_event(
        actor=acting_user,
        event=Event.ORG_CREATED,
        obj=union,
        organisation_id=union.pk,
        detail={"name": union.name, "kind": kind},
    )
    return union


def _check_unit_fields(errors: ErrorCollector, *, name: str, uscc: str, union: Union) -> str:
    if not name.strip():
        errors.add("name", "单位名称不能为空", ErrorCode.REQUIRED)
    code = ""
    try:
        code = validate_uscc(uscc)
    except InvalidIdentifier as exc:
        errors.add("uscc", str(exc))
    if not union.can_enroll:
        errors.add("union", "单位只能隶属于基层工会或工会联合会")
    return code


@transaction.atomic
def create_unit(
    *,
    acting_user: User | None,
    union: Union,
    name: str,
    uscc: str,
    address: str = "",
    contact_name: str = "",
    industry: str = "",
) -> Unit:
    errors = ErrorCollector()
    code = _check_unit_fields(errors, name=name, uscc=uscc, union=union)
    if code and Unit.objects.filter(uscc=code).exists():
        errors.add("uscc", "该统一社会信用代码已登记为其他单位", ErrorCode.DUPLICATE)
    errors.raise_if_any()
    unit = Unit.objects.create(
        name=name.strip(),
        uscc=code,
        union=union,
        union_path=union.path,
        address=address,
        contact_name=contact_name,
        industry=industry,
    )
    record_event(
        actor=acting_user,
        event=Event.UNIT_CREATED,
        obj=unit,
        organisation_id=union.pk,
        detail={"name": unit.name},
    )
    return unit


@transaction.atomic
def update_unit(
    *,
    acting_user: User,
    unit: Unit,
    name: str,
    uscc: str,
    union: Union,
    address: str = "",
    contact_name: str = "",
    industry: str = "",
) -> Unit:
    errors = ErrorCollector()
    code = _check_unit_fields(errors, name=name, uscc=uscc, union=union)
    if code and Unit.objects.filter(uscc=code).exclude(pk=unit.pk).exists():
        errors.add("uscc", "该统一社会信用代码已登记为其他单位", ErrorCode.DUPLICATE)
    errors.raise_if_any()
    changed = [
        f
        for f, new in (
            ("name", name.strip()),
            ("uscc", code),
            ("address", address),
            ("contact_name", contact_name),
            ("industry", industry),
        )
        if getattr(unit, f) != new
    ]
    unit.name, unit.uscc, unit.address = name.strip(), code, address
    unit.contact_name, unit.industry = contact_name, industry
    if unit.union_id != union.pk:
        changed.append("union")
        unit.union, unit.union_path = union, union.path
    unit.save()
    record_event(
        actor=acting_user,
        event=Event.UNIT_UPDATED,
        obj=unit,
        organisation_id=union.pk,
        detail={"changed": changed},
    )
    return unit


# Django's zh-hans catalogue lacks this message (it would reach the user in English).
_PASSWORD_MESSAGES = {"password_too_short": "密码长度太短，至少需要{min_length}个字符"}


def _check_password(errors: ErrorCollector, password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        for error in exc.error_list:
            template = _PASSWORD_MESSAGES.get(error.code or "")
            if template is not None:
                errors.add("password", template.format(**(error.params or {})))
            else:
                errors.add("password", " ".join(error.messages))


@transaction.atomic
def create_staff_user(
    *,
    acting_user: User | None,
    username: str,
    password: str,
    organisation: Union,
    roles: set[str],
    full_name: str = "",
    skip_password_policy: bool = False,
) -> User:
    errors = ErrorCollector()
    if not username.strip():
        errors.add("username", "用户名不能为空", ErrorCode.REQUIRED)
    elif User.objects.filter(username=username).exists():
        errors.add("username", "用户名已存在", ErrorCode.DUPLICATE)
    unknown = roles - set(Role.values)
    if unknown:
        errors.add("roles", "未知角色：" + "、".join(sorted(unknown)))
    separation = check_separation(roles)
    if separation:
        errors.add("roles", separation)
    user = User(username=username.strip(), full_name=full_name, organisation=organisation)
    if not skip_password_policy:
        _check_password(errors, password, user)
    errors.raise_if_any()
    user.set_password(password)
    user.save()
    for role in sorted(roles):
        user.roles.create(role=role)
    PasswordHistory.objects.create(user=user, password=user.password)
    record_event(
        actor=acting_user,
        event=Event.USER_CREATED,
        obj=user,
        organisation_id=organisation.pk,
        detail={"roles": sorted(roles)},
    )
    return user


@transaction.atomic
def set_roles(*, acting_user: User, user: User, roles: set[str]) -> None:
    errors = ErrorCollector()
    separation = check_separation(roles)
    if separation:
        errors.add("roles", separation)
    errors.raise_if_any()
    before = user.role_codes()
    user.roles.exclude(role__in=roles).delete()
    for role in roles - before:
        user.roles.create(role=role)
    user._role_cache = None  # type: ignore[assignment]
    record_event(
        actor=acting_user,
        event=Event.ROLES_CHANGED,
        obj=user,
        detail={"before": sorted(before), "after": sorted(roles)},
    )


@transaction.atomic
def change_password(*, user: User, new_password: str) -> None:
    errors = ErrorCollector()
    _check_password(errors, new_password, user)
    errors.raise_if_any()
    user.set_password(new_password)
    user.password_changed_at = timezone.now()
    user.save(update_fields=["password", "password_changed_at"])
    PasswordHistory.objects.create(user=user, password=user.password)
    keep = user.password_history.order_by("-created_at").values_list("pk", flat=True)[
        :HISTORY_DEPTH
    ]
    user.password_history.exclude(pk__in=list(keep)).delete()
    record_event(actor=user, event=Event.PASSWORD_CHANGED, obj=user)


def password_expired(user: User, max_age_days: int) -> bool:
    return timezone.now() - user.password_changed_at > timedelta(days=max_age_days)


@transaction.atomic
def create_api_token(*, acting_user: User | None, user: User, days: int = 365) -> str:
    token = ApiToken.new_token()
    ApiToken.objects.create(
        user=user,
        digest=ApiToken.digest_of(token),
        prefix=token[:8],
        expires_at=timezone.now() + timedelta(days=days),
    )
    record_event(actor=acting_user or user, event=Event.TOKEN_CREATED, obj=user)
    return token


# --- used by the staff UI ------------------------------------------------------------------------
def allowed_child_kinds(parent: Union | None) -> list[UnionKind]:
    """The kinds of organisation that may be created under ``parent`` (display order)."""
    allowed = _CHILD_KINDS.get(parent.kind if parent else None, set())
    return [kind for kind in UnionKind if kind in allowed]


# --- second factor (S3): TOTP enrolment and verification, used by the staff login ---------------
def totp_device_for_enrolment(user: User) -> TOTPDevice:
    """The user's pending (unconfirmed) TOTP device, created with a fresh key when missing."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="身份验证器", confirmed=False)
    return device


def confirmed_totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def verify_second_factor(*, user: User, device: TOTPDevice, token: str) -> bool:
    """Check a TOTP code (single use: django-otp accepts only time steps after the last one used;
    failures are throttled by the device). A failure is audited. A correct code on an unconfirmed
    device completes the enrolment (audited as an account change)."""
    with transaction.atomic():
        ok = bool(device.verify_token(token))
        if not ok:
            record_event(actor=user, event=Event.OTP_FAILED, obj=user, outcome="failure")
            return False
        if not device.confirmed:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            record_event(
                actor=user,
                event=Event.USER_UPDATED,
                obj=user,
                detail={"changed": ["totp_device"]},
            )
    return True
