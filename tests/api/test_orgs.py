"""/orgs and /units: the caller's subtree only (404 outside, with the same body as a missing
object), filters, keyset pages, and unit writes that are validated, scoped and audited."""

from __future__ import annotations

from huzhu.api.errors import NOT_FOUND_MESSAGE
from huzhu.core.ids import make_uscc
from huzhu.core.models import AuditEvent
from huzhu.orgs.models import Unit
from tests import factories
from tests.api.conftest import World


def test_org_list_is_the_callers_subtree_in_tree_order(world: World) -> None:
    t = world.tree
    answer = world.clerk_api.get("orgs")
    assert answer.status == 200
    assert [row["id"] for row in answer.body["items"]] == [t.county_a1.pk, t.grassroots_1.pk]
    assert answer.body["next"] is None
    first = answer.body["items"][0]
    assert first == {
        "id": t.county_a1.pk,
        "name": "芙蓉区总工会",
        "kind": "county",
        "parent_id": t.city_a.pk,
        "depth": 2,
        "code": "430102",
        "region_code": "430102",
        "uscc": None,
        "address": "",
        "contact_name": "",
        "is_active": True,
    }


def test_org_list_filters_and_pages(world: World) -> None:
    t = world.tree
    federation = factories.union(t.county_a1, "芙蓉区快递行业工会联合会", "federation")
    api = world.clerk_api
    by_parent = api.get("orgs", parent_id=t.county_a1.pk)
    assert [r["id"] for r in by_parent.body["items"]] == [t.grassroots_1.pk, federation.pk]
    by_kind = api.get("orgs", kind="federation")
    assert [r["id"] for r in by_kind.body["items"]] == [federation.pk]
    by_name = api.get("orgs", q="快递")
    assert [r["id"] for r in by_name.body["items"]] == [federation.pk]
    # A parent outside the subtree lists nothing (not the sibling county's children).
    assert api.get("orgs", parent_id=t.county_a2.pk).body["items"] == []
    page_1 = api.get("orgs", limit=2)
    assert [r["id"] for r in page_1.body["items"]] == [t.county_a1.pk, t.grassroots_1.pk]
    assert page_1.body["next"] == t.grassroots_1.pk
    page_2 = api.get("orgs", limit=2, after=page_1.body["next"])
    assert [r["id"] for r in page_2.body["items"]] == [federation.pk]
    assert page_2.body["next"] is None


def test_org_list_rejects_a_cursor_outside_the_subtree_and_unknown_filters(world: World) -> None:
    answer = world.clerk_api.get("orgs", after=world.tree.county_a2.pk)
    assert answer.status == 422
    assert answer.body == {
        "detail": [
            {"loc": ["query", "after"], "field": "after", "msg": "分页参数无效", "code": "invalid"}
        ]
    }
    answer = world.clerk_api.get("orgs", kind="village")
    assert answer.status == 422
    assert answer.body["detail"][0]["field"] == "kind"
    assert answer.body["detail"][0]["code"] == "enum"
    assert answer.body["detail"][0]["msg"].startswith("取值无效，应为以下之一：")
    answer = world.clerk_api.get("orgs", parnet_id=1)
    assert answer.status == 422
    assert answer.body["detail"] == [
        {
            "loc": ["query", "parnet_id"],
            "field": "parnet_id",
            "msg": "不允许的字段",
            "code": "extra_forbidden",
        }
    ]


def test_org_detail_is_scoped(world: World) -> None:
    t = world.tree
    api = world.clerk_api
    assert api.get(f"orgs/{t.county_a1.pk}").status == 200
    assert api.get(f"orgs/{t.grassroots_1.pk}").body["name"] == "芙蓉区某公司工会"
    for outside in (t.county_a2, t.city_a, t.province, t.grassroots_3):
        answer = api.get(f"orgs/{outside.pk}")
        assert answer.status == 404
        assert answer.body == {"detail": NOT_FOUND_MESSAGE}
    missing = api.get("orgs/999999")
    assert (missing.status, missing.body) == (404, {"detail": NOT_FOUND_MESSAGE})


