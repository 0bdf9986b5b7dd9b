"""/members: scoped, masked, minimum necessary fields (S5, S7, S11); keyset pages without COUNT;
writes validated in Chinese with every field error at once, scoped and audited."""

from __future__ import annotations

import json
from datetime import date, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from huzhu.api.errors import NOT_FOUND_MESSAGE
from huzhu.core.ids import make_id_number, mask_id_number
from huzhu.core.models import AuditEvent
from huzhu.members.models import Member
from huzhu.members.services import grant_consent, record_hardship
from tests import factories
from tests.api.conftest import World, api_for

LIST_FIELDS = {
    "id",
    "name",
    "id_number_masked",
    "sex",
    "age",
    "unit",
    "union",
    "employment_type",
    "retirement_category",
    "retirement_date",
    "hardship_now",
    "consent_active",
}
DETAIL_FIELDS = LIST_FIELDS | {"phone_masked", "bank_account_masked", "bank_name"}


def _age(birth: date) -> int:
    today = timezone.localdate()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def test_list_shows_the_subtree_masked_with_minimum_fields(world: World) -> None:
    answer = world.clerk_api.get("members")
    assert answer.status == 200
    assert answer.body["next"] is None
    [row] = answer.body["items"]
    m = world.member_1
    assert set(row) == LIST_FIELDS
    assert row == {
        "id": m.pk,
        "name": "李娜",
        "id_number_masked": mask_id_number(world.plain_ids[0]),
        "sex": "male",
        "age": _age(m.birth_date),
        "unit": {"id": world.tree.unit_1.pk, "name": "芙蓉某公司"},
        "union": {"id": world.tree.grassroots_1.pk, "name": "芙蓉区某公司工会"},
        "employment_type": "contract",
        "retirement_category": "male",
        "retirement_date": m.retirement_date.isoformat(),
        "hardship_now": False,
        "consent_active": False,
    }
    for plain in world.plain_ids:
        assert plain not in answer.text
    assert "13812345678" not in answer.text
    assert "6222020200112233445" not in answer.text


def test_detail_adds_masked_contact_fields_only(world: World) -> None:
    m = world.member_1
    answer = world.clerk_api.get(f"members/{m.pk}")
    assert answer.status == 200
    assert set(answer.body) == DETAIL_FIELDS
    assert answer.body["phone_masked"] == "138****5678"
    assert answer.body["bank_account_masked"] == "**** 3445"
    assert "birth_date" not in answer.body
    for secret in (world.plain_ids[0], "13812345678", "6222020200112233445"):
        assert secret not in answer.text


def test_hardship_and_consent_are_current(world: World) -> None:
    m = world.member_1
    today = timezone.localdate()
    record_hardship(
        acting_user=None,
        member=m,
        source="civil_affairs",
        valid_from=today - timedelta(days=30),
        valid_to=None,
    )
    grant_consent(acting_user=None, member=m)
    expired = factories.member(world.tree.grassroots_1, world.tree.unit_1, name="赵强")
    record_hardship(
        acting_user=None,
        member=expired,
        source="union_file",
        valid_from=today - timedelta(days=400),
        valid_to=today - timedelta(days=1),
    )
    detail = world.clerk_api.get(f"members/{m.pk}").body
    assert (detail["hardship_now"], detail["consent_active"]) == (True, True)
    rows = {r["id"]: r for r in world.clerk_api.get("members").body["items"]}
    assert (rows[m.pk]["hardship_now"], rows[m.pk]["consent_active"]) == (True, True)
    assert (rows[expired.pk]["hardship_now"], rows[expired.pk]["consent_active"]) == (False, False)
    only_hardship = world.clerk_api.get("members", hardship="true").body["items"]
    assert [r["id"] for r in only_hardship] == [m.pk]
    not_hardship = world.clerk_api.get("members", hardship="false").body["items"]
    assert [r["id"] for r in not_hardship] == [expired.pk]


