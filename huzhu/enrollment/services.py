"""Every write of group enrollment (R1–R4, RULES.md §2): batches, roster validation and
confirmation, coverage, withdrawal, leaving a unit, renewal. Atomic and audited (S8).

Confirmation is written for crash safety (S17): the rows are committed in chunks, each chunk in its
own transaction together with the batch's position (``last_row_done``) and the job's progress; a
confirmation started again (after a crash, a killed worker, a second click) continues after the
committed position, and the database's unique constraints (one member per ID number, one live
share per person and plan year) make a row written twice impossible.

The interface to co-funding (``huzhu.contributions``): ``confirm_batch`` leaves the batch
``awaiting_payment``; ``activate_batch_coverage`` starts every enrollment's coverage once every
payer's share is paid; a withdrawal of a paid share before its coverage starts sets
``Enrollment.refund_due`` and sends ``enrollment_withdrawn``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from huzhu.core.audit import Event, record_event, register_event_labels
from huzhu.core.context import current_request
from huzhu.core.crypto import decrypt, encrypt
from huzhu.core.errors import ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.ids import (
    mask_bank_account,
    mask_id_number,
    mask_phone,
    statutory_retirement_date,
)
from huzhu.enrollment.fastwrite import insert_rows, lookup_in, tune_bulk_session
from huzhu.enrollment.models import (
    LIVE_STATUSES,
    OPEN_STATUSES,
    BatchSource,
    BatchStatus,
    Enrollment,
    EnrollmentBatch,
    EnrollmentStatus,
    ProductSet,
    RosterFile,
    RosterRowError,
    RowErrorKind,
)
from huzhu.enrollment.roster import Roster, RosterFileError, read_roster
from huzhu.enrollment.validation import (
    QUERY_CHUNK,
    AgeRule,
    ParsedRow,
    RowIssue,
    ValidationResult,
    ValidRow,
    enrolled_elsewhere,
    parse_cached,
    retirement_limit,
    validate_roster,
)
from huzhu.members.models import (
    CURRENT_NOTICE_VERSION,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    FamilyMember,
    HardshipRecord,
    HardshipSource,
    Member,
)
from huzhu.members.services import (
    MemberInput,
    phone_index,
)
from huzhu.orgs.models import Union, UnionKind, User
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import ancestors_of, unions_for
from huzhu.plans.loader import plan_for
from huzhu.plans.models import PlanStatus, PlanVersion
from huzhu.rules.plan import Plan

# Audit events of this app (record_event takes the string; labels: see the report to the lead).
EVENT_BATCH_CREATED = "enrollment.batch_create"
EVENT_ROSTER_UPLOADED = "enrollment.roster_upload"
EVENT_BATCH_CONFIRMED = "enrollment.batch_confirm"
EVENT_ENROLLED = "enrollment.create"
EVENT_BATCH_ACTIVATED = "enrollment.batch_activate"
EVENT_BATCH_CANCELLED = "enrollment.batch_cancel"
EVENT_WITHDRAWN = "enrollment.withdraw"
EVENT_LEFT_UNIT = "enrollment.left_unit"
EVENT_RENEWAL_DRAFTED = "enrollment.renewal_draft"
register_event_labels(
    {
        EVENT_BATCH_CREATED: "新建参保批次",
        EVENT_ROSTER_UPLOADED: "上传花名册",
        EVENT_BATCH_CONFIRMED: "确认参保批次",
        EVENT_ENROLLED: "参保登记",
        EVENT_BATCH_ACTIVATED: "参保批次生效",
        EVENT_BATCH_CANCELLED: "取消参保批次",
        EVENT_WITHDRAWN: "退保",
        EVENT_LEFT_UNIT: "职工离开单位",
        EVENT_RENEWAL_DRAFTED: "续保草拟",
    }
)

FILE_CONTEXT = "enrollment.RosterFile.content"
DEFAULT_CHUNK_SIZE = 5000

#: Sent after a withdrawal commits: ``enrollment`` and ``refund_due`` (the contributions side
#: refunds the payers of a paid share withdrawn before its coverage started).
enrollment_withdrawn = Signal()

Reporter = Callable[..., None]


def _actor_name(acting_user: User | None) -> str:
    if acting_user is not None:
        return ""
    return "命令行" if current_request.get().channel == "cli" else "系统"


def _audit(
    acting_user: User | None,
    event: str,
    batch: EnrollmentBatch | None = None,
    *,
    obj: Any = None,
    organisation_id: int | None = None,
    **detail: Any,
) -> None:
    target = obj if obj is not None else batch
    record_event(
        actor=acting_user,
        event=event,
        obj=target,
        organisation_id=organisation_id
        if organisation_id is not None
        else (batch.union_id if batch is not None else None),
        detail=detail,
        actor_username=_actor_name(acting_user),
    )


def _state_error(message: str, field_name: str = "status") -> InvalidInput:
    return InvalidInput([FieldError(field_name, message, ErrorCode.STATE)])


def year_start(year: int) -> date:
    return date(year, 1, 1)


def year_end(year: int) -> date:
    return date(year, 12, 31)


def enrollment_date_for(plan_year: int, confirmed_on: date) -> date:
    """RULES.md §2: the day after the roster is confirmed, not before Jan 1 of the plan year."""
    return max(confirmed_on + timedelta(days=1), year_start(plan_year))


def age_rule_for(plan: Plan, on: date) -> AgeRule:
    return AgeRule(
        min_age=plan.min_age, flexible_extension_months=plan.flexible_extension_months, on=on
    )


# --- plans for a union --------------------------------------------------------------------------
def plan_regions_of(union: Union) -> list[str]:
    """The pooling areas that may cover ``union``: its own and its ancestors' region codes, the
    most specific first (a city that runs its own plan before the province)."""
    regions: list[str] = []
    for ancestor in reversed(ancestors_of(union)):
        if ancestor.region_code and ancestor.region_code not in regions:
            regions.append(ancestor.region_code)
    return regions


def plan_version_for_union(union: Union, year: int, on: date | None = None) -> PlanVersion | None:
    """The active plan version of ``year`` for the union's most specific pooling area, in force on
    ``on`` (default Jan 1): the latest start on or before it, else the earliest."""
    day = on or year_start(year)
    versions = list(
        PlanVersion.objects.filter(
            region__in=plan_regions_of(union), year=year, status=PlanStatus.ACTIVE
        )
    )
    for region in plan_regions_of(union):
        own = sorted((v for v in versions if v.region == region), key=lambda v: v.starts_on)
        if own:
            started = [v for v in own if v.starts_on <= day]
            return started[-1] if started else own[0]
    return None


def _check_plan(errors: ErrorCollector, union: Union, version: PlanVersion) -> None:
    if version.status != PlanStatus.ACTIVE:
        errors.add("plan_version", f"保障方案 {version.code} 未启用，不能用于参保")
    if version.region not in plan_regions_of(union):
        errors.add(
            "plan_version",
            f"保障方案 {version.code} 的统筹地区（{version.region}）不覆盖{union.name}",
        )


def _check_union(errors: ErrorCollector, acting_user: User | None, union: Union) -> None:
    if union.kind not in (UnionKind.GRASSROOTS, UnionKind.FEDERATION):
        errors.add("union", "只有基层工会或工会联合会可以组织参保")
    if not union.is_active:
        errors.add("union", "该工会已停用")
    if acting_user is not None:
        if not acting_user.has_perm_code(Perm.ENROLLMENT_EDIT):
            errors.add("union", "您的角色无权办理参保", ErrorCode.FORBIDDEN)
        elif not unions_for(acting_user).filter(pk=union.pk).exists():
            errors.add("union", "该工会不在您的管辖范围内", ErrorCode.FORBIDDEN)


# --- batches ---------------------------------------------------------------------------------
@transaction.atomic
def create_batch(
    *,
    acting_user: User | None,
    union: Union,
    plan_year: int,
    plan_version: PlanVersion | None = None,
    today: date | None = None,
) -> EnrollmentBatch:
    """A draft batch of ``union`` for ``plan_year`` (the plan version: the one given, else the
    active version of the union's pooling area)."""
    today = today or timezone.localdate()
    errors = ErrorCollector()
    _check_union(errors, acting_user, union)
    if plan_year < today.year:
        errors.add("plan_year", f"{plan_year}年度已经结束，不能再参保")
    elif plan_year > today.year + 1:
        errors.add("plan_year", "只能办理本年度或下一年度的参保")
    version = plan_version
    if version is None and not errors:
        version = plan_version_for_union(union, plan_year)
        if version is None:
            errors.add("plan_year", f"{union.name}所在统筹地区没有已启用的{plan_year}年度保障方案")
    if version is not None:
        _check_plan(errors, union, version)
        if version.year != plan_year:
            errors.add("plan_year", f"保障方案 {version.code} 是{version.year}年度的方案")
    if enrollment_date_for(plan_year, today) > year_end(plan_year):
        errors.add("plan_year", f"{plan_year}年度已经结束，不能再参保")
    errors.raise_if_any()
    assert version is not None
    batch = EnrollmentBatch.objects.create(
        union=union,
        union_path=union.path,
        plan_version=version,
        plan_year=plan_year,
        created_by=acting_user,
    )
    _audit(acting_user, EVENT_BATCH_CREATED, batch, plan=version.code, year=plan_year)
    return batch


def file_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def roster_bytes(batch: EnrollmentBatch) -> bytes:
    stored = RosterFile.objects.filter(batch=batch).first()
    if stored is None:
        raise _state_error("该批次还没有上传花名册", "file")
    return base64.b64decode(decrypt(bytes(stored.content_enc), FILE_CONTEXT))


def same_file_batch(union: Union, plan_year: int, digest: str) -> EnrollmentBatch | None:
    return (
        EnrollmentBatch.objects.filter(union=union, plan_year=plan_year, file_sha256=digest)
        .exclude(status=BatchStatus.CANCELLED)
        .first()
    )


@dataclass(frozen=True)
class UploadOutcome:
    batch: EnrollmentBatch
    duplicate: bool  # the same file was already uploaded: ``batch`` is that earlier batch


@transaction.atomic
def attach_roster(
    *, acting_user: User | None, batch: EnrollmentBatch, file_name: str, content: bytes
) -> UploadOutcome:
    """Keep the uploaded file (encrypted) with a draft batch; validation then runs as a job.

    The same bytes already uploaded for this union and year (in a batch not cancelled) create
    nothing new: the earlier batch is returned with ``duplicate=True``.
    """
    locked = EnrollmentBatch.objects.select_for_update().get(pk=batch.pk)
    errors = ErrorCollector()
    if locked.source != BatchSource.ROSTER:
        errors.add("file", "续保批次不能上传花名册")
    elif locked.status not in OPEN_STATUSES:
        errors.add(
            "file", f"批次状态为“{locked.get_status_display()}”，不能再上传花名册", ErrorCode.STATE
        )
    if not content:
        errors.add("file", "文件为空")
    errors.raise_if_any()
    digest = file_sha256(content)
    earlier = same_file_batch(locked.union, locked.plan_year, digest)
    if earlier is not None:
        return UploadOutcome(earlier, duplicate=True)
    ciphertext = encrypt(base64.b64encode(content).decode("ascii"), FILE_CONTEXT)
    RosterFile.objects.update_or_create(
        batch=locked, defaults={"content_enc": ciphertext, "uploaded_at": timezone.now()}
    )
    locked.errors.all().delete()
    locked.file_name = file_name[-200:]
    locked.file_sha256 = digest
    locked.file_size = len(content)
    locked.status = BatchStatus.DRAFT
    locked.row_count = locked.valid_count = locked.error_count = 0
    locked.validated_at = None
    locked.save()
    _audit(acting_user, EVENT_ROSTER_UPLOADED, locked, file=locked.file_name, sha256=digest)
    batch.refresh_from_db()
    return UploadOutcome(locked, duplicate=False)


def _issue_rows(batch: EnrollmentBatch, issues: Sequence[RowIssue]) -> list[RosterRowError]:
    return [
        RosterRowError(
            batch=batch,
            row_number=i.row_number,
            column=i.column,
            message=i.message[:300],
            name=i.name,
            id_number_masked=i.id_number_masked[:24],
        )
        for i in issues
    ]


def _replace_row_errors(batch: EnrollmentBatch, issues: Sequence[RowIssue]) -> None:
    RosterRowError.objects.filter(batch=batch, kind=RowErrorKind.ROW).delete()
    RosterRowError.objects.bulk_create(_issue_rows(batch, issues), batch_size=2000)


def load_roster(batch: EnrollmentBatch) -> Roster:
    return read_roster(
        roster_bytes(batch), require_unit_column=batch.union.kind != UnionKind.FEDERATION
    )


def _parsed(batch: EnrollmentBatch) -> tuple[list[ParsedRow], list[RowIssue], int]:
    federation = batch.union.kind == UnionKind.FEDERATION
    return parse_cached(
        batch.file_sha256,
        federation,
        lambda: read_roster(
            roster_bytes(batch), require_unit_column=not federation, keep_raw=False
        ),
    )


def validate_batch(
    *, batch: EnrollmentBatch, progress: Any = None, today: date | None = None
) -> ValidationResult:
    """Read and check the batch's file (the preview). ``RosterFileError`` when the file as a whole
    is unusable (no header, missing column…): the batch stays a draft."""
    batch = EnrollmentBatch.objects.select_related("union", "plan_version").get(pk=batch.pk)
    if batch.status not in OPEN_STATUSES:
        raise _state_error(f"批次状态为“{batch.get_status_display()}”，不能重新校验")
    if progress is not None:
        progress.begin(0, "读取花名册")
    parsed = _parsed(batch)
    if progress is not None:
        progress.begin(parsed[2], "逐行校验")
    on = enrollment_date_for(batch.plan_year, today or timezone.localdate())
    result = validate_roster(
        None,
        union=batch.union,
        plan_year=batch.plan_year,
        age_rule=age_rule_for(plan_for(batch.plan_version), on),
        batch=batch,
        progress=progress,
        parsed=parsed,
    )
    with transaction.atomic():
        locked = EnrollmentBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.file_sha256 != batch.file_sha256 or locked.status not in OPEN_STATUSES:
            return result  # another file was uploaded meanwhile: its own validation will run
        _replace_row_errors(locked, result.issues)
        locked.row_count = result.row_count
        locked.valid_count = len(result.valid)
        locked.error_count = result.error_rows
        locked.status = BatchStatus.VALIDATED
        locked.validated_at = timezone.now()
        locked.save(
            update_fields=["row_count", "valid_count", "error_count", "status", "validated_at"]
        )
    return result


# --- confirmation (S17: idempotent chunks) -------------------------------------------------------
@transaction.atomic
def start_confirmation(
    *,
    acting_user: User | None,
    batch: EnrollmentBatch,
    accept_invalid_rows: bool = False,
    include_family: bool = False,
    today: date | None = None,
) -> EnrollmentBatch:
    """Move a validated batch (or a renewal draft) to ``confirming``; a batch already confirming
    is returned unchanged (the confirmation is resumed)."""
    locked = (
        EnrollmentBatch.objects.select_for_update()
        .select_related("union", "plan_version")
        .get(pk=batch.pk)
    )
    if locked.status == BatchStatus.CONFIRMING:
        return locked
    errors = ErrorCollector()
    _check_union(errors, acting_user, locked.union)
    ready = (
        locked.status == BatchStatus.VALIDATED
        if locked.source == BatchSource.ROSTER
        else locked.status == BatchStatus.DRAFT
    )
    if not ready:
        errors.add(
            "status",
            f"批次状态为“{locked.get_status_display()}”，不能确认"
            + ("（请先上传花名册并完成校验）" if locked.status == BatchStatus.DRAFT else ""),
            ErrorCode.STATE,
        )
    elif locked.valid_count == 0:
        errors.add("status", "没有可以参保的有效行", ErrorCode.STATE)
    elif locked.error_count and not accept_invalid_rows and locked.source == BatchSource.ROSTER:
        errors.add(
            "accept_invalid_rows",
            f"花名册中有{locked.error_count}行错误：请修改后重新上传，或确认只导入有效行",
            ErrorCode.REQUIRED,
        )
    if include_family and plan_for(locked.plan_version).family_inpatient is None:
        errors.add("include_family", "该保障方案不含家庭成员住院互助，不能为家庭成员参保")
    confirmed_on = today or timezone.localdate()
    enrollment_date = enrollment_date_for(locked.plan_year, confirmed_on)
    if enrollment_date > year_end(locked.plan_year):
        errors.add("status", f"{locked.plan_year}年度已经结束，不能再确认参保")
    errors.raise_if_any()
    locked.status = BatchStatus.CONFIRMING
    locked.confirmed_by = acting_user
    locked.confirmed_at = timezone.now()
    locked.enrollment_date = enrollment_date
    locked.include_family = include_family or (
        locked.source == BatchSource.RENEWAL and locked.include_family
    )
    locked.last_row_done = 0
    locked.save()
    _audit(
        acting_user,
        EVENT_BATCH_CONFIRMED,
        locked,
        phase="start",
        enrollment_date=enrollment_date.isoformat(),
        accept_invalid_rows=accept_invalid_rows,
    )
    return locked


def _member_input(row: ValidRow) -> MemberInput:
    return MemberInput(
        name=row.name,
        id_number=row.resident.number,
        employment_type=row.employment_type,
        retirement_category=row.retirement_category,
        phone=row.phone,
        bank_account=row.bank_account,
        bank_name=row.bank_name,
        unit_id=row.unit.pk if row.unit is not None else None,
    )


def _update_existing(
    acting_user: User | None, batch: EnrollmentBatch, rows: list[ValidRow], ids: dict[str, int]
) -> int:
    """Bring existing members in line with the roster (placement, employment, contact data);
    only changed rows are written, in one bulk update, audited once."""
    by_id = {ids[r.index]: r for r in rows}
    members = Member.objects.filter(pk__in=list(by_id)).only(
        "pk",
        "name",
        "unit_id",
        "union_id",
        "union_path",
        "employment_type",
        "retirement_category",
        "retirement_date",
        "birth_date",
        "phone_index",
        "bank_account_masked",
        "bank_account_enc",
        "bank_name",
        "is_active",
    )
    changed_members: list[Member] = []
    fields: set[str] = set()
    now = timezone.now()
    for member in members:
        row = by_id[member.pk]
        changed: list[str] = []
        unit_id = row.unit.pk if row.unit is not None else None
        if member.unit_id != unit_id or member.union_id != row.home.pk:
            member.unit_id = unit_id
            member.union_id = row.home.pk
            member.union_path = row.home.path
            changed += ["unit", "union", "union_path"]
        if member.name != row.name:
            member.name = row.name
            changed.append("name")
        if member.employment_type != row.employment_type:
            member.employment_type = row.employment_type
            changed.append("employment_type")
        if row.effective_category and member.retirement_category != row.effective_category:
            member.retirement_category = row.effective_category
            member.retirement_date = statutory_retirement_date(
                member.birth_date, row.effective_category
            )
            changed += ["retirement_category", "retirement_date"]
        if row.phone and member.phone_index != phone_index(row.phone):
            member.phone_enc = row.phone
            member.phone_index = phone_index(row.phone)
            member.phone_masked = mask_phone(row.phone)
            changed += ["phone_enc", "phone_index", "phone_masked"]
        if row.bank_account and member.bank_account_enc != row.bank_account:
            member.bank_account_enc = row.bank_account
            member.bank_account_masked = mask_bank_account(row.bank_account)
            changed += ["bank_account_enc", "bank_account_masked"]
        if row.bank_name and member.bank_name != row.bank_name:
            member.bank_name = row.bank_name
            changed.append("bank_name")
        if not member.is_active:
            member.is_active = True
            changed.append("is_active")
        if changed:
            member.updated_at = now
            changed.append("updated_at")
            fields.update(changed)
            changed_members.append(member)
    if changed_members:
        Member.objects.bulk_update(changed_members, sorted(fields), batch_size=500)
        record_event(
            actor=acting_user,
            event=Event.MEMBER_UPDATED,
            object_type="members.member",
            organisation_id=batch.union_id,
            detail={
                "bulk": True,
                "batch": batch.pk,
                "count": len(changed_members),
                "member_ids": [m.pk for m in changed_members],
                "changed": sorted(f for f in fields if not f.endswith("_enc")),
            },
            actor_username=_actor_name(acting_user),
        )
    return len(changed_members)


def _record_hardship(
    acting_user: User | None, batch: EnrollmentBatch, member_ids: list[int]
) -> int:
    """困难职工=是: hardship for the plan year, unless the member already has dated records (R4)."""
    if not member_ids:
        return 0
    with_records = set(
        HardshipRecord.objects.filter(member_id__in=member_ids).values_list("member_id", flat=True)
    )
    todo = [m for m in member_ids if m not in with_records]
    if not todo:
        return 0
    ops = connection.ops
    evidence = f"参保花名册“困难职工”列（参保批次 #{batch.pk}）"
    start, end = (
        ops.adapt_datefield_value(d)
        for d in (year_start(batch.plan_year), year_end(batch.plan_year))
    )
    now = ops.adapt_datetimefield_value(timezone.now())
    recorder = acting_user.pk if acting_user is not None else None
    insert_rows(
        HardshipRecord,
        (
            "member_id",
            "source",
            "valid_from",
            "valid_to",
            "evidence",
            "recorded_by_id",
            "created_at",
        ),
        [(m, HardshipSource.UNION_FILE.value, start, end, evidence, recorder, now) for m in todo],
    )
    record_event(
        actor=acting_user,
        event=Event.HARDSHIP_RECORDED,
        object_type="members.hardshiprecord",
        organisation_id=batch.union_id,
        detail={"bulk": True, "batch": batch.pk, "count": len(todo), "member_ids": todo},
        actor_username=_actor_name(acting_user),
    )
    return len(todo)


def _family_enrollments(
    batch: EnrollmentBatch, member_ids: list[int], enrollment_date: date
) -> list[Enrollment]:
    family = list(FamilyMember.objects.filter(member_id__in=member_ids).select_related("member"))
    taken = enrolled_elsewhere([f.id_number_index for f in family], batch.plan_year, None)
    return [
        Enrollment(
            batch=batch,
            member_id=f.member_id,
            family_member=f,
            product_set=ProductSet.FAMILY,
            person_index=f.id_number_index,
            union_id=batch.union_id,
            union_path=batch.union_path,
            unit_id=f.member.unit_id,
            plan_version_id=batch.plan_version_id,
            plan_year=batch.plan_year,
            enrollment_date=enrollment_date,
        )
        for f in family
        if f.id_number_index not in taken
    ]


def _insert_new_members(
    acting_user: User | None, batch: EnrollmentBatch, rows: list[ValidRow]
) -> dict[str, int]:
    """New members of a chunk, set-based: the same columns as ``members.services._apply`` (ID,
    phone and account encrypted under their fields' contexts, blind indexes, masks, the statutory
    retirement date), written by one statement (``fastwrite``); one audit event for the chunk as
    ``bulk_create_members`` writes it. The rows were validated by ``validate_roster`` (the same
    checks as ``members.services``); ``tests/enrollment/test_fastwrite.py`` proves the stored
    members equal what ``bulk_create_members`` stores. Returns blind index → member id."""
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    meta = Member._meta
    id_context = meta.get_field("id_number_enc").context()
    phone_context = meta.get_field("phone_enc").context()
    bank_context = meta.get_field("bank_account_enc").context()
    date_value = ops.adapt_datefield_value
    values = []
    for r in rows:
        number = r.resident.number
        phone, account = r.phone, r.bank_account
        values.append(
            (
                r.name,
                encrypt(number, id_context),
                r.index,
                mask_id_number(number),
                date_value(r.resident.birth_date),
                r.resident.sex.value,
                encrypt(phone, phone_context) if phone else None,
                phone_index(phone) if phone else "",
                mask_phone(phone) if phone else "",
                encrypt(account, bank_context) if account else None,
                mask_bank_account(account) if account else "",
                r.bank_name,
                r.home.pk,
                r.home.path,
                r.unit.pk if r.unit is not None else None,
                r.employment_type,
                r.effective_category,
                date_value(retirement_limit(r.resident.birth_date, r.effective_category, 0)),
                True,
                now,
                now,
            )
        )
    table = meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        before = cursor.fetchone()[0]
    insert_rows(Member, _MEMBER_COLUMNS, values)
    # Ids come from the sequence after ``before`` (monotonic on SQLite and PostgreSQL); rows of
    # concurrent writers in that range are ignored by keeping only this chunk's indexes.
    wanted = {r.index for r in rows}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id_number_index, id FROM {table} WHERE id > %s",  # noqa: S608
            [before],
        )
        ids = {index: pk for index, pk in cursor.fetchall() if index in wanted}
    indexes = [r.index for r in rows]
    record_event(
        actor=acting_user,
        event=Event.MEMBER_CREATED,
        object_type="members.member",
        organisation_id=batch.union_id,
        detail={
            "bulk": True,
            "batch": batch.pk,
            "count": len(rows),
            "member_ids": [ids[i] for i in indexes],
        },
        actor_username=_actor_name(acting_user),
    )
    return ids