def test_unit_list_and_detail_are_scoped(world: World) -> None:
    t = world.tree
    api = world.clerk_api
    answer = api.get("units")
    assert answer.status == 200
    assert answer.body == {
        "items": [
            {
                "id": t.unit_1.pk,
                "name": "芙蓉某公司",
                "uscc": t.unit_1.uscc,
                "union": {"id": t.grassroots_1.pk, "name": "芙蓉区某公司工会"},
                "address": "",
                "contact_name": "",
                "contact_phone_masked": "",
                "industry": "",
                "is_active": True,
            }
        ],
        "next": None,
    }
    assert api.get(f"units/{t.unit_1.pk}").status == 200
    for outside in (t.unit_2, t.unit_3):
        answer = api.get(f"units/{outside.pk}")
        assert (answer.status, answer.body) == (404, {"detail": NOT_FOUND_MESSAGE})


def test_unit_search_filter_and_pages(world: World) -> None:
    t = world.tree
    second = factories.unit(t.grassroots_1, "芙蓉第二公司")
    api = world.clerk_api
    assert [u["id"] for u in api.get("units", q="第二").body["items"]] == [second.pk]
    assert [u["id"] for u in api.get("units", q=second.uscc.lower()).body["items"]] == [second.pk]
    # The sibling county's unit is not found even by its exact code.
    assert api.get("units", q=t.unit_2.uscc).body["items"] == []
    by_union = api.get("units", union_id=t.grassroots_1.pk).body["items"]
    assert [u["id"] for u in by_union] == [t.unit_1.pk, second.pk]
    assert api.get("units", union_id=t.county_a1.pk).body["items"] != []
    assert api.get("units", union_id=t.grassroots_2.pk).body["items"] == []
    page_1 = api.get("units", limit=1).body
    assert [u["id"] for u in page_1["items"]] == [t.unit_1.pk]
    page_2 = api.get("units", limit=1, after=page_1["next"]).body
    assert [u["id"] for u in page_2["items"]] == [second.pk]
    assert page_2["next"] is None


def _unit_body(world: World, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "union_id": world.tree.grassroots_1.pk,
        "name": "芙蓉新公司",
        "uscc": make_uscc("91430102MA0000777"),
        "address": "长沙市芙蓉区五一大道1号",
        "contact_name": "周敏",
        "industry": "制造业",
    }
    body.update(changes)
    return body


def test_create_unit(world: World) -> None:
    body = _unit_body(world)
    answer = world.clerk_api.post("units", body)
    assert answer.status == 201
    unit = Unit.objects.get(uscc=body["uscc"])
    assert answer.body["id"] == unit.pk
    assert answer.body["union"] == {"id": world.tree.grassroots_1.pk, "name": "芙蓉区某公司工会"}
    assert (unit.name, unit.address, unit.union_path) == (
        "芙蓉新公司",
        "长沙市芙蓉区五一大道1号",
        world.tree.grassroots_1.path,
    )
    event = AuditEvent.objects.get(event="unit.create", object_id=str(unit.pk))
    assert event.actor_id == world.clerk.pk
    assert event.channel == "api"


def test_create_unit_reports_every_field_error_in_chinese(world: World) -> None:
    before = Unit.objects.count()
    valid = make_uscc("91430102MA0000777")
    bad_check = valid[:-1] + ("1" if valid[-1] == "0" else "0")
    answer = world.clerk_api.post(
        "units",
        {"union_id": "x", "name": " ", "uscc": bad_check, "phone": "1", "industry": 5},
    )
    assert answer.status == 422
    assert {(e["field"], e["msg"], e["code"]) for e in answer.body["detail"]} == {
        ("union_id", "应为整数", "int_parsing"),
        ("name", "不能为空", "required"),
        ("uscc", "统一社会信用代码校验位不正确", "invalid"),
        ("industry", "应为文本", "string_type"),
        ("phone", "不允许的字段", "extra_forbidden"),
    }
    assert all(e["loc"] == ["body", e["field"]] for e in answer.body["detail"])
    missing = world.clerk_api.post("units", {})
    assert {(e["field"], e["msg"], e["code"]) for e in missing.body["detail"]} == {
        ("union_id", "必填", "required"),
        ("name", "必填", "required"),
        ("uscc", "必填", "required"),
    }
    too_long = world.clerk_api.post("units", _unit_body(world, name="长" * 101))
    assert too_long.body["detail"] == [
        {
            "loc": ["body", "name"],
            "field": "name",
            "msg": "不能超过100个字符",
            "code": "string_too_long",
        }
    ]
    assert Unit.objects.count() == before


