"""The band schedule and the pricing of a year's list of records (RULES.md §4), exactly.

Rates have at most four decimals (RULES.md §1 rule 3), so a rate is an integer number of
1/10000 ("rate units") and S(x) × 10000 is an integer for any x in fen: the schedule is summed
exactly in integers and rounded once with ``huzhu.core.money.div_round_half_up``.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from huzhu.core.money import div_round_half_up, round_half_up
from huzhu.rules.plan import Plan, ScheduleProduct

__all__ = [
    "RATE_SCALE",
    "BandLine",
    "Terms",
    "band_lines",
    "price_list",
    "price_next",
    "terms_for",
]

#: Rates are carried as integers in 1/10000 (RULES.md §1 rule 3: at most four decimals).
RATE_SCALE = 10000


@dataclass(frozen=True, slots=True)
class Terms:
    """The pricing terms of one product of one plan version for one hardship status."""

    plan_code: str
    product: str
    hardship: bool
    deductible: int
    scope: str  # "year" | "admission"
    threshold: int
    band_mode: str  # "progressive" | "whole"
    #: Upper bounds of the bands in fen; the last is None (no upper bound).
    uppers: tuple[int | None, ...]
    #: Effective band rates in 1/10000, after the hardship bonus (capped at 1).
    rate_units: tuple[int, ...]
    #: The plan's band rates before any hardship bonus, in 1/10000.
    plan_rate_units: tuple[int, ...]
    #: Effective annual cap (hardship: round(annual_cap × cap_multiplier)).
    cap: int
    annual_cap: int
    rate_bonus: Fraction
    cap_multiplier: Fraction

    def schedule_units(self, x: int) -> int:
        """S(x) × 10000 for x ≥ 0 fen, exact (RULES.md §4)."""
        if x <= 0:
            return 0
        if self.band_mode == "whole":
            # Band k contains x when upto_{k−1} < x ≤ upto_k: the whole x at that band's rate.
            for upper, rate in zip(self.uppers, self.rate_units, strict=True):
                if upper is None or x <= upper:
                    return rate * x
            raise AssertionError("the last band has no upper bound")
        total = 0
        lower = 0
        for upper, rate in zip(self.uppers, self.rate_units, strict=True):
            top = x if upper is None else min(x, upper)
            if top <= lower:
                break
            total += rate * (top - lower)
            if upper is None:
                break
            lower = upper
        return total

    def schedule(self, x: int) -> int:
        """round(S(x)) in fen."""
        return div_round_half_up(self.schedule_units(x), RATE_SCALE)

    def year_price(self, running_base: int) -> int:
        """P(B) = min(cap, round(S(max(0, B − deductible)))) (RULES.md §4, scope year)."""
        return min(self.cap, self.schedule(running_base - self.deductible))


# Terms per plan object, keyed by identity: hashing a Plan (its Fractions) on every record would
# cost more than pricing it. Entries leave with their plan.
_TERMS: dict[int, dict[tuple[str, bool], Terms]] = {}


def terms_for(plan: Plan, product_name: str, hardship: bool) -> Terms:
    """The terms of ``product_name`` in ``plan`` for a hardship or a normal member.

    Hardship (湘政办发〔2025〕58号（三）, tilt in benefits): every band rate becomes
    min(1, rate + rate_bonus) and the cap round(annual_cap × cap_multiplier) (RULES.md §4).
    """
    cache = _TERMS.get(id(plan))
    if cache is None:
        cache = _TERMS[id(plan)] = {}
        weakref.finalize(plan, _TERMS.pop, id(plan), None)
    terms = cache.get((product_name, hardship))
    if terms is None:
        terms = cache[(product_name, hardship)] = _make_terms(plan, product_name, hardship)
    return terms


def _make_terms(plan: Plan, product_name: str, hardship: bool) -> Terms:
    product: ScheduleProduct = plan.product(product_name)
    tilt = plan.hardship
    plan_units = tuple(_rate_units(band.rate) for band in product.bands)
    if hardship:
        bonus = _rate_units(tilt.rate_bonus)
        rate_units = tuple(min(RATE_SCALE, units + bonus) for units in plan_units)
        cap = round_half_up(product.annual_cap * tilt.cap_multiplier)
    else:
        rate_units = plan_units
        cap = product.annual_cap
    return Terms(
        plan_code=plan.code,
        product=product_name,
        hardship=hardship,
        deductible=product.deductible,
        scope=product.deductible_scope,
        threshold=product.threshold,
        band_mode=product.band_mode,
        uppers=tuple(band.upto for band in product.bands),
        rate_units=rate_units,
        plan_rate_units=plan_units,
        cap=cap,
        annual_cap=product.annual_cap,
        rate_bonus=tilt.rate_bonus,
        cap_multiplier=tilt.cap_multiplier,
    )


def _rate_units(rate: Fraction) -> int:
    units = rate * RATE_SCALE
    if units.denominator != 1:
        raise ValueError(f"比例 {rate} 超过四位小数")
    return int(units)


def price_next(terms: Terms, base: int, running_base: int, entitled: int) -> int:
    """The price of a record that joins a list whose bases sum to ``running_base`` (B_{i−1}) and
    whose prices sum to ``entitled`` (E_{i−1}) (RULES.md §4)."""
    if terms.scope == "year":
        # Each record is priced on its own slice [B_{i−1}, B_i] of the year's running base.
        slice_price = terms.year_price(running_base + base) - terms.year_price(running_base)
    else:
        # Scope admission: the deductible is taken on every record.
        slice_price = terms.schedule(base - terms.deductible)
    return max(0, min(slice_price, terms.cap - entitled))


def price_list(items: Sequence[tuple[Terms, int]]) -> list[int]:
    """Prices of an ordered list of counted records, each (terms, base): E is their sum."""
    prices: list[int] = []
    running_base = 0
    entitled = 0
    for terms, base in items:
        price = price_next(terms, base, running_base, entitled)
        prices.append(price)
        running_base += base
        entitled += price
    return prices


@dataclass(frozen=True, slots=True)
class BandLine:
    """The part of an amount that falls in one band, for explanations (exact, 1/10000 fen)."""

    lower: int
    upper: int | None
    rate_units: int
    portion: int  # fen of x inside this band
    amount_units: int  # rate × portion, in 1/10000 fen


def band_lines(terms: Terms, x: int) -> list[BandLine]:
    """How S(x) is formed: one line per band that x reaches (whole: the one band applied)."""
    lines: list[BandLine] = []
    if x <= 0:
        return lines
    lower = 0
    for upper, rate in zip(terms.uppers, terms.rate_units, strict=True):
        if terms.band_mode == "whole":
            if upper is None or x <= upper:
                lines.append(BandLine(lower, upper, rate, x, rate * x))
                break
        else:
            top = x if upper is None else min(x, upper)
            if top <= lower:
                break
            lines.append(BandLine(lower, upper, rate, top - lower, rate * (top - lower)))
            if upper is None or x <= upper:
                break
        lower = upper if upper is not None else lower
    return lines