_MEMBER_COLUMNS = (
    "name",
    "id_number_enc",
    "id_number_index",
    "id_number_masked",
    "birth_date",
    "sex",
    "phone_enc",
    "phone_index",
    "phone_masked",
    "bank_account_enc",
    "bank_account_masked",
    "bank_name",
    "union_id",
    "union_path",
    "unit_id",
    "employment_type",
    "retirement_category",
    "retirement_date",
    "is_active",
    "created_at",
    "updated_at",
)
_ENROLLMENT_COLUMNS = (
    "batch_id",
    "member_id",
    "family_member_id",
    "product_set",
    "person_index",
    "union_id",
    "union_path",
    "unit_id",
    "plan_version_id",
    "plan_year",
    "status",
    "hardship",
    "enrollment_date",
    "refund_due",
    "row_number",
    "created_at",
)


def _grant_consents(
    acting_user: User | None, batch: EnrollmentBatch, member_ids: list[int], new: set[int]
) -> int:
    """医保数据授权=是 → consent (purpose medical data, channel paper via union, S12), the same
    rows as ``members.services.bulk_grant_consents``; members with an active consent are left as
    they are. One audit event for the chunk."""
    existing = [m for m in member_ids if m not in new]
    active: set[int] = set()
    for start in range(0, len(existing), QUERY_CHUNK):
        active.update(
            Consent.objects.filter(
                member_id__in=existing[start : start + QUERY_CHUNK],
                purpose=ConsentPurpose.MEDICAL_DATA,
                withdrawn_at__isnull=True,
            ).values_list("member_id", flat=True)
        )
    todo = [m for m in dict.fromkeys(member_ids) if m not in active]
    if not todo:
        return 0
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    recorder = acting_user.pk if acting_user is not None else None
    insert_rows(
        Consent,
        ("member_id", "purpose", "notice_version", "channel", "granted_at", "recorded_by_id"),
        [
            (
                m,
                ConsentPurpose.MEDICAL_DATA.value,
                CURRENT_NOTICE_VERSION,
                ConsentChannel.PAPER_VIA_UNION.value,
                now,
                recorder,
            )
            for m in todo
        ],
    )
    record_event(
        actor=acting_user,
        event=Event.CONSENT_GRANTED,
        object_type="members.consent",
        organisation_id=batch.union_id,
        detail={
            "bulk": True,
            "batch": batch.pk,
            "count": len(todo),
            "member_ids": todo,
            "purpose": ConsentPurpose.MEDICAL_DATA.value,
            "channel": ConsentChannel.PAPER_VIA_UNION.value,
        },
        actor_username=_actor_name(acting_user),
    )
    return len(todo)


