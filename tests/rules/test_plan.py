"""Plan files (RULES.md §1): exact reading, every validation rule, export and hash."""

from __future__ import annotations

import copy
from datetime import date
from fractions import Fraction
from typing import Any

import pytest
import yaml

from huzhu.rules.plan import (
    Band,
    Plan,
    PlanError,
    PlanVersions,
    load_plan_file,
    load_plan_text,
    parse_plan,
)
from tests.rules.conftest import PLANS, TESTDATA


def _base() -> dict[str, Any]:
    text = (TESTDATA / "adjudicate" / "plan.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 - BaseLoader builds only str/list/dict
    assert isinstance(data, dict)
    return data


def _errors(data: object) -> list[PlanError]:
    plan, errors = parse_plan(data)
    assert (plan is None) == bool(errors)
    return errors


def _paths(data: object) -> dict[str, str]:
    return {error.path: error.message for error in _errors(data)}


def test_demo_plan_is_read_exactly(demo_plan: Plan) -> None:
    assert demo_plan.code == "HUNAN-2026"
    assert demo_plan.region == "430000"
    assert demo_plan.year == 2026
    assert demo_plan.contribution == 12000
    assert demo_plan.resident_individual_contribution == 40000
    assert demo_plan.risk_reserve_rate == Fraction(8, 100)
    assert demo_plan.claim_deadline == date(2027, 3, 31)
    assert demo_plan.hardship.cap_multiplier == Fraction(6, 5)
    assert demo_plan.inpatient.med_types == ("21", "52")
    assert demo_plan.inpatient.bands == (
        Band(500000, Fraction(1, 2)),
        Band(1000000, Fraction(3, 5)),
        Band(None, Fraction(7, 10)),
    )
    assert demo_plan.special_outpatient is not None
    assert demo_plan.special_outpatient.band_mode == "whole"
    assert demo_plan.family_inpatient is not None
    assert demo_plan.family_inpatient.contribution == 6000
    assert demo_plan.critical_illness is not None
    assert (demo_plan.critical_illness.severe, demo_plan.critical_illness.mild) == (1000000, 300000)


def test_unquoted_numbers_are_read_from_their_text_never_through_float() -> None:
    data = _base()
    data["products"]["inpatient"]["bands"] = [{"upto": "0.3", "rate": "0.1"}, {"rate": "0.7"}]
    text = yaml.safe_dump(data, allow_unicode=True).replace("'0.1'", "0.1").replace("'0.3'", "0.3")
    text = text.replace("- '21'", "- 21")
    plan, errors = load_plan_text(text)
    assert errors == []
    assert plan is not None
    assert plan.inpatient.bands[0] == Band(30, Fraction(1, 10))
    assert plan.inpatient.med_types == ("21", "52")


def test_value_and_reference_wrappers_on_scalars_and_mappings() -> None:
    data = _base()
    data["contribution"] = {"value": "120.00", "reference": "湘政办发〔2025〕58号（五）"}
    data["hardship"]["reference"] = "湘政办发〔2025〕58号（三）"
    data["products"]["inpatient"]["bands"][0]["rate"] = {"value": "0.50", "reference": "档一"}
    plan, errors = parse_plan(data)
    assert errors == []
    assert plan is not None
    assert plan.contribution == 12000
    assert dict(plan.references) == {
        "contribution": "湘政办发〔2025〕58号（五）",
        "hardship": "湘政办发〔2025〕58号（三）",
        "products.inpatient.bands[0].rate": "档一",
    }
    exported = plan.to_dict()
    assert exported["contribution"] == {
        "value": "120.00",
        "reference": "湘政办发〔2025〕58号（五）",
    }
    assert exported["hardship"]["reference"] == "湘政办发〔2025〕58号（三）"
    again, errors = load_plan_text(plan.to_yaml())
    assert errors == []
    assert again == plan
    assert again is not None and again.references == plan.references


@pytest.mark.parametrize("name", ["hunan-2026.yaml", "pingdingshan-2026.yaml"])
def test_shipped_plans_validate_and_round_trip(name: str) -> None:
    plan, errors = load_plan_file(PLANS / name)
    assert errors == []
    assert plan is not None
    assert plan.references, "shipped plans cite their policy articles"
    again, errors = load_plan_text(plan.to_yaml())
    assert errors == []
    assert again == plan
    assert again is not None
    assert again.parameters_hash() == plan.parameters_hash()
    from_dict, errors = parse_plan(plan.to_dict())
    assert errors == [] and from_dict == plan
    assert all(check.ok for check in plan.contribution_checks())


def test_pingdingshan_plan_is_a_henan_city_plan_with_whole_bands_per_admission() -> None:
    plan, _ = load_plan_file(PLANS / "pingdingshan-2026.yaml")
    assert plan is not None
    assert plan.region == "410400"
    assert plan.inpatient.deductible_scope == "admission"
    assert plan.inpatient.band_mode == "whole"
    assert [band.rate for band in plan.inpatient.bands] == [
        Fraction(3, 10),
        Fraction(2, 5),
        Fraction(1, 2),
    ]
    assert any("豫工文〔2026〕8号" in text for _, text in plan.references)


def test_hunan_plan_file_has_the_demo_parameters(demo_plan: Plan) -> None:
    plan, _ = load_plan_file(PLANS / "hunan-2026.yaml")
    assert plan is not None
    assert plan == demo_plan
    assert plan.parameters_hash() == demo_plan.parameters_hash()  # citations are not parameters
    assert any("湘政办发〔2025〕58号" in text for _, text in plan.references)


def test_parameters_hash_changes_with_any_parameter(demo_plan: Plan) -> None:
    data = demo_plan.to_dict()
    changed = copy.deepcopy(data)
    changed["products"]["inpatient"]["annual_cap"] = "80000.01"
    other, errors = parse_plan(changed)
    assert errors == [] and other is not None
    assert other.parameters_hash() != demo_plan.parameters_hash()
    assert len(demo_plan.parameters_hash()) == 64


def test_contribution_check_details(demo_plan: Plan) -> None:
    checks = demo_plan.contribution_checks()
    assert [(c.product, c.contribution, c.bound, c.ok) for c in checks] == [
        (None, 12000, Fraction(20000), True),
        ("family_inpatient", 6000, Fraction(20000), True),
    ]


# ----- every rule of RULES.md §1, with the key path and a Chinese reason -----


def test_rule1_contribution_at_most_half_the_resident_contribution() -> None:
    data = _base()
    data["contribution"] = "200.01"
    data["products"]["family_inpatient"]["contribution"] = "200.01"
    errors = _paths(data)
    assert "湘政办发〔2025〕58号（五）" in errors["contribution"]
    assert "200.01" in errors["contribution"] and "200.00" in errors["contribution"]
    assert "products.family_inpatient.contribution" in errors
    data = _base()
    data["contribution"] = "200.00"
    assert _errors(data) == []


def test_rule1_message_matches_the_documented_shape() -> None:
    data = _base()
    data["resident_individual_contribution"] = "240.00"
    data["contribution"] = "120.01"
    (error,) = _errors(data)
    assert error.path == "contribution"
    assert error.message == (
        "互助金 120.01 元超过城乡居民医保个人缴费标准 240.00 元的 50%（120.00 元）"
        "（湘政办发〔2025〕58号（五））"
    )


@pytest.mark.parametrize(
    ("rate", "ok"), [("0.05", True), ("0.10", True), ("0.0499", False), ("0.1001", False)]
)
def test_rule2_risk_reserve_between_5_and_10_percent(rate: str, ok: bool) -> None:
    data = _base()
    data["risk_reserve_rate"] = rate
    errors = _paths(data)
    assert ok == ("risk_reserve_rate" not in errors)
    if not ok:
        assert "湘政办发〔2025〕58号（八）" in errors["risk_reserve_rate"]


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("products.inpatient.bands[0].rate", "1.01", "之间"),
        ("products.inpatient.bands[0].rate", "-0.10", "之间"),
        ("products.inpatient.bands[0].rate", "0.12345", "四位小数"),
        ("operating_cost_cap_rate", "1.5", "之间"),
        ("hardship.contribution_waiver", "1.01", "之间"),
        ("hardship.rate_bonus", "0.00001", "四位小数"),
        ("hardship.cap_multiplier", "0.99", "不能小于"),
        ("hardship.cap_multiplier", "1.00001", "四位小数"),
        ("risk_reserve_rate", "abc", "不是数字"),
    ],
)
def test_rule3_rates(key: str, value: str, fragment: str) -> None:
    data = _base()
    node: Any = data
    tokens: list[str | int] = []
    for part in key.split("."):
        name, _, index = part.partition("[")
        tokens.append(name)
        if index:
            tokens.append(int(index.rstrip("]")))
    for token in tokens[:-1]:
        node = node[token]
    node[tokens[-1]] = value
    errors = _paths(data)
    assert key in errors, errors
    assert fragment in errors[key]


