"""Lump sums (RULES.md §5): critical illness (重大疾病关爱) and maternity (生育补助).

Critical illness is paid on first diagnosis of one of the 28 severe or 3 mild diseases of the
2020 industry definitions (中国保险行业协会、中国医师协会
《重大疾病保险的疾病定义使用规范（2020年修订版）》, ``../reference/critical-illness.md``) after a
reviewer has seen the diagnosis documents. ICD-10 codes on a settlement only raise a candidate for
review: ``screen_diagnoses`` never pays anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from huzhu.core.money import format_fen
from huzhu.rules.engine import MemberInfo
from huzhu.rules.plan import Plan
from huzhu.rules.reasons import Reason

__all__ = [
    "MILD_DISEASES",
    "SEVERE_DISEASES",
    "Candidate",
    "CriticalIllnessState",
    "LumpSum",
    "MaternityState",
    "Severity",
    "birth_event_key",
    "critical_illness",
    "maternity",
    "maternity_eligible",
    "screen_diagnoses",
]


class Severity(StrEnum):
    SEVERE = "severe"
    MILD = "mild"


#: The 28 severe diseases, numbered as in the 2020 definitions.
SEVERE_DISEASES: Mapping[int, str] = {
    1: "恶性肿瘤——重度",
    2: "较重急性心肌梗死",
    3: "严重脑中风后遗症",
    4: "重大器官移植术或造血干细胞移植术",
    5: "冠状动脉搭桥术（或称冠状动脉旁路移植术）",
    6: "严重慢性肾衰竭",
    7: "多个肢体缺失",
    8: "急性重症肝炎或亚急性重症肝炎",
    9: "严重非恶性颅内肿瘤",
    10: "严重慢性肝衰竭",
    11: "严重脑炎后遗症或严重脑膜炎后遗症",
    12: "深度昏迷",
    13: "双耳失聪",
    14: "双目失明",
    15: "瘫痪",
    16: "心脏瓣膜手术",
    17: "严重阿尔茨海默病",
    18: "严重脑损伤",
    19: "严重原发性帕金森病",
    20: "严重Ⅲ度烧伤",
    21: "严重特发性肺动脉高压",
    22: "严重运动神经元病",
    23: "语言能力丧失",
    24: "重型再生障碍性贫血",
    25: "主动脉手术",
    26: "严重慢性呼吸衰竭",
    27: "严重克罗恩病",
    28: "严重溃疡性结肠炎",
}
#: The 3 mild diseases, keyed by the severe disease they are the milder form of.
MILD_DISEASES: Mapping[int, str] = {
    1: "恶性肿瘤——轻度",
    2: "较轻急性心肌梗死",
    3: "轻度脑中风后遗症",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A diagnosis code that may be a critical illness: for a reviewer, never paid as such."""

    icd_code: str
    disease: int  # number of the severe disease in the 2020 definitions
    name: str
    #: The forms a reviewer may confirm (severe, or also mild where a mild form exists).
    severities: tuple[Severity, ...]
    documents: str

    def to_json(self) -> dict[str, Any]:
        return {
            "icd_code": self.icd_code,
            "disease": self.disease,
            "name": self.name,
            "mild_name": MILD_DISEASES.get(self.disease),
            "severities": [severity.value for severity in self.severities],
            "documents": self.documents,
        }


_ICD_RE = re.compile(r"([A-Z])([0-9]{2})(?:\.([0-9A-Z]+))?")
_DOCUMENTS_CANCER = "病理组织学检查报告、出院记录"
_DOCUMENTS_OTHER = "出院记录及相关检查报告"


def _candidate_for(code: str) -> Candidate | None:
    match = _ICD_RE.match(code)
    if match is None:
        return None
    letter, number_text, detail = match.group(1), int(match.group(2)), match.group(3) or ""
    both = (Severity.SEVERE, Severity.MILD)
    if letter == "C" and 0 <= number_text <= 97:
        # C00–C97 malignant neoplasms; D00–D09 (in situ) and D10–D48 are not candidates.
        return Candidate(code, 1, SEVERE_DISEASES[1], both, _DOCUMENTS_CANCER)
    if letter == "I" and number_text == 21:
        return Candidate(code, 2, SEVERE_DISEASES[2], both, _DOCUMENTS_OTHER)
    if letter == "I" and 60 <= number_text <= 69:
        return Candidate(code, 3, SEVERE_DISEASES[3], both, _DOCUMENTS_OTHER)
    if letter == "Z" and number_text == 94:
        return Candidate(code, 4, SEVERE_DISEASES[4], (Severity.SEVERE,), _DOCUMENTS_OTHER)
    if letter == "N" and number_text == 18 and detail.startswith("5"):
        # N18.5: chronic kidney disease, stage 5.
        return Candidate(code, 6, SEVERE_DISEASES[6], (Severity.SEVERE,), _DOCUMENTS_OTHER)
    return None


def screen_diagnoses(codes: str | Iterable[str]) -> list[Candidate]:
    """Review candidates from ICD-10 codes (a ``;``-separated text or a list), one per disease.

    RULES.md §5: codes only raise a candidate; a reviewer decides with the documents.
    """
    items = codes.split(";") if isinstance(codes, str) else list(codes)
    found: dict[int, Candidate] = {}
    for item in items:
        code = item.strip().upper()
        if not code:
            continue
        candidate = _candidate_for(code)
        if candidate is not None and candidate.disease not in found:
            found[candidate.disease] = candidate
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True, slots=True)
class LumpSum:
    """The outcome of a lump-sum claim: amount in fen, reason when 0, explanation."""

    product: str
    amount: int
    reason: Reason | None
    explanation: dict[str, Any] = field(default_factory=dict, compare=False)

    def text(self) -> str:
        return str(self.explanation.get("text", ""))


