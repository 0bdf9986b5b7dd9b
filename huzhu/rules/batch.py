"""The vectorized batch path (RULES.md §4, INTERFACES.md §2) on int64 fen with NumPy and Polars.

It gives exactly the results of ``engine.run_sequential`` (a property test holds the two together)
at millions of records per second. The observation that makes it fast:

* When every counted record of a (member, product, year) has the same hardship status, the
  entitlement of any list of its records depends only on the list's sum: scope year
  E = P(Σ base) and scope admission E = min(cap, Σ round(S(base − deductible))) (the §4 formulas
  telescope because P is non-decreasing). A cancellation then just subtracts its record from the
  sum, so every row's running E is one segmented cumulative sum and one vectorized P; a row's
  benefit is the change of E.
* The few groups whose records straddle a change of hardship status are priced record by record,
  exactly as the single-record path does (``pricing.price_next`` and ``pricing.price_list``).

Amounts must fit comfortably in int64 after being scaled by 10000 (rates are in 1/10000): the
caller checks ``fits_int64`` and otherwise uses the sequential path, which has no bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl

from huzhu.rules.engine import MemberInfo, Row, zero_reason
from huzhu.rules.plan import PRODUCTS_BY_MEMBER_TYPE, Plan
from huzhu.rules.pricing import RATE_SCALE, Terms, price_list, price_next, terms_for
from huzhu.rules.reasons import Reason

__all__ = [
    "MEMBER_TYPES",
    "PRODUCT_NAMES",
    "REASON_CODES",
    "BatchResult",
    "MemberTable",
    "SettlementTable",
    "compute",
    "fits_int64",
    "tables_from_records",
]

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

#: Product codes of the batch arrays (0: none).
PRODUCT_NAMES: tuple[str | None, ...] = (
    None,
    "inpatient",
    "special_outpatient",
    "family_inpatient",
)
#: Member type codes of the member table.
MEMBER_TYPES: tuple[str, ...] = ("self", "family")
#: Reason codes of the batch arrays (0: none, a positive benefit).
REASON_CODES: tuple[Reason | None, ...] = (
    None,
    Reason.INVALID,
    Reason.DUPLICATE,
    Reason.NOT_FOUND,
    Reason.NOT_COVERED,
    Reason.LATE_CLAIM,
    Reason.MED_TYPE_NOT_COVERED,
    Reason.ZERO_BASE,
    Reason.BELOW_THRESHOLD,
    Reason.DEDUCTIBLE,
    Reason.CAP_REACHED,
    Reason.NOTHING_DUE,
    Reason.CANCELLED,
)
_R = {reason: code for code, reason in enumerate(REASON_CODES) if reason is not None}

#: Open sides of a hardship period (int32 day numbers).
OPEN_START = np.iinfo(np.int32).min
OPEN_END = np.iinfo(np.int32).max
#: Bound on any amount (and on the sum of all bases) for the int64 path: × 10000 stays < 2^63.
SAFE_AMOUNT = 5 * 10**14


@dataclass(frozen=True, slots=True)
class SettlementTable:
    """Settlement rows in processing order, typed (INTERFACES.md §2 after validation).

    Columns: ``setl_id`` (str), ``certno`` (str, normalised), ``valid`` (bool),
    ``is_cancel`` (bool), ``med_type`` (str), ``adm_day`` and ``setl_day`` (Int32 days since
    1970-01-01, the date of ``setl_time``), ``base`` (Int64 fen). Fields a row does not need
    (a cancel's amounts, anything of an invalid row) may hold anything.
    """

    frame: pl.DataFrame

    @property
    def height(self) -> int:
        return self.frame.height


@dataclass(frozen=True, slots=True)
class MemberTable:
    """Accepted members: ``certno`` (unique), ``member_type`` (Int8: 0 self, 1 family),
    ``cov_start``, ``cov_end``, ``hs_start``, ``hs_end`` (Int32 days; open hardship sides are
    ``OPEN_START``/``OPEN_END``) and ``has_hardship`` (bool)."""

    frame: pl.DataFrame


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One entry per settlement row, in processing order (codes index the tuples above)."""

    product: npt.NDArray[np.int8]
    base: I64
    benefit: I64
    cumulative: I64
    reason: npt.NDArray[np.int8]

    def rows(self) -> list[tuple[str, str, int, int, int, str]]:
        """(record_type placeholder '', product, base, benefit, cumulative, reason) tuples."""
        return [
            (
                "",
                PRODUCT_NAMES[int(p)] or "",
                int(b),
                int(f),
                int(c),
                (reason.value if (reason := REASON_CODES[int(r)]) is not None else ""),
            )
            for p, b, f, c, r in zip(
                self.product, self.base, self.benefit, self.cumulative, self.reason, strict=True
            )
        ]


def fits_int64(plan: Plan, max_amount: int, total_base: int) -> bool:
    """Whether the int64 path is exact for this plan and these amounts (else use the sequential
    path): every amount and the sum of all bases below ``SAFE_AMOUNT``."""
    limits = [max_amount, total_base]
    for name in plan.schedule_products():
        for hardship in (False, True):
            terms = terms_for(plan, name, hardship)
            limits.extend([terms.cap, terms.deductible, terms.threshold])
            limits.extend(upper for upper in terms.uppers if upper is not None)
    return max(limits) < SAFE_AMOUNT


# ---------------------------------------------------------------------------------------------
# The schedule on arrays


def _schedule_rounded(terms: Terms, x: I64) -> I64:
    """round(S(x)) for an array of amounts in fen (negative amounts count as 0)."""
    x = np.maximum(x, 0)
    rates = np.asarray(terms.rate_units, dtype=np.int64)
    uppers = [upper for upper in terms.uppers if upper is not None]
    if terms.band_mode == "whole":
        # Band k contains x when upto_{k−1} < x ≤ upto_k: searchsorted 'left' finds that k.
        index = np.searchsorted(np.asarray(uppers, dtype=np.int64), x, side="left")
        units = rates[index] * x
    else:
        units = np.zeros_like(x)
        lower = 0
        for k, rate in enumerate(terms.rate_units):
            if rate:
                portion = x - lower
                if k < len(uppers):
                    portion = np.clip(portion, 0, uppers[k] - lower)
                else:
                    portion = np.maximum(portion, 0)
                units += rate * portion
            if k < len(uppers):
                lower = uppers[k]
    # Half-up to the fen: the integer form of money.div_round_half_up for units ≥ 0.
    return (units + RATE_SCALE // 2) // RATE_SCALE


def _year_price(terms: Terms, running_base: I64) -> I64:
    return np.minimum(terms.cap, _schedule_rounded(terms, running_base - terms.deductible))


# ---------------------------------------------------------------------------------------------
# The core


def _first_distinct(values: pl.Series) -> Bool:
    return values.is_first_distinct().to_numpy()


def compute(plan: Plan, settlements: SettlementTable, members: MemberTable) -> BatchResult:
    """Adjudicate every row (INTERFACES.md §2 rules, RULES.md §4 amounts) in one vectorized pass."""
    frame = settlements.frame
    n = frame.height
    positions = np.arange(n, dtype=np.int64)
    valid = frame["valid"].to_numpy().astype(bool)
    is_cancel = frame["is_cancel"].to_numpy().astype(bool)
    valid_settle = valid & ~is_cancel
    valid_cancel = valid & is_cancel
    base = frame["base"].fill_null(0).to_numpy().astype(np.int64)
    adm_day = frame["adm_day"].fill_null(0).to_numpy().astype(np.int64)
    setl_day = frame["setl_day"].fill_null(0).to_numpy().astype(np.int64)

    # ----- members: index of each row's member (−1: not found) -----
    member_frame = members.frame.with_row_index("member_index")
    joined = frame.select("certno").join(
        member_frame.select("certno", "member_index"),
        on="certno",
        how="left",
        maintain_order="left",
    )
    member_index = joined["member_index"].fill_null(-1).to_numpy().astype(np.int64)
    found = member_index >= 0
    safe_index = np.where(found, member_index, 0)
    if member_frame.height == 0:
        found[:] = False
        safe_index[:] = 0
        member_frame = pl.DataFrame(
            {
                "member_type": [0],
                "cov_start": [0],
                "cov_end": [-1],
                "hs_start": [0],
                "hs_end": [-1],
                "has_hardship": [False],
            }
        )

    # One gather of whole member rows (contiguous) instead of one per column.
    fields = ("member_type", "cov_start", "cov_end", "hs_start", "hs_end", "has_hardship")
    table = np.empty((member_frame.height, len(fields)), dtype=np.int64)
    for column, name in enumerate(fields):
        table[:, column] = member_frame[name].to_numpy()
    rows = table[safe_index]
    member_type, cov_start, cov_end, hs_start, hs_end = (rows[:, k] for k in range(5))
    has_hardship = rows[:, 5].astype(bool)

    # ----- routing: the product of the member's type whose med_types list the row's med_type -----
    product = np.zeros(n, dtype=np.int64)
    med_type = frame["med_type"].fill_null("")
    for type_code, type_name in enumerate(MEMBER_TYPES):
        mapping: dict[str, int] = {}
        for name in PRODUCTS_BY_MEMBER_TYPE[type_name]:
            product_terms = plan.schedule_products().get(name)
            if product_terms is not None:
                for code in product_terms.med_types:
                    mapping[code] = PRODUCT_NAMES.index(name)
        if mapping:
            routed = med_type.replace_strict(mapping, default=0, return_dtype=pl.Int64).to_numpy()
            product = np.where(member_type == type_code, routed, product)
    product = np.where(found & valid_settle, product, 0)

    # ----- settle rows: registration (DUPLICATE) and the checks before pricing -----
    settle_index = np.flatnonzero(valid_settle)
    setl_ids = frame["setl_id"]
    certnos = frame["certno"]
    registers = np.zeros(n, dtype=bool)
    registers[settle_index[_first_distinct(setl_ids.gather(settle_index))]] = True
    duplicate_settle = valid_settle & ~registers

    year = np.zeros(n, dtype=np.int64)
    if n:
        years = frame["adm_day"].cast(pl.Date).dt.year().fill_null(0).to_numpy()
        year = np.where(valid_settle, years, 0).astype(np.int64)
    deadline_day = (plan.claim_deadline - date(1970, 1, 1)).days
    covered = found & (cov_start <= adm_day) & (adm_day <= cov_end) & (year == plan.year)
    late = setl_day > deadline_day
    hardship = found & has_hardship & (hs_start <= adm_day) & (adm_day <= hs_end)
    thresholds = np.zeros(len(PRODUCT_NAMES), dtype=np.int64)
    for name, product_terms in plan.schedule_products().items():
        thresholds[PRODUCT_NAMES.index(name)] = product_terms.threshold
    below = base < thresholds[product]
    settle_reason = np.select(
        [~found, ~covered, late, product == 0, base == 0, below],
        [
            _R[Reason.NOT_FOUND],
            _R[Reason.NOT_COVERED],
            _R[Reason.LATE_CLAIM],
            _R[Reason.MED_TYPE_NOT_COVERED],
            _R[Reason.ZERO_BASE],
            _R[Reason.BELOW_THRESHOLD],
        ],
        0,
    )
    counted = registers & (settle_reason == 0)

    # ----- cancel rows: validity, duplicates, originals -----
    original = np.full(n, -1, dtype=np.int64)
    cancel_ok = np.zeros(n, dtype=bool)
    effective_cancel = np.zeros(n, dtype=bool)
    cancel_index = np.flatnonzero(valid_cancel)
    if cancel_index.size:
        # Only the settle rows whose setl_id some cancel names matter here (a few percent).
        cancel_ids = setl_ids.gather(cancel_index)
        named = settle_index[
            setl_ids.gather(settle_index).is_in(cancel_ids.unique().implode()).to_numpy()
        ]
        pairs = (
            pl.DataFrame(
                {
                    "setl_id": setl_ids.gather(named),
                    "certno": certnos.gather(named),
                    "first": named,
                }
            )
            .group_by("setl_id", "certno")
            .agg(pl.col("first").min())
        )
        named_registers = named[registers[named]]
        registered = pl.DataFrame(
            {"setl_id": setl_ids.gather(named_registers), "original": named_registers}
        )
        cancels = (
            pl.DataFrame(
                {
                    "setl_id": cancel_ids,
                    "certno": certnos.gather(cancel_index),
                    "position": cancel_index,
                }
            )
            .join(pairs, on=["setl_id", "certno"], how="left", maintain_order="left")
            .join(registered, on="setl_id", how="left", maintain_order="left")
        )
        first = cancels["first"].fill_null(n).to_numpy()
        # Valid only after an earlier valid settle row with the same setl_id and certno.
        ok = first < cancel_index
        cancel_ok[cancel_index[ok]] = True
        original[cancel_index[ok]] = cancels["original"].fill_null(-1).to_numpy()[ok]
        ok_index = cancel_index[ok]
        effective_cancel[ok_index[_first_distinct(setl_ids.gather(ok_index))]] = True
    source = np.where(cancel_ok, original, positions)  # the row whose record a row stands for
    removes = effective_cancel & counted[source]

    # ----- groups: (member, product, coverage year) of each row with a product -----
    row_product = np.where(valid, product[source], 0)
    row_base = np.where(valid, base[source], 0)
    group_member = member_index[source]
    group_year = year[source]
    in_group = valid & (row_product > 0) & (group_member >= 0)
    # One integer per (member, product, year); years are few, so their span keeps keys small.
    first_year = int(group_year[in_group].min()) if in_group.any() else 0
    year_span = int(group_year[in_group].max()) - first_year + 1 if in_group.any() else 1
    key = np.where(
        in_group,
        (group_member * len(PRODUCT_NAMES) + row_product) * year_span + (group_year - first_year),
        -1,
    )

    benefit = np.zeros(n, dtype=np.int64)
    cumulative = np.zeros(n, dtype=np.int64)
    zero_reason = np.zeros(n, dtype=np.int64)
    grouped = np.flatnonzero(in_group)
    if grouped.size:
        order = grouped[_stable_argsort(key[grouped])]
        _price_groups(
            plan,
            order,
            key[order],
            row_product[order],
            counted[order],
            removes[order],
            hardship[source][order],
            base[source][order],
            source[order],
            benefit,
            cumulative,
            zero_reason,
        )

    # ----- reasons, in the precedence of INTERFACES.md §2 -----
    reason = np.zeros(n, dtype=np.int64)
    reason[~valid] = _R[Reason.INVALID]
    settle_rows = valid_settle
    reason = np.where(
        settle_rows,
        np.where(
            duplicate_settle, _R[Reason.DUPLICATE], np.where(counted, zero_reason, settle_reason)
        ),
        reason,
    )
    reason = np.where(valid_cancel & ~cancel_ok, _R[Reason.INVALID], reason)
    reason = np.where(cancel_ok & ~effective_cancel, _R[Reason.DUPLICATE], reason)
    reason = np.where(effective_cancel, _R[Reason.CANCELLED], reason)
    output_base = np.where(valid & (valid_settle | cancel_ok), row_base, 0)
    output_product = np.where(valid & (valid_settle | cancel_ok), row_product, 0)
    return BatchResult(
        product=output_product.astype(np.int8),
        base=output_base.astype(np.int64),
        benefit=benefit,
        cumulative=cumulative,
        reason=reason.astype(np.int8),
    )


def _stable_argsort(keys: I64) -> I64:
    """A stable argsort of non-negative keys: made unique with the position when that fits in
    int64, so that the (much faster) unstable sort can be used."""
    size = keys.size
    if size and int(keys.max()) < (2**62) // max(size, 1):
        return np.argsort(keys * size + np.arange(size, dtype=np.int64))
    return np.argsort(keys, kind="stable")


def _price_groups(
    plan: Plan,
    order: I64,
    keys: I64,
    product: I64,
    counted: Bool,
    removes: Bool,
    hardship: Bool,
    base: I64,
    source: I64,
    benefit_out: I64,
    cumulative_out: I64,
    reason_out: I64,
) -> None:
    """Running entitlement per group; rows are sorted by group, then processing order."""
    size = order.size
    new_group = np.empty(size, dtype=bool)
    new_group[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new_group[1:])
    starts = np.flatnonzero(new_group)
    group_id = np.cumsum(new_group) - 1

    # A group is mixed when its counted records do not all share one hardship status.
    counted_hardship = np.add.reduceat((counted & hardship).astype(np.int64), starts)
    counted_all = np.add.reduceat(counted.astype(np.int64), starts)
    group_hardship = counted_hardship > 0
    mixed = group_hardship & (counted_hardship < counted_all)
    row_hardship = group_hardship[group_id]

    entitled = np.zeros(size, dtype=np.int64)
    previous = np.zeros(size, dtype=np.int64)
    benefit = np.zeros(size, dtype=np.int64)
    zero = np.zeros(size, dtype=np.int64)
    combo = product * 2 + row_hardship
    for code, name in enumerate(PRODUCT_NAMES):
        if name is None or name not in plan.schedule_products():
            continue
        for status in (False, True):
            rows = np.flatnonzero(combo == code * 2 + int(status))
            if rows.size == 0:
                continue
            # Whole groups share one product and status, so the subset keeps every group whole
            # and contiguous: segment sums stay inside their group.
            _price_subset(
                terms_for(plan, name, status),
                new_group[rows],
                counted[rows],
                removes[rows],
                base[rows],
                rows,
                entitled,
                previous,
                benefit,
                zero,
            )

    # Mixed groups without a cancellation: priced run by run (a run is a stretch of one status).
    removing = np.add.reduceat(removes.astype(np.int64), starts) > 0
    by_runs = mixed & ~removing
    if by_runs.any():
        rows = np.flatnonzero(by_runs[group_id])
        sub_entitled, _, sub_benefit, sub_zero = _price_runs(
            plan, new_group[rows], product[rows], counted[rows], hardship[rows], base[rows]
        )
        entitled[rows] = sub_entitled
        benefit[rows] = sub_benefit
        zero[rows] = sub_zero
    mixed &= removing
    if mixed.any():
        rows = np.flatnonzero(mixed[group_id])  # whole groups, still contiguous
        sub_benefit = np.zeros(rows.size, dtype=np.int64)
        sub_entitled = np.zeros(rows.size, dtype=np.int64)
        sub_zero = np.zeros(rows.size, dtype=np.int64)
        _price_mixed_groups(
            plan,
            new_group[rows],
            product[rows],
            counted[rows],
            removes[rows],
            hardship[rows],
            base[rows],
            source[rows],
            sub_benefit,
            sub_entitled,
            sub_zero,
        )
        benefit[rows] = sub_benefit
        entitled[rows] = sub_entitled
        zero[rows] = sub_zero

    benefit_out[order] = benefit
    cumulative_out[order] = entitled
    reason_out[order] = zero


def _price_subset(
    terms: Terms,
    new_group: Bool,
    counted: Bool,
    removes: Bool,
    base: I64,
    rows: I64,
    entitled_out: I64,
    previous_out: I64,
    benefit_out: I64,
    zero_out: I64,
) -> None:
    """Groups of one product and one hardship status: E after every row, benefits, reasons.

    With one status the entitlement of a list is a function of its sum (module docstring): scope
    year E = P(Σ base), scope admission E = min(cap, Σ round(S(base − deductible))). A row adds
    its record (counted settle), takes its original away (effective cancel) or changes nothing.
    """
    # Scope year sums bases; scope admission sums each record's own rounded schedule.
    amount = base if terms.scope == "year" else _schedule_rounded(terms, base - terms.deductible)
    delta = np.where(counted, amount, 0) - np.where(removes, amount, 0)
    total = np.cumsum(delta)
    starts = np.flatnonzero(new_group)
    group_id = np.cumsum(new_group) - 1
    running = total - (total - delta)[starts][group_id]  # the group's sum after the row
    if terms.scope == "year":
        entitled = _year_price(terms, running)
    else:
        entitled = np.minimum(terms.cap, running)
    previous = np.empty_like(entitled)
    previous[0] = 0
    previous[1:] = entitled[:-1]
    previous[starts] = 0
    benefit = entitled - previous
    # Zero reasons of counted rows, in the order of RULES.md §4.
    within = running <= terms.deductible if terms.scope == "year" else base <= terms.deductible
    reason = np.where(
        within,
        _R[Reason.DEDUCTIBLE],
        np.where(previous >= terms.cap, _R[Reason.CAP_REACHED], _R[Reason.NOTHING_DUE]),
    )
    zero = np.where(counted & (benefit == 0), reason, 0)
    entitled_out[rows] = entitled
    previous_out[rows] = previous
    benefit_out[rows] = benefit
    zero_out[rows] = zero


def _price_runs(
    plan: Plan,
    new_group: Bool,
    product: I64,
    counted: Bool,
    hardship: Bool,
    base: I64,
) -> tuple[I64, I64, I64, I64]:
    """Groups whose records change hardship status inside the year, without cancellations.

    Within a run of records of one status (terms T) that starts with the year's running base B0
    and entitlement E0, the §4 recurrence telescopes to
        scope year:       E_i = max(E0, min(cap_T, E0 + P_T(B_i) − P_T(B0)))
        scope admission:  E_i = max(E0, min(cap_T, E0 + Σ round(S_T(base − deductible))))
    (E0 above cap_T — a hardship cap left behind — pays nothing more). Only E0 passes from one
    run to the next, so runs are priced level by level: every group's first run, then every
    group's second run, and so on.
    """
    size = new_group.size
    positions = np.arange(size, dtype=np.int64)
    group_id = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)[group_id]
    delta = np.where(counted, base, 0)
    total = np.cumsum(delta)
    running = total - (total - delta)[new_group][group_id]  # B after each row, in its group
    before = running - delta  # B before each row

    # Runs: a counted row starts one when it is its group's first counted row or its status
    # differs from the previous counted row's.
    counted_rows = np.flatnonzero(counted)
    status = hardship[counted_rows]
    group_of = group_id[counted_rows]
    starts_run = np.ones(counted_rows.size, dtype=bool)
    starts_run[1:] = (group_of[1:] != group_of[:-1]) | (status[1:] != status[:-1])
    run_of_counted = np.cumsum(starts_run) - 1
    run_first_row = counted_rows[starts_run]
    run_status = status[starts_run]
    run_group = group_of[starts_run]
    run_level = np.zeros(run_first_row.size, dtype=np.int64)
    if run_first_row.size:
        first_run_of_group = np.ones(run_first_row.size, dtype=bool)
        first_run_of_group[1:] = run_group[1:] != run_group[:-1]
        run_index = np.arange(run_first_row.size, dtype=np.int64)
        run_level = run_index - np.maximum.accumulate(np.where(first_run_of_group, run_index, 0))
    # Each row belongs to the run of the last counted row at or before it (none: −1).
    last_counted = np.maximum.accumulate(np.where(counted, positions, -1))
    row_run = np.full(size, -1, dtype=np.int64)
    has_run = last_counted >= group_start
    lookup = np.zeros(size, dtype=np.int64)
    lookup[counted_rows] = run_of_counted
    row_run[has_run] = lookup[last_counted[has_run]]

    entitled = np.zeros(size, dtype=np.int64)
    run_end = np.zeros(run_first_row.size, dtype=np.int64)
    row_level = np.where(row_run >= 0, run_level[np.maximum(row_run, 0)], -1)
    for level in range(int(run_level.max()) + 1 if run_level.size else 0):
        at_level = row_level == level
        runs_here = row_run[at_level]
        start_entitled = np.where(level > 0, run_end[np.maximum(runs_here - 1, 0)], 0)
        for code, name in enumerate(PRODUCT_NAMES):
            if name is None or name not in plan.schedule_products():
                continue
            for flag in (False, True):
                pick = (product[at_level] == code) & (run_status[runs_here] == flag)
                if not pick.any():
                    continue
                terms = terms_for(plan, name, flag)
                rows = np.flatnonzero(at_level)[pick]
                runs = runs_here[pick]
                start = start_entitled[pick]
                if terms.scope == "year":
                    gained = _year_price(terms, running[rows]) - _year_price(
                        terms, before[run_first_row[runs]]
                    )
                else:
                    raw = np.where(
                        counted[rows], _schedule_rounded(terms, base[rows] - terms.deductible), 0
                    )
                    summed = np.cumsum(raw)
                    first = np.ones(rows.size, dtype=bool)
                    first[1:] = runs[1:] != runs[:-1]
                    run_position = np.cumsum(first) - 1
                    gained = summed - (summed - raw)[first][run_position]
                entitled[rows] = np.maximum(start, np.minimum(terms.cap, start + gained))
        # The entitlement at a run's end is that of its last row.
        level_rows = np.flatnonzero(at_level)
        level_runs = row_run[level_rows]
        last = np.ones(level_rows.size, dtype=bool)
        last[:-1] = level_runs[1:] != level_runs[:-1]
        run_end[level_runs[last]] = entitled[level_rows[last]]

    previous = np.empty(size, dtype=np.int64)
    previous[0] = 0
    previous[1:] = entitled[:-1]
    previous[new_group] = 0
    benefit = entitled - previous
    zero = np.zeros(size, dtype=np.int64)
    priced = counted & (benefit == 0)
    for code, name in enumerate(PRODUCT_NAMES):
        if name is None or name not in plan.schedule_products():
            continue
        for flag in (False, True):
            rows = np.flatnonzero(priced & (product == code) & (hardship == flag))
            if rows.size == 0:
                continue
            terms = terms_for(plan, name, flag)
            if terms.scope == "year":
                within = running[rows] <= terms.deductible
                capped = (previous[rows] >= terms.cap) | (
                    _year_price(terms, before[rows]) >= terms.cap
                )
            else:
                within = base[rows] <= terms.deductible
                capped = previous[rows] >= terms.cap
            zero[rows] = np.where(
                within,
                _R[Reason.DEDUCTIBLE],
                np.where(capped, _R[Reason.CAP_REACHED], _R[Reason.NOTHING_DUE]),
            )
    return entitled, previous, benefit, zero


def _price_mixed_groups(
    plan: Plan,
    new_group: Bool,
    product: I64,
    counted: Bool,
    removes: Bool,
    hardship: Bool,
    base: I64,
    source: I64,
    benefit: I64,
    entitled: I64,
    zero: I64,
) -> None:
    """Record-by-record pricing of the groups that straddle a change of hardship status.

    The same formulas as the single-record path (``pricing.price_next``, ``pricing.price_list``):
    each record keeps the status of its own admission date; a cancel re-prices the list.
    """
    starts = np.flatnonzero(new_group)
    ends = np.append(starts[1:], new_group.size)
    # Plain Python lists: element access on NumPy arrays one at a time is slow.
    product_list = product.tolist()
    counted_list = counted.tolist()
    removes_list = removes.tolist()
    hardship_list = hardship.tolist()
    base_list = base.tolist()
    source_list = source.tolist()
    terms_by_product: dict[int, tuple[Terms, Terms]] = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        code = product_list[start]
        pair = terms_by_product.get(code)
        if pair is None:
            name = PRODUCT_NAMES[code]
            assert name is not None
            pair = terms_by_product[code] = (
                terms_for(plan, name, False),
                terms_for(plan, name, True),
            )
        items: list[tuple[int, Terms, int]] = []  # (source row, terms, base)
        running_base = 0
        total = 0
        for row in range(start, end):
            if counted_list[row]:
                terms = pair[1] if hardship_list[row] else pair[0]
                row_base = base_list[row]
                price = price_next(terms, row_base, running_base, total)
                zero[row] = (
                    _R[zero_reason(terms, row_base, running_base, total)] if price == 0 else 0
                )
                items.append((source_list[row], terms, row_base))
                running_base += row_base
                total += price
                benefit[row] = price
            elif removes_list[row]:
                target = source_list[row]
                index = next(i for i, item in enumerate(items) if item[0] == target)
                del items[index]
                new_total = sum(price_list([(terms, item_base) for _, terms, item_base in items]))
                running_base -= base_list[row]
                benefit[row] = new_total - total
                total = new_total
            else:
                benefit[row] = 0
            entitled[row] = total


# ---------------------------------------------------------------------------------------------
# Tables from Python objects (tests, benchmarks, the single-record comparison)


def _day(value: date) -> int:
    return (value - date(1970, 1, 1)).days


def tables_from_records(
    members: Mapping[str, MemberInfo], rows: Sequence[Row]
) -> tuple[SettlementTable, MemberTable]:
    """Build the batch tables from the objects ``engine.run_sequential`` takes.

    Members may have at most one hardship period (the members file has one).
    """
    member_rows: dict[str, list[object]] = {
        "certno": [],
        "member_type": [],
        "cov_start": [],
        "cov_end": [],
        "hs_start": [],
        "hs_end": [],
        "has_hardship": [],
    }
    for certno, info in members.items():
        if len(info.hardship_periods) > 1:
            raise ValueError("the batch member table holds one hardship period per member")
        period = info.hardship_periods[0] if info.hardship_periods else None
        member_rows["certno"].append(certno)
        member_rows["member_type"].append(MEMBER_TYPES.index(info.member_type))
        member_rows["cov_start"].append(_day(info.coverage_start))
        member_rows["cov_end"].append(_day(info.coverage_end))
        member_rows["hs_start"].append(_day(period[0]) if period and period[0] else int(OPEN_START))
        member_rows["hs_end"].append(_day(period[1]) if period and period[1] else int(OPEN_END))
        member_rows["has_hardship"].append(period is not None)
    member_frame = pl.DataFrame(
        member_rows,
        schema={
            "certno": pl.String,
            "member_type": pl.Int8,
            "cov_start": pl.Int32,
            "cov_end": pl.Int32,
            "hs_start": pl.Int32,
            "hs_end": pl.Int32,
            "has_hardship": pl.Boolean,
        },
    )
    columns: dict[str, list[object]] = {
        "setl_id": [],
        "certno": [],
        "valid": [],
        "is_cancel": [],
        "med_type": [],
        "adm_day": [],
        "setl_day": [],
        "base": [],
    }
    for row in rows:
        record = row.settlement
        columns["setl_id"].append(row.setl_id)
        columns["certno"].append(row.certno)
        columns["valid"].append(row.valid)
        columns["is_cancel"].append(row.record_type == "cancel")
        columns["med_type"].append(record.med_type if record else "")
        columns["adm_day"].append(_day(record.adm_date) if record else 0)
        columns["setl_day"].append(_day(record.setl_time.date()) if record else 0)
        columns["base"].append(record.base if record else 0)
    frame = pl.DataFrame(
        columns,
        schema={
            "setl_id": pl.String,
            "certno": pl.String,
            "valid": pl.Boolean,
            "is_cancel": pl.Boolean,
            "med_type": pl.String,
            "adm_day": pl.Int32,
            "setl_day": pl.Int32,
            "base": pl.Int64,
        },
    )
    return SettlementTable(frame), MemberTable(member_frame)
