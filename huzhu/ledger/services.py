"""Every write of the ledger (RULES.md §7, S15, S16): balanced, append-only, audited, idempotent.

Transactions. Every function here runs in ``transaction.atomic()`` but never with
``durable=True``: postings are made inside other services' transactions (recording a contribution
payment posts Dr 1001 / Cr 1122 in the payment's own transaction), so the OUTER service owns the
transaction (ARCHITECTURE.md convention 5) and the entry commits or rolls back with the business
change that caused it. Called on its own, a posting is its own transaction.

Lock order (PostgreSQL): the transaction's audit chain head, then the (fund, year) entry counter,
then the account balance rows in account-code order. ``record_event`` locks the head of the chain
the transaction appends to (one of ``HUZHU_AUDIT_CHAINS``, ADR 0002), and callers typically write
their own audit event before posting; taking that chain first here keeps one order for every
transaction and so rules out a deadlock between "audit, then post" and "post, then audit". The
counter lock alone guarantees gap-free numbering (``tests/ledger/test_concurrency.py``);
it and the fund's balance rows are what concurrent postings queue on.

Idempotency. A posting is keyed by (source_type, source_id, purpose) with a database unique
constraint: a retried call with the same lines returns the entry already posted (no second audit
event); the same key with different lines is a ``ConflictError``.

Intent helpers (``post_contribution_invoiced`` …) let other apps say what happened instead of
naming accounts. ``organisation`` is always the union the business object belongs to (the
enrolling union of an invoice, the member's union for a benefit), so each subtree sees complete
sub-ledgers.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from huzhu.core.audit import Event, lock_transaction_chain, record_event
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.money import format_fen
from huzhu.ledger.models import (
    Account,
    AccountBalance,
    ClosedPeriod,
    EntrySequence,
    Fund,
    JournalEntry,
    JournalLine,
    PartyType,
    SourceType,
)
from huzhu.orgs.access import require
from huzhu.orgs.models import Union, User
from huzhu.orgs.roles import Perm

if TYPE_CHECKING:
    from huzhu.ledger.selectors import ReserveStatus
    from huzhu.members.models import Member
    from huzhu.orgs.models import Unit

MEMO_MAX = 200
REASON_MAX = 100

BANK = "1001"
RECEIVABLE = "1122"
BENEFITS_PAYABLE = "2241"
HOSPITALS_PAYABLE = "2242"
FUND_BALANCE = "3001"
RISK_RESERVE = "3101"
CONTRIBUTION_INCOME = "4001"
UNION_SUBSIDY_INCOME = "4002"
BENEFIT_EXPENSE = "5001"
OPERATING_COST = "5101"
HEALTH_SPENDING = "5201"


# --- values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Party:
    """A sub-ledger party (辅助核算对象): who owes the fund, or whom the fund owes."""

    party_type: str
    party_id: str
    name: str = ""

    @classmethod
    def unit(cls, unit: Unit) -> Party:
        return cls(PartyType.UNIT, str(unit.pk), unit.name)

    @classmethod
    def union(cls, union: Union) -> Party:
        return cls(PartyType.UNION, str(union.pk), union.name)

    @classmethod
    def member(cls, member: Member) -> Party:
        return cls(PartyType.MEMBER, str(member.pk), member.name)

    @classmethod
    def hospital(cls, code: str, name: str = "") -> Party:
        """A medical institution by its national code (定点医药机构编号, ``fixmedins_code``)."""
        return cls(PartyType.HOSPITAL, code, name)


@dataclass(frozen=True)
class LineSpec:
    """One line to post: an account code and an amount on exactly one side, in fen."""

    account: str
    debit_fen: int = 0
    credit_fen: int = 0
    party: Party | None = None

    @classmethod
    def debit(cls, account: str, fen: int, party: Party | None = None) -> LineSpec:
        return cls(account, debit_fen=fen, party=party)

    @classmethod
    def credit(cls, account: str, fen: int, party: Party | None = None) -> LineSpec:
        return cls(account, credit_fen=fen, party=party)

    def key(self) -> tuple[str, int, int, str, str]:
        party = self.party
        return (
            self.account,
            self.debit_fen,
            self.credit_fen,
            party.party_type if party else "",
            party.party_id if party else "",
        )


@dataclass(frozen=True)
class PayerShare:
    """What one payer owes on an invoice: its contribution share (→ 4001) and, for the union,
    the hardship waivers it takes over (→ 4002, RULES.md §6)."""

    party: Party
    contribution_fen: int
    subsidy_fen: int = 0


@dataclass(frozen=True)
class PartyAmount:
    party: Party
    amount_fen: int


@dataclass(frozen=True)
class ReserveAllocation:
    entry: JournalEntry
    status: ReserveStatus


# --- periods and funds ----------------------------------------------------------------------
_PERIOD_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_period(text: str) -> tuple[int, int] | None:
    """ "2026-03" → (2026, 3); anything else → None."""
    match = _PERIOD_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def period_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def path_prefixes(path: str) -> list[str]:
    """ "00000001/00000002/" → ["00000001/", "00000001/00000002/"] (root first)."""
    parts = [p for p in path.split("/") if p]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def fund_for(organisation: Union) -> Fund:
    """The pooling fund covering ``organisation``: the nearest ancestor-or-self that has one; if
    none has, the root union's fund (省级统筹) is opened."""
    prefixes = path_prefixes(organisation.path)
    funds = sorted(
        Fund.objects.filter(organisation_path__in=prefixes),
        key=lambda f: len(f.organisation_path),
    )
    if funds:
        return funds[-1]
    root = organisation if organisation.path == prefixes[0] else Union.objects.get(path=prefixes[0])
    fund, _ = Fund.objects.get_or_create(
        organisation=root,
        defaults={"organisation_path": root.path, "name": f"{root.name}职工互助保障基金"},
    )
    return fund


