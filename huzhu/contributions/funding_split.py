"""Co-funding arithmetic (RULES.md §6; R4, R8): who pays what of one person's contribution.

Pure Python on purpose (no Django import): the invoice service, the split-agreement preview and the
property tests all run these very functions.

- A unit's split agreement states the per-person contribution either as amounts (individual +
  employer + union = the plan's contribution) or as percentages; with percentages the individual
  and the union parts are rounded half-up to the fen (``round_half_up``, the one rounding function)
  and the employer takes the remainder (RULES.md §6). The remainder can fall one fen below zero
  only when the employer's exact share is below one fen (e.g. 0 %, and both other parts exactly on
  a half fen that both round up); the union part then gives that fen back, so no part is negative
  and the parts always add up to the contribution.
- A federation's agreement covers workers without a unit (new-employment-form workers, R1): there
  is no employer to bill, so it has no employer share and the union takes the remainder.
- A hardship member's individual part is reduced by ``contribution_waiver`` × that part, rounded
  half-up; the union pays the reduction from its hardship fund, as a payer line of its own (R4).
- A family member's optional product (``family_inpatient``) has its own fee, paid in full by the
  worker (the individual payer); the split and the waiver apply to the worker's own contribution
  only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from huzhu.core.money import format_fen, round_half_up

BASIS_POINTS = 10_000  # percentages are stored in basis points (万分之一): 33.33 % → 3333

MODE_AMOUNT = "amount"
MODE_PERCENT = "percent"

# Payer types of an invoice (one payer line each; employers one per unit).
INDIVIDUAL = "individual"
EMPLOYER = "employer"
UNION = "union"
UNION_WAIVER = "union_waiver"
PAYER_TYPES = (INDIVIDUAL, EMPLOYER, UNION, UNION_WAIVER)


class SplitMismatch(ValueError):
    """An amount agreement whose parts do not add up to the contribution being invoiced."""

    def __init__(self, agreed_fen: int, contribution_fen: int) -> None:
        super().__init__(
            f"分担金额合计 {format_fen(agreed_fen)} 元，"
            f"与互助金 {format_fen(contribution_fen)} 元不符"
        )
        self.agreed_fen = agreed_fen
        self.contribution_fen = contribution_fen


@dataclass(frozen=True, slots=True)
class SplitRule:
    """One agreement's rule: amounts in fen (``MODE_AMOUNT``) or basis points (``MODE_PERCENT``;
    the employer's share is what is left)."""

    mode: str
    individual_fen: int = 0
    employer_fen: int = 0
    union_fen: int = 0
    individual_bp: int = 0
    union_bp: int = 0

    @property
    def employer_bp(self) -> int:
        return BASIS_POINTS - self.individual_bp - self.union_bp


#: No agreement: the individual pays everything.
DEFAULT_RULE = SplitRule(mode=MODE_PERCENT, individual_bp=BASIS_POINTS)


@dataclass(frozen=True, slots=True)
class Parts:
    """One person's contribution by payer, in fen. ``individual`` is after the waiver."""

    individual: int
    employer: int
    union: int
    waiver: int = 0

    @property
    def total(self) -> int:
        return self.individual + self.employer + self.union + self.waiver


def split_contribution(rule: SplitRule, contribution_fen: int) -> Parts:
    """The individual, employer and union parts of ``contribution_fen`` under ``rule``.

    Raises ``SplitMismatch`` for an amount rule that does not add up to the contribution."""
    if rule.mode == MODE_AMOUNT:
        agreed = rule.individual_fen + rule.employer_fen + rule.union_fen
        if agreed != contribution_fen:
            raise SplitMismatch(agreed, contribution_fen)
        return Parts(rule.individual_fen, rule.employer_fen, rule.union_fen)
    individual = round_half_up(Fraction(rule.individual_bp, BASIS_POINTS) * contribution_fen)
    union = round_half_up(Fraction(rule.union_bp, BASIS_POINTS) * contribution_fen)
    employer = contribution_fen - individual - union
    if employer < 0:  # the employer's exact share is below one fen: see the module docstring
        union += employer
        employer = 0
    return Parts(individual, employer, union)


def waiver_of(individual_fen: int, waiver_rate: Fraction) -> int:
    """R4: the hardship reduction of an individual part, rounded half-up (≤ the part itself,
    since a valid plan's ``contribution_waiver`` is at most 1)."""
    return round_half_up(waiver_rate * individual_fen)


def apply_waiver(parts: Parts, waiver_rate: Fraction) -> Parts:
    waiver = waiver_of(parts.individual, waiver_rate)
    return Parts(parts.individual - waiver, parts.employer, parts.union, parts.waiver + waiver)


@dataclass(frozen=True, slots=True)
class Person:
    """One enrollment to invoice: ``family`` for a family member's own product."""

    key: int
    unit_id: int | None
    family: bool
    hardship: bool


def price_person(
    person: Person,
    *,
    rule: SplitRule,
    contribution_fen: int,
    family_contribution_fen: int | None,
    waiver_rate: Fraction,
) -> Parts:
    """What each payer owes for one person (see the module docstring)."""
    if person.family:
        if family_contribution_fen is None:
            raise ValueError("该保障方案不含家庭成员住院互助")
        return Parts(family_contribution_fen, 0, 0)
    parts = split_contribution(rule, contribution_fen)
    if person.hardship:
        parts = apply_waiver(parts, waiver_rate)
    if parts.employer and person.unit_id is None:
        raise ValueError("无单位人员不能由用人单位分担")
    return parts


PayerKey = tuple[str, int | None]  # (payer type, unit id for employers, else None)


def payer_totals(lines: Iterable[tuple[int | None, Parts]]) -> dict[PayerKey, int]:
    """Total owed per payer for ``(unit_id, parts)`` lines; payers owing nothing are left out."""
    totals: dict[PayerKey, int] = {}

    def add(key: PayerKey, fen: int) -> None:
        if fen:
            totals[key] = totals.get(key, 0) + fen

    for unit_id, parts in lines:
        add((INDIVIDUAL, None), parts.individual)
        add((EMPLOYER, unit_id), parts.employer)
        add((UNION, None), parts.union)
        add((UNION_WAIVER, None), parts.waiver)
    return totals


def percent_to_bp(text: str) -> int | None:
    """ "33.33" (a percentage with at most two decimals, 0–100) → 3333; None when malformed."""
    value = (text or "").strip().rstrip("%").strip()
    whole, dot, frac = value.partition(".")
    if not (whole.isascii() and whole.isdigit()):
        return None
    if dot and not (frac.isascii() and frac.isdigit()):
        return None
    if len(frac) > 2 or len(whole) > 3:
        return None
    bp = int(whole) * 100 + int(frac.ljust(2, "0") or "0")
    return bp if 0 <= bp <= BASIS_POINTS else None


def format_bp(bp: int) -> str:
    """3333 → "33.33", 5000 → "50", 10000 → "100" (a percentage without the % sign)."""
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)
