"""A plan in words and tables, for people (the readable view, the comparison).

Pure formatting of an engine ``Plan``: amounts in yuan with two decimals, rates as percentages,
the deductible's scope, the band mode and the hardship tilt spelled out in Chinese, and the policy
checks (湘政办发〔2025〕58号（五）、（八）) written as the arithmetic they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from huzhu.core.money import format_fen, format_rate, round_half_up
from huzhu.rules.plan import ContributionCheck, Plan, ScheduleProduct

PRODUCT_LABELS: dict[str, str] = {
    "inpatient": "住院互助保障",
    "special_outpatient": "门诊慢特病",
    "critical_illness": "重大疾病关爱",
    "maternity": "生育补助",
    "family_inpatient": "家庭成员住院互助",
}

# National medical-insurance 医疗类别 codes (reference/settlement-fields.md, 2304 med_type).
MED_TYPE_LABELS: dict[str, str] = {
    "11": "普通门诊",
    "14": "门诊慢特病",
    "21": "普通住院",
    "52": "生育住院",
}

KEY_LABELS: dict[str, str] = {
    "code": "计划编码",
    "name": "计划名称",
    "region": "统筹地区",
    "year": "保障年度",
    "effective_from": "生效日期",
    "resident_individual_contribution": "城乡居民医保个人缴费标准",
    "contribution": "互助金",
    "risk_reserve_rate": "风险储备金提取比例",
    "operating_cost_cap_rate": "运营成本上限比例",
    "claim_deadline": "申请截止日期",
    "min_age": "最低参保年龄",
    "flexible_extension_months": "弹性延长月数",
    "hardship": "困难职工倾斜",
    "contribution_waiver": "个人缴费减免比例",
    "rate_bonus": "补助比例上浮",
    "cap_multiplier": "封顶线倍数",
    "products": "保障项目",
    **PRODUCT_LABELS,
    "med_types": "医疗类别",
    "deductible": "起付线",
    "deductible_scope": "起付线计算范围",
    "threshold": "门槛",
    "band_mode": "分段方式",
    "bands": "分段比例",
    "upto": "分段上限",
    "rate": "比例",
    "annual_cap": "年度封顶线",
    "severe": "重疾补助",
    "mild": "轻症补助",
    "per_child": "每名新生儿补助",
}

_MONEY_KEYS = frozenset(
    {
        "resident_individual_contribution",
        "contribution",
        "deductible",
        "threshold",
        "upto",
        "annual_cap",
        "severe",
        "mild",
        "per_child",
    }
)
_RATE_KEYS = frozenset(
    {"risk_reserve_rate", "operating_cost_cap_rate", "contribution_waiver", "rate_bonus", "rate"}
)
_CHOICE_WORDS: dict[str, dict[str, str]] = {
    "deductible_scope": {"year": "按年度（year）", "admission": "按次（admission）"},
    "band_mode": {"progressive": "超额累进（progressive）", "whole": "全额（whole）"},
}

RESERVE_LOW = Fraction(5, 100)
RESERVE_HIGH = Fraction(10, 100)
CITE_CONTRIBUTION = "湘政办发〔2025〕58号（五）"
CITE_RESERVE = "湘政办发〔2025〕58号（八）"


def percent(rate: Fraction) -> str:
    """0.5 → "50%", 0.125 → "12.5%", 0.0125 → "1.25%" (exact: rates have ≤ 4 decimals)."""
    text = format_rate(rate * 100)
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac}%" if frac else f"{whole}%"


def yuan(fen: int | Fraction) -> str:
    """Yuan with two decimals; an exact half fen (50% of an odd amount) keeps its third digit."""
    if isinstance(fen, int) or fen.denominator == 1:
        return format_fen(int(fen))
    mills = fen * 10
    if mills.denominator != 1:
        raise ValueError(f"金额 {fen} 分不是整厘")
    whole = int(mills)
    return f"{whole // 1000}.{whole % 1000:03d}"


def multiplier(rate: Fraction) -> str:
    """1.20 → "1.2", 1 → "1"."""
    text = format_rate(rate).rstrip("0")
    return text.rstrip(".")


def contribution_check_text(check: ContributionCheck) -> str:
    """「互助金 120.00 元 ≤ 城乡居民医保个人缴费标准 400.00 元 × 50% = 200.00 元 ✓」"""
    label = "互助金"
    if check.product is not None:
        label = f"{PRODUCT_LABELS.get(check.product, check.product)}项目互助金"
    sign, mark = ("≤", "✓") if check.ok else (">", "✗")
    return (
        f"{label} {format_fen(check.contribution)} 元 {sign} 城乡居民医保个人缴费标准 "
        f"{format_fen(check.resident_individual_contribution)} 元 × 50% = "
        f"{yuan(check.bound)} 元 {mark}"
    )


def reserve_check_text(rate: Fraction) -> tuple[str, bool]:
    ok = RESERVE_LOW <= rate <= RESERVE_HIGH
    relation = "在" if ok else "不在"
    mark = "✓" if ok else "✗"
    return (
        f"风险储备金提取比例 {percent(rate)} {relation} {percent(RESERVE_LOW)}–"
        f"{percent(RESERVE_HIGH)} 之间 {mark}",
        ok,
    )


@dataclass(frozen=True)
class BandRow:
    number: int
    lower: int
    upper: int | None
    rate: Fraction
    hardship_rate: Fraction

    @property
    def range_text(self) -> str:
        if self.upper is None:
            return f"{format_fen(self.lower)} 元以上" if self.lower else "全部金额"
        return f"{format_fen(self.lower)} – {format_fen(self.upper)} 元"

    @property
    def rate_text(self) -> str:
        return percent(self.rate)

    @property
    def hardship_rate_text(self) -> str:
        return percent(self.hardship_rate)


@dataclass(frozen=True)
class ProductView:
    key: str
    label: str
    med_types: list[str]
    deductible_text: str
    scope_text: str
    threshold_text: str
    band_mode_text: str
    bands: list[BandRow]
    cap_text: str
    hardship_cap_text: str
    contribution_text: str | None


def _med_types(codes: tuple[str, ...]) -> list[str]:
    return [
        f"{code} {MED_TYPE_LABELS[code]}" if code in MED_TYPE_LABELS else code for code in codes
    ]


def _product_view(plan: Plan, key: str, product: ScheduleProduct) -> ProductView:
    hardship = plan.hardship
    rows: list[BandRow] = []
    lower = 0
    for number, band in enumerate(product.bands, start=1):
        rows.append(
            BandRow(
                number=number,
                lower=lower,
                upper=band.upto,
                rate=band.rate,
                hardship_rate=min(Fraction(1), band.rate + hardship.rate_bonus),
            )
        )
        if band.upto is not None:
            lower = band.upto
    if product.deductible == 0:
        deductible_text = "无起付线"
    else:
        deductible_text = f"{format_fen(product.deductible)} 元（从补助基数中扣除）"
    if product.deductible == 0:
        scope_text = ""
    elif product.deductible_scope == "year":
        scope_text = "按年度：每个保障年度只扣除一次，同一年度内多次就医的补助基数累计计算"
    else:
        scope_text = "按次：每次就医（每条结算记录）分别扣除起付线"
    if product.threshold == 0:
        threshold_text = "无门槛"
    else:
        threshold_text = (
            f"单次补助基数低于 {format_fen(product.threshold)} 元的不予补助，也不计入累计；"
            "达到门槛的，门槛金额不扣除"
        )
    if product.band_mode == "progressive":
        band_mode_text = "超额累进：扣除起付线后的金额按所在各段分别乘以本段比例后相加"
    else:
        band_mode_text = "全额：扣除起付线后的全部金额按其所在分段的比例计算"
    hardship_cap = round_half_up(product.annual_cap * hardship.cap_multiplier)
    contribution_text = (
        f"{format_fen(product.contribution)} 元/人/年（单独缴纳）"
        if product.contribution is not None
        else None
    )
    return ProductView(
        key=key,
        label=PRODUCT_LABELS.get(key, key),
        med_types=_med_types(product.med_types),
        deductible_text=deductible_text,
        scope_text=scope_text,
        threshold_text=threshold_text,
        band_mode_text=band_mode_text,
        bands=rows,
        cap_text=f"{format_fen(product.annual_cap)} 元",
        hardship_cap_text=(
            f"{format_fen(product.annual_cap)} 元 × {multiplier(hardship.cap_multiplier)} = "
            f"{format_fen(hardship_cap)} 元"
        ),
        contribution_text=contribution_text,
    )


@dataclass(frozen=True)
class CheckLine:
    text: str
    ok: bool
    citation: str


@dataclass(frozen=True)
class Reference:
    path: str
    label: str
    text: str


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    coverage_text: str
    start_text: str
    contribution_text: str
    contribution_checks: list[CheckLine]
    reserve_check: CheckLine
    operating_cost_text: str
    claim_deadline_text: str
    age_text: str
    hardship_lines: list[str]
    products: list[ProductView]
    critical_illness_lines: list[str]
    maternity_text: str | None
    references: list[Reference]


def path_label(path: str) -> str:
    """A key path in words: ``products.inpatient.bands[1].rate`` →
    「保障项目 · 住院互助保障 · 分段比例 第2段 · 比例」."""
    if not path:
        return "（整个文件）"
    parts: list[str] = []
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if index:
            suffix = "段" if parts and parts[-1] == KEY_LABELS["bands"] else "项"
            parts[-1] = f"{parts[-1]} 第{int(index) + 1}{suffix}" if parts else f"第{index}项"
        else:
            parts.append(KEY_LABELS.get(key, key))
    return " · ".join(parts)


def describe(plan: Plan) -> PlanView:
    year = plan.year
    contribution_checks = [
        CheckLine(contribution_check_text(check), check.ok, CITE_CONTRIBUTION)
        for check in plan.contribution_checks()
    ]
    reserve_text, reserve_ok = reserve_check_text(plan.risk_reserve_rate)
    hardship = plan.hardship
    hardship_lines = [
        f"个人缴费部分减免 {percent(hardship.contribution_waiver)}（减免部分由工会承担）",
        f"各段补助比例上浮 {percent(hardship.rate_bonus).removesuffix('%')} 个百分点"
        "（上浮后最高 100%）",
        f"年度封顶线 × {multiplier(hardship.cap_multiplier)}（四舍五入到分）",
    ]
    age_text = f"参保时年满 {plan.min_age} 周岁，且未超过法定退休年龄（2024 年渐进式延迟退休办法）"
    if plan.flexible_extension_months:
        age_text += f"后 {plan.flexible_extension_months} 个月"
    critical_lines: list[str] = []
    if plan.critical_illness is not None:
        critical = plan.critical_illness
        critical_lines = [
            f"重疾（28 种）首次确诊：{format_fen(critical.severe)} 元",
            f"轻症（3 种）首次确诊：{format_fen(critical.mild)} 元"
            f"（≤ 重疾金额 × 30% = {yuan(Fraction(critical.severe * 3, 10))} 元 ✓）",
            f"每人每个保障年度合计不超过 {format_fen(critical.severe)} 元",
        ]
    maternity_text = (
        f"每名新生儿 {format_fen(plan.maternity.per_child)} 元"
        if plan.maternity is not None
        else None
    )
    start = plan.effective_from
    return PlanView(
        plan=plan,
        coverage_text=f"{year}-01-01 至 {year}-12-31（自然年度）",
        start_text=(
            f"{start.isoformat()} 起入院的记录按本版本计算"
            if start is not None
            else f"全年（{year}-01-01 起）"
        ),
        contribution_text=f"{format_fen(plan.contribution)} 元/人/年",
        contribution_checks=contribution_checks,
        reserve_check=CheckLine(reserve_text, reserve_ok, CITE_RESERVE),
        operating_cost_text=(
            f"运营成本不超过当年互助金收入的 {percent(plan.operating_cost_cap_rate)}"
        ),
        claim_deadline_text=(
            f"{plan.claim_deadline.isoformat()}（保障年度内发生的费用，最迟于该日提出申请）"
        ),
        age_text=age_text,
        hardship_lines=hardship_lines,
        products=[_product_view(plan, key, p) for key, p in plan.schedule_products().items()],
        critical_illness_lines=critical_lines,
        maternity_text=maternity_text,
        references=[
            Reference(path, path_label(path) if path else "整个方案", text)
            for path, text in plan.references
        ],
    )


# --- comparison -------------------------------------------------------------------------------


def _display_value(key: str, value: Any) -> str:
    if isinstance(value, list):
        return "、".join(_med_types(tuple(str(v) for v in value)))
    text = str(value)
    if key in _MONEY_KEYS:
        return f"{text} 元"
    if key in _RATE_KEYS:
        return percent(Fraction(text))
    if key == "cap_multiplier":
        return f"× {multiplier(Fraction(text))}"
    if key in _CHOICE_WORDS:
        return _CHOICE_WORDS[key].get(text, text)
    return text


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str, Any]]:
    """Every leaf parameter of ``Plan.to_dict()`` as (key path, last key, raw text)."""
    rows: list[tuple[str, str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) or (
                isinstance(value, list) and value and isinstance(value[0], dict)
            ):
                rows.extend(flatten(value, path))
            else:
                rows.append((path, key, value))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            rows.extend(flatten(item, f"{prefix}[{index}]"))
    return rows


@dataclass(frozen=True)
class CompareRow:
    path: str
    label: str
    left: str
    right: str

    @property
    def differs(self) -> bool:
        return self.left != self.right


def _merge_order(left: list[str], right: list[str]) -> list[str]:
    """Left's order, with each right-only path placed after the path that precedes it on the
    right (so an extra band appears among the bands, not at the end)."""
    order = list(left)
    seen = set(left)
    for index, path in enumerate(right):
        if path in seen:
            continue
        position = 0
        for earlier in reversed(right[:index]):
            if earlier in seen:
                position = order.index(earlier) + 1
                break
        order.insert(position, path)
        seen.add(path)
    return order


def compare(left: Plan, right: Plan) -> list[CompareRow]:
    """Every parameter of two plans side by side (a key missing on one side shows "—")."""
    left_rows = {path: (key, value) for path, key, value in flatten(left.to_dict(references=False))}
    right_rows = {
        path: (key, value) for path, key, value in flatten(right.to_dict(references=False))
    }
    order = _merge_order(list(left_rows), list(right_rows))
    rows: list[CompareRow] = []
    for path in order:
        left_text = _display_value(*left_rows[path]) if path in left_rows else "—"
        right_text = _display_value(*right_rows[path]) if path in right_rows else "—"
        rows.append(CompareRow(path, path_label(path), left_text, right_text))
    return rows
