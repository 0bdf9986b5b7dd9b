"""Set-based member writes (demo, roster imports): the same checks as ``create_member``, a fixed
number of queries per batch, one audit event per batch, all-or-nothing unless asked otherwise."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from huzhu.core.audit import Event
from huzhu.core.errors import ErrorCode, InvalidInput
from huzhu.core.ids import make_id_number
from huzhu.core.models import AuditEvent
from huzhu.members.models import Consent, Member
from huzhu.members.services import (
    InvalidRows,
    MemberInput,
    RowError,
    bulk_create_members,
    bulk_grant_consents,
    grant_consent,
    id_number_index,
    withdraw_consent,
)
from tests import factories


def _number(n: int, male: bool = True) -> str:
    return make_id_number("430102", date(1980, 1, 1 + n % 28), 2 * n + (1 if male else 2))


def _rows(count: int, unit_id: int, start: int = 0) -> list[MemberInput]:
    return [
        MemberInput(
            name=f"职工{n}",
            id_number=_number(n),
            employment_type="contract",
            phone=f"138{n:08d}",
            bank_account=f"62220212345678{n:05d}",
            bank_name="中国工商银行",
            unit_id=unit_id,
        )
        for n in range(start, start + count)
    ]


def _state() -> tuple[Any, ...]:
    return (
        list(Member.objects.order_by("pk").values_list("pk", "id_number_index")),
        AuditEvent.objects.count(),
    )


@pytest.mark.django_db
def test_bulk_create_writes_what_create_member_writes(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.county_a1, "clerk")
    rows = _rows(5, tree.unit_1.pk)
    result = bulk_create_members(acting_user=clerk, union=tree.county_a1, rows=rows, batch_size=2)
    assert result.errors == []
    assert [m.name for m in result.created] == [f"职工{n}" for n in range(5)]
    assert all(m.pk for m in result.created)
    stored = {m.pk: m for m in Member.objects.all()}
    for row, member in zip(rows, result.created, strict=True):
        saved = stored[member.pk]
        assert saved.id_number_enc == row.id_number
        assert saved.id_number_index == id_number_index(row.id_number)
        assert saved.id_number_masked == row.id_number[:3] + "*" * 11 + row.id_number[-4:]
        assert (saved.phone_enc, saved.phone_masked) == (
            row.phone,
            row.phone[:3] + "****" + row.phone[-4:],
        )
        assert (saved.bank_account_enc, saved.bank_account_masked) == (
            row.bank_account,
            "**** " + row.bank_account[-4:],
        )
        assert (saved.union_id, saved.union_path, saved.unit_id) == (
            tree.grassroots_1.pk,
            tree.grassroots_1.path,
            tree.unit_1.pk,
        )
        assert (saved.retirement_category, saved.sex) == ("male", "male")
    events = list(AuditEvent.objects.filter(event=Event.MEMBER_CREATED).order_by("seq"))
    ids = [m.pk for m in result.created]
    assert [e.detail for e in events] == [
        {"bulk": True, "count": 2, "member_ids": ids[0:2]},
        {"bulk": True, "count": 2, "member_ids": ids[2:4]},
        {"bulk": True, "count": 1, "member_ids": ids[4:5]},
    ]
    assert {(e.actor_id, e.organisation_id, e.object_type) for e in events} == {
        (clerk.pk, tree.county_a1.pk, "members.member")
    }


@pytest.mark.django_db
def test_query_count_does_not_grow_with_the_rows(tree: factories.Tree) -> None:
    def queries_for(count: int, start: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            bulk_create_members(
                acting_user=None,
                union=tree.grassroots_1,
                rows=_rows(count, tree.unit_1.pk, start),
                batch_size=1000,
            )
        return len(captured)

    # Only the INSERT statements grow, by the backend's own bulk batch size (SQLite binds at most
    # 999 parameters per statement); validation, look-ups and audit stay fixed.
    fields = [f for f in Member._meta.concrete_fields if not f.primary_key]
    per_insert = connection.ops.bulk_batch_size(fields, [Member()] * 300)
    small, large = queries_for(10, 0), queries_for(300, 100)
    assert large - small == math.ceil(300 / per_insert) - 1


@pytest.mark.django_db
def test_invalid_rows_write_nothing_and_report_every_row(tree: factories.Tree) -> None:
    factories.member(tree.grassroots_1, tree.unit_1, number=_number(3))
    rows = _rows(6, tree.unit_1.pk)
    rows[1] = MemberInput(
        name="", id_number="123", employment_type="contract", unit_id=tree.unit_1.pk
    )
    rows[4] = MemberInput(
        name="重复",
        id_number=_number(0).lower(),
        employment_type="contract",
        unit_id=tree.unit_1.pk,
    )
    rows[5] = MemberInput(
        name="外单位", id_number=_number(5), employment_type="contract", unit_id=tree.unit_3.pk
    )
    before = _state()
    with pytest.raises(InvalidRows) as caught:
        bulk_create_members(acting_user=None, union=tree.grassroots_1, rows=rows)
    assert caught.value.rows == [
        RowError(1, "name", "姓名不能为空", ErrorCode.REQUIRED),
        RowError(1, "id_number", "身份证号码应为18位，实际为3位", ErrorCode.INVALID),
        RowError(3, "id_number", "该身份证号码已登记为职工", ErrorCode.DUPLICATE),
        RowError(4, "id_number", "与第1条的身份证号码重复", ErrorCode.DUPLICATE),
        RowError(5, "unit", "所选单位不存在或不属于本工会", ErrorCode.INVALID),
    ]
    assert isinstance(caught.value, InvalidInput)
    assert [(e.field, e.message) for e in caught.value.errors][:2] == [
        ("1.name", "第2条：姓名不能为空"),
        ("1.id_number", "第2条：身份证号码应为18位，实际为3位"),
    ]
    assert _state() == before


@pytest.mark.django_db
def test_skip_invalid_writes_the_valid_rows(tree: factories.Tree) -> None:
    rows = _rows(4, tree.unit_1.pk)
    rows[2] = MemberInput(
        name="李娜",
        id_number=_number(2, male=False),
        employment_type="contract",
        unit_id=tree.unit_1.pk,
    )
    result = bulk_create_members(
        acting_user=None, union=tree.grassroots_1, rows=rows, skip_invalid=True
    )
    assert [m.name for m in result.created] == ["职工0", "职工1", "职工3"]
    assert result.errors == [
        RowError(
            2,
            "retirement_category",
            "女职工须填写退休类别（女50 或 女55），身份证号码无法区分",
            ErrorCode.REQUIRED,
        )
    ]
    assert Member.objects.count() == 3


@pytest.mark.django_db
def test_federation_rows_without_unit(tree: factories.Tree) -> None:
    federation = factories.union(tree.city_a, "长沙市新就业形态劳动者工会联合会", "federation")
    rows = [
        MemberInput(name="骑手甲", id_number=_number(1), employment_type="new_employment"),
        MemberInput(name="骑手乙", id_number=_number(2), employment_type="new_employment"),
    ]
    result = bulk_create_members(acting_user=None, union=federation, rows=rows)
    assert {(m.union_id, m.unit_id) for m in result.created} == {(federation.pk, None)}
    with pytest.raises(InvalidRows) as caught:
        bulk_create_members(
            acting_user=None,
            union=tree.grassroots_1,
            rows=[MemberInput(name="无单位", id_number=_number(9), employment_type="contract")],
        )
    assert [(r.row, r.field) for r in caught.value.rows] == [(0, "unit")]


@pytest.mark.django_db
def test_empty_input_writes_nothing(tree: factories.Tree) -> None:
    before = _state()
    result = bulk_create_members(acting_user=None, union=tree.grassroots_1, rows=[])
    assert (result.created, result.errors) == ([], [])
    assert _state() == before


# --- consents in bulk -----------------------------------------------------------------------
@pytest.mark.django_db
def test_bulk_grant_consents_skips_active_ones(tree: factories.Tree) -> None:
    clerk = factories.staff(tree.grassroots_1, "clerk")
    members = bulk_create_members(
        acting_user=None, union=tree.grassroots_1, rows=_rows(5, tree.unit_1.pk)
    ).created
    existing = grant_consent(acting_user=clerk, member=members[0])
    grant_consent(acting_user=clerk, member=members[1])
    withdraw_consent(acting_user=clerk, member=members[1])
    start = AuditEvent.objects.count()
    assert bulk_grant_consents(acting_user=clerk, members=members, batch_size=3) == 4
    active = Consent.objects.filter(withdrawn_at__isnull=True)
    assert sorted(active.values_list("member_id", flat=True)) == sorted(m.pk for m in members)
    assert active.get(member=members[0]) == existing
    assert set(active.exclude(pk=existing.pk).values_list("channel", "notice_version")) == {
        ("paper_via_union", "2026-01")
    }
    events = list(AuditEvent.objects.filter(seq__gt=start).order_by("seq"))
    assert [(e.event, e.detail["count"], e.detail["member_ids"]) for e in events] == [
        (Event.CONSENT_GRANTED, 3, [m.pk for m in members[1:4]]),
        (Event.CONSENT_GRANTED, 1, [members[4].pk]),
    ]
    assert events[0].organisation_id == tree.grassroots_1.pk
    assert bulk_grant_consents(acting_user=clerk, members=members) == 0  # idempotent
    assert AuditEvent.objects.count() == start + 2


@pytest.mark.django_db
def test_bulk_grant_consents_validates(tree: factories.Tree) -> None:
    member = factories.member(tree.grassroots_1, tree.unit_1)
    with pytest.raises(InvalidInput) as caught:
        bulk_grant_consents(acting_user=None, members=[member], channel="fax", purpose="ads")
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("channel", "授权渠道无效"),
        ("purpose", "授权用途无效"),
    ]
    assert not Consent.objects.exists()