def test_rule3_bands_strictly_increasing_and_one_open_last_band() -> None:
    data = _base()
    data["products"]["inpatient"]["bands"] = [
        {"upto": "5000.00", "rate": "0.5"},
        {"upto": "5000.00", "rate": "0.6"},
        {"rate": "0.7"},
    ]
    assert "严格递增" in _paths(data)["products.inpatient.bands[1].upto"]
    data["products"]["inpatient"]["bands"] = [{"upto": "5000.00", "rate": "0.5"}]
    assert "最后一段" in _paths(data)["products.inpatient.bands[0].upto"]
    data["products"]["inpatient"]["bands"] = [{"rate": "0.5"}, {"rate": "0.6"}]
    assert "只有最后一段" in _paths(data)["products.inpatient.bands[0].upto"]
    data["products"]["inpatient"]["bands"] = []
    assert "products.inpatient.bands" in _paths(data)


def test_rule4_whole_bands_need_admission_scope() -> None:
    data = _base()
    data["products"]["special_outpatient"]["deductible_scope"] = "year"
    assert "admission" in _paths(data)["products.special_outpatient.deductible_scope"]


def test_rule5_mild_at_most_30_percent_of_severe() -> None:
    data = _base()
    data["products"]["critical_illness"]["mild"] = "3000.01"
    assert "30%" in _paths(data)["products.critical_illness.mild"]
    data["products"]["critical_illness"]["mild"] = "3000.00"
    assert _errors(data) == []


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("deductible", "-1.00", "负"),
        ("deductible", "1.001", "两位小数"),
        ("annual_cap", "1e5", "不是数字"),
        ("threshold", "", "不是数字"),
    ],
)
def test_rule6_amounts(key: str, value: str, fragment: str) -> None:
    data = _base()
    data["products"]["inpatient"][key] = value
    assert fragment in _paths(data)[f"products.inpatient.{key}"]