def test_detail_outside_the_subtree_is_404_like_a_missing_member(world: World) -> None:
    sibling = world.clerk_api.get(f"members/{world.member_2.pk}")
    missing = world.clerk_api.get("members/987654")
    assert (sibling.status, sibling.body) == (404, {"detail": NOT_FOUND_MESSAGE})
    assert (missing.status, missing.body) == (sibling.status, sibling.body)
    assert world.plain_ids[1] not in sibling.text
    # A path id that is not a number is invalid input.
    bad = world.clerk_api.get("members/abc")
    assert bad.status == 422
    assert bad.body["detail"] == [
        {
            "loc": ["path", "member_id"],
            "field": "member_id",
            "msg": "应为整数",
            "code": "int_parsing",
        }
    ]


def test_list_filters(world: World) -> None:
    t = world.tree
    second_unit = factories.unit(t.grassroots_1, "芙蓉第二公司")
    rider = factories.member(
        t.grassroots_1, second_unit, name="李强", employment_type="new_employment"
    )
    api = world.clerk_api
    assert [r["id"] for r in api.get("members", q="李").body["items"]] == [
        rider.pk,
        world.member_1.pk,
    ]
    assert [r["id"] for r in api.get("members", q="李娜").body["items"]] == [world.member_1.pk]
    # The name filter is a prefix, not a substring.
    assert api.get("members", q="娜").body["items"] == []
    by_id = api.get("members", q=world.plain_ids[0].lower()).body["items"]
    assert [r["id"] for r in by_id] == [world.member_1.pk]
    # Another county's member is not found by the exact ID number either.
    assert api.get("members", q=world.plain_ids[1]).body["items"] == []
    by_unit = api.get("members", unit_id=second_unit.pk).body["items"]
    assert [r["id"] for r in by_unit] == [rider.pk]
    assert api.get("members", unit_id=t.unit_2.pk).body["items"] == []
    by_type = api.get("members", employment_type="new_employment").body["items"]
    assert [r["id"] for r in by_type] == [rider.pk]
    bad = api.get("members", employment_type="temp", limit=0, hardhsip="true")
    assert bad.status == 422
    assert {(e["field"], e["code"]) for e in bad.body["detail"]} == {
        ("employment_type", "enum"),
        ("limit", "greater_than_equal"),
    }
    assert next(e for e in bad.body["detail"] if e["field"] == "limit")["msg"] == "不能小于1"
    # Undeclared query parameters are refused too (a misspelt filter must not list everyone).
    typo = api.get("members", hardhsip="true")
    assert typo.status == 422
    assert typo.body["detail"][0]["field"] == "hardhsip"


def test_keyset_pages_without_count(world: World) -> None:
    t = world.tree
    extra = [
        factories.member(t.grassroots_1, t.unit_1, name=f"职工{i}", birth=date(1990, 1, i + 1))
        for i in range(4)
    ]
    everyone = sorted([world.member_1.pk, *(m.pk for m in extra)], reverse=True)
    api = world.clerk_api
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        query = {"limit": 2, **({"after": after} if after else {})}
        with CaptureQueriesContext(connection) as queries:
            page = api.get("members", **query)
        assert page.status == 200
        sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
        assert "COUNT(" not in sql
        seen += [r["id"] for r in page.body["items"]]
        pages += 1
        after = page.body["next"]
        if after is None:
            break
    assert seen == everyone  # newest first, each member exactly once
    assert pages == 3


def test_list_query_count_does_not_grow_with_rows(world: World) -> None:
    t = world.tree
    api = world.clerk_api
    api.get("members")  # the token's last_used_at is written on the first call of a minute

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get("members", limit=100).status == 200
        return len(queries.captured_queries)

    few = count()
    for i in range(6):
        factories.member(t.grassroots_1, t.unit_1, name=f"批量{i}", birth=date(1991, 2, i + 1))
    assert count() == few
    assert few <= 5  # session-less: token, roles, the page (with its annotations)


def _create_body(world: World, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "union_id": world.tree.grassroots_1.pk,
        "unit_id": world.tree.unit_1.pk,
        "name": "陈静",
        "id_number": make_id_number("430102", date(1992, 7, 8), 24),
        "employment_type": "established",
        "retirement_category": "female55",
        "phone": "13900001111",
        "bank_account": "6217000010002000300",
        "bank_name": "中国建设银行长沙芙蓉支行",
    }
    body.update(changes)
    return body


