"""The single-record benefit engine (RULES.md §3–§4): pure functions over a serialisable state.

Real-time one-stop settlement prices one record at a time. The caller (the database side) keeps,
per member, product and coverage year, a ``YearState``: the ordered list of the records that count
with their base, hardship status, pricing plan version and current price. It locks that row,
calls ``settle`` or ``cancel``, and stores the returned state with the result:

    key = locate(plans, record, member)          # (product, year) or None
    state = load(member, *key) or YearState.empty(*key)
    result, new_state = settle(plans, state, record, member)

``run_sequential`` applies the same functions to a whole ordered batch (INTERFACES.md §2); it is
the reference against which the vectorized ``huzhu.rules.batch`` is tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from huzhu.rules import explain
from huzhu.rules.plan import Plan, PlanVersions
from huzhu.rules.pricing import Terms, price_list, price_next, terms_for
from huzhu.rules.reasons import Reason

__all__ = [
    "Amounts",
    "CountedRecord",
    "InvalidSettlement",
    "MemberInfo",
    "Result",
    "Row",
    "Settlement",
    "YearState",
    "amount_errors",
    "cancel",
    "compute_base",
    "duplicate",
    "invalid",
    "locate",
    "rejected",
    "reprice",
    "results_as_rows",
    "run_sequential",
    "settle",
    "zero_reason",
]

RecordType = Literal["settle", "cancel"]
Plans = Plan | PlanVersions

STATE_FORMAT = 1


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What the engine needs to know about a member (INTERFACES.md §2 members file).

    ``hardship_periods`` are inclusive date ranges; ``None`` leaves a side open. Hardship status is
    taken as of the admission date (RULES.md §4).
    """

    member_type: str  # "self" | "family"
    coverage_start: date
    coverage_end: date
    hardship_periods: tuple[tuple[date | None, date | None], ...] = ()

    def covered_on(self, day: date) -> bool:
        return self.coverage_start <= day <= self.coverage_end

    def hardship_on(self, day: date) -> bool:
        return any(
            (start is None or start <= day) and (end is None or day <= end)
            for start, end in self.hardship_periods
        )


@dataclass(frozen=True, slots=True)
class Amounts:
    """The 2304 settlement amounts in fen (``../reference/settlement-fields.md``)."""

    medfee_sumamt: int
    inscp_scp_amt: int
    fund_pay_sumamt: int
    hosp_part_amt: int
    other_reimbursed: int = 0
    fulamt_ownpay_amt: int = 0
    overlmt_selfpay: int = 0
    preselfpay_amt: int = 0
    psn_part_amt: int = 0

    @classmethod
    def of_base(cls, base: int) -> Amounts:
        """Amounts whose base is ``base`` (in-scope = total = base, nothing else paid)."""
        return cls(medfee_sumamt=base, inscp_scp_amt=base, fund_pay_sumamt=0, hosp_part_amt=0)


def amount_errors(amounts: Amounts) -> list[tuple[str, str]]:
    """RULES.md §3: reject (error, not zero) a record with a negative amount or an impossible sum.

    Returns (field, Chinese reason) pairs; empty when the record is acceptable. Decimals are not
    checked here: amounts in fen are whole fen by construction.
    """
    errors: list[tuple[str, str]] = []
    for name in Amounts.__slots__:
        if getattr(amounts, name) < 0:
            errors.append((name, "金额不能为负数"))
    if amounts.fund_pay_sumamt + amounts.hosp_part_amt > amounts.medfee_sumamt:
        errors.append(
            (
                "fund_pay_sumamt",
                "基金支付总额与医院负担金额之和大于医疗费总额（fund_pay_sumamt + "
                "hosp_part_amt > medfee_sumamt）",
            )
        )
    if amounts.inscp_scp_amt > amounts.medfee_sumamt:
        errors.append(
            ("inscp_scp_amt", "符合政策范围金额大于医疗费总额（inscp_scp_amt > medfee_sumamt）")
        )
    return errors


def compute_base(amounts: Amounts) -> int:
    """base = max(0, inscp_scp_amt − fund_pay_sumamt − hosp_part_amt − other_reimbursed).

    RULES.md §3: out-of-scope self-pay, over-limit self-pay and Class-B prior self-pay are never in
    the base, so a benefit never exceeds what the member bore within scope (湘政办发〔2025〕58号
    （二）: no over-compensation).
    """
    return max(
        0,
        amounts.inscp_scp_amt
        - amounts.fund_pay_sumamt
        - amounts.hosp_part_amt
        - amounts.other_reimbursed,
    )


