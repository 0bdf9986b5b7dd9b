"""Writes for members: validated in Chinese (all errors at once), atomic, audited (S8)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from huzhu.core.audit import Event, record_event
from huzhu.core.crypto import blind_index
from huzhu.core.errors import ErrorCode, ErrorCollector
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


def _validate(
    data: MemberInput, errors: ErrorCollector
) -> tuple[ResidentId | None, str, str, str]:
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


def _place(
    data: MemberInput, union: Union, errors: ErrorCollector
) -> tuple[Union, Unit | None]:
    """The member's unit must belong to the enrolling union's subtree; without a unit the union
    must be a federation (new-employment workers, R1)."""
    if data.unit_id is None:
        if union.kind != "federation":
            errors.add("unit", "请选择所在单位（仅工会联合会可直接登记无单位的新就业形态劳动者）",
                       ErrorCode.REQUIRED)
        return union, None
    unit = Unit.objects.filter(pk=data.unit_id).select_related("union").first()
    if unit is None or not unit.union_path.startswith(union.path):
        errors.add("unit", "所选单位不存在或不属于本工会")
        return union, None
    return unit.union, unit


def _apply(member: Member, data: MemberInput, resident: ResidentId, category: str,
           phone: str, account: str) -> None:
    member.name = data.name.strip()
    member.id_number_enc = resident.number  # type: ignore[assignment]
    member.id_number_index = id_number_index(resident.number)
    member.id_number_masked = mask_id_number(resident.number)
    member.birth_date = resident.birth_date
    member.sex = resident.sex.value
    member.phone_enc = phone or None  # type: ignore[assignment]
    member.phone_index = phone_index(phone) if phone else ""
    member.phone_masked = mask_phone(phone) if phone else ""
    member.bank_account_enc = account or None  # type: ignore[assignment]
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
    if resident is not None and Member.objects.filter(
        id_number_index=id_number_index(resident.number)
    ).exists():
        errors.add("id_number", "该身份证号码已登记为职工", ErrorCode.DUPLICATE)
    errors.raise_if_any()
    assert resident is not None
    member = Member(union=home, union_path=home.path, unit=unit)
    _apply(member, data, resident, category, phone, account)
    member.save()
    record_event(actor=acting_user, event=Event.MEMBER_CREATED, obj=member,
                 organisation_id=home.pk)
    return member


@transaction.atomic
def update_member(*, acting_user: User, member: Member, data: MemberInput) -> Member:
    errors = ErrorCollector()
    resident, category, phone, account = _validate(data, errors)
    home, unit = _place(data, member.union, errors) if data.unit_id else (member.union, None)
    if resident is not None and Member.objects.filter(
        id_number_index=id_number_index(resident.number)
    ).exclude(pk=member.pk).exists():
        errors.add("id_number", "该身份证号码已登记为其他职工", ErrorCode.DUPLICATE)
    errors.raise_if_any()
    assert resident is not None
    before = {f: getattr(member, f) for f in ("name", "id_number_index", "phone_index",
                                              "bank_account_masked", "employment_type",
                                              "retirement_category", "unit_id")}
    _apply(member, data, resident, category, phone, account)
    if unit is not None:
        member.unit, member.union, member.union_path = unit, home, home.path
    member.updated_at = timezone.now()
    member.save()
    changed = sorted(f for f, v in before.items() if getattr(member, f) != v)
    record_event(actor=acting_user, event=Event.MEMBER_UPDATED, obj=member,
                 organisation_id=member.union_id, detail={"changed": changed})
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
        member=member, source=source, valid_from=valid_from, valid_to=valid_to,
        evidence=evidence, recorded_by=acting_user,
    )
    record_event(actor=acting_user, event=Event.HARDSHIP_RECORDED, obj=record,
                 organisation_id=member.union_id, detail={"member": member.pk, "source": source})
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
        member=member, name=name.strip(), relation=relation,
        id_number_index=id_number_index(resident.number),
        id_number_masked=mask_id_number(resident.number),
        birth_date=resident.birth_date, sex=resident.sex.value,
    )
    family.id_number_enc = resident.number  # type: ignore[assignment]
    family.save()
    record_event(actor=acting_user, event=Event.FAMILY_CREATED, obj=family,
                 organisation_id=member.union_id, detail={"member": member.pk})
    return family


@transaction.atomic
def grant_consent(
    *,
    acting_user: User | None,
    member: Member,
    channel: str = ConsentChannel.PAPER_VIA_UNION,
    purpose: str = ConsentPurpose.MEDICAL_DATA,
    notice_version: str = CURRENT_NOTICE_VERSION,
) -> Consent:
    existing = member.consents.filter(purpose=purpose, withdrawn_at__isnull=True).first()
    if existing is not None:
        return existing
    consent = Consent.objects.create(
        member=member, purpose=purpose, notice_version=notice_version, channel=channel,
        granted_at=timezone.now(), recorded_by=acting_user,
    )
    record_event(actor=acting_user, event=Event.CONSENT_GRANTED, obj=consent,
                 organisation_id=member.union_id,
                 detail={"member": member.pk, "purpose": purpose, "channel": channel})
    return consent


@transaction.atomic
def withdraw_consent(
    *, acting_user: User | None, member: Member, purpose: str = ConsentPurpose.MEDICAL_DATA
) -> int:
    count = member.consents.filter(purpose=purpose, withdrawn_at__isnull=True).update(
        withdrawn_at=timezone.now()
    )
    if count:
        record_event(actor=acting_user, event=Event.CONSENT_WITHDRAWN, obj=member,
                     organisation_id=member.union_id, detail={"purpose": purpose})
    return count


REVEALABLE = {"id_number": "id_number_enc", "phone": "phone_enc", "bank_account": "bank_account_enc"}
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
        record_event(actor=acting_user, event=Event.MEMBER_UNMASKED, obj=member,
                     organisation_id=member.union_id,
                     detail={"field": field, "reason": reason.strip()[:200]})
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
