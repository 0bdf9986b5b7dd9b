"""Reason codes of a benefit result (RULES.md §4, INTERFACES.md §2) with their Chinese text."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a result pays nothing (or what kind of row it is).

    The declaration order is the precedence of INTERFACES.md §2: when several apply, the first
    wins. ``CANCELLED`` is the reason of every valid cancellation row; ``NO_CONSENT`` exists only
    where consent is known (the database path, not ``huzhu adjudicate``).
    """

    INVALID = "INVALID"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    NO_CONSENT = "NO_CONSENT"
    NOT_COVERED = "NOT_COVERED"
    LATE_CLAIM = "LATE_CLAIM"
    MED_TYPE_NOT_COVERED = "MED_TYPE_NOT_COVERED"
    ZERO_BASE = "ZERO_BASE"
    BELOW_THRESHOLD = "BELOW_THRESHOLD"
    DEDUCTIBLE = "DEDUCTIBLE"
    CAP_REACHED = "CAP_REACHED"
    NOTHING_DUE = "NOTHING_DUE"
    CANCELLED = "CANCELLED"

    @property
    def label(self) -> str:
        """Short Chinese label for screens and exports."""
        return _LABELS[self]

    @property
    def text(self) -> str:
        """One Chinese sentence that explains the reason to a member or a clerk."""
        return _TEXTS[self]


_LABELS: dict[Reason, str] = {
    Reason.INVALID: "数据无效",
    Reason.DUPLICATE: "重复结算",
    Reason.NOT_FOUND: "未参保",
    Reason.NO_CONSENT: "未授权",
    Reason.NOT_COVERED: "不在保障期内",
    Reason.LATE_CLAIM: "超过申请期限",
    Reason.MED_TYPE_NOT_COVERED: "医疗类别不在保障范围",
    Reason.ZERO_BASE: "无可补助费用",
    Reason.BELOW_THRESHOLD: "未达门槛",
    Reason.DEDUCTIBLE: "未超过起付线",
    Reason.CAP_REACHED: "已达年度封顶线",
    Reason.NOTHING_DUE: "无应付金额",
    Reason.CANCELLED: "结算已撤销",
}

_TEXTS: dict[Reason, str] = {
    Reason.INVALID: "结算数据不符合要求，未予计算。",
    Reason.DUPLICATE: "该结算已经处理过，重复提交不再计算补助。",
    Reason.NOT_FOUND: "未找到该证件号码的参保职工。",
    Reason.NO_CONSENT: "该职工尚未授权使用医保结算数据，待授权后再行处理。",
    Reason.NOT_COVERED: "入院日期不在该职工的保障期内（或不在本计划的保障年度内）。",
    Reason.LATE_CLAIM: "结算日期晚于本保障年度的申请截止日期。",
    Reason.MED_TYPE_NOT_COVERED: "该医疗类别不属于该职工可享受的保障项目。",
    Reason.ZERO_BASE: "政策范围内费用在扣除基本医保等已支付部分后为零，无可补助金额。",
    Reason.BELOW_THRESHOLD: "可补助费用低于该项目的门槛，不予补助，也不计入年度累计。",
    Reason.DEDUCTIBLE: "可补助费用未超过起付线，本次无补助。",
    Reason.CAP_REACHED: "本年度补助已达到年度封顶线。",
    Reason.NOTHING_DUE: "按分段比例计算后的补助金额为零。",
    Reason.CANCELLED: "该结算已撤销，年度应得补助已重新计算。",
}

#: Reasons after which a settle record still counts toward the running totals of its year.
COUNTING_ZERO_REASONS = frozenset({Reason.DEDUCTIBLE, Reason.CAP_REACHED, Reason.NOTHING_DUE})