def _in_scope(actor: User, organisation: Union) -> bool:
    if actor.organisation_id is None or actor.organisation is None:
        return False
    return organisation.path.startswith(actor.organisation.path)


def _accounts() -> dict[str, Account]:
    return {a.code: a for a in Account.objects.all()}


def _lock_audit_chain() -> None:
    # The transaction's audit chain (the one record_event appends to later in this transaction),
    # locked before the entry counter: see the module docstring (one lock order, no deadlock).
    lock_transaction_chain()


def _lock_counter(fund: Fund, year: int) -> EntrySequence:
    """The (fund, year) counter row, created if missing, locked until the transaction ends."""
    EntrySequence.objects.bulk_create([EntrySequence(fund=fund, year=year)], ignore_conflicts=True)
    return EntrySequence.objects.select_for_update().get(fund=fund, year=year)


_NEXT_NUMBER_SQL = f"""
    INSERT INTO "{EntrySequence._meta.db_table}" ("fund_id", "year", "last_number")
    VALUES (%s, %s, 1)
    ON CONFLICT ("fund_id", "year")
    DO UPDATE SET "last_number" = "{EntrySequence._meta.db_table}"."last_number" + 1
    RETURNING "last_number"
"""  # noqa: S608 - the table name comes from the model


def next_number(fund: Fund, year: int) -> int:
    """The next entry number of (fund, year), under the counter row's lock (S16): the lock is
    held until the caller's transaction ends, so concurrent postings queue here and numbers have
    neither gaps nor duplicates; a rolled-back posting rolls the counter back too. One statement
    (an upsert that creates the year's counter at 1 or increments it, locking the row, and
    returns the number) — it runs while the fund's other postings wait."""
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_NUMBER_SQL, [fund.pk, year])
        row = cursor.fetchone()
    return int(row[0])


# --- posting --------------------------------------------------------------------------------
def _validate_lines(
    errors: ErrorCollector, specs: Sequence[LineSpec], accounts: dict[str, Account]
) -> int:
    """Check every line; return the debit total (0 when the entry cannot be posted)."""
    if len(specs) < 2:
        errors.add("lines", "一张凭证至少要有两条分录（有借必有贷）")
    debit_total = credit_total = 0
    for index, spec in enumerate(specs, start=1):
        where = f"第 {index} 条分录"
        account = accounts.get(spec.account)
        if account is None:
            errors.add("lines", f"{where}：科目“{spec.account}”不存在")
        amounts_ok = all(
            isinstance(v, int) and not isinstance(v, bool)
            for v in (spec.debit_fen, spec.credit_fen)
        )
        if not amounts_ok or spec.debit_fen < 0 or spec.credit_fen < 0:
            errors.add("lines", f"{where}：金额必须是不小于零的整数（分）")
            continue
        if (spec.debit_fen > 0) == (spec.credit_fen > 0):
            errors.add("lines", f"{where}：借方和贷方必须有且只有一方金额大于零")
            continue
        debit_total += spec.debit_fen
        credit_total += spec.credit_fen
        if account is None:
            continue
        allowed = account.allowed_party_types()
        party = spec.party
        if party is None:
            if allowed:
                labels = "、".join(p.label for p in PartyType if p in allowed)
                errors.add("lines", f"{where}：科目 {account} 须注明往来对象（{labels}）")
        elif party.party_type not in allowed:
            errors.add("lines", f"{where}：科目 {account} 不能按“{party.party_type}”辅助核算")
        elif not str(party.party_id).strip() or len(str(party.party_id)) > 64:
            errors.add("lines", f"{where}：往来对象编号不能为空，且不超过64个字符")
    if debit_total != credit_total:
        errors.add(
            "lines",
            f"借贷不平衡：借方合计 {format_fen(debit_total)} 元，"
            f"贷方合计 {format_fen(credit_total)} 元",
        )
    return debit_total