def test_create_member(world: World) -> None:
    body = _create_body(world)
    answer = world.clerk_api.post("members", body)
    assert answer.status == 201
    member = Member.objects.get(pk=answer.body["id"])
    assert answer.body["id_number_masked"] == mask_id_number(str(body["id_number"]))
    assert answer.body["phone_masked"] == "139****1111"
    assert answer.body["bank_account_masked"] == "**** 0300"
    assert (answer.body["sex"], answer.body["retirement_category"]) == ("female", "female55")
    for secret in (body["id_number"], body["phone"], body["bank_account"]):
        assert str(secret) not in answer.text
    assert member.id_number_enc == body["id_number"]
    assert member.union_id == world.tree.grassroots_1.pk
    event = AuditEvent.objects.get(event="member.create", object_id=str(member.pk))
    assert (event.actor_id, event.channel) == (world.clerk.pk, "api")
    for secret in (body["id_number"], body["phone"], body["bank_account"]):
        assert str(secret) not in json.dumps(event.detail)


def test_create_member_defaults_to_the_callers_union(world: World) -> None:
    body = _create_body(world)
    del body["union_id"]
    answer = world.clerk_api.post("members", body)
    assert answer.status == 201
    # The unit's grassroots union becomes the member's union.
    assert answer.body["union"]["id"] == world.tree.grassroots_1.pk


def test_create_member_reports_every_schema_error_in_chinese(world: World) -> None:
    before = (Member.objects.count(), AuditEvent.objects.count())
    answer = world.clerk_api.post(
        "members",
        {
            "name": "",
            "id_number": "430102199207080241",
            "employment_type": "临时工",
            "phone": "12345",
            "bank_account": "abc",
            "unit_id": "第一",
            "nickname": "小陈",
        },
    )
    assert answer.status == 422
    errors = {e["field"]: (e["msg"], e["code"]) for e in answer.body["detail"]}
    assert errors == {
        "name": ("不能为空", "required"),
        "id_number": ("身份证号码校验位不正确", "invalid"),
        "employment_type": (
            "取值无效，应为以下之一：'established'、'contract'、'dispatched'、'new_employment'",
            "enum",
        ),
        "phone": ("手机号码应为11位，以1开头", "invalid"),
        "bank_account": ("银行账号应为12至30位数字", "invalid"),
        "unit_id": ("应为整数", "int_parsing"),
        "nickname": ("不允许的字段", "extra_forbidden"),
    }
    assert all(e["loc"] == ["body", e["field"]] for e in answer.body["detail"])
    missing = world.clerk_api.post("members", {})
    assert {(e["field"], e["msg"]) for e in missing.body["detail"]} == {
        ("name", "必填"),
        ("id_number", "必填"),
        ("employment_type", "必填"),
    }
    for bad_id, message in (
        ("43010219920708024", "身份证号码应为18位，实际为17位"),
        ("430102920708024", "不支持15位旧身份证号码，请使用18位身份证号码"),
        ("430102199202300241", "身份证号码中的出生日期不存在"),
        ("43010219920708024A", "身份证号码只能包含数字，最后一位可以是X"),
    ):
        answer = world.clerk_api.post("members", _create_body(world, id_number=bad_id))
        assert answer.status == 422
        assert answer.body["detail"] == [
            {"loc": ["body", "id_number"], "field": "id_number", "msg": message, "code": "invalid"}
        ]
    assert (Member.objects.count(), AuditEvent.objects.count()) == before


def test_create_member_service_errors(world: World) -> None:
    before = (Member.objects.count(), AuditEvent.objects.count())
    no_category = world.clerk_api.post("members", _create_body(world, retirement_category=None))
    assert no_category.body["detail"] == [
        {
            "loc": ["body", "retirement_category"],
            "field": "retirement_category",
            "msg": "女职工须填写退休类别（女50 或 女55），身份证号码无法区分",
            "code": "required",
        }
    ]
    duplicate = world.clerk_api.post(
        "members", _create_body(world, id_number=world.plain_ids[1], retirement_category=None)
    )
    assert duplicate.body["detail"] == [
        {
            "loc": ["body", "id_number"],
            "field": "id_number",
            "msg": "该身份证号码已登记为职工",
            "code": "duplicate",
        }
    ]
    # The duplicate's owner is another county's member: nothing about them is revealed.
    assert "王芳" not in duplicate.text
    wrong_unit = world.clerk_api.post("members", _create_body(world, unit_id=world.tree.unit_2.pk))
    assert wrong_unit.body["detail"] == [
        {
            "loc": ["body", "unit_id"],
            "field": "unit_id",
            "msg": "所选单位不存在或不属于本工会",
            "code": "invalid",
        }
    ]
    assert (Member.objects.count(), AuditEvent.objects.count()) == before