@pytest.mark.parametrize(
    ("deadline", "ok"), [("2026-12-31", False), ("2027-01-01", True), ("2026-02-30", False)]
)
def test_rule6_claim_deadline_after_the_year(deadline: str, ok: bool) -> None:
    data = _base()
    data["claim_deadline"] = deadline
    assert ok == ("claim_deadline" not in _paths(data))


def test_rule7_whole_band_rates_may_not_decrease() -> None:
    data = _base()
    data["products"]["special_outpatient"]["bands"] = [
        {"upto": "5000.00", "rate": "0.30"},
        {"rate": "0.20"},
    ]
    assert "递减" in _paths(data)["products.special_outpatient.bands[1].rate"]
    data["products"]["special_outpatient"]["bands"][1]["rate"] = "0.30"
    assert _errors(data) == []


def test_rule8_inpatient_required_unknown_and_missing_keys() -> None:
    data = _base()
    del data["products"]["inpatient"]
    data["colour"] = "blue"
    data["products"]["maternity"]["per_baby"] = "1.00"
    del data["hardship"]["rate_bonus"]
    errors = _paths(data)
    assert "缺少" in errors["products.inpatient"]
    assert "未知" in errors["colour"]
    assert "未知" in errors["products.maternity.per_baby"]
    assert "缺少" in errors["hardship.rate_bonus"]