def _check_common(
    errors: ErrorCollector,
    *,
    acting_user: User | None,
    organisation: Union,
    fund: Fund,
    day: date,
) -> None:
    if acting_user is not None and not _in_scope(acting_user, organisation):
        errors.add("organisation", "该组织不在您的管辖范围内")
    if acting_user is None:
        # A posting made by the system (a settlement, a payment's side effect) learns of a closed
        # period from the authoritative check under the counter lock in ``_post``: one statement
        # less on the hot path. A person's posting is told here, with their other errors at once.
        return
    period = period_of(day)
    if ClosedPeriod.objects.filter(fund=fund, period=period).exists():
        errors.add("date", f"会计期间 {period} 已结账，不能再记账", ErrorCode.STATE)


def _replay(existing: JournalEntry, specs: Sequence[LineSpec]) -> JournalEntry:
    posted = sorted(
        (line.account.code, line.debit_fen, line.credit_fen, line.party_type, line.party_id)
        for line in existing.lines.select_related("account")
    )
    if posted != sorted(spec.key() for spec in specs):
        raise ConflictError(
            f"该业务已记账（凭证 {existing.display_number}），且本次的科目或金额与之不同"
        )
    return existing


def _apply_balances(fund: Fund, specs: Sequence[LineSpec], accounts: dict[str, Account]) -> None:
    deltas: dict[str, int] = {}
    for spec in specs:
        account = accounts[spec.account]
        deltas[spec.account] = deltas.get(spec.account, 0) + account.signed(
            spec.debit_fen, spec.credit_fen
        )
    AccountBalance.objects.bulk_create(
        [
            AccountBalance(
                fund=fund, account=accounts[code], may_be_negative=accounts[code].may_be_negative
            )
            for code in sorted(deltas)
        ],
        ignore_conflicts=True,
    )
    for code in sorted(deltas):  # one order for every posting: no deadlock between them
        delta = deltas[code]
        if delta == 0:
            continue
        account = accounts[code]
        rows = AccountBalance.objects.filter(fund=fund, account=account)
        if delta < 0 and not account.may_be_negative:
            # Check and change in one statement (no read-modify-write); the row's check
            # constraint is the backstop.
            rows = rows.filter(balance_fen__gte=-delta)
        if rows.update(balance_fen=F("balance_fen") + delta) == 0:
            current = (
                AccountBalance.objects.filter(fund=fund, account=account)
                .values_list("balance_fen", flat=True)
                .first()
            ) or 0
            raise InvalidInput(
                [
                    FieldError(
                        "lines",
                        f"科目 {account} 余额不足：当前余额 {format_fen(current)} 元，"
                        f"本次减少 {format_fen(-delta)} 元（基金与风险储备金不得透支）",
                        ErrorCode.STATE,
                    )
                ]
            )