def test_create_unit_service_errors_use_the_api_field_names(world: World) -> None:
    before = (Unit.objects.count(), AuditEvent.objects.count())
    # A county union is not an enrolling union: the service's "union" error names union_id.
    answer = world.clerk_api.post("units", _unit_body(world, union_id=world.tree.county_a1.pk))
    assert answer.status == 422
    assert answer.body["detail"] == [
        {
            "loc": ["body", "union_id"],
            "field": "union_id",
            "msg": "单位只能隶属于基层工会或工会联合会",
            "code": "invalid",
        }
    ]
    duplicate = world.clerk_api.post("units", _unit_body(world, uscc=world.tree.unit_2.uscc))
    assert duplicate.body["detail"] == [
        {
            "loc": ["body", "uscc"],
            "field": "uscc",
            "msg": "该统一社会信用代码已登记为其他单位",
            "code": "duplicate",
        }
    ]
    assert (Unit.objects.count(), AuditEvent.objects.count()) == before


def test_create_unit_outside_the_subtree_is_refused(world: World) -> None:
    before = (Unit.objects.count(), AuditEvent.objects.count())
    for union in (world.tree.grassroots_2, world.tree.grassroots_3):
        answer = world.clerk_api.post("units", _unit_body(world, union_id=union.pk))
        assert answer.status == 422
        assert answer.body["detail"] == [
            {
                "loc": ["body", "union_id"],
                "field": "union_id",
                "msg": "所选工会不存在或不在您的管辖范围内",
                "code": "not_found",
            }
        ]
    # Same answer for a union that does not exist at all.
    ghost = world.clerk_api.post("units", _unit_body(world, union_id=999999))
    assert ghost.body == answer.body
    assert world.auditor_api.post("units", _unit_body(world)).status == 403
    assert (Unit.objects.count(), AuditEvent.objects.count()) == before


def test_update_unit(world: World) -> None:
    unit = world.tree.unit_1
    body = _unit_body(world, name="芙蓉某公司（更名）", uscc=unit.uscc, industry="")
    answer = world.clerk_api.put(f"units/{unit.pk}", body)
    assert answer.status == 200
    assert answer.body["name"] == "芙蓉某公司（更名）"
    unit.refresh_from_db()
    assert (unit.name, unit.address, unit.industry) == (
        "芙蓉某公司（更名）",
        "长沙市芙蓉区五一大道1号",
        "",
    )
    event = AuditEvent.objects.filter(event="unit.update", object_id=str(unit.pk)).get()
    assert event.detail == {"changed": ["name", "address", "contact_name"]}


def test_update_unit_outside_the_subtree_or_without_permission_is_404(world: World) -> None:
    sibling = world.tree.unit_2
    before = (Unit.objects.values().get(pk=sibling.pk), AuditEvent.objects.count())
    body = _unit_body(world, uscc=sibling.uscc)
    answer = world.clerk_api.put(f"units/{sibling.pk}", body)
    assert (answer.status, answer.body) == (404, {"detail": NOT_FOUND_MESSAGE})
    own = world.tree.unit_1
    assert world.auditor_api.put(f"units/{own.pk}", _unit_body(world, uscc=own.uscc)).status == 404
    # Moving an own unit into a union outside the subtree is a field error, and changes nothing.
    moved = world.clerk_api.put(
        f"units/{own.pk}", _unit_body(world, uscc=own.uscc, union_id=world.tree.grassroots_2.pk)
    )
    assert moved.status == 422
    assert moved.body["detail"][0]["field"] == "union_id"
    assert (Unit.objects.values().get(pk=sibling.pk), AuditEvent.objects.count()) == before
    assert Unit.objects.get(pk=own.pk).union_id == world.tree.grassroots_1.pk