def _write_roster_chunk(
    acting_user: User | None, batch: EnrollmentBatch, rows: list[ValidRow]
) -> tuple[int, int, int]:
    """Members, hardship, consents and enrollments of one chunk (inside its transaction)."""
    assert batch.enrollment_date is not None
    indexes = [r.index for r in rows]
    ids: dict[str, int] = dict(
        lookup_in(
            f"SELECT id_number_index, id FROM {Member._meta.db_table} "  # noqa: S608
            "WHERE id_number_index IN ({marks})",
            indexes,
        )
    )
    new_rows = [r for r in rows if r.index not in ids]
    old_rows = [r for r in rows if r.index in ids]
    if new_rows:
        ids.update(_insert_new_members(acting_user, batch, new_rows))
    updated = _update_existing(acting_user, batch, old_rows, ids) if old_rows else 0
    _record_hardship(acting_user, batch, [ids[r.index] for r in rows if r.hardship])
    new_ids = {ids[r.index] for r in new_rows}
    _grant_consents(acting_user, batch, [ids[r.index] for r in rows if r.consent], new_ids)
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    enrollment_date = ops.adapt_datefield_value(batch.enrollment_date)
    values: list[tuple[Any, ...]] = [
        (
            batch.pk,
            ids[r.index],
            None,
            ProductSet.SELF.value,
            r.index,
            batch.union_id,
            batch.union_path,
            r.unit.pk if r.unit is not None else None,
            batch.plan_version_id,
            batch.plan_year,
            EnrollmentStatus.PENDING.value,
            r.hardship,
            enrollment_date,
            False,
            r.row_number,
            now,
        )
        for r in rows
    ]
    if batch.include_family:
        values += [
            (
                batch.pk,
                e.member_id,
                e.family_member_id,
                ProductSet.FAMILY.value,
                e.person_index,
                batch.union_id,
                batch.union_path,
                e.unit_id,
                batch.plan_version_id,
                batch.plan_year,
                EnrollmentStatus.PENDING.value,
                False,
                enrollment_date,
                False,
                None,
                now,
            )
            for e in _family_enrollments(batch, [ids[i] for i in indexes], batch.enrollment_date)
        ]
    insert_rows(Enrollment, _ENROLLMENT_COLUMNS, values)
    return len(new_rows), updated, len(values)