def _post(
    *,
    acting_user: User | None,
    organisation: Union,
    day: date,
    memo: str,
    specs: Sequence[LineSpec],
    source_type: str,
    source_id: str,
    purpose: str,
    reverses: JournalEntry | None = None,
    fund: Fund | None = None,
    event: Event = Event.LEDGER_POSTED,
    extra_detail: dict[str, object] | None = None,
) -> JournalEntry:
    errors = ErrorCollector()
    memo = (memo or "").strip()
    if not memo:
        errors.add("memo", "摘要不能为空", ErrorCode.REQUIRED)
    elif len(memo) > MEMO_MAX:
        errors.add("memo", f"摘要不能超过{MEMO_MAX}个字")
    if not isinstance(day, date) or isinstance(day, datetime):
        errors.add("date", "记账日期无效（须为日期）")
    source_id = str(source_id).strip()
    if source_type not in SourceType.values:
        errors.add("source_type", f"业务类型“{source_type}”无效")
    if not source_id or len(source_id) > 64:
        errors.add("source_id", "业务编号不能为空，且不超过64个字符")
    if len(purpose) > 32:
        errors.add("purpose", "用途不能超过32个字符")
    accounts = _accounts()
    total = _validate_lines(errors, specs, accounts)
    fund = fund or fund_for(organisation)
    if isinstance(day, date) and not isinstance(day, datetime):
        _check_common(
            errors, acting_user=acting_user, organisation=organisation, fund=fund, day=day
        )
    errors.raise_if_any()

    key = {"source_type": source_type, "source_id": source_id, "purpose": purpose}
    with transaction.atomic():
        _lock_audit_chain()
        existing = JournalEntry.objects.filter(**key).first()
        if existing is not None:
            return _replay(existing, specs)
        period = period_of(day)
        try:
            with transaction.atomic():  # a savepoint: a concurrent duplicate undoes only this
                number = next_number(fund, day.year)
                if ClosedPeriod.objects.filter(fund=fund, period=period).exists():
                    raise InvalidInput(
                        [
                            FieldError(
                                "date", f"会计期间 {period} 已结账，不能再记账", ErrorCode.STATE
                            )
                        ]
                    )
                entry = JournalEntry.objects.create(
                    fund=fund,
                    organisation=organisation,
                    organisation_path=organisation.path,
                    year=day.year,
                    number=number,
                    date=day,
                    period=period,
                    memo=memo,
                    reverses=reverses,
                    total_fen=total,
                    posted_by=acting_user,
                    posted_at=timezone.now(),
                    **key,
                )
                JournalLine.objects.bulk_create(
                    [
                        JournalLine(
                            entry=entry,
                            account=accounts[spec.account],
                            debit_fen=spec.debit_fen,
                            credit_fen=spec.credit_fen,
                            party_type=spec.party.party_type if spec.party else "",
                            party_id=str(spec.party.party_id) if spec.party else "",
                            party_name=(spec.party.name[:100] if spec.party else ""),
                        )
                        for spec in specs
                    ]
                )
                _apply_balances(fund, specs, accounts)
        except IntegrityError:
            existing = JournalEntry.objects.filter(**key).first()
            if existing is None:
                raise
            return _replay(existing, specs)
        detail: dict[str, object] = {
            "fund": fund.pk,
            "number": entry.display_number,
            "total": format_fen(total),
            "source_type": source_type,
            "source_id": source_id,
            "purpose": purpose,
        }
        if reverses is not None:
            detail["reverses"] = reverses.display_number
        detail.update(extra_detail or {})
        record_event(
            actor=acting_user,
            event=event,
            obj=entry,
            organisation_id=organisation.pk,
            detail=detail,
        )
    return entry


def post_entry(
    *,
    acting_user: User | None,
    organisation: Union,
    date: date,
    memo: str,
    lines: Sequence[LineSpec],
    source_type: str,
    source_id: str | int,
    purpose: str = "",
) -> JournalEntry:
    """Post one balanced entry (RULES.md §7) and its audit event ``ledger.post``.

    Validates everything at once (Chinese messages): at least two lines, each > 0 on exactly one
    side, accounts exist, receivables/payables name their party, debits = credits, the period is
    open, ``organisation`` is in the actor's subtree (``acting_user`` None: a system or partner
    posting). Idempotent per (source_type, source_id, purpose). Runs in the caller's transaction
    when there is one (never durable: the outer service owns the transaction).
    """
    if source_type == SourceType.REVERSAL:
        raise InvalidInput([FieldError("source_type", "冲销凭证须通过“冲销”功能生成")])
    return _post(
        acting_user=acting_user,
        organisation=organisation,
        day=date,
        memo=memo,
        specs=list(lines),
        source_type=source_type,
        source_id=str(source_id),
        purpose=purpose,
    )