def test_rule8_optional_products_may_be_left_out() -> None:
    data = _base()
    for name in ("special_outpatient", "critical_illness", "maternity", "family_inpatient"):
        del data["products"][name]
    plan, errors = parse_plan(data)
    assert errors == [] and plan is not None
    assert plan.schedule_products().keys() == {"inpatient"}


def test_rule8_med_types_do_not_overlap_within_a_member_type() -> None:
    data = _base()
    data["products"]["special_outpatient"]["med_types"] = ["14", "21"]
    assert "重叠" in _paths(data)["products.special_outpatient.med_types"]
    # family_inpatient serves family members only: "21" there is no overlap.
    assert _errors(_base()) == []


def test_rule8_med_types_are_code_strings_and_first_upto_positive() -> None:
    data = _base()
    data["products"]["inpatient"]["med_types"] = "21"
    assert "列表" in _paths(data)["products.inpatient.med_types"]
    data = _base()
    data["products"]["inpatient"]["bands"][0]["upto"] = "0.00"
    assert "大于 0" in _paths(data)["products.inpatient.bands[0].upto"]


def test_every_error_is_collected_at_once() -> None:
    data = _base()
    data["contribution"] = "999.00"
    data["risk_reserve_rate"] = "0.5"
    data["products"]["critical_illness"]["mild"] = "9000.00"
    data["region"] = "43"
    assert set(_paths(data)) >= {
        "contribution",
        "risk_reserve_rate",
        "products.critical_illness.mild",
        "region",
    }


def test_effective_from_is_optional_and_within_the_year() -> None:
    data = _base()
    data["effective_from"] = "2026-07-01"
    plan, errors = parse_plan(data)
    assert errors == [] and plan is not None and plan.effective_from == date(2026, 7, 1)
    data["effective_from"] = "2027-01-01"
    assert "effective_from" in _paths(data)


def test_yaml_problems_are_errors_not_exceptions(tmp_path: Any) -> None:
    plan, errors = load_plan_text("code: [unclosed")
    assert plan is None and "YAML" in errors[0].message
    plan, errors = load_plan_text("code: A\ncode: B\n")
    assert plan is None and any("重复" in e.message for e in errors)
    plan, errors = load_plan_text("")
    assert plan is None and errors
    plan, errors = load_plan_file(tmp_path / "missing.yaml")
    assert plan is None and "不存在" in errors[0].message
    bad = tmp_path / "gbk.yaml"
    bad.write_bytes("名称: 湖南".encode("gbk"))
    plan, errors = load_plan_file(bad)
    assert plan is None and "UTF-8" in errors[0].message


def test_errors_render_with_their_key_path() -> None:
    data = _base()
    data["products"]["inpatient"]["bands"][2]["rate"] = "1.5"
    (error,) = _errors(data)
    assert str(error).startswith("products.inpatient.bands[2].rate：")


# ----- revisions -----


def test_plan_versions_select_by_admission_date(demo_plan: Plan) -> None:
    data = demo_plan.to_dict()
    data["code"] = "HUNAN-2026-R1"
    data["effective_from"] = "2026-07-01"
    revision, errors = parse_plan(data)
    assert errors == [] and revision is not None
    versions = PlanVersions([revision, demo_plan])
    assert versions.select(date(2026, 6, 30)) is demo_plan
    assert versions.select(date(2026, 7, 1)) is revision
    assert versions.select(date(2025, 12, 31)) is demo_plan
    assert versions.by_code("HUNAN-2026-R1") is revision
    with pytest.raises(ValueError):
        PlanVersions([demo_plan, demo_plan])


def test_control_characters_are_a_chinese_error_not_a_crash() -> None:
    plan, errors = load_plan_text("code: HUNAN\x002026\n")
    assert plan is None
    assert len(errors) == 1 and "控制字符" in errors[0].message
