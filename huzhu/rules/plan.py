"""Plan files: schema, exact parsing, validation, canonical export (RULES.md §1).

A plan is data. It is read with PyYAML's ``BaseLoader`` so that every scalar stays text: amounts
and rates are parsed exactly from their digits (``"0.1"`` is one tenth, never a float), dates and
codes are never guessed, and an unquoted ``21`` in ``med_types`` is the code ``"21"``.

Validation collects every error of a file at once; each names the key path
(``products.inpatient.bands[2].rate``) and says in Chinese what is wrong and, where a policy
article sets the rule, which one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from huzhu.core.money import format_fen, format_rate

__all__ = [
    "SCHEDULE_PRODUCTS",
    "Band",
    "ContributionCheck",
    "CriticalIllness",
    "Hardship",
    "Maternity",
    "MemberType",
    "Plan",
    "PlanError",
    "PlanVersions",
    "ScheduleProduct",
    "dump_plan_yaml",
    "load_plan_file",
    "load_plan_text",
    "parse_plan",
]

DeductibleScope = Literal["year", "admission"]
BandMode = Literal["progressive", "whole"]
MemberType = Literal["self", "family"]

#: Products priced by a band schedule (RULES.md §4), in the order of the plan file.
SCHEDULE_PRODUCTS: tuple[str, ...] = ("inpatient", "special_outpatient", "family_inpatient")
#: Which products each member type can use (RULES.md §1 rule 8, INTERFACES.md §2).
PRODUCTS_BY_MEMBER_TYPE: dict[str, tuple[str, ...]] = {
    "self": ("inpatient", "special_outpatient"),
    "family": ("family_inpatient",),
}

# Citations of the rules (湘政办发〔2025〕58号 is the Hunan measures, seeds/003).
_CITE_CONTRIBUTION = "湘政办发〔2025〕58号（五）"
_CITE_RESERVE = "湘政办发〔2025〕58号（八）"

_LABELS: dict[str, str] = {
    "code": "计划编码",
    "name": "计划名称",
    "region": "统筹地区行政区划代码",
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
    "contribution_waiver": "互助金减免比例",
    "rate_bonus": "补助比例上浮",
    "cap_multiplier": "封顶线倍数",
    "products": "保障项目",
    "inpatient": "住院互助保障",
    "special_outpatient": "门诊慢特病",
    "critical_illness": "重大疾病关爱",
    "maternity": "生育补助",
    "family_inpatient": "家庭成员住院互助",
    "med_types": "医疗类别",
    "deductible": "起付线",
    "deductible_scope": "起付线计算范围",
    "threshold": "门槛",
    "band_mode": "分段方式",
    "bands": "分段比例",
    "upto": "分段上限",
    "rate": "比例",
    "annual_cap": "年度封顶线",
    "severe": "重疾补助金额",
    "mild": "轻症补助金额",
    "per_child": "每名新生儿补助金额",
    "reference": "依据",
}

_TOP_REQUIRED = (
    "code",
    "name",
    "region",
    "year",
    "resident_individual_contribution",
    "contribution",
    "risk_reserve_rate",
    "operating_cost_cap_rate",
    "claim_deadline",
    "min_age",
    "flexible_extension_months",
    "hardship",
    "products",
)
_SCHEDULE_KEYS = (
    "med_types",
    "deductible",
    "deductible_scope",
    "threshold",
    "band_mode",
    "bands",
    "annual_cap",
)

_DECIMAL_RE = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?")
_INT_RE = re.compile(r"[0-9]+")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REGION_RE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True, slots=True)
class PlanError:
    """One validation error: the key path in the file and a Chinese message."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '（整个文件）'}：{self.message}"


@dataclass(frozen=True, slots=True)
class Band:
    """One band of a schedule: ``rate`` applies up to ``upto`` fen (``None``: no upper bound)."""

    upto: int | None
    rate: Fraction


@dataclass(frozen=True, slots=True)
class ScheduleProduct:
    """A product priced by bands over the base (inpatient, special_outpatient, family_inpatient)."""

    name: str
    med_types: tuple[str, ...]
    deductible: int
    deductible_scope: DeductibleScope
    threshold: int
    band_mode: BandMode
    bands: tuple[Band, ...]
    annual_cap: int
    #: The product's own contribution per person and year (family_inpatient), else None.
    contribution: int | None = None