def reversal_errors(*, entry: JournalEntry, reason: str, date: date | None) -> list[FieldError]:
    """Every reason ``reverse_entry`` would refuse (the form shows them all at once)."""
    errors = ErrorCollector()
    reason = (reason or "").strip()
    if not reason:
        errors.add("reason", "请填写冲销原因", ErrorCode.REQUIRED)
    elif len(reason) > REASON_MAX:
        errors.add("reason", f"冲销原因不能超过{REASON_MAX}个字")
    if entry.reverses_id is not None:
        errors.add("entry", "冲销凭证不能再被冲销；如需恢复，请重新记账", ErrorCode.STATE)
    existing = JournalEntry.objects.filter(reverses=entry).first()
    if existing is not None:
        errors.add(
            "entry", f"该凭证已被冲销（冲销凭证 {existing.display_number}）", ErrorCode.STATE
        )
    if date is not None and date < entry.date:
        errors.add("date", f"冲销日期不能早于原凭证日期 {entry.date.isoformat()}")
    return errors.errors


def reverse_entry(
    *, acting_user: User | None, entry: JournalEntry, reason: str, date: date | None = None
) -> JournalEntry:
    """Post the mirror of ``entry`` (every line on the other side), linked by ``reverses``.

    An entry is reversed at most once (a database unique constraint); a reversal is not itself
    reversed (post the movement again instead). The reversal is dated ``date`` (default today),
    in an open period, never before the original — a closed period's mistake is corrected in
    the current period. Audit event ``ledger.reverse``.
    """
    day = date or timezone.localdate()
    problems = reversal_errors(entry=entry, reason=reason, date=day)
    if problems:
        raise InvalidInput(problems)
    reason = reason.strip()
    specs = [
        LineSpec(
            account=line.account.code,
            debit_fen=line.credit_fen,
            credit_fen=line.debit_fen,
            party=Party(line.party_type, line.party_id, line.party_name)
            if line.party_type
            else None,
        )
        for line in entry.lines.select_related("account").order_by("pk")
    ]
    return _post(
        acting_user=acting_user,
        organisation=entry.organisation,
        day=day,
        memo=f"冲销 {entry.display_number}：{reason}",
        specs=specs,
        source_type=SourceType.REVERSAL,
        source_id=str(entry.pk),
        purpose="",
        reverses=entry,
        fund=entry.fund,
        event=Event.LEDGER_REVERSED,
    )


def close_period(*, acting_user: User, fund: Fund, period: str) -> ClosedPeriod:
    """Close an accounting period of ``fund`` (结账): later postings dated in it are refused
    (by this service and by a database trigger). Only finance staff of the fund's own union (or
    above) close; a period closes after it has ended, and after every earlier period that has
    entries. Closing is final (accounting records are kept, not reopened)."""
    require(acting_user, Perm.LEDGER_POST)
    errors = ErrorCollector()
    if acting_user.organisation is None or not fund.organisation_path.startswith(
        acting_user.organisation.path
    ):
        errors.add("period", f"只有{fund.organisation.name}的财务人员才能结账")
    parsed = parse_period(period)
    if parsed is None:
        errors.add("period", "会计期间格式应为“年-月”，如 2026-03")
    else:
        period = f"{parsed[0]:04d}-{parsed[1]:02d}"
        end = period_end(*parsed)
        if end >= timezone.localdate():
            errors.add("period", f"会计期间 {period} 尚未结束，{end.isoformat()} 之后才能结账")
    errors.raise_if_any()
    assert parsed is not None
    with transaction.atomic():
        _lock_audit_chain()
        _lock_counter(fund, parsed[0])  # serializes with postings of that year
        if ClosedPeriod.objects.filter(fund=fund, period=period).exists():
            errors.add("period", f"会计期间 {period} 已结账", ErrorCode.STATE)
        earlier_open = (
            JournalEntry.objects.filter(fund=fund, period__lt=period)
            .exclude(period__in=ClosedPeriod.objects.filter(fund=fund).values("period"))
            .order_by("period")
            .values_list("period", flat=True)
            .first()
        )
        if earlier_open is not None:
            errors.add("period", f"请先结账更早的会计期间 {earlier_open}", ErrorCode.STATE)
        errors.raise_if_any()
        closed = ClosedPeriod.objects.create(
            fund=fund, period=period, closed_by=acting_user, closed_at=timezone.now()
        )
        record_event(
            actor=acting_user,
            event=Event.LEDGER_PERIOD_CLOSED,
            obj=closed,
            organisation_id=fund.organisation_id,
            detail={"fund": fund.pk, "period": period},
        )
    return closed


