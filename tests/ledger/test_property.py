"""Property test (hypothesis, stateful): any sequence of postings and reversals keeps the trial
balance at zero, every stored balance equal to the sum of the lines and to an independent model,
and a reversal restores every balance; refused postings (an overdraft of the bank or the
reserve) change nothing."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from huzhu.core.errors import InvalidInput
from huzhu.ledger import services
from huzhu.ledger.models import Account, AccountBalance, Fund, JournalEntry, JournalLine
from huzhu.ledger.selectors import account_balances, trial_balance
from huzhu.ledger.services import LineSpec, Party
from huzhu.orgs.models import User
from tests import factories

START = date(2025, 1, 1)
CODES = ["1001", "1122", "2241", "2242", "3001", "3101", "4001", "4002", "5001", "5101", "5201"]

amounts = st.integers(min_value=1, max_value=5_000_000)


def _party(code: str, tree: factories.Tree) -> Party | None:
    return {
        "1122": Party.unit(tree.unit_1),
        "2241": Party("member", "42", "王强"),
        "2242": Party.hospital("H001", "湘雅医院"),
    }.get(code)


@st.composite
def entry_lines(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """2–5 lines on random accounts whose debits equal their credits."""
    debits = draw(st.lists(st.tuples(st.sampled_from(CODES), amounts), min_size=1, max_size=3))
    total = sum(a for _, a in debits)
    credit_count = draw(st.integers(min_value=1, max_value=min(2, total)))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(min_value=1, max_value=total - 1),
                min_size=credit_count - 1,
                max_size=credit_count - 1,
                unique=True,
            )
        )
        if total > 1
        else []
    )
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]
    credits = [(draw(st.sampled_from(CODES)), part) for part in parts]
    return [(c, a, 0) for c, a in debits] + [(c, 0, a) for c, a in credits]


class LedgerMachine(RuleBasedStateMachine):
    """Runs inside one savepoint per generated program, rolled back at teardown."""

    tree: factories.Tree
    user: User

    entries = Bundle("entries")

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.fund: Fund | None = None
        self.model: dict[str, int] = dict.fromkeys(CODES, 0)
        self.accounts = {a.code: a for a in Account.objects.all()}
        self.effects: dict[int, dict[str, int]] = {}
        self.day = START
        self.counter = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _effect(self, lines: list[tuple[str, int, int]]) -> dict[str, int]:
        effect: dict[str, int] = {}
        for code, debit, credit in lines:
            effect[code] = effect.get(code, 0) + self.accounts[code].signed(debit, credit)
        return effect

    def _would_overdraw(self, effect: dict[str, int]) -> bool:
        return any(
            self.model[code] + delta < 0
            for code, delta in effect.items()
            if not self.accounts[code].may_be_negative
        )

    def _apply(self, effect: dict[str, int], sign: int = 1) -> None:
        for code, delta in effect.items():
            self.model[code] += sign * delta

    @initialize()
    def seed(self) -> None:
        self.fund = services.fund_for(self.tree.province)

    @rule(target=entries, lines=entry_lines(), advance=st.integers(min_value=0, max_value=20))
    def post(self, lines: list[tuple[str, int, int]], advance: int) -> int:
        self.day += timedelta(days=advance)
        self.counter += 1
        effect = self._effect(lines)
        specs = [
            LineSpec(code, debit_fen=debit, credit_fen=credit, party=_party(code, self.tree))
            for code, debit, credit in lines
        ]
        count = JournalEntry.objects.count()
        try:
            entry = services.post_entry(
                acting_user=self.user,
                organisation=self.tree.grassroots_1,
                date=self.day,
                memo="随机凭证",
                lines=specs,
                source_type="operating_cost",
                source_id=f"p{self.counter}",
            )
        except InvalidInput as exc:
            assert self._would_overdraw(effect), exc
            assert JournalEntry.objects.count() == count
            return 0
        assert not self._would_overdraw(effect)
        self._apply(effect)
        self.effects[entry.pk] = effect
        return entry.pk

    @rule(entry_id=entries)
    def reverse(self, entry_id: int) -> None:
        if entry_id == 0:
            return
        entry = JournalEntry.objects.get(pk=entry_id)
        effect = self.effects[entry_id]
        mirrored = {code: -delta for code, delta in effect.items()}
        already = JournalEntry.objects.filter(reverses=entry).exists()
        before = dict(self.model)
        try:
            services.reverse_entry(
                acting_user=self.user, entry=entry, reason="随机冲销", date=self.day
            )
        except InvalidInput:
            assert already or self._would_overdraw(mirrored)
            return
        assert not already
        self._apply(effect, sign=-1)
        # a reversal restores every balance to what it was without the entry
        for code in CODES:
            assert self.model[code] == before[code] - effect.get(code, 0)

    @invariant()
    def stored_balances_match_model_and_lines(self) -> None:
        if self.fund is None:
            return
        stored = {
            b.account.code: b.balance_fen
            for b in AccountBalance.objects.filter(fund=self.fund).select_related("account")
        }
        for code in CODES:
            assert stored.get(code, 0) == self.model[code], code
        from_lines = {
            row.account.code: row.balance_fen
            for row in account_balances(self.user, self.fund, as_of=self.day)
        }
        assert from_lines == self.model

    @invariant()
    def trial_balance_is_zero(self) -> None:
        if self.fund is None:
            return
        tb = trial_balance(self.user, self.fund, start=START, end=self.day)
        assert tb.balanced
        signed_total = sum(row.closing_fen for row in tb.rows)
        assert signed_total == 0
        totals = JournalLine.objects.filter(entry__fund=self.fund).aggregate(
            debit=Sum("debit_fen"), credit=Sum("credit_fen")
        )
        assert totals["debit"] == totals["credit"]


@pytest.mark.django_db
def test_postings_and_reversals_keep_the_books_balanced(tree: factories.Tree) -> None:
    LedgerMachine.tree = tree
    LedgerMachine.user = factories.staff(tree.province, "finance")
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
