"""Writes for members: validated in Chinese (all errors at once), atomic, audited (S8)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from huzhu.core.audit import Event, record_event
from huzhu.core.crypto import blind_index
from huzhu.core.errors import ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.ids import (
    InvalidIdentifier,
    ResidentId,
    Sex,
    mask_bank_account,
    mask_id_number,
    mask_phone,
    parse_id_number,
    statutory_retirement_date,
    validate_bank_account,
    validate_mobile,
)
from huzhu.members.models import (
    CURRENT_NOTICE_VERSION,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    EmploymentType,
    FamilyMember,
    FamilyRelation,
    HardshipRecord,
    HardshipSource,
    Member,
    RetirementCategoryChoice,
)
from huzhu.members.signals import consent_granted
from huzhu.orgs.models import Union, Unit, User
from huzhu.orgs.roles import UNMASKABLE_FIELDS

ID_INDEX_CONTEXT = "member.id_number"
PHONE_INDEX_CONTEXT = "member.phone"


def id_number_index(number: str) -> str:
    return blind_index(number.strip().upper(), ID_INDEX_CONTEXT)


def phone_index(phone: str) -> str:
    return blind_index(phone, PHONE_INDEX_CONTEXT)


@dataclass
class MemberInput:
    name: str
    id_number: str
    employment_type: str
    retirement_category: str = ""
    phone: str = ""
    bank_account: str = ""
    bank_name: str = ""
    unit_id: int | None = None


def _validate(data: MemberInput, errors: ErrorCollector) -> tuple[ResidentId | None, str, str, str]:
    if not data.name.strip():
        errors.add("name", "姓名不能为空", ErrorCode.REQUIRED)
    elif len(data.name.strip()) > 50:
        errors.add("name", "姓名不能超过50个字")
    resident: ResidentId | None = None
    try:
        resident = parse_id_number(data.id_number)
    except InvalidIdentifier as exc:
        errors.add("id_number", str(exc))
    if data.employment_type not in EmploymentType.values:
        errors.add("employment_type", "用工形式应为在编、合同、劳务派遣或新就业形态")
    category = data.retirement_category
    if resident is not None:
        if resident.sex == Sex.MALE:
            if category and category != RetirementCategoryChoice.MALE:
                errors.add("retirement_category", "身份证号码显示为男性，退休类别应为“男”")
            category = RetirementCategoryChoice.MALE
        elif category not in (RetirementCategoryChoice.FEMALE50, RetirementCategoryChoice.FEMALE55):
            errors.add(
                "retirement_category",
                "女职工须填写退休类别（女50 或 女55），身份证号码无法区分",
                ErrorCode.REQUIRED,
            )
    phone = ""
    if data.phone.strip():
        try:
            phone = validate_mobile(data.phone)
        except InvalidIdentifier as exc:
            errors.add("phone", str(exc))
    account = ""
    if data.bank_account.strip():
        try:
            account = validate_bank_account(data.bank_account)
        except InvalidIdentifier as exc:
            errors.add("bank_account", str(exc))
    return resident, category, phone, account


def _place(data: MemberInput, union: Union, errors: ErrorCollector) -> tuple[Union, Unit | None]:
    """The member's unit must belong to the enrolling union's subtree; without a unit the union
    must be a federation (new-employment workers, R1)."""
    if data.unit_id is None:
        if union.kind != "federation":
            errors.add(
                "unit",
                "请选择所在单位（仅工会联合会可直接登记无单位的新就业形态劳动者）",
                ErrorCode.REQUIRED,
            )
        return union, None
    unit = Unit.objects.filter(pk=data.unit_id).select_related("union").first()
    return _place_in(union, unit, errors)


def _place_in(union: Union, unit: Unit | None, errors: ErrorCollector) -> tuple[Union, Unit | None]:
    if unit is None or not unit.union_path.startswith(union.path):
        errors.add("unit", "所选单位不存在或不属于本工会")
        return union, None
    return unit.union, unit


def _apply(
    member: Member, data: MemberInput, resident: ResidentId, category: str, phone: str, account: str
) -> None:
    member.name = data.name.strip()
    member.id_number_enc = resident.number
    member.id_number_index = id_number_index(resident.number)
    member.id_number_masked = mask_id_number(resident.number)
    member.birth_date = resident.birth_date
    member.sex = resident.sex.value
    member.phone_enc = phone or None
    member.phone_index = phone_index(phone) if phone else ""
    member.phone_masked = mask_phone(phone) if phone else ""
    member.bank_account_enc = account or None
    member.bank_account_masked = mask_bank_account(account) if account else ""
    member.bank_name = data.bank_name.strip()
    member.employment_type = data.employment_type
    member.retirement_category = category
    member.retirement_date = statutory_retirement_date(resident.birth_date, category)


@transaction.atomic
def create_member(*, acting_user: User | None, union: Union, data: MemberInput) -> Member:
    errors = ErrorCollector()
    resident, category, phone, account = _validate(data, errors)
    home, unit = _place(data, union, errors)
    if (
        resident is not None
        and Member.objects.filter(id_number_index=id_number_index(resident.number)).exists()
    ):
        errors.add("id_number", "该身份证号码已登记为职工", ErrorCode.DUPLICATE)
    errors.raise_if_any()
    assert resident is not None
    member = Member(union=home, union_path=home.path, unit=unit)
    _apply(member, data, resident, category, phone, account)
    member.save()
    record_event(actor=acting_user, event=Event.MEMBER_CREATED, obj=member, organisation_id=home.pk)
    return member


# --- set-based writes (demo, roster imports) --------------------------------------------------
BULK_BATCH_SIZE = 1000
_QUERY_CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds


@dataclass(frozen=True, slots=True)
class RowError:
    """One field error of one input row; ``row`` is the 0-based position in the input sequence
    (callers map it to a file line number)."""

    row: int
    field: str
    message: str
    code: ErrorCode = ErrorCode.INVALID


class InvalidRows(InvalidInput):
    """Raised by a bulk write that writes nothing: every error of every row, at once."""

    def __init__(self, rows: list[RowError]) -> None:
        super().__init__(
            [
                FieldError(f"{r.row}.{r.field}", f"第{r.row + 1}条：{r.message}", r.code)
                for r in rows
            ]
        )
        self.rows = rows


@dataclass
class BulkMembersResult:
    created: list[Member]
    errors: list[RowError]


def _existing_indexes(indexes: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(indexes), _QUERY_CHUNK):
        chunk = indexes[start : start + _QUERY_CHUNK]
        found.update(
            Member.objects.filter(id_number_index__in=chunk).values_list(
                "id_number_index", flat=True
            )
        )
    return found


@transaction.atomic
def bulk_create_members(
    *,
    acting_user: User | None,
    union: Union,
    rows: Sequence[MemberInput],
    skip_invalid: bool = False,
    batch_size: int = BULK_BATCH_SIZE,
) -> BulkMembersResult:
    """Validate, encrypt and insert many members with a fixed number of queries per batch.

    The same checks as ``create_member`` (plus duplicates inside ``rows``). With
    ``skip_invalid=False`` any error raises ``InvalidRows`` and nothing is written; with
    ``skip_invalid=True`` the valid rows are written and the errors returned. One audit event per
    inserted batch lists the new member ids (S8), in the same transaction.
    """
    errors: list[RowError] = []
    unit_ids = {r.unit_id for r in rows if r.unit_id is not None}
    units = {u.pk: u for u in Unit.objects.filter(pk__in=unit_ids).select_related("union")}
    prepared: list[tuple[int, MemberInput, ResidentId, str, str, str, Union, Unit | None]] = []
    first_row_of: dict[str, int] = {}
    for position, data in enumerate(rows):
        collector = ErrorCollector()
        resident, category, phone, account = _validate(data, collector)
        if data.unit_id is None:
            home, unit = _place(data, union, collector)
        else:
            home, unit = _place_in(union, units.get(data.unit_id), collector)
        if resident is not None:
            index = id_number_index(resident.number)
            if index in first_row_of:
                collector.add(
                    "id_number",
                    f"与第{first_row_of[index] + 1}条的身份证号码重复",
                    ErrorCode.DUPLICATE,
                )
            else:
                first_row_of[index] = position
        if collector:
            errors.extend(RowError(position, e.field, e.message, e.code) for e in collector.errors)
            continue
        assert resident is not None
        prepared.append((position, data, resident, category, phone, account, home, unit))
    taken = _existing_indexes([id_number_index(p[2].number) for p in prepared])
    if taken:
        kept = []
        for item in prepared:
            if id_number_index(item[2].number) in taken:
                errors.append(
                    RowError(item[0], "id_number", "该身份证号码已登记为职工", ErrorCode.DUPLICATE)
                )
            else:
                kept.append(item)
        prepared = kept
    errors.sort(key=lambda e: e.row)
    if errors and not skip_invalid:
        raise InvalidRows(errors)
    created: list[Member] = []
    for start in range(0, len(prepared), batch_size):
        batch: list[Member] = []
        for _, data, resident, category, phone, account, home, unit in prepared[
            start : start + batch_size
        ]:
            member = Member(union=home, union_path=home.path, unit=unit)
            _apply(member, data, resident, category, phone, account)
            batch.append(member)
        Member.objects.bulk_create(batch)
        record_event(
            actor=acting_user,
            event=Event.MEMBER_CREATED,
            object_type="members.member",
            organisation_id=union.pk,
            detail={"bulk": True, "count": len(batch), "member_ids": [m.pk for m in batch]},
        )
        created.extend(batch)
    return BulkMembersResult(created=created, errors=errors)


@transaction.atomic
def update_member(*, acting_user: User, member: Member, data: MemberInput) -> Member:
    errors = ErrorCollector()
    resident, category, phone, account = _validate(data, errors)
    home, unit = _place(data, member.union, errors) if data.unit_id else (member.union, None)
    if (
        resident is not None
        and Member.objects.filter(id_number_index=id_number_index(resident.number))
        .exclude(pk=member.pk)
        .exists()
    ):
        errors.add("id_number", "该身份证号码已登记为其他职工", ErrorCode.DUPLICATE)
    errors.raise_if_any()
    assert resident is not None
    before = {
        f: getattr(member, f)
        for f in (
            "name",
            "id_number_index",
            "phone_index",
            "bank_account_masked",
            "employment_type",
            "retirement_category",
            "unit_id",
        )
    }
    _apply(member, data, resident, category, phone, account)
    if unit is not None:
        member.unit, member.union, member.union_path = unit, home, home.path
    member.updated_at = timezone.now()
    member.save()
    changed = sorted(f for f, v in before.items() if getattr(member, f) != v)
    record_event(
        actor=acting_user,
        event=Event.MEMBER_UPDATED,
        obj=member,
        organisation_id=member.union_id,
        detail={"changed": changed},
    )
    return member


@transaction.atomic
def record_hardship(
    *,
    acting_user: User | None,
    member: Member,
    source: str,
    valid_from: date,
    valid_to: date | None,
    evidence: str = "",
) -> HardshipRecord:
    errors = ErrorCollector()
    if source not in HardshipSource.values:
        errors.add("source", "认定来源应为民政困难群众名单或工会困难职工档案")
    if valid_to is not None and valid_to < valid_from:
        errors.add("valid_to", "截止日期不能早于起始日期")
    errors.raise_if_any()
    record = HardshipRecord.objects.create(
        member=member,
        source=source,
        valid_from=valid_from,
        valid_to=valid_to,
        evidence=evidence,
        recorded_by=acting_user,
    )
    record_event(
        actor=acting_user,
        event=Event.HARDSHIP_RECORDED,
        obj=record,
        organisation_id=member.union_id,
        detail={"member": member.pk, "source": source},
    )
    return record


@transaction.atomic
def add_family_member(
    *, acting_user: User | None, member: Member, name: str, id_number: str, relation: str
) -> FamilyMember:
    errors = ErrorCollector()
    if not name.strip():
        errors.add("name", "姓名不能为空", ErrorCode.REQUIRED)
    if relation not in FamilyRelation.values:
        errors.add("relation", "关系应为配偶、子女或父母")
    resident: ResidentId | None = None
    try:
        resident = parse_id_number(id_number)
    except InvalidIdentifier as exc:
        errors.add("id_number", str(exc))
    if resident is not None:
        index = id_number_index(resident.number)
        if FamilyMember.objects.filter(id_number_index=index).exists():
            errors.add("id_number", "该身份证号码已登记为家庭成员", ErrorCode.DUPLICATE)
        if index == member.id_number_index:
            errors.add("id_number", "家庭成员不能是职工本人")
    errors.raise_if_any()
    assert resident is not None
    family = FamilyMember(
        member=member,
        name=name.strip(),
        relation=relation,
        id_number_index=id_number_index(resident.number),
        id_number_masked=mask_id_number(resident.number),
        birth_date=resident.birth_date,
        sex=resident.sex.value,
    )
    family.id_number_enc = resident.number
    family.save()
    record_event(
        actor=acting_user,
        event=Event.FAMILY_CREATED,
        obj=family,
        organisation_id=member.union_id,
        detail={"member": member.pk},
    )
    return family


@transaction.atomic
def grant_consent(
    *,
    acting_user: User | None,
    member: Member,
    channel: str = ConsentChannel.PAPER_VIA_UNION,
    purpose: str = ConsentPurpose.MEDICAL_DATA,
    notice_version: str = CURRENT_NOTICE_VERSION,
    actor_username: str = "",
) -> Consent:
    """``actor_username``: who acted when it is not a staff user (the member in the portal)."""
    existing = member.consents.filter(purpose=purpose, withdrawn_at__isnull=True).first()
    if existing is not None:
        return existing
    consent = Consent.objects.create(
        member=member,
        purpose=purpose,
        notice_version=notice_version,
        channel=channel,
        granted_at=timezone.now(),
        recorded_by=acting_user,
    )
    record_event(
        actor=acting_user,
        event=Event.CONSENT_GRANTED,
        obj=consent,
        organisation_id=member.union_id,
        detail={"member": member.pk, "purpose": purpose, "channel": channel},
        actor_username=actor_username,
    )
    if purpose == ConsentPurpose.MEDICAL_DATA:
        consent_granted.send(sender=Consent, member_ids=[member.pk])
    return consent


@transaction.atomic
def bulk_grant_consents(
    *,
    acting_user: User | None,
    members: Sequence[Member],
    channel: str = ConsentChannel.PAPER_VIA_UNION,
    purpose: str = ConsentPurpose.MEDICAL_DATA,
    notice_version: str = CURRENT_NOTICE_VERSION,
    batch_size: int = BULK_BATCH_SIZE,
) -> int:
    """``grant_consent`` for many members: members with an active consent for the purpose are
    skipped; one audit event per inserted batch. Returns the number of consents created."""
    errors = ErrorCollector()
    if channel not in ConsentChannel.values:
        errors.add("channel", "授权渠道无效")
    if purpose not in ConsentPurpose.values:
        errors.add("purpose", "授权用途无效")
    errors.raise_if_any()
    ids = [m.pk for m in members]
    active: set[int] = set()
    for start in range(0, len(ids), _QUERY_CHUNK):
        active.update(
            Consent.objects.filter(
                member_id__in=ids[start : start + _QUERY_CHUNK],
                purpose=purpose,
                withdrawn_at__isnull=True,
            ).values_list("member_id", flat=True)
        )
    todo = [m for m in dict.fromkeys(members) if m.pk not in active]
    now = timezone.now()
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        Consent.objects.bulk_create(
            Consent(
                member=m,
                purpose=purpose,
                notice_version=notice_version,
                channel=channel,
                granted_at=now,
                recorded_by=acting_user,
            )
            for m in batch
        )
        unions = {m.union_id for m in batch}
        record_event(
            actor=acting_user,
            event=Event.CONSENT_GRANTED,
            object_type="members.consent",
            organisation_id=unions.pop() if len(unions) == 1 else None,
            detail={
                "bulk": True,
                "count": len(batch),
                "member_ids": [m.pk for m in batch],
                "purpose": purpose,
                "channel": channel,
            },
        )
        if purpose == ConsentPurpose.MEDICAL_DATA:
            consent_granted.send(sender=Consent, member_ids=[m.pk for m in batch])
    return len(todo)


@transaction.atomic
def withdraw_consent(
    *,
    acting_user: User | None,
    member: Member,
    purpose: str = ConsentPurpose.MEDICAL_DATA,
    actor_username: str = "",
) -> int:
    """``actor_username``: who acted when it is not a staff user (the member in the portal)."""
    count = member.consents.filter(purpose=purpose, withdrawn_at__isnull=True).update(
        withdrawn_at=timezone.now()
    )
    if count:
        record_event(
            actor=acting_user,
            event=Event.CONSENT_WITHDRAWN,
            obj=member,
            organisation_id=member.union_id,
            detail={"purpose": purpose},
            actor_username=actor_username,
        )
    return count


REVEALABLE = {
    "id_number": "id_number_enc",
    "phone": "phone_enc",
    "bank_account": "bank_account_enc",
}
FIELD_LABELS = {"id_number": "身份证号码", "phone": "手机号码", "bank_account": "银行账号"}


def reveal_member_field(*, acting_user: User, member: Member, field: str, reason: str) -> str:
    """Show one plain value to a permitted user who stated a reason; audited (S8, S11)."""
    errors = ErrorCollector()
    allowed: set[str] = set()
    for role in acting_user.role_codes():
        allowed |= UNMASKABLE_FIELDS.get(role, frozenset())
    if field not in REVEALABLE:
        errors.add("field", "不支持查看该字段")
    elif field not in allowed:
        errors.add("field", f"您的角色无权查看{FIELD_LABELS[field]}明文")
    if len(reason.strip()) < 4:
        errors.add("reason", "请填写查看原因（至少4个字）", ErrorCode.REQUIRED)
    errors.raise_if_any()
    with transaction.atomic():
        record_event(
            actor=acting_user,
            event=Event.MEMBER_UNMASKED,
            obj=member,
            organisation_id=member.union_id,
            detail={"field": field, "reason": reason.strip()[:200]},
        )
    fresh = Member.objects.only(REVEALABLE[field]).get(pk=member.pk)
    value: Any = getattr(fresh, REVEALABLE[field])
    return str(value or "")


def current_hardship(member: Member, on: date) -> HardshipRecord | None:
    return (
        member.hardship_records.filter(valid_from__lte=on)
        .exclude(valid_to__lt=on)
        .order_by("-valid_from")
        .first()
    )


def stored_member_input(member: Member) -> MemberInput:
    """The member's current data as a ``MemberInput``: the base an edit form fills its blank
    sensitive fields from, so an edit never has to show the plain values (S11)."""
    fresh = Member.objects.only(
        "name",
        "employment_type",
        "retirement_category",
        "bank_name",
        "unit_id",
        *REVEALABLE.values(),
    ).get(pk=member.pk)
    return MemberInput(
        name=fresh.name,
        id_number=str(fresh.id_number_enc or ""),
        employment_type=fresh.employment_type,
        retirement_category=fresh.retirement_category,
        phone=str(fresh.phone_enc or ""),
        bank_account=str(fresh.bank_account_enc or ""),
        bank_name=fresh.bank_name,
        unit_id=fresh.unit_id,
    )