@dataclass(frozen=True, slots=True)
class Hardship:
    """困难职工 tilt (湘政办发〔2025〕58号（三）: reductions in contribution, tilt in benefit)."""

    contribution_waiver: Fraction
    rate_bonus: Fraction
    cap_multiplier: Fraction


@dataclass(frozen=True, slots=True)
class CriticalIllness:
    severe: int
    mild: int


@dataclass(frozen=True, slots=True)
class Maternity:
    per_child: int


@dataclass(frozen=True, slots=True)
class ContributionCheck:
    """RULES.md §1 rule 1 for one contribution, for display: the 50% bound and whether it holds."""

    product: str | None  # None: the plan's own contribution
    contribution: int
    resident_individual_contribution: int
    #: 50% of the resident contribution in fen, exact (may end in half a fen).
    bound: Fraction
    ok: bool


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Plan:
    """One validated plan version: one pooling area, one coverage year (RULES.md §1).

    Amounts are integer fen, rates exact ``Fraction``. ``references`` keeps the ``reference:``
    citations of the file by key path, so that an export carries them back out.
    """

    code: str
    name: str
    region: str
    year: int
    resident_individual_contribution: int
    contribution: int
    risk_reserve_rate: Fraction
    operating_cost_cap_rate: Fraction
    claim_deadline: date
    min_age: int
    flexible_extension_months: int
    hardship: Hardship
    inpatient: ScheduleProduct
    special_outpatient: ScheduleProduct | None = None
    critical_illness: CriticalIllness | None = None
    maternity: Maternity | None = None
    family_inpatient: ScheduleProduct | None = None
    effective_from: date | None = None
    references: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    # ----- lookups used by the engine -----

    @property
    def start_date(self) -> date:
        """The first admission date this version prices (its ``effective_from``, else Jan 1)."""
        return self.effective_from or date(self.year, 1, 1)

    def schedule_products(self) -> dict[str, ScheduleProduct]:
        """The band-priced products present in this plan, by name, in file order."""
        found = {
            "inpatient": self.inpatient,
            "special_outpatient": self.special_outpatient,
            "family_inpatient": self.family_inpatient,
        }
        return {name: product for name, product in found.items() if product is not None}

    def product(self, name: str) -> ScheduleProduct:
        product = self.schedule_products().get(name)
        if product is None:
            raise KeyError(f"计划 {self.code} 没有保障项目 {name}")
        return product

    def route(self, member_type: str, med_type: str) -> ScheduleProduct | None:
        """The product of ``member_type`` whose ``med_types`` list ``med_type`` (rule 8: ≤ 1)."""
        products = self.schedule_products()
        for name in PRODUCTS_BY_MEMBER_TYPE.get(member_type, ()):
            product = products.get(name)
            if product is not None and med_type in product.med_types:
                return product
        return None

    def contribution_checks(self) -> list[ContributionCheck]:
        """Rule 1 (湘政办发〔2025〕58号（五）) for the plan and each product with a contribution."""
        resident = self.resident_individual_contribution
        checks = [_contribution_check(None, self.contribution, resident)]
        for name, product in self.schedule_products().items():
            if product.contribution is not None:
                checks.append(_contribution_check(name, product.contribution, resident))
        return checks

    # ----- storage and export -----

    def to_dict(self, *, references: bool = True) -> dict[str, Any]:
        """Canonical plain-data form (strings for amounts, rates and dates; ints for counts).

        ``parse_plan(plan.to_dict())`` gives back an equal plan; with ``references=True`` the
        citations of the source file are attached where they were.
        """
        data: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "region": self.region,
            "year": self.year,
        }
        if self.effective_from is not None:
            data["effective_from"] = self.effective_from.isoformat()
        data.update(
            {
                "resident_individual_contribution": format_fen(
                    self.resident_individual_contribution
                ),
                "contribution": format_fen(self.contribution),
                "risk_reserve_rate": format_rate(self.risk_reserve_rate),
                "operating_cost_cap_rate": format_rate(self.operating_cost_cap_rate),
                "claim_deadline": self.claim_deadline.isoformat(),
                "min_age": self.min_age,
                "flexible_extension_months": self.flexible_extension_months,
                "hardship": {
                    "contribution_waiver": format_rate(self.hardship.contribution_waiver),
                    "rate_bonus": format_rate(self.hardship.rate_bonus),
                    "cap_multiplier": format_rate(self.hardship.cap_multiplier),
                },
            }
        )
        products: dict[str, Any] = {"inpatient": _schedule_to_dict(self.inpatient)}
        if self.special_outpatient is not None:
            products["special_outpatient"] = _schedule_to_dict(self.special_outpatient)
        if self.critical_illness is not None:
            products["critical_illness"] = {
                "severe": format_fen(self.critical_illness.severe),
                "mild": format_fen(self.critical_illness.mild),
            }
        if self.maternity is not None:
            products["maternity"] = {"per_child": format_fen(self.maternity.per_child)}
        if self.family_inpatient is not None:
            products["family_inpatient"] = _schedule_to_dict(self.family_inpatient)
        data["products"] = products
        if references:
            for path, text in self.references:
                _attach_reference(data, path, text)
        return data

    def parameters_json(self) -> str:
        """Canonical JSON of every parameter (all keys, without the ``reference`` citations)."""
        return json.dumps(
            self.to_dict(references=False),
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        )

    def parameters_hash(self) -> str:
        """SHA-256 (hex) of ``parameters_json``: equal for two files that price alike.

        Citations are left out on purpose: correcting a ``reference:`` text does not make a new
        set of parameters, every other key (code and name included) does.
        """
        return hashlib.sha256(self.parameters_json().encode("utf-8")).hexdigest()

    def to_yaml(self) -> str:
        return dump_plan_yaml(self)