# --- the scheme's movements (intent, not accounts) ------------------------------------------
def _check_amount(errors: ErrorCollector, field: str, fen: object, label: str = "金额") -> None:
    if not isinstance(fen, int) or isinstance(fen, bool) or fen <= 0:
        errors.add(field, f"{label}必须大于零")


def _check_party(errors: ErrorCollector, field: str, party: Party | None, kind: str) -> None:
    if party is None or party.party_type != kind:
        errors.add(field, f"须指明{PartyType(kind).label}", ErrorCode.REQUIRED)


def post_contribution_invoiced(
    *,
    acting_user: User | None,
    organisation: Union,
    date: date,
    invoice_id: str | int,
    payers: Sequence[PayerShare],
    memo: str = "",
) -> JournalEntry:
    """An invoice (缴费通知) per enrollment batch: Dr 1122 receivable per payer; Cr 4001 the
    contribution shares (individual, employer and the union's own share, RULES.md §6); Cr 4002
    the hardship waivers the union takes over. ``organisation``: the enrolling union."""
    errors = ErrorCollector()
    if not payers:
        errors.add("payers", "缴费通知须列明缴费方", ErrorCode.REQUIRED)
    contribution = subsidy = 0
    lines: list[LineSpec] = []
    for payer in payers:
        values = (payer.contribution_fen, payer.subsidy_fen)
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values):
            errors.add(
                "payers", f"缴费方“{payer.party.name or payer.party.party_id}”的金额不能为负"
            )
            continue
        contribution += payer.contribution_fen
        subsidy += payer.subsidy_fen
        owed = payer.contribution_fen + payer.subsidy_fen
        if owed:
            lines.append(LineSpec.debit(RECEIVABLE, owed, payer.party))
    if payers and not errors and contribution + subsidy == 0:
        errors.add("payers", "缴费通知的应收金额为零，无需记账")
    errors.raise_if_any()
    if contribution:
        lines.append(LineSpec.credit(CONTRIBUTION_INCOME, contribution))
    if subsidy:
        lines.append(LineSpec.credit(UNION_SUBSIDY_INCOME, subsidy))
    return post_entry(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        memo=memo or f"缴费通知 {invoice_id}：应收互助金",
        lines=lines,
        source_type=SourceType.CONTRIBUTION_INVOICE,
        source_id=invoice_id,
        purpose="invoice",
    )


def post_contribution_received(
    *,
    acting_user: User | None,
    organisation: Union,
    date: date,
    payment_id: str | int,
    payer: Party,
    amount_fen: int,
    memo: str = "",
) -> JournalEntry:
    """A confirmed payment (缴费到账): Dr 1001 bank / Cr 1122 the payer's receivable."""
    errors = ErrorCollector()
    _check_amount(errors, "amount", amount_fen, "到账金额")
    errors.raise_if_any()
    return post_entry(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        memo=memo or f"缴费到账 {payment_id}：{payer.name or payer.party_id}",
        lines=[LineSpec.debit(BANK, amount_fen), LineSpec.credit(RECEIVABLE, amount_fen, payer)],
        source_type=SourceType.CONTRIBUTION_PAYMENT,
        source_id=payment_id,
        purpose="receive",
    )


def post_reserve_allocation(
    *,
    acting_user: User,
    organisation: Union,
    date: date,
    year: int,
    amount_fen: int,
    allocation_id: str,
    memo: str = "",
) -> ReserveAllocation:
    """The province allocates to the risk reserve from union funds (RULES.md §7, R10):
    Dr 1001 / Cr 3101. Flags (never refuses) a year's total allocation outside 5%–10% of that
    year's contributions; the flag is in the result and in the audit event."""
    from huzhu.ledger.selectors import reserve_status

    require(acting_user, Perm.LEDGER_POST)
    errors = ErrorCollector()
    _check_amount(errors, "amount", amount_fen, "计提金额")
    if not isinstance(year, int) or not 2000 <= year <= 2999:
        errors.add("year", "保障年度无效")
    fund = fund_for(organisation)
    if organisation.pk != fund.organisation_id:
        errors.add("organisation", f"风险储备金由{fund.organisation.name}计提")
    errors.raise_if_any()
    before = reserve_status(fund, year)
    after_allocated = before.allocated_fen + amount_fen
    within = before.low_fen <= after_allocated <= before.high_fen and before.contributions_fen > 0
    entry = _post(
        acting_user=acting_user,
        organisation=organisation,
        day=date,
        memo=memo or f"计提{year}年度风险储备金",
        specs=[LineSpec.debit(BANK, amount_fen), LineSpec.credit(RISK_RESERVE, amount_fen)],
        source_type=SourceType.RESERVE_ALLOCATION,
        source_id=f"{year}/{allocation_id}",
        purpose="allocate",
        fund=fund,
        extra_detail={
            "year": year,
            "contributions": format_fen(before.contributions_fen),
            "allocated_in_year": format_fen(after_allocated),
            "within_5_10_percent": within,
        },
    )
    return ReserveAllocation(entry=entry, status=reserve_status(fund, year))