class InvalidSettlement(ValueError):
    """The record breaks RULES.md §3; ``errors`` lists (field, Chinese reason)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("；".join(f"{name}：{reason}" for name, reason in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Settlement:
    """A settle record (2304) as the engine sees it."""

    setl_id: str
    med_type: str
    adm_date: date
    setl_time: datetime
    amounts: Amounts

    @property
    def base(self) -> int:
        return compute_base(self.amounts)


# ---------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True, slots=True)
class CountedRecord:
    """A record that counts in its year (RULES.md §4), with its price after the last re-pricing."""

    setl_id: str
    base: int
    hardship: bool
    plan_code: str
    adm_date: date
    price: int

    def to_json(self) -> dict[str, Any]:
        return {
            "setl_id": self.setl_id,
            "base": self.base,
            "hardship": self.hardship,
            "plan_code": self.plan_code,
            "adm_date": self.adm_date.isoformat(),
            "price": self.price,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CountedRecord:
        return cls(
            setl_id=str(data["setl_id"]),
            base=_as_int(data["base"]),
            hardship=bool(data["hardship"]),
            plan_code=str(data["plan_code"]),
            adm_date=date.fromisoformat(str(data["adm_date"])),
            price=_as_int(data["price"]),
        )


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"应为整数（分）：{value!r}")
    return value


@dataclass(frozen=True, slots=True)
class YearState:
    """The running state of one member, one product, one coverage year (RULES.md §4).

    Shared by all plan versions of the year: a revision never restarts deductibles or caps.
    ``total`` (E) is what has been paid net for the year, ``running_base`` (B) the sum of bases.
    """

    product: str
    year: int
    records: tuple[CountedRecord, ...] = ()

    @classmethod
    def empty(cls, product: str, year: int) -> YearState:
        return cls(product=product, year=year)

    @property
    def total(self) -> int:
        return sum(record.price for record in self.records)

    @property
    def running_base(self) -> int:
        return sum(record.base for record in self.records)

    def find(self, setl_id: str) -> int | None:
        for index, record in enumerate(self.records):
            if record.setl_id == setl_id:
                return index
        return None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (amounts in integer fen) for storage next to the member's year."""
        return {
            "format": STATE_FORMAT,
            "product": self.product,
            "year": self.year,
            "records": [record.to_json() for record in self.records],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> YearState:
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"不支持的状态格式：{data.get('format')!r}")
        return cls(
            product=str(data["product"]),
            year=_as_int(data["year"]),
            records=tuple(CountedRecord.from_json(item) for item in data["records"]),
        )


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one record: the columns of INTERFACES.md §2 plus an explanation.

    ``benefit`` of a cancellation is the change of the year's entitlement (may be negative);
    ``cumulative_benefit`` is the net total for (member, product, year) after the record, 0 when
    no product applies. ``reason`` is None for a positive settle benefit.
    """

    setl_id: str
    record_type: RecordType
    product: str | None
    year: int | None
    base: int
    benefit: int
    cumulative_benefit: int
    reason: Reason | None
    plan_code: str | None = None
    counted: bool = False
    explanation: dict[str, Any] = field(default_factory=dict, compare=False)


def _select(plans: Plans, day: date) -> Plan:
    return plans.select(day) if isinstance(plans, PlanVersions) else plans


def _by_code(plans: Plans, code: str) -> Plan:
    if isinstance(plans, PlanVersions):
        return plans.by_code(code)
    if plans.code != code:
        raise KeyError(f"没有编码为 {code} 的计划版本")
    return plans


def locate(plans: Plans, record: Settlement, member: MemberInfo | None) -> tuple[str, int] | None:
    """The (product, coverage year) whose state a settle record reads, or None if no product
    applies (member unknown or med_type not covered for the member's type)."""
    if member is None:
        return None
    plan = _select(plans, record.adm_date)
    product = plan.route(member.member_type, record.med_type)
    if product is None:
        return None
    return product.name, record.adm_date.year


def _check_state(state: YearState | None, key: tuple[str, int] | None) -> YearState | None:
    if key is None:
        return None
    if state is None:
        return YearState.empty(*key)
    if (state.product, state.year) != key:
        raise ValueError(f"状态属于 {state.product}/{state.year}，而该结算属于 {key[0]}/{key[1]}")
    return state


def invalid(setl_id: str, record_type: RecordType) -> Result:
    """An INVALID row (INTERFACES.md §2): nothing computed, nothing registered."""
    return Result(
        setl_id=setl_id,
        record_type=record_type,
        product=None,
        year=None,
        base=0,
        benefit=0,
        cumulative_benefit=0,
        reason=Reason.INVALID,
        explanation=explain.rejected(Reason.INVALID, setl_id=setl_id, record_type=record_type),
    )


def _no_product_result(record: Settlement, reason: Reason, base: int, plan: Plan | None) -> Result:
    return Result(
        setl_id=record.setl_id,
        record_type="settle",
        product=None,
        year=record.adm_date.year,
        base=base,
        benefit=0,
        cumulative_benefit=0,
        reason=reason,
        plan_code=plan.code if plan is not None else None,
        explanation=explain.rejected(
            reason,
            setl_id=record.setl_id,
            record_type="settle",
            base=base,
            amounts=record.amounts,
            plan_code=plan.code if plan is not None else None,
        ),
    )


def duplicate(
    plans: Plans, state: YearState | None, record: Settlement, member: MemberInfo | None
) -> Result:
    """DUPLICATE: the ``setl_id`` was already settled (INTERFACES.md §2); nothing changes.

    The product and the year's total are shown as for any other record of that member.
    """
    return rejected(plans, state, record, member, Reason.DUPLICATE)


def _zero_settle(
    record: Settlement,
    reason: Reason,
    *,
    plan: Plan,
    product: str | None,
    cumulative: int,
    with_explanation: bool = True,
    threshold: int | None = None,
) -> Result:
    """The result of a settle record that pays nothing and changes no running total."""
    return Result(
        setl_id=record.setl_id,
        record_type="settle",
        product=product,
        year=record.adm_date.year,
        base=record.base,
        benefit=0,
        cumulative_benefit=cumulative,
        reason=reason,
        plan_code=plan.code,
        explanation=explain.rejected(
            reason,
            setl_id=record.setl_id,
            record_type="settle",
            base=record.base,
            amounts=record.amounts,
            plan_code=plan.code,
            product=product,
            cumulative=cumulative,
            threshold=threshold,
        )
        if with_explanation
        else {},
    )


def rejected(
    plans: Plans,
    state: YearState | None,
    record: Settlement,
    member: MemberInfo | None,
    reason: Reason,
) -> Result:
    """A settle record that the caller refuses before pricing (DUPLICATE, NO_CONSENT, …).

    Nothing changes; the result shows the record's product, base and the year's total as
    ``settle`` would. ``NO_CONSENT`` exists only where consent is known (the database path).
    """
    plan = _select(plans, record.adm_date)
    key = locate(plans, record, member)
    state = _check_state(state, key)
    cumulative = state.total if state is not None else 0
    return _zero_settle(
        record, reason, plan=plan, product=key[0] if key else None, cumulative=cumulative
    )


def settle(
    plans: Plans,
    state: YearState | None,
    record: Settlement,
    member: MemberInfo | None,
    *,
    with_explanation: bool = True,
) -> tuple[Result, YearState | None]:
    """Price a settle record against the member's state for its product and year.

    ``member`` None means the ID number matches no member (NOT_FOUND). ``state`` may be None when
    there is none yet (or no product applies). Checks in the order of INTERFACES.md §2: NOT_FOUND,
    NOT_COVERED, LATE_CLAIM, MED_TYPE_NOT_COVERED, ZERO_BASE, BELOW_THRESHOLD; a record that passes
    them counts and joins the end of the list (DEDUCTIBLE, CAP_REACHED, NOTHING_DUE then explain a
    zero price). DUPLICATE is the caller's to detect (it knows every ``setl_id``): see
    ``duplicate``. Raises ``InvalidSettlement`` for a record that RULES.md §3 rejects.
    """
    errors = amount_errors(record.amounts)
    if errors:
        raise InvalidSettlement(errors)
    base = record.base
    plan = _select(plans, record.adm_date)
    if member is None:
        return _no_product_result(record, Reason.NOT_FOUND, base, plan), state
    key = locate(plans, record, member)
    state = _check_state(state, key)
    product = key[0] if key is not None else None
    year = record.adm_date.year
    cumulative = state.total if state is not None else 0

    reason: Reason | None = None
    if not member.covered_on(record.adm_date) or year != plan.year:
        reason = Reason.NOT_COVERED
    elif record.setl_time.date() > plan.claim_deadline:
        reason = Reason.LATE_CLAIM  # the deadline day itself is on time
    elif product is None:
        reason = Reason.MED_TYPE_NOT_COVERED
    if reason is not None or product is None or state is None:
        result = _zero_settle(
            record,
            reason or Reason.MED_TYPE_NOT_COVERED,
            plan=plan,
            product=product,
            cumulative=cumulative,
            with_explanation=with_explanation,
        )
        return result, state

    hardship = member.hardship_on(record.adm_date)
    terms = terms_for(plan, product, hardship)
    if base == 0 or base < terms.threshold:
        # A record below the threshold pays nothing and does not count toward any running total.
        reason = Reason.ZERO_BASE if base == 0 else Reason.BELOW_THRESHOLD
        result = _zero_settle(
            record,
            reason,
            plan=plan,
            product=product,
            cumulative=cumulative,
            with_explanation=with_explanation,
            threshold=terms.threshold,
        )
        return result, state

    running_base = state.running_base
    entitled = cumulative
    price = price_next(terms, base, running_base, entitled)
    reason = None
    if price == 0:
        reason = zero_reason(terms, base, running_base, entitled)
    new_state = YearState(
        product=state.product,
        year=state.year,
        records=(
            *state.records,
            CountedRecord(
                setl_id=record.setl_id,
                base=base,
                hardship=hardship,
                plan_code=plan.code,
                adm_date=record.adm_date,
                price=price,
            ),
        ),
    )
    result = Result(
        setl_id=record.setl_id,
        record_type="settle",
        product=product,
        year=year,
        base=base,
        benefit=price,
        cumulative_benefit=entitled + price,
        reason=reason,
        plan_code=plan.code,
        counted=True,
        explanation=explain.priced(
            terms,
            setl_id=record.setl_id,
            base=base,
            amounts=record.amounts,
            running_base=running_base,
            entitled=entitled,
            price=price,
            reason=reason,
            year=year,
        )
        if with_explanation
        else {},
    )
    return result, new_state


def zero_reason(terms: Terms, base: int, running_base: int, entitled: int) -> Reason:
    """Why a counted record is priced 0, in the order of RULES.md §4."""
    if terms.scope == "year":
        if running_base + base <= terms.deductible:
            return Reason.DEDUCTIBLE
        if entitled >= terms.cap or terms.year_price(running_base) >= terms.cap:
            return Reason.CAP_REACHED
    else:
        if base <= terms.deductible:
            return Reason.DEDUCTIBLE
        if entitled >= terms.cap:
            return Reason.CAP_REACHED
    return Reason.NOTHING_DUE


def _terms_of(plans: Plans, state: YearState, record: CountedRecord) -> Terms:
    return terms_for(_by_code(plans, record.plan_code), state.product, record.hardship)


def reprice(plans: Plans, state: YearState) -> YearState:
    """The state with every record priced again from the start (after a removal)."""
    prices = price_list(
        [(_terms_of(plans, state, record), record.base) for record in state.records]
    )
    records = tuple(
        CountedRecord(
            setl_id=record.setl_id,
            base=record.base,
            hardship=record.hardship,
            plan_code=record.plan_code,
            adm_date=record.adm_date,
            price=price,
        )
        for record, price in zip(state.records, prices, strict=True)
    )
    return YearState(product=state.product, year=state.year, records=records)


def cancel(
    plans: Plans,
    state: YearState | None,
    setl_id: str,
    *,
    base: int = 0,
    with_explanation: bool = True,
) -> tuple[Result, YearState | None]:
    """Cancel (2305) the record ``setl_id`` of this state (RULES.md §4).

    The record leaves the list, the list is priced again from the start, and the result's benefit
    is E(after) − E(before): the reversal of the record plus any re-pricing of the records after
    it, in one amount. A record that never counted (not in ``state``) changes nothing; pass its
    ``base`` to have it shown. ``state`` None: the original had no product.
    """
    if state is None:
        result = Result(
            setl_id=setl_id,
            record_type="cancel",
            product=None,
            year=None,
            base=base,
            benefit=0,
            cumulative_benefit=0,
            reason=Reason.CANCELLED,
            explanation=explain.cancelled(
                setl_id=setl_id,
                product=None,
                year=None,
                base=base,
                before=0,
                after=0,
                repriced=[],
                counted=False,
            )
            if with_explanation
            else {},
        )
        return result, None
    index = state.find(setl_id)
    before = state.total
    if index is None:
        new_state = state
        removed_base = base
        repriced: list[tuple[str, int, int]] = []
    else:
        removed_base = state.records[index].base
        remaining = YearState(
            product=state.product,
            year=state.year,
            records=state.records[:index] + state.records[index + 1 :],
        )
        new_state = reprice(plans, remaining)
        repriced = [
            (old.setl_id, old.price, new.price)
            for old, new in zip(remaining.records, new_state.records, strict=True)
            if old.price != new.price
        ]
    after = new_state.total
    result = Result(
        setl_id=setl_id,
        record_type="cancel",
        product=state.product,
        year=state.year,
        base=removed_base,
        benefit=after - before,
        cumulative_benefit=after,
        reason=Reason.CANCELLED,
        plan_code=state.records[index].plan_code if index is not None else None,
        explanation=explain.cancelled(
            setl_id=setl_id,
            product=state.product,
            year=state.year,
            base=removed_base,
            before=before,
            after=after,
            repriced=repriced,
            counted=index is not None,
        )
        if with_explanation
        else {},
    )
    return result, new_state


# ---------------------------------------------------------------------------------------------
# A whole batch, one record at a time (the reference for the vectorized path)


@dataclass(frozen=True, slots=True)
class Row:
    """One settlement row of a batch after validation, in processing order (INTERFACES.md §2).

    ``settlement`` is set for a valid settle row; a valid cancel row needs only its ids.
    """

    setl_id: str
    certno: str
    record_type: RecordType
    valid: bool
    settlement: Settlement | None = None


@dataclass(slots=True)
class _Original:
    certno: str
    key: tuple[str, int] | None
    base: int


def run_sequential(
    plans: Plans,
    members: Mapping[str, MemberInfo],
    rows: Iterable[Row],
    *,
    with_explanation: bool = False,
) -> list[Result]:
    """Adjudicate ordered rows one by one with ``settle``/``cancel`` (INTERFACES.md §2 rules for
    INVALID cancels and DUPLICATE rows). One result per row, in order."""
    states: dict[tuple[str, str, int], YearState] = {}
    originals: dict[str, _Original] = {}  # setl_id → the settle row that first registered it
    settled_pairs: set[tuple[str, str]] = set()  # (setl_id, certno) of every valid settle row
    cancelled: set[str] = set()
    results: list[Result] = []

    def state_of(certno: str, key: tuple[str, int] | None) -> YearState | None:
        if key is None:
            return None
        return states.get((certno, *key)) or YearState.empty(*key)

    for row in rows:
        if not row.valid:
            results.append(invalid(row.setl_id, row.record_type))
            continue
        if row.record_type == "settle":
            record = row.settlement
            if record is None:
                raise ValueError("a valid settle row carries its settlement")
            member = members.get(row.certno)
            key = locate(plans, record, member)
            settled_pairs.add((row.setl_id, row.certno))
            state = state_of(row.certno, key)
            if row.setl_id in originals:
                results.append(duplicate(plans, state, record, member))
                continue
            originals[row.setl_id] = _Original(row.certno, key, record.base)
            result, new_state = settle(
                plans, state, record, member, with_explanation=with_explanation
            )
            if new_state is not None and key is not None and new_state is not state:
                states[(row.certno, *key)] = new_state
            results.append(result)
            continue
        # A cancel is valid only after a valid settle row with the same setl_id and certno.
        if (row.setl_id, row.certno) not in settled_pairs:
            results.append(invalid(row.setl_id, "cancel"))
            continue
        original = originals[row.setl_id]
        state = state_of(original.certno, original.key)
        if row.setl_id in cancelled:
            results.append(
                Result(
                    setl_id=row.setl_id,
                    record_type="cancel",
                    product=original.key[0] if original.key else None,
                    year=original.key[1] if original.key else None,
                    base=original.base,
                    benefit=0,
                    cumulative_benefit=state.total if state is not None else 0,
                    reason=Reason.DUPLICATE,
                    explanation=explain.rejected(
                        Reason.DUPLICATE,
                        setl_id=row.setl_id,
                        record_type="cancel",
                        base=original.base,
                    )
                    if with_explanation
                    else {},
                )
            )
            continue
        cancelled.add(row.setl_id)
        result, new_state = cancel(
            plans, state, row.setl_id, base=original.base, with_explanation=with_explanation
        )
        if new_state is not None and original.key is not None:
            states[(original.certno, *original.key)] = new_state
        results.append(result)
    return results


def results_as_rows(results: Sequence[Result]) -> list[tuple[str, str, int, int, int, str]]:
    """(record_type, product, base, benefit, cumulative, reason) of each result, for comparisons."""
    return [
        (
            result.record_type,
            result.product or "",
            result.base,
            result.benefit,
            result.cumulative_benefit,
            result.reason.value if result.reason else "",
        )
        for result in results
    ]