@dataclass
class _RenewalItem:
    position: int  # 1-based position in the batch's candidates
    member_id: int
    family_member_id: int | None


def _renewal_items(batch: EnrollmentBatch) -> list[_RenewalItem]:
    return [
        _RenewalItem(position, int(pair[0]), int(pair[1]) if pair[1] is not None else None)
        for position, pair in enumerate(batch.candidates, start=1)
    ]


def _write_renewal_chunk(
    acting_user: User | None, batch: EnrollmentBatch, items: list[_RenewalItem], plan: Plan
) -> tuple[list[RowIssue], list[RosterRowError], int]:
    """Enroll carried-over people again, re-checking the age rule on the actual enrollment date
    and the one share per person (someone may have enrolled elsewhere since the draft)."""
    assert batch.enrollment_date is not None
    rule = age_rule_for(plan, batch.enrollment_date)
    members = {
        m.pk: m
        for m in Member.objects.filter(pk__in=[i.member_id for i in items]).only(
            "pk",
            "name",
            "id_number_index",
            "id_number_masked",
            "birth_date",
            "retirement_category",
            "unit_id",
            "is_active",
        )
    }
    family = {
        f.pk: f
        for f in FamilyMember.objects.filter(
            pk__in=[i.family_member_id for i in items if i.family_member_id]
        ).only("pk", "member_id", "id_number_index", "id_number_masked", "name")
    }
    indexes = [m.id_number_index for m in members.values()] + [
        f.id_number_index for f in family.values()
    ]
    taken = enrolled_elsewhere(indexes, batch.plan_year, batch)
    drops: list[RosterRowError] = []
    enrollments: list[Enrollment] = []
    for item in items:
        member = members.get(item.member_id)
        person: Member | FamilyMember | None = member
        if item.family_member_id is not None:
            person = family.get(item.family_member_id)
        reason = ""
        if member is None or person is None:
            reason = "人员信息已不存在"
        elif not member.is_active:
            reason = "职工已停用"
        elif person.id_number_index in taken:
            reason = f"已参加{batch.plan_year}年度互助保障（每人每年限参保一份）"
        elif item.family_member_id is None:
            reason = rule.problem(member.birth_date, member.retirement_category) or ""
        if reason:
            drops.append(
                RosterRowError(
                    batch=batch,
                    kind=RowErrorKind.DROPPED,
                    message=reason[:300],
                    name=(person.name if person is not None else "")[:50],
                    id_number_masked=(person.id_number_masked if person is not None else ""),
                    member_id=member.pk if member is not None else None,
                )
            )
            continue
        assert member is not None and person is not None
        enrollments.append(
            Enrollment(
                batch=batch,
                member_id=member.pk,
                family_member_id=item.family_member_id,
                product_set=ProductSet.FAMILY if item.family_member_id else ProductSet.SELF,
                person_index=person.id_number_index,
                union_id=batch.union_id,
                union_path=batch.union_path,
                unit_id=member.unit_id,
                plan_version_id=batch.plan_version_id,
                plan_year=batch.plan_year,
                enrollment_date=batch.enrollment_date,
            )
        )
    Enrollment.objects.bulk_create(enrollments, batch_size=1000)
    return [], drops, len(enrollments)


