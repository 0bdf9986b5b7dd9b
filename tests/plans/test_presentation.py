"""The readable form of a plan: percentages, yuan, the policy checks as arithmetic, key paths in
words, and the side-by-side comparison."""

from __future__ import annotations

from fractions import Fraction

from huzhu.plans.presentation import (
    compare,
    contribution_check_text,
    describe,
    path_label,
    percent,
    reserve_check_text,
    yuan,
)
from huzhu.rules.plan import ContributionCheck, load_plan_text
from tests.plans.conftest import PINGDINGSHAN, hunan_text, variant


def test_percent_and_yuan() -> None:
    assert percent(Fraction("0.5")) == "50%"
    assert percent(Fraction("0.125")) == "12.5%"
    assert percent(Fraction("0.0125")) == "1.25%"
    assert percent(Fraction(1)) == "100%"
    assert percent(Fraction(0)) == "0%"
    assert yuan(20000) == "200.00"
    assert yuan(Fraction(40001, 2)) == "200.005"  # 50% of 400.01 yuan: half a fen, shown exactly


def test_contribution_check_text_both_ways() -> None:
    ok = ContributionCheck(None, 12000, 40000, Fraction(20000), True)
    assert (
        contribution_check_text(ok)
        == "互助金 120.00 元 ≤ 城乡居民医保个人缴费标准 400.00 元 × 50% = 200.00 元 ✓"
    )
    too_high = ContributionCheck("family_inpatient", 20001, 40001, Fraction(40001, 2), False)
    assert contribution_check_text(too_high) == (
        "家庭成员住院互助项目互助金 200.01 元 > 城乡居民医保个人缴费标准 400.01 元 × 50% = "
        "200.005 元 ✗"
    )
    assert reserve_check_text(Fraction("0.05")) == ("风险储备金提取比例 5% 在 5%–10% 之间 ✓", True)
    assert reserve_check_text(Fraction("0.11")) == (
        "风险储备金提取比例 11% 不在 5%–10% 之间 ✗",
        False,
    )


def test_path_label() -> None:
    assert path_label("") == "（整个文件）"
    assert path_label("contribution") == "互助金"
    assert path_label("products.inpatient.bands[2].rate") == (
        "保障项目 · 住院互助保障 · 分段比例 第3段 · 比例"
    )
    assert path_label("products.special_outpatient.med_types[0]") == (
        "保障项目 · 门诊慢特病 · 医疗类别 第1项"
    )
    assert path_label("surplus") == "surplus"


def test_describe_scope_words_and_caps() -> None:
    text = variant(
        hunan_text(),
        {
            "products.special_outpatient.deductible": "200.00",
            "hardship.cap_multiplier": "1.2345",
            "flexible_extension_months": 6,
        },
    )
    plan, errors = load_plan_text(text)
    assert plan is not None, errors
    view = describe(plan)
    inpatient, outpatient, family = view.products
    assert inpatient.scope_text.startswith("按年度")
    assert outpatient.scope_text.startswith("按次")
    assert outpatient.band_mode_text.startswith("全额")
    assert [b.range_text for b in outpatient.bands] == ["全部金额"]
    # 80000.00 × 1.2345 = 98760.00; 20000.00 × 1.2345 = 24690.00
    assert inpatient.hardship_cap_text == "80000.00 元 × 1.2345 = 98760.00 元"
    assert family.hardship_cap_text == "20000.00 元 × 1.2345 = 24690.00 元"
    assert family.contribution_text == "60.00 元/人/年（单独缴纳）"
    assert view.age_text.endswith("后 6 个月")
    assert [r.label for r in view.references] == []  # variant() drops the citations


def test_describe_rounds_the_hardship_cap_half_up() -> None:
    plan, errors = load_plan_text(
        variant(
            hunan_text(),
            {"products.inpatient.annual_cap": "0.05", "hardship.cap_multiplier": "1.1"},
        )
    )
    assert plan is not None, errors
    # 5 fen × 1.1 = 5.5 fen → 6 fen (四舍五入)
    assert describe(plan).products[0].hardship_cap_text == "0.05 元 × 1.1 = 0.06 元"


def test_describe_other_plan_without_optional_products() -> None:
    text = variant(
        PINGDINGSHAN.read_text(encoding="utf-8"),
        {},
        drop=("products.maternity", "products.special_outpatient"),
    )
    plan, errors = load_plan_text(text)
    assert plan is not None, errors
    view = describe(plan)
    assert [p.key for p in view.products] == ["inpatient"]
    assert view.critical_illness_lines == []
    assert view.maternity_text is None
    assert len(view.contribution_checks) == 1


def test_compare_places_an_extra_band_among_the_bands() -> None:
    left, _ = load_plan_text(hunan_text())
    text = variant(hunan_text(), {"code": "HUNAN-2026-B"})
    right_data_text = text.replace(
        "    - upto: '10000.00'\n",
        "    - upto: '8000.00'\n      rate: '0.55'\n    - upto: '10000.00'\n",
        1,
    )
    right, errors = load_plan_text(right_data_text)
    assert left is not None and right is not None, errors
    rows = compare(left, right)
    paths = [row.path for row in rows]
    bands = [p for p in paths if p.startswith("products.inpatient.bands")]
    assert bands == [
        "products.inpatient.bands[0].upto",
        "products.inpatient.bands[0].rate",
        "products.inpatient.bands[1].upto",
        "products.inpatient.bands[1].rate",
        "products.inpatient.bands[2].upto",
        "products.inpatient.bands[2].rate",
        "products.inpatient.bands[3].rate",
    ]
    assert paths.index("products.inpatient.bands[3].rate") < paths.index(
        "products.inpatient.annual_cap"
    )
    differing = {row.path: (row.left, row.right) for row in rows if row.differs}
    assert differing == {
        "code": ("HUNAN-2026", "HUNAN-2026-B"),
        "products.inpatient.bands[1].upto": ("10000.00 元", "8000.00 元"),
        "products.inpatient.bands[1].rate": ("60%", "55%"),
        "products.inpatient.bands[2].upto": ("—", "10000.00 元"),
        "products.inpatient.bands[2].rate": ("70%", "60%"),
        "products.inpatient.bands[3].rate": ("—", "70%"),
    }
    assert all(not row.differs for row in compare(left, left))