def _benefit_lines(
    *, amount_fen: int, one_stop: bool, member: Party, hospital: Party | None
) -> tuple[LineSpec, LineSpec]:
    payable = (
        LineSpec.credit(HOSPITALS_PAYABLE, amount_fen, hospital)
        if one_stop
        else LineSpec.credit(BENEFITS_PAYABLE, amount_fen, member)
    )
    return LineSpec.debit(BENEFIT_EXPENSE, amount_fen), payable


def _check_benefit_parties(
    errors: ErrorCollector, *, one_stop: bool, member: Party, hospital: Party | None
) -> None:
    _check_party(errors, "member", member, PartyType.MEMBER)
    if one_stop:
        if hospital is None:
            errors.add("hospital", "一站式结算的补助须指明垫付的医疗机构", ErrorCode.REQUIRED)
        else:
            _check_party(errors, "hospital", hospital, PartyType.HOSPITAL)


def post_benefit_approved(
    *,
    acting_user: User | None,
    organisation: Union,
    date: date,
    benefit_id: str | int,
    amount_fen: int,
    one_stop: bool,
    member: Party,
    hospital: Party | None = None,
    memo: str = "",
) -> JournalEntry:
    """An approved benefit: Dr 5001 / Cr 2242 owed to the hospital that deducted it at
    discharge (one-stop), or Cr 2241 payable to the member (paid after review)."""
    errors = ErrorCollector()
    _check_amount(errors, "amount", amount_fen, "补助金额")
    _check_benefit_parties(errors, one_stop=one_stop, member=member, hospital=hospital)
    errors.raise_if_any()
    where = f"，由{hospital.name or hospital.party_id}垫付" if one_stop and hospital else ""
    return post_entry(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        memo=memo or f"补助金核定 {benefit_id}（{member.name or member.party_id}{where}）",
        lines=list(
            _benefit_lines(
                amount_fen=amount_fen, one_stop=one_stop, member=member, hospital=hospital
            )
        ),
        source_type=SourceType.BENEFIT,
        source_id=benefit_id,
        purpose="approve",
    )


def post_benefit_adjusted(
    *,
    acting_user: User | None,
    organisation: Union,
    date: date,
    adjustment_id: str | int,
    change_fen: int,
    one_stop: bool,
    member: Party,
    hospital: Party | None = None,
    memo: str = "",
) -> JournalEntry:
    """A change of an approved entitlement (a cancelled settlement, a re-priced record): a
    positive change posts like an approval, a negative one the other way round
    (Dr 2241/2242 / Cr 5001)."""
    errors = ErrorCollector()
    if not isinstance(change_fen, int) or isinstance(change_fen, bool) or change_fen == 0:
        errors.add("amount", "调整金额不能为零")
    _check_benefit_parties(errors, one_stop=one_stop, member=member, hospital=hospital)
    errors.raise_if_any()
    expense, payable = _benefit_lines(
        amount_fen=abs(change_fen), one_stop=one_stop, member=member, hospital=hospital
    )
    if change_fen < 0:
        expense = LineSpec.credit(expense.account, expense.debit_fen)
        payable = LineSpec.debit(payable.account, payable.credit_fen, payable.party)
    sign = "增加" if change_fen > 0 else "减少"
    return post_entry(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        memo=memo or f"补助金调整 {adjustment_id}（{member.name or member.party_id}，{sign}）",
        lines=[expense, payable],
        source_type=SourceType.BENEFIT,
        source_id=adjustment_id,
        purpose="adjust",
    )