@dataclass(frozen=True, slots=True)
class CriticalIllnessState:
    """What one member was paid for critical illness in one coverage year."""

    year: int
    paid_total: int = 0
    #: Disease numbers already paid, with the severity paid for each.
    paid: tuple[tuple[int, Severity], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "paid_total": self.paid_total,
            "paid": [[disease, severity.value] for disease, severity in self.paid],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CriticalIllnessState:
        return cls(
            year=int(data["year"]),
            paid_total=int(data["paid_total"]),
            paid=tuple((int(d), Severity(s)) for d, s in data["paid"]),
        )


def _covered(plan: Plan, member: MemberInfo, day: date) -> bool:
    return member.covered_on(day) and day.year == plan.year


def critical_illness(
    plan: Plan,
    state: CriticalIllnessState | None,
    member: MemberInfo,
    *,
    disease: int,
    severity: Severity,
    diagnosis_date: date,
) -> tuple[LumpSum, CriticalIllnessState]:
    """Pay a reviewed critical-illness diagnosis (RULES.md §5).

    At most ``severe`` per member per coverage year in total: a mild payment followed by a severe
    diagnosis pays the difference; each disease is paid once a year (first diagnosis), a severe
    form after its mild form being the upgrade.
    """
    terms = plan.critical_illness
    state = state or CriticalIllnessState(year=diagnosis_date.year)
    if state.year != diagnosis_date.year:
        raise ValueError("状态年度与诊断日期的年度不一致")
    if disease not in SEVERE_DISEASES or (
        severity is Severity.MILD and disease not in MILD_DISEASES
    ):
        raise ValueError(
            f"疾病 {disease} 没有{('轻症' if severity is Severity.MILD else '重疾')}形式"
        )
    name = SEVERE_DISEASES[disease] if severity is Severity.SEVERE else MILD_DISEASES[disease]
    if terms is None or not _covered(plan, member, diagnosis_date):
        return _lump("critical_illness", 0, Reason.NOT_COVERED, name=name), state
    already = dict(state.paid)
    if disease in already and (already[disease] is Severity.SEVERE or severity is Severity.MILD):
        return _lump("critical_illness", 0, Reason.DUPLICATE, name=name), state
    room = terms.severe - state.paid_total
    wanted = terms.severe if severity is Severity.SEVERE else terms.mild
    # A severe diagnosis pays what is left of ``severe`` after the year's earlier payments.
    amount = max(0, room) if severity is Severity.SEVERE else max(0, min(wanted, room))
    reason = None if amount > 0 else Reason.CAP_REACHED
    paid = (*((d, s) for d, s in state.paid if d != disease), (disease, severity))
    new_state = CriticalIllnessState(
        year=state.year, paid_total=state.paid_total + amount, paid=paid
    )
    explanation = {
        "product": "critical_illness",
        "disease": disease,
        "name": name,
        "severity": severity.value,
        "amount_for_severity": format_fen(wanted),
        "paid_before": format_fen(state.paid_total),
        "yearly_limit": format_fen(terms.severe),
        "amount": format_fen(amount),
        "text": (
            f"{name}：{'重疾' if severity is Severity.SEVERE else '轻症'}补助标准"
            f" {format_fen(wanted)} 元，本年度已付 {format_fen(state.paid_total)} 元，"
            f"年度合计不超过 {format_fen(terms.severe)} 元，本次补助 {format_fen(amount)} 元。"
        ),
    }
    return LumpSum("critical_illness", amount, reason, explanation), new_state


def _lump(product: str, amount: int, reason: Reason, *, name: str) -> LumpSum:
    return LumpSum(
        product,
        amount,
        reason,
        {
            "product": product,
            "name": name,
            "amount": format_fen(amount),
            "reason": reason.value,
            "text": f"{name}：本次补助 0.00 元。{reason.text}",
        },
    )


# ----- maternity -----


def maternity_eligible(med_type: str | None, *, birth_certificate: bool = False) -> bool:
    """RULES.md §5: a maternity hospitalization (med_type 52) or a manual claim with the birth
    certificate."""
    return med_type == "52" or birth_certificate


def birth_event_key(certno: str, birth_date: date) -> str:
    """The dedupe key of a birth event: one claim per mother (or member) and birth date."""
    return f"{certno.strip().upper()}:{birth_date.isoformat()}"


@dataclass(frozen=True, slots=True)
class MaternityState:
    """Birth events already paid for one member."""

    events: frozenset[str] = frozenset()


def maternity(
    plan: Plan,
    state: MaternityState | None,
    member: MemberInfo,
    *,
    event_key: str,
    newborns: int,
    birth_date: date,
) -> tuple[LumpSum, MaternityState]:
    """``per_child`` × newborns, once per birth event (RULES.md §5)."""
    if newborns < 1:
        raise ValueError("新生儿数量至少为 1")
    state = state or MaternityState()
    terms = plan.maternity
    if terms is None or not _covered(plan, member, birth_date):
        return _lump("maternity", 0, Reason.NOT_COVERED, name="生育补助"), state
    if event_key in state.events:
        return _lump("maternity", 0, Reason.DUPLICATE, name="生育补助"), state
    amount = terms.per_child * newborns
    explanation = {
        "product": "maternity",
        "per_child": format_fen(terms.per_child),
        "newborns": newborns,
        "amount": format_fen(amount),
        "text": f"生育补助：每名新生儿 {format_fen(terms.per_child)} 元 × {newborns} 名 = "
        f"{format_fen(amount)} 元。",
    }
    return (
        LumpSum("maternity", amount, None, explanation),
        MaternityState(state.events | {event_key}),
    )
