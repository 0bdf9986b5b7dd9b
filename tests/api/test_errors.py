"""The one error shape: 422 with every field error in Chinese (pydantic and services alike),
malformed JSON, and 500 answered without a stack trace."""

from __future__ import annotations

import pytest

from huzhu.api import errors
from huzhu.api.errors import SERVER_ERROR_MESSAGE, error_item, from_invalid_input, translate
from huzhu.core.errors import ErrorCode, FieldError, InvalidInput
from tests.api.conftest import World


@pytest.mark.parametrize(
    ("error_type", "ctx", "message"),
    [
        ("missing", None, "必填"),
        ("extra_forbidden", None, "不允许的字段"),
        ("string_too_long", {"max_length": 50}, "不能超过50个字符"),
        ("string_too_short", {"min_length": 1}, "不能为空"),
        ("string_too_short", {"min_length": 4}, "至少4个字符"),
        ("string_type", None, "应为文本"),
        ("int_parsing", None, "应为整数"),
        ("int_from_float", None, "应为整数（不能有小数）"),
        ("bool_parsing", None, "应为 true 或 false"),
        ("greater_than_equal", {"ge": 1}, "不能小于1"),
        ("less_than_equal", {"le": 100}, "不能大于100"),
        ("enum", {"expected": "'a', 'b' or 'c'"}, "取值无效，应为以下之一：'a'、'b'、'c'"),
        ("date_from_datetime_parsing", None, "应为日期（YYYY-MM-DD）"),
        ("decimal_max_places", {"decimal_places": 2}, "最多2位小数"),
        ("model_type", None, "应为 JSON 对象"),
        ("list_type", None, "应为列表"),
        ("value_error", {"error": "身份证号码校验位不正确"}, "身份证号码校验位不正确"),
        ("some_future_pydantic_type", None, "输入无效"),
    ],
)
def test_translate(error_type: str, ctx: dict[str, object] | None, message: str) -> None:
    assert translate(error_type, ctx) == message


def test_from_pydantic_drops_the_body_parameter_and_maps_codes() -> None:
    items = errors.from_pydantic(
        [
            {"loc": ("body", "payload", "name"), "type": "missing"},
            {
                "loc": ("body", "payload", "family", 0, "id_number"),
                "type": "value_error",
                "ctx": {"error": "身份证号码应为18位，实际为3位"},
            },
            {"loc": ("query", "limit"), "type": "less_than_equal", "ctx": {"le": 100}},
            {"loc": ("body", "payload"), "type": "missing"},
        ]
    )
    assert items == [
        {"loc": ["body", "name"], "field": "name", "msg": "必填", "code": "required"},
        {
            "loc": ["body", "family", 0, "id_number"],
            "field": "family.0.id_number",
            "msg": "身份证号码应为18位，实际为3位",
            "code": "invalid",
        },
        {
            "loc": ["query", "limit"],
            "field": "limit",
            "msg": "不能大于100",
            "code": "less_than_equal",
        },
        {"loc": ["body"], "field": "", "msg": "缺少请求体（JSON 对象）", "code": "required"},
    ]


def test_from_invalid_input_keeps_the_service_codes() -> None:
    exc = InvalidInput(
        [
            FieldError("unit", "所选单位不存在或不属于本工会"),
            FieldError("id_number", "该身份证号码已登记为职工", ErrorCode.DUPLICATE),
        ]
    )
    assert from_invalid_input(exc) == [
        error_item(["body", "unit_id"], "所选单位不存在或不属于本工会", "invalid"),
        error_item(["body", "id_number"], "该身份证号码已登记为职工", "duplicate"),
    ]


def test_malformed_json_is_422(world: World) -> None:
    for raw in ("{bad", "", b"\xff\xfe{}"):
        answer = world.clerk_api.post("units", raw=raw)
        assert answer.status == 422, raw
        if raw:
            assert answer.body == {
                "detail": [
                    {
                        "loc": ["body"],
                        "field": "",
                        "msg": "请求体不是有效的 JSON",
                        "code": "json_invalid",
                    }
                ]
            }
        else:
            assert answer.body == {
                "detail": [
                    {
                        "loc": ["body"],
                        "field": "",
                        "msg": "缺少请求体（JSON 对象）",
                        "code": "required",
                    }
                ]
            }
    not_an_object = world.clerk_api.post("units", [1, 2])
    assert not_an_object.status == 422
    assert not_an_object.body["detail"] == [
        {"loc": ["body"], "field": "", "msg": "应为 JSON 对象", "code": "model_type"}
    ]


def test_unexpected_errors_answer_500_without_details(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huzhu.api import orgs

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database exploded at /srv/huzhu/secret.py line 42")

    monkeypatch.setattr(orgs, "access_union", broken)
    answer = world.clerk_api.get(f"orgs/{world.tree.county_a1.pk}")
    assert answer.status == 500
    assert answer.body == {"detail": SERVER_ERROR_MESSAGE}
    assert "secret.py" not in answer.text
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"


def test_answers_are_utf8_json(world: World) -> None:
    answer = world.clerk_api.get("orgs")
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "芙蓉区总工会" in answer.text  # not \\uXXXX escapes