def post_benefit_paid(
    *,
    acting_user: User | None,
    organisation: Union,
    date: date,
    payment_id: str | int,
    one_stop: bool,
    payees: Sequence[PartyAmount],
    memo: str = "",
) -> JournalEntry:
    """Benefits paid out of the bank account: Dr 2241 per member (after review) or Dr 2242 per
    hospital (a one-stop clearing batch) / Cr 1001. Refused when the bank balance would go
    negative (S15)."""
    errors = ErrorCollector()
    kind = PartyType.HOSPITAL if one_stop else PartyType.MEMBER
    if not payees:
        errors.add("payees", "须列明收款方", ErrorCode.REQUIRED)
    for payee in payees:
        _check_amount(errors, "payees", payee.amount_fen, f"收款方“{payee.party.name}”的金额")
        if payee.party.party_type != kind:
            errors.add("payees", f"收款方应为{PartyType(kind).label}")
    errors.raise_if_any()
    account = HOSPITALS_PAYABLE if one_stop else BENEFITS_PAYABLE
    total = sum(p.amount_fen for p in payees)
    lines = [LineSpec.debit(account, p.amount_fen, p.party) for p in payees]
    lines.append(LineSpec.credit(BANK, total))
    label = "一站式结算清算" if one_stop else "补助金支付"
    return post_entry(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        memo=memo or f"{label} {payment_id}",
        lines=lines,
        source_type=SourceType.BENEFIT_PAYMENT,
        source_id=payment_id,
        purpose="pay",
    )


def spending_errors(
    *,
    acting_user: User,
    organisation: Union | None,
    date: date | None,
    amount_fen: int | None,
    memo: str,
    request_id: str,
) -> list[FieldError]:
    """Every problem of a manual spending posting, without posting (the form shows them all at
    once, also beside fields it could parse while others were malformed)."""
    errors = ErrorCollector()
    if amount_fen is None:
        errors.add("amount", "请填写金额", ErrorCode.REQUIRED)
    else:
        _check_amount(errors, "amount", amount_fen)
    memo = (memo or "").strip()
    if not memo:
        errors.add("memo", "请填写摘要（用途、收款方、依据）", ErrorCode.REQUIRED)
    elif len(memo) > MEMO_MAX:
        errors.add("memo", f"摘要不能超过{MEMO_MAX}个字")
    if date is None:
        errors.add("date", "请填写记账日期", ErrorCode.REQUIRED)
    elif date > timezone.localdate():
        errors.add("date", "记账日期不能晚于今天")
    elif organisation is not None:
        _check_common(
            errors,
            acting_user=acting_user,
            organisation=organisation,
            fund=fund_for(organisation),
            day=date,
        )
    if organisation is None:
        errors.add("organisation", "请选择发生组织", ErrorCode.REQUIRED)
    if not request_id:
        errors.add("request_id", "请求编号缺失，请刷新页面后重试")
    return errors.errors


def _post_spending(
    *,
    acting_user: User,
    organisation: Union,
    date: date | None,
    amount_fen: int | None,
    memo: str,
    request_id: str,
    account: str,
    source_type: SourceType,
) -> JournalEntry:
    require(acting_user, Perm.LEDGER_POST)
    problems = spending_errors(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        amount_fen=amount_fen,
        memo=memo,
        request_id=request_id,
    )
    if problems:
        raise InvalidInput(problems)
    assert date is not None and amount_fen is not None
    return post_entry(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        memo=memo,
        lines=[LineSpec.debit(account, amount_fen), LineSpec.credit(BANK, amount_fen)],
        source_type=source_type,
        source_id=request_id,
    )


def post_operating_cost(
    *,
    acting_user: User,
    organisation: Union,
    date: date | None,
    amount_fen: int | None,
    memo: str,
    request_id: str,
) -> JournalEntry:
    """Operating cost (运营成本, R9): Dr 5101 / Cr 1001. ``request_id`` makes a resubmitted form
    post once. Finance only."""
    return _post_spending(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        amount_fen=amount_fen,
        memo=memo,
        request_id=request_id,
        account=OPERATING_COST,
        source_type=SourceType.OPERATING_COST,
    )


def post_health_spending(
    *,
    acting_user: User,
    organisation: Union,
    date: date | None,
    amount_fen: int | None,
    memo: str,
    request_id: str,
) -> JournalEntry:
    """Approved health activity spending (健康服务支出, R9, R18): Dr 5201 / Cr 1001."""
    return _post_spending(
        acting_user=acting_user,
        organisation=organisation,
        date=date,
        amount_fen=amount_fen,
        memo=memo,
        request_id=request_id,
        account=HEALTH_SPENDING,
        source_type=SourceType.HEALTH_SPENDING,
    )
