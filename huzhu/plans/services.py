"""Writes of plan versions: import, copy, draft edits, activation, retirement, first use.

Every service validates the file with the engine (RULES.md §1) and raises ``InvalidInput`` with
every error at once, each under its key path (``products.inpatient.bands[2].rate``) with the
engine's Chinese reason. A version that has priced a benefit (``used_at`` set) never changes: no
service here edits it, and the database refuses it too (migration plans 0002). A rule change is a
new version (``copy_plan_version``) with its own code and effective date (ARCHITECTURE.md
convention 2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from huzhu.core.audit import Event, record_event
from huzhu.core.context import current_request
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.plans.loader import PlanIntegrityError, plan_for
from huzhu.plans.models import PlanStatus, PlanVersion
from huzhu.plans.selectors import may_import_region, may_manage_region
from huzhu.rules.plan import Plan, load_plan_text

__all__ = [
    "MAX_PLAN_TEXT_CHARS",
    "activate_plan",
    "copy_plan_version",
    "import_plan",
    "mark_used",
    "plan_for",
    "retire_plan",
    "update_draft",
    "validate_plan_text",
]

#: A plan file is a page of YAML; anything far larger is not a plan (S18: uploads checked by size).
MAX_PLAN_TEXT_CHARS = 200_000

CODE_MAX_LENGTH = PlanVersion._meta.get_field("code").max_length or 64
NAME_MAX_LENGTH = PlanVersion._meta.get_field("name").max_length or 200

# Audit events without a member in ``huzhu.core.audit.Event`` (record_event takes a string).
EVENT_PLAN_UPDATED = Event.PLAN_UPDATED
EVENT_PLAN_USED = Event.PLAN_FIRST_USED


def _actor_name(acting_user: User | None) -> str:
    """How an event without a user is named in the audit log."""
    if acting_user is not None:
        return ""
    return "命令行" if current_request.get().channel == "cli" else "系统"


def _audit(
    acting_user: User | None, event: Event | str, version: PlanVersion, **detail: Any
) -> None:
    record_event(
        actor=acting_user,
        event=event,
        obj=version,
        detail={"code": version.code, "hash": version.parameters_hash, **detail},
        actor_username=_actor_name(acting_user),
    )


def validate_plan_text(yaml_text: str) -> Plan:
    """Validate plan YAML with the engine; ``InvalidInput`` lists every error by key path."""
    if len(yaml_text) > MAX_PLAN_TEXT_CHARS:
        raise InvalidInput(
            [
                FieldError(
                    "", f"方案文件过大（超过 {MAX_PLAN_TEXT_CHARS} 个字符），不是有效的方案文件"
                )
            ]
        )
    plan, errors = load_plan_text(yaml_text.removeprefix("\ufeff"))
    if plan is None:
        raise InvalidInput([FieldError(e.path, e.message) for e in errors])
    # What the database can hold (the engine sets no length on these texts).
    too_long = [
        FieldError(key, f"{label}最多 {limit} 个字符（现为 {len(value)} 个）")
        for key, label, value, limit in (
            ("code", "计划编码", plan.code, CODE_MAX_LENGTH),
            ("name", "计划名称", plan.name, NAME_MAX_LENGTH),
        )
        if len(value) > limit
    ]
    if too_long:
        raise InvalidInput(too_long)
    return plan


def _require(acting_user: User | None, perm: Perm) -> None:
    if acting_user is not None and not acting_user.has_perm_code(perm):
        raise NotPermitted("无权操作保障方案")


def _check_import_scope(errors: ErrorCollector, acting_user: User | None, plan: Plan) -> None:
    if acting_user is not None and not may_import_region(acting_user, plan.region):
        errors.add(
            "region",
            f"统筹地区 {plan.region} 不在您的管理范围内（省总工会可导入本省及所辖市（州）的方案，"
            "市（州）总工会只能导入本市的方案）",
            ErrorCode.FORBIDDEN,
        )


def _fields_from(plan: Plan, yaml_text: str, filename: str) -> dict[str, Any]:
    return {
        "code": plan.code,
        "name": plan.name,
        "region": plan.region,
        "year": plan.year,
        "effective_from": plan.effective_from,
        "starts_on": plan.start_date,
        "source_yaml": yaml_text,
        "source_filename": filename[:200],
        "parameters": plan.parameters_json(),
        "parameters_hash": plan.parameters_hash(),
    }


def _duplicate_code(code: str) -> InvalidInput:
    return InvalidInput(
        [
            FieldError(
                "code",
                f"计划编码“{code}”已被另一个参数不同的方案版本使用；修订方案请复制为新版本，"
                "并使用新的计划编码",
                ErrorCode.DUPLICATE,
            )
        ]
    )


@transaction.atomic
def import_plan(*, acting_user: User | None, yaml_text: str, filename: str = "") -> PlanVersion:
    """Store a valid plan file as a new draft version.

    Idempotent: the same code with the same parameters hash returns the version already stored
    (nothing is written); the same code with different parameters is an error. Nothing is stored
    when the file is invalid.
    """
    _require(acting_user, Perm.PLAN_IMPORT)
    plan = validate_plan_text(yaml_text)
    errors = ErrorCollector()
    _check_import_scope(errors, acting_user, plan)
    errors.raise_if_any()
    fields = _fields_from(plan, yaml_text, filename)
    existing = PlanVersion.objects.filter(code=plan.code).first()
    if existing is not None:
        if existing.parameters_hash == fields["parameters_hash"]:
            return existing
        raise _duplicate_code(plan.code)
    try:
        with transaction.atomic():
            version = PlanVersion.objects.create(
                **fields, status=PlanStatus.DRAFT, imported_by=acting_user
            )
    except IntegrityError:
        # A concurrent import of the same code won the race: same answer as above.
        existing = PlanVersion.objects.filter(code=plan.code).first()
        if existing is not None and existing.parameters_hash == fields["parameters_hash"]:
            return existing
        raise _duplicate_code(plan.code) from None
    _audit(acting_user, Event.PLAN_IMPORTED, version, filename=filename[:200])
    return version


def _check_revision(
    errors: ErrorCollector, plan: Plan, source: PlanVersion, *, own_pk: int | None = None
) -> None:
    """A new version of ``source``: its own code, same area and year, an effective date."""
    clash = PlanVersion.objects.filter(code=plan.code)
    if own_pk is not None:
        clash = clash.exclude(pk=own_pk)
    if clash.exists():
        errors.add(
            "code",
            f"计划编码“{plan.code}”已存在；新版本必须使用新的计划编码",
            ErrorCode.DUPLICATE,
        )
    if plan.region != source.region:
        errors.add(
            "region",
            f"新版本的统筹地区应与原版本相同（{source.region}），不能改为 {plan.region}",
        )
    if plan.year != source.year:
        errors.add(
            "year",
            f"新版本的保障年度应与原版本相同（{source.year}），下一年度的方案请单独导入",
        )
    if plan.effective_from is None:
        errors.add(
            "effective_from",
            f"新版本必须填写生效日期（effective_from，{source.year} 年内的某一天）",
            ErrorCode.REQUIRED,
        )


@transaction.atomic
def copy_plan_version(
    *, acting_user: User | None, source: PlanVersion, yaml_text: str, filename: str = ""
) -> PlanVersion:
    """Draft a new version from ``source`` with edited YAML (RULES.md §1: a revision is a new
    version with its own code and ``effective_from``, within the same coverage year)."""
    _require(acting_user, Perm.PLAN_IMPORT)
    plan = validate_plan_text(yaml_text)
    errors = ErrorCollector()
    _check_import_scope(errors, acting_user, plan)
    _check_revision(errors, plan, source)
    errors.raise_if_any()
    try:
        with transaction.atomic():
            version = PlanVersion.objects.create(
                **_fields_from(plan, yaml_text, filename or f"{plan.code}.yaml"),
                status=PlanStatus.DRAFT,
                previous=source,
                imported_by=acting_user,
            )
    except IntegrityError:
        raise _duplicate_code(plan.code) from None
    _audit(acting_user, Event.PLAN_IMPORTED, version, copied_from=source.code)
    return version


@transaction.atomic
def update_draft(
    *, acting_user: User | None, plan_version: PlanVersion, yaml_text: str, filename: str = ""
) -> PlanVersion:
    """Replace the file of a draft that has never been activated nor used.

    A version that priced a benefit, or was ever active, is never edited: make a copy instead.
    """
    _require(acting_user, Perm.PLAN_IMPORT)
    version = PlanVersion.objects.select_for_update().get(pk=plan_version.pk)
    if not version.is_editable:
        raise InvalidInput(
            [
                FieldError(
                    "status",
                    "只有从未启用、从未使用的草稿可以修改；已启用或已用于计算补助的版本不能修改，"
                    "请复制为新版本",
                    ErrorCode.STATE,
                )
            ]
        )
    plan = validate_plan_text(yaml_text)
    errors = ErrorCollector()
    _check_import_scope(errors, acting_user, plan)
    if version.previous is not None:
        _check_revision(errors, plan, version.previous, own_pk=version.pk)
    elif PlanVersion.objects.filter(code=plan.code).exclude(pk=version.pk).exists():
        errors.add("code", f"计划编码“{plan.code}”已存在", ErrorCode.DUPLICATE)
    errors.raise_if_any()
    before = version.parameters_hash
    for name, value in _fields_from(plan, yaml_text, filename or version.source_filename).items():
        setattr(version, name, value)
    try:
        with transaction.atomic():
            version.save()
    except IntegrityError:
        raise _duplicate_code(plan.code) from None
    _audit(acting_user, EVENT_PLAN_UPDATED, version, previous_hash=before)
    return version


def _check_manage(acting_user: User | None, version: PlanVersion) -> None:
    if acting_user is None:
        return
    if not acting_user.has_perm_code(Perm.PLAN_ACTIVATE) or not may_manage_region(
        acting_user, version.region
    ):
        raise NotPermitted("保障方案不存在")


@transaction.atomic
def activate_plan(*, acting_user: User | None, plan_version: PlanVersion) -> PlanVersion:
    """Put a version in force; the version active for the same area, year and start is retired.

    Refused for a version that is already active or that no longer validates (RULES.md §1:
    a plan that fails any rule cannot be activated). Only provincial staff with the activation
    permission may do it, for their province's plan or one of its cities' plans.
    """
    _check_manage(acting_user, plan_version)
    version = PlanVersion.objects.select_for_update().get(pk=plan_version.pk)
    if version.status == PlanStatus.ACTIVE:
        raise InvalidInput([FieldError("status", "该方案版本已经启用", ErrorCode.STATE)])
    # Revalidate the stored text and the canonical parameters (the engine's rules may be newer
    # than the import; a row changed behind the services' back fails its hash).
    _plan, errors = load_plan_text(version.source_yaml.removeprefix("\ufeff"))
    if errors:
        raise InvalidInput([FieldError(e.path, e.message) for e in errors])
    try:
        plan_for(version)
    except PlanIntegrityError as exc:
        raise InvalidInput([FieldError("parameters", str(exc))]) from None
    now = timezone.now()
    replaced = list(
        PlanVersion.objects.select_for_update()
        .filter(
            region=version.region,
            year=version.year,
            starts_on=version.starts_on,
            status=PlanStatus.ACTIVE,
        )
        .exclude(pk=version.pk)
    )
    for old in replaced:
        old.status = PlanStatus.RETIRED
        old.retired_by = acting_user
        old.retired_at = now
        old.save(update_fields=["status", "retired_by", "retired_at"])
        _audit(acting_user, Event.PLAN_RETIRED, old, replaced_by=version.code)
    version.status = PlanStatus.ACTIVE
    version.activated_by = acting_user
    version.activated_at = now
    try:
        with transaction.atomic():
            version.save(update_fields=["status", "activated_by", "activated_at"])
    except IntegrityError:
        raise ConflictError(
            "同一统筹地区、年度和生效日期已有另一个版本同时被启用，请刷新后重试"
        ) from None
    _audit(
        acting_user,
        Event.PLAN_ACTIVATED,
        version,
        replaced=[old.code for old in replaced],
        starts_on=version.starts_on.isoformat(),
    )
    plan_version.refresh_from_db()
    return version


@transaction.atomic
def retire_plan(*, acting_user: User | None, plan_version: PlanVersion) -> PlanVersion:
    """Take an active version out of force (it stays stored, and explains what it priced)."""
    _check_manage(acting_user, plan_version)
    version = PlanVersion.objects.select_for_update().get(pk=plan_version.pk)
    if version.status != PlanStatus.ACTIVE:
        raise InvalidInput([FieldError("status", "只有已启用的方案版本可以停用", ErrorCode.STATE)])
    version.status = PlanStatus.RETIRED
    version.retired_by = acting_user
    version.retired_at = timezone.now()
    version.save(update_fields=["status", "retired_by", "retired_at"])
    _audit(acting_user, Event.PLAN_RETIRED, version)
    plan_version.refresh_from_db()
    return version


def mark_used(plan_version: PlanVersion, *, at: datetime | None = None) -> bool:
    """Record that ``plan_version`` priced a benefit; from then on it can never change.

    Called by the claims code inside its own transaction. A single conditional UPDATE (no
    read-modify-write), so concurrent first uses set ``used_at`` once; True on the first use.
    A draft never prices anything.
    """
    if plan_version.status == PlanStatus.DRAFT:
        raise InvalidInput(
            [FieldError("status", f"方案版本 {plan_version.code} 尚未启用，不能用于计算补助")]
        )
    moment = at or timezone.now()
    with transaction.atomic():
        changed = PlanVersion.objects.filter(pk=plan_version.pk, used_at__isnull=True).update(
            used_at=moment
        )
        if changed:
            plan_version.used_at = moment
            _audit(None, EVENT_PLAN_USED, plan_version)
        elif plan_version.used_at is None:
            plan_version.refresh_from_db(fields=["used_at"])
    return bool(changed)