def test_create_member_outside_the_subtree_or_without_permission(world: World) -> None:
    before = (Member.objects.count(), AuditEvent.objects.count())
    outside = world.clerk_api.post(
        "members",
        _create_body(world, union_id=world.tree.grassroots_2.pk, unit_id=world.tree.unit_2.pk),
    )
    assert outside.status == 422
    assert outside.body["detail"] == [
        {
            "loc": ["body", "union_id"],
            "field": "union_id",
            "msg": "所选工会不存在或不在您的管辖范围内",
            "code": "not_found",
        }
    ]
    assert world.auditor_api.post("members", _create_body(world)).status == 403
    assert (Member.objects.count(), AuditEvent.objects.count()) == before


def _update_body(world: World, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "unit_id": None,
        "name": "李娜",
        "id_number": world.plain_ids[0],
        "employment_type": "established",
        "retirement_category": None,
        "phone": "13812345678",
        "bank_account": None,
        "bank_name": None,
    }
    body.update(changes)
    return body


def test_update_member_replaces_the_record(world: World) -> None:
    m = world.member_1
    answer = world.clerk_api.put(f"members/{m.pk}", _update_body(world))
    assert answer.status == 200
    assert answer.body["employment_type"] == "established"
    assert answer.body["phone_masked"] == "138****5678"
    assert answer.body["bank_account_masked"] == ""  # null clears the account
    m.refresh_from_db()
    assert (m.employment_type, m.bank_account_enc, m.unit_id) == (
        "established",
        None,
        world.tree.unit_1.pk,
    )
    event = AuditEvent.objects.get(event="member.update", object_id=str(m.pk))
    assert event.detail == {"changed": ["bank_account_masked", "employment_type"]}


def test_update_member_needs_every_field(world: World) -> None:
    """The API never returns the plain phone or account, so "omitted" cannot mean "unchanged":
    every field must be sent (null for none)."""
    m = world.member_1
    before = Member.objects.values().get(pk=m.pk)
    body = _update_body(world)
    del body["phone"]
    del body["bank_account"]
    answer = world.clerk_api.put(f"members/{m.pk}", body)
    assert answer.status == 422
    assert {(e["field"], e["msg"], e["code"]) for e in answer.body["detail"]} == {
        ("phone", "必填", "required"),
        ("bank_account", "必填", "required"),
    }
    assert Member.objects.values().get(pk=m.pk) == before


def test_update_member_outside_the_subtree_or_without_permission_is_404(world: World) -> None:
    sibling, own = world.member_2, world.member_1
    reviewer_api = api_for(factories.staff(world.tree.county_a1, "reviewer"))
    before = (
        Member.objects.values().get(pk=sibling.pk),
        Member.objects.values().get(pk=own.pk),
        AuditEvent.objects.count(),
    )
    body = _update_body(world, id_number=world.plain_ids[1], name="越权修改")
    answer = world.clerk_api.put(f"members/{sibling.pk}", body)
    assert (answer.status, answer.body) == (404, {"detail": NOT_FOUND_MESSAGE})
    # The reviewer sees the member but may not edit: the member does not exist for that action.
    assert reviewer_api.get(f"members/{own.pk}").status == 200
    denied = reviewer_api.put(f"members/{own.pk}", _update_body(world, name="越权修改"))
    assert (denied.status, denied.body) == (404, {"detail": NOT_FOUND_MESSAGE})
    assert (
        Member.objects.values().get(pk=sibling.pk),
        Member.objects.values().get(pk=own.pk),
        AuditEvent.objects.count(),
    ) == before
