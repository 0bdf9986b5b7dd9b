"""Member services: create/update with every field's Chinese error, hardship as of a date (R4),
family members, consent grant/withdraw (S12), audited reveal of a plain value (S11)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from huzhu.core.audit import Event
from huzhu.core.errors import ErrorCode, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.members.models import Consent, FamilyMember, HardshipRecord, Member
from huzhu.members.services import (
    MemberInput,
    add_family_member,
    create_member,
    current_hardship,
    grant_consent,
    id_number_index,
    phone_index,
    record_hardship,
    reveal_member_field,
    update_member,
    withdraw_consent,
)
from tests import factories

MAN = "430102197503010033"
WOMAN = "410105198506150023"
PHONE = "13812345678"
ACCOUNT = "6222021234567890128"


def _data(**overrides: Any) -> MemberInput:
    values: dict[str, Any] = {
        "name": "王强",
        "id_number": MAN,
        "employment_type": "contract",
        "phone": PHONE,
        "bank_account": ACCOUNT,
        "bank_name": "中国工商银行",
    }
    values.update(overrides)
    return MemberInput(**values)


def _snapshot() -> tuple[Any, ...]:
    return (
        list(
            Member.objects.order_by("pk").values_list(
                "pk",
                "name",
                "id_number_index",
                "phone_index",
                "bank_account_masked",
                "employment_type",
                "retirement_category",
                "unit_id",
                "union_id",
            )
        ),
        FamilyMember.objects.count(),
        HardshipRecord.objects.count(),
        list(Consent.objects.order_by("pk").values_list("pk", "withdrawn_at")),
        AuditEvent.objects.count(),
    )


def _errors(caught: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str, ErrorCode]]:
    return [(e.field, e.message, e.code) for e in caught.value.errors]


# --- create ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_create_member_stores_encrypted_indexed_and_masked_values(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.county_a1, "clerk")
    member = create_member(
        acting_user=clerk,
        union=tree.county_a1,  # an ancestor of the unit's union may enroll too
        data=_data(id_number=MAN, unit_id=tree.unit_1.pk, name=" 王强 "),
    )
    stored = Member.objects.get(pk=member.pk)
    assert stored.name == "王强"
    assert stored.id_number_enc == MAN
    assert stored.id_number_index == id_number_index(MAN)
    assert stored.id_number_masked == "430***********0033"
    assert (stored.birth_date, stored.sex) == (date(1975, 3, 1), "male")
    assert (stored.phone_enc, stored.phone_index, stored.phone_masked) == (
        PHONE,
        phone_index(PHONE),
        "138****5678",
    )
    assert (stored.bank_account_enc, stored.bank_account_masked, stored.bank_name) == (
        ACCOUNT,
        "**** 0128",
        "中国工商银行",
    )
    assert (stored.union_id, stored.union_path, stored.unit_id) == (
        tree.grassroots_1.pk,
        tree.grassroots_1.path,
        tree.unit_1.pk,
    )
    # 1975-03 male: k = 122 months since 1965-01 -> delay min(36, 122 // 4 + 1) = 31 months
    assert (stored.retirement_category, stored.retirement_date) == ("male", date(2037, 10, 1))
    event = AuditEvent.objects.get(event=Event.MEMBER_CREATED)
    assert (event.object_id, event.organisation_id, event.actor_id, event.detail) == (
        str(member.pk),
        tree.grassroots_1.pk,
        clerk.pk,
        {},
    )


@pytest.mark.django_db
def test_women_need_a_retirement_category(tree: factories.Tree) -> None:
    member = factories.member(tree.grassroots_1, tree.unit_1, number=WOMAN, male=False)
    assert (member.sex, member.retirement_category) == ("female", "female55")
    assert member.retirement_date == date(2043, 6, 15)  # 1985-06 female55: +55 y +36 m
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_member(
            acting_user=None,
            union=tree.grassroots_1,
            data=_data(id_number=make_woman(), unit_id=tree.unit_1.pk, retirement_category=""),
        )
    assert _errors(caught) == [
        (
            "retirement_category",
            "女职工须填写退休类别（女50 或 女55），身份证号码无法区分",
            ErrorCode.REQUIRED,
        )
    ]
    with pytest.raises(InvalidInput) as caught:
        create_member(
            acting_user=None,
            union=tree.grassroots_1,
            data=_data(id_number=MAN, unit_id=tree.unit_1.pk, retirement_category="female50"),
        )
    assert _errors(caught) == [
        ("retirement_category", "身份证号码显示为男性，退休类别应为“男”", ErrorCode.INVALID)
    ]
    assert _snapshot() == before


def make_woman() -> str:
    return factories.id_number(date(1990, 5, 5), male=False)


@pytest.mark.django_db
def test_every_field_error_at_once_in_chinese(tree: factories.Tree) -> None:
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_member(
            acting_user=None,
            union=tree.grassroots_1,
            data=MemberInput(
                name="",
                id_number="43010219750301003",
                employment_type="temporary",
                retirement_category="",
                phone="1381234567",
                bank_account="6222-abc",
                unit_id=None,
            ),
        )
    assert _errors(caught) == [
        ("name", "姓名不能为空", ErrorCode.REQUIRED),
        ("id_number", "身份证号码应为18位，实际为17位", ErrorCode.INVALID),
        ("employment_type", "用工形式应为在编、合同、劳务派遣或新就业形态", ErrorCode.INVALID),
        ("phone", "手机号码应为11位，以1开头", ErrorCode.INVALID),
        ("bank_account", "银行账号应为12至30位数字", ErrorCode.INVALID),
        (
            "unit",
            "请选择所在单位（仅工会联合会可直接登记无单位的新就业形态劳动者）",
            ErrorCode.REQUIRED,
        ),
    ]
    assert _snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "王" * 51}, "name", "姓名不能超过50个字"),
        ({"id_number": MAN[:-1] + "4"}, "id_number", "身份证号码校验位不正确"),
        ({"id_number": "411728199802290058"}, "id_number", "身份证号码中的出生日期不存在"),
        (
            {"id_number": "430102750301003"},
            "id_number",
            "不支持15位旧身份证号码，请使用18位身份证号码",
        ),
        ({"id_number": ""}, "id_number", "身份证号码不能为空"),
        ({"phone": "23812345678"}, "phone", "手机号码应为11位，以1开头"),
        ({"bank_account": "12345"}, "bank_account", "银行账号应为12至30位数字"),
    ],
)
def test_single_field_errors(
    tree: factories.Tree, overrides: dict[str, Any], field: str, message: str
) -> None:
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_member(
            acting_user=None,
            union=tree.grassroots_1,
            data=_data(unit_id=tree.unit_1.pk, **overrides),
        )
    assert [(e.field, e.message) for e in caught.value.errors] == [(field, message)]
    assert _snapshot() == before


@pytest.mark.django_db
def test_unit_must_be_in_the_enrolling_unions_subtree(tree: factories.Tree) -> None:
    before = _snapshot()
    for unit_id in (tree.unit_3.pk, 10**9):
        with pytest.raises(InvalidInput) as caught:
            create_member(acting_user=None, union=tree.county_a1, data=_data(unit_id=unit_id))
        assert _errors(caught) == [("unit", "所选单位不存在或不属于本工会", ErrorCode.INVALID)]
    assert _snapshot() == before


@pytest.mark.django_db
def test_a_federation_enrolls_new_employment_workers_without_a_unit(tree: factories.Tree) -> None:
    federation = factories.union(tree.city_a, "长沙市新就业形态劳动者工会联合会", "federation")
    rider = create_member(
        acting_user=None,
        union=federation,
        data=_data(employment_type="new_employment", phone="", bank_account="", bank_name=""),
    )
    assert (rider.union_id, rider.unit_id, rider.employment_type) == (
        federation.pk,
        None,
        "new_employment",
    )
    assert (rider.phone_enc, rider.phone_index, rider.phone_masked) == (None, "", "")
    assert Member.objects.get(pk=rider.pk).bank_account_enc is None


@pytest.mark.django_db
def test_the_same_id_number_cannot_be_enrolled_twice(tree: factories.Tree) -> None:
    factories.member(tree.grassroots_1, tree.unit_1, number=MAN)
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        create_member(
            acting_user=None,
            union=tree.grassroots_2,
            data=_data(id_number=MAN.lower(), unit_id=tree.unit_2.pk),
        )
    assert _errors(caught) == [("id_number", "该身份证号码已登记为职工", ErrorCode.DUPLICATE)]
    assert _snapshot() == before


# --- update ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_update_member_records_which_fields_changed(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.city_a, "clerk")
    member = factories.member(tree.grassroots_1, tree.unit_1, number=MAN, phone=PHONE)
    unit_b = factories.unit(tree.grassroots_1, "芙蓉另一公司")
    updated = update_member(
        acting_user=clerk,
        member=member,
        data=_data(
            name="王强强",
            phone="13987654321",
            bank_account="",
            bank_name="",
            employment_type="dispatched",
            unit_id=unit_b.pk,
        ),
    )
    stored = Member.objects.get(pk=updated.pk)
    assert (stored.name, stored.phone_enc, stored.phone_masked, stored.unit_id) == (
        "王强强",
        "13987654321",
        "139****4321",
        unit_b.pk,
    )
    assert (stored.bank_account_enc, stored.bank_account_masked) == (None, "")
    assert stored.employment_type == "dispatched"
    assert stored.updated_at > stored.created_at
    event = AuditEvent.objects.get(event=Event.MEMBER_UPDATED)
    assert event.detail == {"changed": ["employment_type", "name", "phone_index", "unit_id"]}
    assert event.actor_id == clerk.pk
    assert PHONE not in str(event.detail) and "13987654321" not in str(event.detail)


@pytest.mark.django_db
def test_update_refuses_another_members_id_number_and_changes_nothing(
    tree: factories.Tree,
) -> None:
    clerk = factories.staff(tree.city_a, "clerk")
    first = factories.member(tree.grassroots_1, tree.unit_1, number=MAN)
    second = factories.member(tree.grassroots_1, tree.unit_1, number=WOMAN, male=False, name="李娜")
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        update_member(
            acting_user=clerk,
            member=second,
            data=_data(id_number=MAN, retirement_category="", phone="12"),
        )
    assert _errors(caught) == [
        ("phone", "手机号码应为11位，以1开头", ErrorCode.INVALID),
        ("id_number", "该身份证号码已登记为其他职工", ErrorCode.DUPLICATE),
    ]
    assert _snapshot() == before
    assert Member.objects.get(pk=first.pk).id_number_enc == MAN


# --- hardship (R4) ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_hardship_as_of_a_date(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.grassroots_1, "clerk")
    member = factories.member(tree.grassroots_1, tree.unit_1)
    first = record_hardship(
        acting_user=clerk,
        member=member,
        source="civil_affairs",
        valid_from=date(2026, 3, 1),
        valid_to=date(2026, 6, 30),
        evidence="长沙市民政局低收入人口名单",
    )
    second = record_hardship(
        acting_user=clerk,
        member=member,
        source="union_file",
        valid_from=date(2026, 9, 1),
        valid_to=None,
    )
    assert current_hardship(member, date(2026, 2, 28)) is None
    assert current_hardship(member, date(2026, 3, 1)) == first
    assert current_hardship(member, date(2026, 6, 30)) == first  # inclusive end
    assert current_hardship(member, date(2026, 7, 1)) is None
    assert current_hardship(member, date(2026, 9, 1)) == second
    assert current_hardship(member, date(2030, 1, 1)) == second  # open-ended
    assert (first.recorded_by_id, first.evidence) == (clerk.pk, "长沙市民政局低收入人口名单")
    events = AuditEvent.objects.filter(event=Event.HARDSHIP_RECORDED).order_by("seq")
    assert [e.detail for e in events] == [
        {"member": member.pk, "source": "civil_affairs"},
        {"member": member.pk, "source": "union_file"},
    ]


@pytest.mark.django_db
def test_hardship_errors(tree: factories.Tree) -> None:
    member = factories.member(tree.grassroots_1, tree.unit_1)
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        record_hardship(
            acting_user=None,
            member=member,
            source="rumour",
            valid_from=date(2026, 5, 1),
            valid_to=date(2026, 4, 30),
        )
    assert _errors(caught) == [
        ("source", "认定来源应为民政困难群众名单或工会困难职工档案", ErrorCode.INVALID),
        ("valid_to", "截止日期不能早于起始日期", ErrorCode.INVALID),
    ]
    assert _snapshot() == before


# --- family members --------------------------------------------------------------------------
@pytest.mark.django_db
def test_family_member(tree: factories.Tree) -> None:
    member = factories.member(tree.grassroots_1, tree.unit_1, number=MAN)
    spouse = add_family_member(
        acting_user=None, member=member, name="刘芳", id_number=WOMAN, relation="spouse"
    )
    stored = FamilyMember.objects.get(pk=spouse.pk)
    assert (stored.member_id, stored.name, stored.relation, stored.sex) == (
        member.pk,
        "刘芳",
        "spouse",
        "female",
    )
    assert (stored.id_number_enc, stored.id_number_masked, stored.birth_date) == (
        WOMAN,
        "410***********0023",
        date(1985, 6, 15),
    )
    event = AuditEvent.objects.get(event=Event.FAMILY_CREATED)
    assert event.detail == {"member": member.pk}


@pytest.mark.django_db
def test_family_member_errors(tree: factories.Tree) -> None:
    member = factories.member(tree.grassroots_1, tree.unit_1, number=MAN)
    add_family_member(
        acting_user=None, member=member, name="刘芳", id_number=WOMAN, relation="spouse"
    )
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        add_family_member(acting_user=None, member=member, name=" ", id_number="x", relation="pet")
    assert _errors(caught) == [
        ("name", "姓名不能为空", ErrorCode.REQUIRED),
        ("relation", "关系应为配偶、子女或父母", ErrorCode.INVALID),
        ("id_number", "身份证号码应为18位，实际为1位", ErrorCode.INVALID),
    ]
    with pytest.raises(InvalidInput) as caught:
        add_family_member(
            acting_user=None, member=member, name="刘芳", id_number=WOMAN, relation="spouse"
        )
    assert _errors(caught) == [("id_number", "该身份证号码已登记为家庭成员", ErrorCode.DUPLICATE)]
    with pytest.raises(InvalidInput) as caught:
        add_family_member(
            acting_user=None, member=member, name="王强", id_number=MAN, relation="child"
        )
    assert _errors(caught) == [("id_number", "家庭成员不能是职工本人", ErrorCode.INVALID)]
    assert _snapshot() == before


# --- consent (S12) ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_consent_grant_is_idempotent_and_withdraw_keeps_history(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.grassroots_1, "clerk")
    member = factories.member(tree.grassroots_1, tree.unit_1)
    consent = grant_consent(acting_user=clerk, member=member)
    assert (consent.purpose, consent.channel, consent.notice_version, consent.active) == (
        "medical_data",
        "paper_via_union",
        "2026-01",
        True,
    )
    assert grant_consent(acting_user=clerk, member=member) == consent  # no second active row
    assert AuditEvent.objects.filter(event=Event.CONSENT_GRANTED).count() == 1
    assert withdraw_consent(acting_user=clerk, member=member) == 1
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None and not consent.active
    assert withdraw_consent(acting_user=clerk, member=member) == 0  # nothing left to withdraw
    assert AuditEvent.objects.filter(event=Event.CONSENT_WITHDRAWN).count() == 1
    again = grant_consent(acting_user=clerk, member=member, channel="portal")
    assert again.pk != consent.pk and again.channel == "portal"
    assert list(member.consents.order_by("pk").values_list("withdrawn_at", flat=True)) == [
        consent.withdrawn_at,
        None,
    ]


# --- reveal (S11) ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_reveal_needs_the_role_and_a_reason_and_is_audited(tree: factories.Tree) -> None:
    member = factories.member(
        tree.grassroots_1, tree.unit_1, number=MAN, phone=PHONE, bank_account=ACCOUNT
    )
    clerk = factories.staff(tree.grassroots_1, "clerk")
    reviewer = factories.staff(tree.grassroots_1, "reviewer")
    auditor = factories.staff(tree.grassroots_1, "auditor")
    assert (
        reveal_member_field(
            acting_user=clerk, member=member, field="bank_account", reason="核对银行账号"
        )
        == ACCOUNT
    )
    assert (
        reveal_member_field(
            acting_user=reviewer, member=member, field="id_number", reason="核对身份信息"
        )
        == MAN
    )
    before = _snapshot()
    with pytest.raises(InvalidInput) as caught:
        reveal_member_field(acting_user=reviewer, member=member, field="bank_account", reason="")
    assert _errors(caught) == [
        ("field", "您的角色无权查看银行账号明文", ErrorCode.INVALID),
        ("reason", "请填写查看原因（至少4个字）", ErrorCode.REQUIRED),
    ]
    with pytest.raises(InvalidInput) as caught:
        reveal_member_field(
            acting_user=auditor, member=member, field="phone", reason="例行稽核检查"
        )
    assert _errors(caught) == [("field", "您的角色无权查看手机号码明文", ErrorCode.INVALID)]
    with pytest.raises(InvalidInput) as caught:
        reveal_member_field(acting_user=clerk, member=member, field="name_enc", reason="例行检查")
    assert _errors(caught) == [("field", "不支持查看该字段", ErrorCode.INVALID)]
    assert _snapshot() == before
    events = AuditEvent.objects.filter(event=Event.MEMBER_UNMASKED).order_by("seq")
    assert [(e.actor_id, e.detail) for e in events] == [
        (clerk.pk, {"field": "bank_account", "reason": "核对银行账号"}),
        (reviewer.pk, {"field": "id_number", "reason": "核对身份信息"}),
    ]