def run_confirmation(
    *,
    batch: EnrollmentBatch,
    acting_user: User | None = None,
    progress: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> EnrollmentBatch:
    """Write a confirming batch in committed chunks, continuing after ``last_row_done``; ends with
    the batch ``awaiting_payment``. Safe to run again at any point (S17)."""
    batch = EnrollmentBatch.objects.select_related("union", "plan_version").get(pk=batch.pk)
    if batch.status in (BatchStatus.AWAITING_PAYMENT, BatchStatus.ACTIVE):
        return batch
    if batch.status != BatchStatus.CONFIRMING:
        raise _state_error(f"批次状态为“{batch.get_status_display()}”，不在确认中")
    assert batch.enrollment_date is not None
    tune_bulk_session()
    plan = plan_for(batch.plan_version)
    issues: list[RowIssue] = []
    renewal = batch.source == BatchSource.RENEWAL
    items: list[Any]
    if renewal:
        items = _renewal_items(batch)
    else:
        if progress is not None:
            progress.begin(0, "核对花名册")
        result = validate_roster(
            None,
            union=batch.union,
            plan_year=batch.plan_year,
            age_rule=age_rule_for(plan, batch.enrollment_date),
            batch=batch,
            parsed=_parsed(batch),
        )
        issues = result.issues
        items = result.valid
    position_of: Callable[[Any], int] = (
        (lambda i: i.position) if renewal else (lambda r: r.row_number)
    )
    total = len(items)
    start = batch.last_row_done
    done = sum(1 for i in items if position_of(i) <= start)
    if progress is not None:
        progress.begin(total, "写入参保记录", done=done)
    pending = [i for i in items if position_of(i) > start]
    drops_total = 0
    for offset in range(0, len(pending), chunk_size):
        chunk = pending[offset : offset + chunk_size]
        with transaction.atomic():
            locked = EnrollmentBatch.objects.select_for_update().get(pk=batch.pk)
            if locked.status != BatchStatus.CONFIRMING:
                break
            todo = [i for i in chunk if position_of(i) > locked.last_row_done]
            if todo:
                created = updated = 0
                if renewal:
                    _, drops, enrolled = _write_renewal_chunk(
                        acting_user,
                        locked,
                        todo,  # type: ignore[arg-type]
                        plan,
                    )
                    RosterRowError.objects.bulk_create(drops)
                    drops_total += len(drops)
                else:
                    try:
                        with transaction.atomic():
                            created, updated, enrolled = _write_roster_chunk(
                                acting_user,
                                locked,
                                todo,  # type: ignore[arg-type]
                            )
                    except IntegrityError:
                        # Someone enrolled one of these people (or registered them) since the
                        # check: this chunk is not written; the next run checks again.
                        raise InvalidInput(
                            [
                                FieldError(
                                    "status",
                                    f"写入第{position_of(todo[0])}行起的记录时发现冲突（可能有人"
                                    "同时为其中的职工参保）；已提交的部分保留，请重新确认以继续",
                                    ErrorCode.CONFLICT,
                                )
                            ]
                        ) from None
                locked.last_row_done = position_of(todo[-1])
                locked.enrolled_count += enrolled
                locked.members_created += created
                locked.members_updated += updated
                locked.save(
                    update_fields=[
                        "last_row_done",
                        "enrolled_count",
                        "members_created",
                        "members_updated",
                    ]
                )
                _audit(
                    acting_user,
                    EVENT_ENROLLED,
                    locked,
                    count=enrolled,
                    first_row=position_of(todo[0]),
                    last_row=position_of(todo[-1]),
                )
            done += len(chunk)
            if progress is not None:
                # In the chunk's transaction: the progress seen is the progress committed.
                progress.update(done, force=True)
    with transaction.atomic():
        locked = EnrollmentBatch.objects.select_for_update().get(pk=batch.pk)
        if locked.status != BatchStatus.CONFIRMING:
            return locked
        if not renewal:
            _replace_row_errors(locked, issues)
            locked.error_count = len({i.row_number for i in issues})
            locked.valid_count = len(items)
        else:
            locked.error_count = locked.errors.count()
            locked.valid_count = locked.enrolled_count
        locked.status = BatchStatus.AWAITING_PAYMENT
        locked.save(update_fields=["status", "error_count", "valid_count"])
        _audit(
            acting_user,
            EVENT_BATCH_CONFIRMED,
            locked,
            phase="done",
            enrolled=locked.enrolled_count,
            members_created=locked.members_created,
            members_updated=locked.members_updated,
            skipped_rows=locked.error_count,
        )
    return locked


def confirm_batch(
    *,
    acting_user: User | None,
    batch: EnrollmentBatch,
    accept_invalid_rows: bool = False,
    include_family: bool = False,
    today: date | None = None,
    progress: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> EnrollmentBatch:
    """Confirm now (start and write all chunks): the batch ends ``awaiting_payment``, each
    enrollment ``pending`` until ``activate_batch_coverage``."""
    start_confirmation(
        acting_user=acting_user,
        batch=batch,
        accept_invalid_rows=accept_invalid_rows,
        include_family=include_family,
        today=today,
    )
    done = run_confirmation(
        batch=batch, acting_user=acting_user, progress=progress, chunk_size=chunk_size
    )
    batch.refresh_from_db()
    return done


# --- coverage ----------------------------------------------------------------------------------
def coverage_start_for(plan_year: int, paid_on: date) -> date:
    """RULES.md §2: the later of Jan 1 and the day after the contribution is confirmed paid."""
    return max(year_start(plan_year), paid_on + timedelta(days=1))


@transaction.atomic
def activate_batch_coverage(
    *, acting_user: User | None, batch: EnrollmentBatch, paid_on: date
) -> EnrollmentBatch:
    """Every payer's share of the batch is paid: coverage of each pending enrollment runs from
    max(Jan 1, ``paid_on`` + 1 day) to Dec 31 of the plan year. Called by the contributions side;
    calling it again for an active batch changes nothing."""
    locked = EnrollmentBatch.objects.select_for_update().get(pk=batch.pk)
    if locked.status == BatchStatus.ACTIVE:
        return locked
    if locked.status != BatchStatus.AWAITING_PAYMENT:
        raise _state_error(f"批次状态为“{locked.get_status_display()}”，不能开始保障")
    start = coverage_start_for(locked.plan_year, paid_on)
    end = year_end(locked.plan_year)
    if start > end:
        raise InvalidInput(
            [FieldError("paid_on", f"缴费确认日期晚于{locked.plan_year}年度结束，保障无法开始")]
        )
    count = Enrollment.objects.filter(batch=locked, status=EnrollmentStatus.PENDING).update(
        status=EnrollmentStatus.ACTIVE, coverage_start=start, coverage_end=end
    )
    locked.status = BatchStatus.ACTIVE
    locked.paid_on = paid_on
    locked.activated_at = timezone.now()
    locked.save(update_fields=["status", "paid_on", "activated_at"])
    _audit(
        acting_user,
        EVENT_BATCH_ACTIVATED,
        locked,
        paid_on=paid_on.isoformat(),
        coverage_start=start.isoformat(),
        coverage_end=end.isoformat(),
        count=count,
    )
    batch.refresh_from_db()
    return locked


@transaction.atomic
def cancel_batch(
    *, acting_user: User | None, batch: EnrollmentBatch, reason: str
) -> EnrollmentBatch:
    """Cancel a batch that is not covered yet; its pending enrollments lapse (the people may then
    enroll through another batch)."""
    locked = EnrollmentBatch.objects.select_for_update().get(pk=batch.pk)
    errors = ErrorCollector()
    if acting_user is not None:
        _check_union(errors, acting_user, batch.union)
    if locked.status in (BatchStatus.ACTIVE, BatchStatus.CANCELLED):
        errors.add(
            "status", f"批次状态为“{locked.get_status_display()}”，不能作废", ErrorCode.STATE
        )
    if len(reason.strip()) < 2:
        errors.add("reason", "请填写作废原因", ErrorCode.REQUIRED)
    errors.raise_if_any()
    lapsed = Enrollment.objects.filter(batch=locked, status=EnrollmentStatus.PENDING).update(
        status=EnrollmentStatus.LAPSED, reason=f"参保批次作废：{reason.strip()}"[:200]
    )
    locked.status = BatchStatus.CANCELLED
    locked.cancelled_by = acting_user
    locked.cancelled_at = timezone.now()
    locked.cancel_reason = reason.strip()[:200]
    locked.save(update_fields=["status", "cancelled_by", "cancelled_at", "cancel_reason"])
    _audit(acting_user, EVENT_BATCH_CANCELLED, locked, lapsed=lapsed, reason=locked.cancel_reason)
    batch.refresh_from_db()
    return locked


@transaction.atomic
def withdraw_enrollment(
    *,
    acting_user: User | None,
    enrollment: Enrollment,
    reason: str,
    today: date | None = None,
) -> Enrollment:
    """Withdraw one share before its coverage starts.

    Not yet paid (``pending``) → ``withdrawn``. Paid, coverage not started yet → ``refunded`` with
    ``refund_due`` (the refund itself is the contributions side's, told by the
    ``enrollment_withdrawn`` signal). Once coverage has started it cannot be withdrawn: a member who
    leaves mid-year stays covered to Dec 31 (``member_left_unit``).
    """
    today = today or timezone.localdate()
    locked = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    errors = ErrorCollector()
    if len(reason.strip()) < 2:
        errors.add("reason", "请填写退出原因", ErrorCode.REQUIRED)
    refund_due = False
    new_status: str
    if locked.status == EnrollmentStatus.PENDING:
        new_status = EnrollmentStatus.WITHDRAWN
    elif locked.status == EnrollmentStatus.ACTIVE:
        assert locked.coverage_start is not None
        if locked.coverage_start <= today:
            errors.add(
                "status",
                f"保障已于{locked.coverage_start:%Y-%m-%d}开始，年度中途不能退保；"
                "职工离开单位的，保障持续到当年12月31日",
                ErrorCode.STATE,
            )
        new_status = EnrollmentStatus.REFUNDED
        refund_due = True
    else:
        errors.add(
            "status", f"参保记录状态为“{locked.get_status_display()}”，不能退出", ErrorCode.STATE
        )
        new_status = locked.status
    errors.raise_if_any()
    locked.status = new_status
    locked.refund_due = refund_due
    locked.withdrawn_at = timezone.now()
    locked.reason = reason.strip()[:200]
    locked.save(update_fields=["status", "refund_due", "withdrawn_at", "reason"])
    _audit(
        acting_user,
        EVENT_WITHDRAWN,
        obj=locked,
        organisation_id=locked.union_id,
        status=new_status,
        refund_due=refund_due,
    )
    transaction.on_commit(
        lambda: enrollment_withdrawn.send(
            sender=Enrollment, enrollment=locked, refund_due=refund_due
        )
    )
    enrollment.refresh_from_db()
    return locked


@transaction.atomic
def member_left_unit(*, acting_user: User | None, member: Member, left_on: date) -> int:
    """The member left the unit mid-year: the share of that year stays active to Dec 31 (RULES.md
    §2), only noted; renewal will not carry the member over. Returns the enrollments noted."""
    live = Enrollment.objects.select_for_update().filter(
        member=member, plan_year=left_on.year, status__in=LIVE_STATUSES
    )
    count = live.update(
        left_unit_on=left_on,
        reason=f"{left_on:%Y-%m-%d}离开单位，保障持续至{left_on.year}年12月31日",
    )
    _audit(
        acting_user,
        EVENT_LEFT_UNIT,
        obj=member,
        organisation_id=member.union_id,
        left_on=left_on.isoformat(),
        enrollments=count,
    )
    return count


# --- renewal -------------------------------------------------------------------------------------
@dataclass
class RenewalUnion:
    union: Union
    batch: EnrollmentBatch | None
    carried: int
    dropped: list[tuple[str, str, str]]  # (name, masked ID, reason)
    existing: bool = False


@dataclass
class RenewalOutcome:
    year: int
    unions: list[RenewalUnion] = field(default_factory=list)

    @property
    def created(self) -> list[EnrollmentBatch]:
        return [u.batch for u in self.unions if u.batch is not None and not u.existing]


def renewal_plans(
    *, acting_user: User | None, year: int
) -> tuple[list[Union], dict[int, PlanVersion], list[str]]:
    """The unions to renew (those with active enrollments of ``year − 1`` in the actor's scope),
    the plan version of ``year`` for each, and a Chinese message per union without one."""
    live = Enrollment.objects.filter(plan_year=year - 1, status=EnrollmentStatus.ACTIVE)
    if acting_user is not None:
        if not acting_user.has_perm_code(Perm.ENROLLMENT_EDIT):
            return [], {}, ["您的角色无权办理续保"]
        scope = acting_user.organisation.path if acting_user.organisation else None
        if scope is None:
            return [], {}, []
        live = live.filter(union_path__startswith=scope)
    union_ids = sorted(set(live.values_list("union_id", flat=True)))
    unions = list(Union.objects.filter(pk__in=union_ids).order_by("path"))
    versions: dict[int, PlanVersion] = {}
    problems: list[str] = []
    for union in unions:
        version = plan_version_for_union(union, year)
        if version is None:
            problems.append(f"{union.name}所在统筹地区没有已启用的{year}年度保障方案，无法续保")
        else:
            versions[union.pk] = version
    return unions, versions, problems


def draft_renewals(
    *,
    acting_user: User | None,
    year: int,
    progress: Any = None,
) -> RenewalOutcome:
    """Draft ``year``'s batches from ``year − 1``'s active enrollments, one per enrolling union,
    against the union's active plan of ``year``. People past the age rule on Jan 1 of ``year``,
    who left their unit, or who already hold a share of ``year`` are dropped with the reason. Each
    batch is a draft for its union to confirm; a union with a renewal draft of ``year`` already is
    left alone. No active plan for a union: ``InvalidInput`` and nothing is drafted."""
    unions, versions, problems = renewal_plans(acting_user=acting_user, year=year)
    if problems:
        raise InvalidInput([FieldError("year", message) for message in problems])
    previous = year - 1
    outcome = RenewalOutcome(year)
    if progress is not None:
        progress.begin(len(unions), "生成续保批次")
    jan1 = year_start(year)
    for position, union in enumerate(unions, start=1):
        outcome.unions.append(
            _draft_one_renewal(acting_user, union, versions[union.pk], previous, year, jan1)
        )
        if progress is not None:
            progress.update(position)
    return outcome


@transaction.atomic
def _draft_one_renewal(
    acting_user: User | None,
    union: Union,
    version: PlanVersion,
    previous: int,
    year: int,
    jan1: date,
) -> RenewalUnion:
    existing = (
        EnrollmentBatch.objects.filter(union=union, plan_year=year, source=BatchSource.RENEWAL)
        .exclude(status=BatchStatus.CANCELLED)
        .first()
    )
    if existing is not None:
        return RenewalUnion(union, existing, existing.valid_count, [], existing=True)
    plan = plan_for(version)
    rule = age_rule_for(plan, jan1)
    rows = list(
        Enrollment.objects.filter(union=union, plan_year=previous, status=EnrollmentStatus.ACTIVE)
        .select_related("member", "family_member")
        .order_by("member_id", "family_member_id")
    )
    taken = enrolled_elsewhere([e.person_index for e in rows], year, None)
    candidates: list[list[int | None]] = []
    dropped: list[tuple[str, str, str, int]] = []
    carried_members: set[int] = set()
    for enrollment in rows:
        member = enrollment.member
        person_name = member.name
        masked = member.id_number_masked
        if enrollment.family_member is not None:
            person_name = enrollment.family_member.name
            masked = enrollment.family_member.id_number_masked
        reason = ""
        if enrollment.left_unit_on is not None:
            reason = f"已于{enrollment.left_unit_on:%Y-%m-%d}离开单位"
        elif not member.is_active:
            reason = "职工已停用"
        elif enrollment.person_index in taken:
            reason = f"已参加{year}年度互助保障（每人每年限参保一份）"
        elif enrollment.family_member is None:
            reason = rule.problem(member.birth_date, member.retirement_category) or ""
        elif plan.family_inpatient is None:
            reason = f"{year}年度保障方案不含家庭成员住院互助"
        elif member.pk not in carried_members:
            reason = "职工本人未续保"
        if reason:
            dropped.append((person_name, masked, reason, member.pk))
            continue
        if enrollment.family_member is None:
            carried_members.add(member.pk)
        candidates.append([member.pk, enrollment.family_member_id])
    batch = EnrollmentBatch.objects.create(
        union=union,
        union_path=union.path,
        plan_version=version,
        plan_year=year,
        source=BatchSource.RENEWAL,
        candidates=candidates,
        include_family=any(c[1] is not None for c in candidates),
        row_count=len(rows),
        valid_count=len(candidates),
        error_count=len(dropped),
        created_by=acting_user,
    )
    RosterRowError.objects.bulk_create(
        RosterRowError(
            batch=batch,
            kind=RowErrorKind.DROPPED,
            message=reason[:300],
            name=name[:50],
            id_number_masked=masked,
            member_id=member_id,
        )
        for name, masked, reason, member_id in dropped
    )
    _audit(
        acting_user,
        EVENT_RENEWAL_DRAFTED,
        batch,
        year=year,
        plan=version.code,
        carried=len(candidates),
        dropped=len(dropped),
    )
    return RenewalUnion(union, batch, len(candidates), [(n, m, r) for n, m, r, _ in dropped])


__all__ = [
    "RosterFileError",
    "activate_batch_coverage",
    "attach_roster",
    "cancel_batch",
    "confirm_batch",
    "create_batch",
    "draft_renewals",
    "member_left_unit",
    "run_confirmation",
    "start_confirmation",
    "validate_batch",
    "withdraw_enrollment",
]
