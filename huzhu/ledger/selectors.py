"""Every read of the ledger, scoped to the actor's subtree (S5, R16, R17) and set-based: balances,
the trial balance and party balances are each one GROUP BY query over the lines (plus the
eleven-row chart), never a query per account, entry or party.

Scope: an entry is visible to an actor when the organisation that originated it is in the actor's
subtree (``organisation_path``). The province sees the whole fund; a city's finance staff see the
entries of their city's unions. Funds visible to an actor are the funds covering the actor's
organisation (an ancestor-or-self owns it) and any fund inside the actor's subtree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from django.db.models import Count, Exists, F, Max, OuterRef, Prefetch, Q, QuerySet, Sum

from huzhu.core.money import round_half_up
from huzhu.core.paging import KeysetPage, keyset_page
from huzhu.ledger.models import (
    Account,
    ClosedPeriod,
    Fund,
    JournalEntry,
    JournalLine,
    SourceType,
)
from huzhu.ledger.services import path_prefixes
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.selectors import scope_path

# R10 (湘政办发〔2025〕58号 (八)): the risk reserve is 5%–10% of the year's contributions.
RESERVE_MIN_RATE = Fraction(5, 100)
RESERVE_MAX_RATE = Fraction(10, 100)


def funds_for(actor: User) -> QuerySet[Fund]:
    path = scope_path(actor)
    if path is None:
        return Fund.objects.none()
    return Fund.objects.filter(
        Q(organisation_path__in=path_prefixes(path)) | subtree_q(path, "organisation_path")
    ).select_related("organisation")


def entries_for(actor: User) -> QuerySet[JournalEntry]:
    path = scope_path(actor)
    if path is None:
        return JournalEntry.objects.none()
    return JournalEntry.objects.filter(subtree_q(path, "organisation_path"))


def lines_for(actor: User) -> QuerySet[JournalLine]:
    path = scope_path(actor)
    if path is None:
        return JournalLine.objects.none()
    return JournalLine.objects.filter(subtree_q(path, "entry__organisation_path"))


def chart() -> list[Account]:
    return list(Account.objects.order_by("code"))


def actor_is_fund_level(actor: User, fund: Fund) -> bool:
    """Whether the actor's organisation is the fund's owner or above it (sees all its entries,
    may close its periods)."""
    path = scope_path(actor)
    return path is not None and fund.organisation_path.startswith(path)


# --- journal --------------------------------------------------------------------------------
@dataclass(frozen=True)
class JournalFilter:
    account: str = ""
    period: str = ""
    source_type: str = ""


EntryPage = KeysetPage[JournalEntry]


def search_entries(actor: User, fund: Fund, flt: JournalFilter) -> QuerySet[JournalEntry]:
    qs = entries_for(actor).filter(fund=fund)
    if flt.period:
        qs = qs.filter(period=flt.period)
    if flt.source_type:
        qs = qs.filter(source_type=flt.source_type)
    if flt.account:
        qs = qs.filter(
            Exists(JournalLine.objects.filter(entry=OuterRef("pk"), account__code=flt.account))
        )
    return qs


def page_entries(
    qs: QuerySet[JournalEntry], *, after: int | None, before: int | None, size: int
) -> EntryPage:
    """Newest first, keyset-paginated on the id (no OFFSET, no COUNT): three queries per page
    (entries with their organisation and poster, lines, accounts) whatever the page size."""
    qs = qs.select_related("organisation", "posted_by", "reverses").prefetch_related(
        Prefetch("lines", queryset=JournalLine.objects.select_related("account").order_by("pk"))
    )
    return keyset_page(qs, after=after, before=before, size=size)


# --- balances -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BalanceRow:
    account: Account
    debit_fen: int
    credit_fen: int

    @property
    def balance_fen(self) -> int:
        """On the account's normal side (an asset's debit balance is positive)."""
        return self.account.signed(self.debit_fen, self.credit_fen)


def account_balances(actor: User, fund: Fund, *, as_of: date) -> list[BalanceRow]:
    """Every account's total debits, credits and balance up to ``as_of`` (inclusive), over the
    entries the actor may see: one GROUP BY query."""
    totals: dict[int, tuple[int, int]] = {
        account_id: (int(debit or 0), int(credit or 0))
        for account_id, debit, credit in lines_for(actor)
        .filter(entry__fund=fund, entry__date__lte=as_of)
        .values("account_id")
        .annotate(debit=Sum("debit_fen"), credit=Sum("credit_fen"))
        .values_list("account_id", "debit", "credit")
        .order_by()
    }
    return [BalanceRow(account, *totals.get(account.pk, (0, 0))) for account in chart()]


@dataclass(frozen=True)
class TrialRow:
    account: Account
    opening_fen: int  # debit balance positive, credit balance negative
    period_debit_fen: int
    period_credit_fen: int

    @property
    def closing_fen(self) -> int:
        return self.opening_fen + self.period_debit_fen - self.period_credit_fen

    @property
    def opening_debit(self) -> int:
        return max(self.opening_fen, 0)

    @property
    def opening_credit(self) -> int:
        return max(-self.opening_fen, 0)

    @property
    def closing_debit(self) -> int:
        return max(self.closing_fen, 0)

    @property
    def closing_credit(self) -> int:
        return max(-self.closing_fen, 0)


@dataclass
class TrialBalance:
    start: date
    end: date
    rows: list[TrialRow] = field(default_factory=list)

    def _sum(self, name: str) -> int:
        return sum(getattr(row, name) for row in self.rows)

    @property
    def totals(self) -> dict[str, int]:
        return {
            name: self._sum(name)
            for name in (
                "opening_debit",
                "opening_credit",
                "period_debit_fen",
                "period_credit_fen",
                "closing_debit",
                "closing_credit",
            )
        }

    @property
    def balanced(self) -> bool:
        t = self.totals
        return (
            t["opening_debit"] == t["opening_credit"]
            and t["period_debit_fen"] == t["period_credit_fen"]
            and t["closing_debit"] == t["closing_credit"]
        )


def trial_balance(actor: User, fund: Fund, *, start: date, end: date) -> TrialBalance:
    """试算平衡表: opening balance before ``start``, the movements of [start, end], the closing
    balance; debit totals equal credit totals in every column pair. One GROUP BY query."""
    before = Q(entry__date__lt=start)
    within = Q(entry__date__gte=start, entry__date__lte=end)
    totals = {
        row["account_id"]: row
        for row in lines_for(actor)
        .filter(entry__fund=fund, entry__date__lte=end)
        .values("account_id")
        .annotate(
            open_debit=Sum("debit_fen", filter=before),
            open_credit=Sum("credit_fen", filter=before),
            debit=Sum("debit_fen", filter=within),
            credit=Sum("credit_fen", filter=within),
        )
        .order_by()
    }
    result = TrialBalance(start=start, end=end)
    for account in chart():
        row = totals.get(account.pk)
        if row is None:
            result.rows.append(TrialRow(account, 0, 0, 0))
            continue
        result.rows.append(
            TrialRow(
                account=account,
                opening_fen=int(row["open_debit"] or 0) - int(row["open_credit"] or 0),
                period_debit_fen=int(row["debit"] or 0),
                period_credit_fen=int(row["credit"] or 0),
            )
        )
    return result


# --- sub-ledgers ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PartyRow:
    party_type: str
    party_id: str
    party_name: str
    debit_fen: int
    credit_fen: int
    balance_fen: int  # on the account's normal side


@dataclass(frozen=True)
class PartyPage:
    account: Account
    rows: list[PartyRow]
    next_cursor: str | None


def party_balances(
    actor: User,
    fund: Fund,
    *,
    account_code: str,
    as_of: date,
    include_settled: bool = False,
    after: str | None = None,
    size: int = 50,
) -> PartyPage:
    """Per-party balances of a receivable or payable account (1122 per payer, 2241 per member,
    2242 per hospital): one GROUP BY query, keyset-paginated on (party_type, party_id)."""
    account = Account.objects.get(code=account_code)
    qs = (
        lines_for(actor)
        .filter(entry__fund=fund, entry__date__lte=as_of, account=account)
        .exclude(party_type="")
        .values("party_type", "party_id")
        .annotate(
            debit=Sum("debit_fen"),
            credit=Sum("credit_fen"),
            name=Max("party_name"),
        )
    )
    if not include_settled:
        qs = qs.exclude(debit=F("credit"))
    if after:
        party_type, _, party_id = after.partition(":")
        qs = qs.filter(
            Q(party_type__gt=party_type) | Q(party_type=party_type, party_id__gt=party_id)
        )
    rows = list(qs.order_by("party_type", "party_id")[: size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    result = [
        PartyRow(
            party_type=row["party_type"],
            party_id=row["party_id"],
            party_name=row["name"] or "",
            debit_fen=int(row["debit"]),
            credit_fen=int(row["credit"]),
            balance_fen=account.signed(int(row["debit"]), int(row["credit"])),
        )
        for row in rows
    ]
    cursor = f"{result[-1].party_type}:{result[-1].party_id}" if result and has_next else None
    return PartyPage(account=account, rows=result, next_cursor=cursor)


# --- periods --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodRow:
    period: str
    entries: int
    total_fen: int
    closed: ClosedPeriod | None


def period_summaries(actor: User, fund: Fund) -> list[PeriodRow]:
    """Every period with entries (newest first), its entry count and total, closed or not."""
    closed = {
        c.period: c for c in ClosedPeriod.objects.filter(fund=fund).select_related("closed_by")
    }
    rows = (
        entries_for(actor)
        .filter(fund=fund)
        .values("period")
        .annotate(n=Count("pk"), total=Sum("total_fen"))
        .order_by("-period")
    )
    periods = {row["period"]: row for row in rows}
    for period in closed:
        periods.setdefault(period, {"period": period, "n": 0, "total": 0})
    return [
        PeriodRow(
            period=p,
            entries=int(periods[p]["n"]),
            total_fen=int(periods[p]["total"] or 0),
            closed=closed.get(p),
        )
        for p in sorted(periods, reverse=True)
    ]


# --- risk reserve ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ReserveStatus:
    year: int
    contributions_fen: int
    allocated_fen: int

    @property
    def low_fen(self) -> int:
        return round_half_up(RESERVE_MIN_RATE * self.contributions_fen)

    @property
    def high_fen(self) -> int:
        return round_half_up(RESERVE_MAX_RATE * self.contributions_fen)

    @property
    def within_range(self) -> bool:
        return self.contributions_fen > 0 and self.low_fen <= self.allocated_fen <= self.high_fen

    def expected_fen(self, rate: Fraction) -> int:
        """The plan's ``risk_reserve_rate`` × the year's contributions, rounded half-up."""
        return round_half_up(rate * self.contributions_fen)


def reserve_status(fund: Fund, year: int) -> ReserveStatus:
    """The year's contributions (net credits to 4001 and 4002 — 4002 holds only the hardship
    waivers the union takes over, so both are contribution money — on entries dated in the
    year) and the reserve allocated for that coverage year (net credits to 3101 of allocations
    and their reversals). Fund-level (the province's view): one GROUP BY query."""
    allocation = Q(
        entry__source_type=SourceType.RESERVE_ALLOCATION,
        entry__source_id__startswith=f"{year}/",
    ) | Q(
        entry__reverses__source_type=SourceType.RESERVE_ALLOCATION,
        entry__reverses__source_id__startswith=f"{year}/",
    )
    income = Q(account__code__in=["4001", "4002"], entry__year=year)
    reserve = Q(account__code="3101") & allocation
    sums = (
        JournalLine.objects.filter(entry__fund=fund)
        .filter(income | reserve)
        .aggregate(
            income_credit=Sum("credit_fen", filter=income),
            income_debit=Sum("debit_fen", filter=income),
            reserve_credit=Sum("credit_fen", filter=reserve),
            reserve_debit=Sum("debit_fen", filter=reserve),
        )
    )
    return ReserveStatus(
        year=year,
        contributions_fen=int(sums["income_credit"] or 0) - int(sums["income_debit"] or 0),
        allocated_fen=int(sums["reserve_credit"] or 0) - int(sums["reserve_debit"] or 0),
    )