def _contribution_check(product: str | None, contribution: int, resident: int) -> ContributionCheck:
    bound = Fraction(resident, 2)
    return ContributionCheck(
        product=product,
        contribution=contribution,
        resident_individual_contribution=resident,
        bound=bound,
        ok=contribution <= bound,
    )


def _schedule_to_dict(product: ScheduleProduct) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if product.contribution is not None:
        data["contribution"] = format_fen(product.contribution)
    data.update(
        {
            "med_types": list(product.med_types),
            "deductible": format_fen(product.deductible),
            "deductible_scope": product.deductible_scope,
            "threshold": format_fen(product.threshold),
            "band_mode": product.band_mode,
            "bands": [
                (
                    {"upto": format_fen(band.upto), "rate": format_rate(band.rate)}
                    if band.upto is not None
                    else {"rate": format_rate(band.rate)}
                )
                for band in product.bands
            ],
            "annual_cap": format_fen(product.annual_cap),
        }
    )
    return data


_PATH_TOKEN_RE = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _path_tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    for key, index in _PATH_TOKEN_RE.findall(path):
        tokens.append(int(index) if index else key)
    return tokens


def _attach_reference(data: dict[str, Any], path: str, text: str) -> None:
    """Put a citation back where it came from: ``reference:`` of a mapping, or a scalar wrapper."""
    tokens = _path_tokens(path)
    parent: Any = None
    last: str | int | None = None
    node: Any = data
    for token in tokens:
        parent, last = node, token
        try:
            node = node[token]
        except (KeyError, IndexError, TypeError):
            return  # the key no longer exists (it cannot, for a parsed plan); keep data as is
    if isinstance(node, dict) and "value" not in node:
        # The citation first, where a reader looks for it.
        items = list(node.items())
        node.clear()
        node["reference"] = text
        node.update(items)
    elif parent is not None and last is not None:
        parent[last] = {"value": node, "reference": text}


class _PlanDumper(yaml.SafeDumper):
    """Block style for mappings and lists, flow style for band rows (as in RULES.md §1)."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    flow = set(data) <= {"upto", "rate"}
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(isinstance(item, str) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_PlanDumper.add_representer(dict, _represent_dict)
_PlanDumper.add_representer(list, _represent_list)


def dump_plan_yaml(plan: Plan) -> str:
    """The canonical YAML text of a plan (keys in RULES.md order, citations kept).

    Every string that YAML could read as something else (amounts, dates, the region code) is
    quoted by the dumper, so any YAML reader gets the same text back.
    """
    return yaml.dump(
        plan.to_dict(),
        Dumper=_PlanDumper,
        allow_unicode=True,
        sort_keys=False,
        width=100,
    )


# ---------------------------------------------------------------------------------------------
# Reading


class _PlanLoader(yaml.BaseLoader):
    """``BaseLoader`` (every scalar is text) that also refuses a key written twice in a mapping."""

    duplicate_keys: list[tuple[str, int]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if isinstance(key, str):
                if key in seen:
                    self.duplicate_keys.append((key, key_node.start_mark.line + 1))
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_plan_text(text: str) -> tuple[Plan | None, list[PlanError]]:
    """Parse and validate plan YAML text; the plan is returned only when there is no error."""
    try:
        loader = _PlanLoader(text)  # the reader refuses control characters right here
    except yaml.reader.ReaderError as exc:
        message = f"YAML 格式错误：第 {exc.position + 1} 个字符不允许出现（控制字符）"
        return None, [PlanError("", message)]
    loader.duplicate_keys = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [PlanError("", f"YAML 格式错误{where}：{problem}")]
    finally:
        loader.dispose()
    errors = [
        PlanError("", f"键“{key}”重复出现（第 {line} 行）") for key, line in loader.duplicate_keys
    ]
    plan, more = parse_plan(data)
    errors.extend(more)
    return (plan if not errors else None), errors


def load_plan_file(path: str | Path) -> tuple[Plan | None, list[PlanError]]:
    """Read and validate a plan file (UTF-8, a BOM tolerated). Used by ``huzhu plan validate``,
    ``huzhu plan import`` and ``huzhu adjudicate``."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None, [PlanError("", f"文件 {path} 不存在")]
    except OSError as exc:
        return None, [PlanError("", f"无法读取文件 {path}：{exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [PlanError("", "文件不是 UTF-8 编码")]
    return load_plan_text(text)


def parse_plan(data: object) -> tuple[Plan | None, list[PlanError]]:
    """Validate plain data (as read by ``BaseLoader``, or ``Plan.to_dict()``) into a ``Plan``.

    Every rule of RULES.md §1 is checked and every error collected; the plan is ``None`` when
    there is at least one.
    """
    reader = _Reader()
    plan = reader.plan(data)
    if reader.errors:
        return None, reader.errors
    return plan, []


def _label(path: str) -> str:
    key = _path_tokens(path)[-1] if path else ""
    return _LABELS.get(key, "") if isinstance(key, str) else ""


def _yuan(fen: int | Fraction) -> str:
    """Exact yuan text of an amount that may end in half a fen (for the 50% bound)."""
    if isinstance(fen, int) or fen.denominator == 1:
        return format_fen(int(fen))
    tenths = fen * 10  # fen here are halves at most: print three decimals
    whole = int(tenths)
    return f"{whole // 1000}.{whole % 1000:03d}"


class _Reader:
    """Walks the YAML tree, collecting errors and ``reference`` citations by key path."""

    def __init__(self) -> None:
        self.errors: list[PlanError] = []
        self.references: list[tuple[str, str]] = []

    def error(self, path: str, message: str) -> None:
        label = _label(path)
        prefix = f"{label}：" if label and not message.startswith(label) else ""
        self.errors.append(PlanError(path, prefix + message))

    # ----- structure -----

    def mapping(
        self,
        node: object,
        path: str,
        required: Sequence[str],
        optional: Sequence[str] = (),
    ) -> dict[str, object] | None:
        if not isinstance(node, dict):
            self.error(path, "应为键值映射（如 key: value）")
            return None
        result: dict[str, object] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                self.error(path, f"键 {key!r} 不是文本")
                continue
            if key == "reference":
                self.reference(value, path)
                continue
            if key not in required and key not in optional:
                self.error(_join(path, key), f"未知的键“{key}”")
                continue
            result[key] = value
        for key in required:
            if key not in result:
                self.error(_join(path, key), f"缺少必填的键“{key}”")
        return result

    def reference(self, value: object, path: str) -> None:
        if isinstance(value, str) and value.strip():
            self.references.append((path, value))
        else:
            self.error(_join(path, "reference"), "依据（reference）应为非空文本")

    def unwrap(self, node: object, path: str) -> object:
        """``{value: X, reference: "…"}`` stands for X (RULES.md §1); the citation is kept."""
        if isinstance(node, dict) and "value" in node and set(node) <= {"value", "reference"}:
            if "reference" in node:
                self.reference(node["reference"], path)
            return node["value"]
        return node

    def scalar(self, node: object, path: str) -> str | None:
        value = self.unwrap(node, path)
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # plain data from Plan.to_dict (year, min_age…)
        self.error(path, "应为单个值")
        return None

    # ----- typed scalars -----

    def text(self, node: object, path: str) -> str | None:
        value = self.scalar(node, path)
        if value is None:
            return None
        if not value:
            self.error(path, "不能为空")
            return None
        return value

    def decimal(self, node: object, path: str) -> tuple[Fraction, int, str] | None:
        """A decimal number, its count of decimals and its text; a sign is accepted here so that
        a range rule can name a negative value for what it is."""
        value = self.scalar(node, path)
        if value is None:
            return None
        match = _DECIMAL_RE.fullmatch(value)
        if match is None:
            self.error(path, f"“{value}”不是数字")
            return None
        return Fraction(value), len(match.group(3) or ""), value

    def amount(self, node: object, path: str) -> int | None:
        """RULES.md §1 rule 6: an amount is ≥ 0 with at most two decimals."""
        parsed = self.decimal(node, path)
        if parsed is None:
            return None
        number, decimals, _text = parsed
        if number < 0:
            self.error(path, "金额不能为负数")
            return None
        if decimals > 2:
            self.error(path, "金额最多两位小数")
            return None
        return int(number * 100)

    def rate(
        self,
        node: object,
        path: str,
        low: Fraction = Fraction(0),
        high: Fraction | None = Fraction(1),
        why: str = "",
    ) -> Fraction | None:
        """RULES.md §1 rule 3: at most four decimals, inside [low, high]."""
        parsed = self.decimal(node, path)
        if parsed is None:
            return None
        number, decimals, text = parsed
        ok = True
        if decimals > 4:
            self.error(path, "比例最多四位小数")
            ok = False
        if number < low or (high is not None and number > high):
            if high is None:
                bound = f"不能小于 {format_rate(low)}"
            else:
                bound = f"应在 {format_rate(low)} 到 {format_rate(high)} 之间"
            self.error(path, f"{text} {bound}{why}")
            ok = False
        return number if ok else None

    def integer(self, node: object, path: str) -> int | None:
        value = self.scalar(node, path)
        if value is None:
            return None
        if _INT_RE.fullmatch(value) is None:
            self.error(path, f"“{value}”应为非负整数")
            return None
        return int(value)

    def date_(self, node: object, path: str) -> date | None:
        value = self.scalar(node, path)
        if value is None:
            return None
        if _DATE_RE.fullmatch(value) is None:
            self.error(path, f"“{value}”应为 YYYY-MM-DD 格式的日期")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.error(path, f"日期“{value}”不存在")
            return None

    # ----- the plan -----

    def plan(self, data: object) -> Plan | None:
        top = self.mapping(data, "", _TOP_REQUIRED, ("effective_from",))
        if top is None:
            return None
        code = self.text(top["code"], "code") if "code" in top else None
        if code is not None and any(ch.isspace() for ch in code):
            self.error("code", "计划编码不能包含空白字符")
        name = self.text(top["name"], "name") if "name" in top else None
        region = self.scalar(top["region"], "region") if "region" in top else None
        if region is not None and _REGION_RE.fullmatch(region) is None:
            self.error("region", f"“{region}”应为 6 位 GB/T 2260 行政区划代码")
            region = None
        year: int | None = None
        if "year" in top:
            year_text = self.scalar(top["year"], "year")
            if year_text is not None:
                if re.fullmatch(r"[0-9]{4}", year_text) and year_text != "0000":
                    year = int(year_text)
                else:
                    self.error("year", f"“{year_text}”应为四位年份")
        effective_from = None
        if "effective_from" in top:
            raw = self.unwrap(top["effective_from"], "effective_from")
            if raw != "":
                effective_from = self.date_(raw, "effective_from")
                if effective_from is not None and year is not None and effective_from.year != year:
                    self.error("effective_from", f"生效日期应在保障年度 {year} 年内")
        resident = self._amount_key(top, "resident_individual_contribution")
        contribution = self._amount_key(top, "contribution")
        if resident is not None and contribution is not None and 2 * contribution > resident:
            self.error(
                "contribution",
                f"互助金 {format_fen(contribution)} 元超过城乡居民医保个人缴费标准 "
                f"{format_fen(resident)} 元的 50%（{_yuan(Fraction(resident, 2))} 元）"
                f"（{_CITE_CONTRIBUTION}）",
            )
        risk_reserve_rate = None
        if "risk_reserve_rate" in top:
            risk_reserve_rate = self.rate(
                top["risk_reserve_rate"],
                "risk_reserve_rate",
                Fraction(5, 100),
                Fraction(10, 100),
                f"（{_CITE_RESERVE}）",
            )
        operating_cost_cap_rate = (
            self.rate(top["operating_cost_cap_rate"], "operating_cost_cap_rate")
            if "operating_cost_cap_rate" in top
            else None
        )
        claim_deadline = (
            self.date_(top["claim_deadline"], "claim_deadline") if "claim_deadline" in top else None
        )
        if claim_deadline is not None and year is not None and claim_deadline <= date(year, 12, 31):
            self.error("claim_deadline", f"申请截止日期应晚于保障年度末（{year}-12-31）")
        min_age = self.integer(top["min_age"], "min_age") if "min_age" in top else None
        extension = (
            self.integer(top["flexible_extension_months"], "flexible_extension_months")
            if "flexible_extension_months" in top
            else None
        )
        hardship = self.hardship(top["hardship"]) if "hardship" in top else None
        products = self.products(top["products"], resident) if "products" in top else None
        if (
            self.errors
            or code is None
            or name is None
            or region is None
            or year is None
            or resident is None
            or contribution is None
            or risk_reserve_rate is None
            or operating_cost_cap_rate is None
            or claim_deadline is None
            or min_age is None
            or extension is None
            or hardship is None
            or products is None
        ):
            return None
        inpatient = products.get("inpatient")
        if not isinstance(inpatient, ScheduleProduct):
            return None
        return Plan(
            code=code,
            name=name,
            region=region,
            year=year,
            resident_individual_contribution=resident,
            contribution=contribution,
            risk_reserve_rate=risk_reserve_rate,
            operating_cost_cap_rate=operating_cost_cap_rate,
            claim_deadline=claim_deadline,
            min_age=min_age,
            flexible_extension_months=extension,
            hardship=hardship,
            inpatient=inpatient,
            special_outpatient=_as_schedule(products.get("special_outpatient")),
            critical_illness=_as_type(products.get("critical_illness"), CriticalIllness),
            maternity=_as_type(products.get("maternity"), Maternity),
            family_inpatient=_as_schedule(products.get("family_inpatient")),
            effective_from=effective_from,
            references=tuple(self.references),
        )

    def _amount_key(self, mapping: Mapping[str, object], key: str, prefix: str = "") -> int | None:
        if key not in mapping:
            return None
        return self.amount(mapping[key], _join(prefix, key))

    def hardship(self, node: object) -> Hardship | None:
        keys = ("contribution_waiver", "rate_bonus", "cap_multiplier")
        mapping = self.mapping(node, "hardship", keys)
        if mapping is None:
            return None
        waiver = (
            self.rate(mapping["contribution_waiver"], "hardship.contribution_waiver")
            if "contribution_waiver" in mapping
            else None
        )
        bonus = (
            self.rate(mapping["rate_bonus"], "hardship.rate_bonus")
            if "rate_bonus" in mapping
            else None
        )
        multiplier = (
            self.rate(mapping["cap_multiplier"], "hardship.cap_multiplier", Fraction(1), None)
            if "cap_multiplier" in mapping
            else None
        )
        if waiver is None or bonus is None or multiplier is None:
            return None
        return Hardship(waiver, bonus, multiplier)

    def products(self, node: object, resident: int | None) -> dict[str, object] | None:
        mapping = self.mapping(
            node,
            "products",
            ("inpatient",),
            ("special_outpatient", "critical_illness", "maternity", "family_inpatient"),
        )
        if mapping is None:
            return None
        result: dict[str, object] = {}
        for name in SCHEDULE_PRODUCTS:
            if name in mapping:
                product = self.schedule(mapping[name], name, resident)
                if product is not None:
                    result[name] = product
        if "critical_illness" in mapping:
            critical = self.critical_illness(mapping["critical_illness"])
            if critical is not None:
                result["critical_illness"] = critical
        if "maternity" in mapping:
            maternity_map = self.mapping(mapping["maternity"], "products.maternity", ("per_child",))
            if maternity_map is not None:
                per_child = self._amount_key(maternity_map, "per_child", "products.maternity")
                if per_child is not None:
                    result["maternity"] = Maternity(per_child)
        # Rule 8: the med_types of the products one member type can use do not overlap, so that a
        # record routes to one product at most.
        for member_type, names in PRODUCTS_BY_MEMBER_TYPE.items():
            owner: dict[str, str] = {}
            for name in names:
                routed = result.get(name)
                if not isinstance(routed, ScheduleProduct):
                    continue
                for med_type in routed.med_types:
                    if med_type in owner:
                        who = "职工本人" if member_type == "self" else "家庭成员"
                        self.error(
                            f"products.{name}.med_types",
                            f"医疗类别“{med_type}”同时出现在 {owner[med_type]} 和 {name} 中"
                            f"（{who}可享受的项目的医疗类别不能重叠）",
                        )
                    else:
                        owner[med_type] = name
        return result

    def critical_illness(self, node: object) -> CriticalIllness | None:
        path = "products.critical_illness"
        mapping = self.mapping(node, path, ("severe", "mild"))
        if mapping is None:
            return None
        severe = self._amount_key(mapping, "severe", path)
        mild = self._amount_key(mapping, "mild", path)
        if severe is None or mild is None:
            return None
        # Rule 5, and the 2020 industry definitions: a mild amount at most 30% of the severe one.
        if 10 * mild > 3 * severe:
            self.error(
                f"{path}.mild",
                f"轻症补助 {format_fen(mild)} 元超过重疾补助 {format_fen(severe)} 元的 30%"
                f"（{_yuan(Fraction(3 * severe, 10))} 元）",
            )
            return None
        return CriticalIllness(severe, mild)

    def schedule(self, node: object, name: str, resident: int | None) -> ScheduleProduct | None:
        path = f"products.{name}"
        own_contribution = name == "family_inpatient"
        required = (("contribution",) if own_contribution else ()) + _SCHEDULE_KEYS
        mapping = self.mapping(node, path, required)
        if mapping is None:
            return None
        contribution = None
        if own_contribution:
            contribution = self._amount_key(mapping, "contribution", path)
            if contribution is not None and resident is not None and 2 * contribution > resident:
                self.error(
                    f"{path}.contribution",
                    f"{_LABELS[name]}互助金 {format_fen(contribution)} 元超过城乡居民医保个人缴费"
                    f"标准 {format_fen(resident)} 元的 50%（{_yuan(Fraction(resident, 2))} 元）"
                    f"（{_CITE_CONTRIBUTION}）",
                )
        med_types = self.med_types(mapping["med_types"], path) if "med_types" in mapping else None
        deductible = self._amount_key(mapping, "deductible", path)
        threshold = self._amount_key(mapping, "threshold", path)
        annual_cap = self._amount_key(mapping, "annual_cap", path)
        scope = self.choice(mapping, "deductible_scope", path, ("year", "admission"))
        mode = self.choice(mapping, "band_mode", path, ("progressive", "whole"))
        bands = self.bands(mapping["bands"], path, mode) if "bands" in mapping else None
        # Rule 4: whole bands price each admission on its own base, so the deductible must be
        # taken per admission too (a year-long running base has no single band to sit in).
        if mode == "whole" and scope is not None and scope != "admission":
            self.error(
                f"{path}.deductible_scope",
                "分段方式为 whole（全额按所在分段比例）时，起付线计算范围必须为 admission（按次）",
            )
            return None
        if (
            med_types is None
            or deductible is None
            or threshold is None
            or annual_cap is None
            or scope is None
            or mode is None
            or bands is None
            or (own_contribution and contribution is None)
        ):
            return None
        return ScheduleProduct(
            name=name,
            med_types=med_types,
            deductible=deductible,
            deductible_scope=scope,  # type: ignore[arg-type]
            threshold=threshold,
            band_mode=mode,  # type: ignore[arg-type]
            bands=bands,
            annual_cap=annual_cap,
            contribution=contribution,
        )

    def choice(
        self, mapping: Mapping[str, object], key: str, prefix: str, allowed: tuple[str, ...]
    ) -> str | None:
        if key not in mapping:
            return None
        path = _join(prefix, key)
        value = self.scalar(mapping[key], path)
        if value is None:
            return None
        if value not in allowed:
            self.error(path, f"“{value}”应为 {' 或 '.join(allowed)}")
            return None
        return value

    def med_types(self, node: object, prefix: str) -> tuple[str, ...] | None:
        path = f"{prefix}.med_types"
        value = self.unwrap(node, path)
        if not isinstance(value, list):
            self.error(path, '应为医疗类别代码的列表（如 ["21", "52"]）')
            return None
        if not value:
            self.error(path, "至少列出一个医疗类别")
            return None
        codes: list[str] = []
        ok = True
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            code = self.scalar(item, item_path)
            if code is None:
                ok = False
                continue
            if not code or any(ch.isspace() for ch in code):
                self.error(item_path, f"医疗类别代码“{code}”无效")
                ok = False
            elif code in codes:
                self.error(item_path, f"医疗类别“{code}”重复")
                ok = False
            else:
                codes.append(code)
        return tuple(codes) if ok else None

    def bands(self, node: object, prefix: str, mode: str | None) -> tuple[Band, ...] | None:
        path = f"{prefix}.bands"
        value = self.unwrap(node, path)
        if not isinstance(value, list) or not value:
            self.error(path, "应为至少一段的列表（最后一段不写 upto）")
            return None
        bands: list[Band] = []
        ok = True
        previous_upto: int | None = None
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            last = index == len(value) - 1
            mapping = self.mapping(item, item_path, ("rate",), ("upto",))
            if mapping is None:
                ok = False
                continue
            rate = self.rate(mapping["rate"], f"{item_path}.rate") if "rate" in mapping else None
            upto: int | None = None
            if "upto" in mapping:
                upto = self.amount(mapping["upto"], f"{item_path}.upto")
                if upto is None:
                    ok = False
                elif last:
                    # Rule 3: exactly one last band without upto.
                    self.error(f"{item_path}.upto", "最后一段不能设上限（upto）")
                    ok = False
                elif index == 0 and upto <= 0:
                    self.error(f"{item_path}.upto", "第一段的上限必须大于 0")  # rule 8
                    ok = False
                elif previous_upto is not None and upto <= previous_upto:
                    self.error(
                        f"{item_path}.upto",
                        f"分段上限必须严格递增（{format_fen(upto)} 不大于上一段的 "
                        f"{format_fen(previous_upto)}）",
                    )
                    ok = False
                if upto is not None:
                    previous_upto = upto
            elif not last:
                self.error(f"{item_path}.upto", "只有最后一段可以不设上限（upto）")
                ok = False
            if rate is None:
                ok = False
                continue
            if mode == "whole" and bands and rate < bands[-1].rate:
                # Rule 7: with whole bands a falling rate would let a larger base pay less.
                self.error(
                    f"{item_path}.rate",
                    f"分段方式为 whole 时各段比例不能递减（{format_rate(rate)} 小于上一段的 "
                    f"{format_rate(bands[-1].rate)}），否则费用越高补助反而越少",
                )
                ok = False
            bands.append(Band(upto=None if last else upto, rate=rate))
        return tuple(bands) if ok else None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _as_schedule(value: object) -> ScheduleProduct | None:
    return value if isinstance(value, ScheduleProduct) else None


_T = TypeVar("_T")


def _as_type(value: object, kind: type[_T]) -> _T | None:
    return value if isinstance(value, kind) else None


# ---------------------------------------------------------------------------------------------
# Revisions


class PlanVersions:
    """The versions of one pooling area's plan for one coverage year (RULES.md §1, revisions).

    A record is priced by the latest version whose ``effective_from`` (Jan 1 when absent) is on or
    before its admission date; a record admitted before every version (or in another year) gets
    the first version, which then finds it outside the coverage year. The running state of §4 is
    shared by all versions, so a revision never restarts a deductible or a cap.
    """

    def __init__(self, plans: Sequence[Plan]) -> None:
        if not plans:
            raise ValueError("至少需要一个计划版本")
        ordered = sorted(plans, key=lambda plan: plan.start_date)
        first = ordered[0]
        seen_codes: set[str] = set()
        seen_dates: set[date] = set()
        for plan in ordered:
            if plan.year != first.year or plan.region != first.region:
                raise ValueError("同一组计划版本必须属于同一统筹地区和同一保障年度")
            if plan.code in seen_codes:
                raise ValueError(f"计划编码 {plan.code} 重复")
            if plan.start_date in seen_dates:
                raise ValueError(f"两个计划版本的生效日期相同（{plan.start_date.isoformat()}）")
            seen_codes.add(plan.code)
            seen_dates.add(plan.start_date)
        self.plans: tuple[Plan, ...] = tuple(ordered)
        self._by_code = {plan.code: plan for plan in ordered}

    @property
    def year(self) -> int:
        return self.plans[0].year

    def select(self, adm_date: date) -> Plan:
        chosen = self.plans[0]
        for plan in self.plans:
            if plan.start_date <= adm_date:
                chosen = plan
        return chosen

    def by_code(self, code: str) -> Plan:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"没有编码为 {code} 的计划版本") from None

    def __iter__(self) -> Iterator[Plan]:
        return iter(self.plans)

    def __len__(self) -> int:
        return len(self.plans)
