"""Scoped, set-based reads: a constant number of queries whatever the number of entries, and a
subtree sees exactly the entries its unions originated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from huzhu.ledger import selectors, services
from huzhu.ledger.models import Fund
from huzhu.ledger.services import Party, PayerShare
from huzhu.orgs.models import User
from tests import factories
from tests.ledger.conftest import DAY


@pytest.fixture
def spread(tree: factories.Tree, fund: Fund) -> None:
    """Ten invoices and payments in city A's grassroots union, three in city B's."""
    for union, unit, count in (
        (tree.grassroots_1, tree.unit_1, 10),
        (tree.grassroots_3, tree.unit_3, 3),
    ):
        for i in range(count):
            payer = Party.unit(unit)
            services.post_contribution_invoiced(
                acting_user=None,
                organisation=union,
                date=DAY,
                invoice_id=f"{union.pk}-{i}",
                payers=[PayerShare(payer, 1_000), PayerShare(Party.union(union), 500, 100)],
            )
            services.post_contribution_received(
                acting_user=None,
                organisation=union,
                date=DAY,
                payment_id=f"{union.pk}-{i}",
                payer=payer,
                amount_fen=1_000,
            )


def test_reads_are_single_group_by_queries(
    spread: None,
    fund: Fund,
    province_finance: User,
    django_assert_num_queries: Callable[[int], object],
) -> None:
    province_finance.organisation  # noqa: B018  (the scope's own row, loaded once per request)
    with django_assert_num_queries(2):  # type: ignore[operator]  # the GROUP BY + the chart
        rows = selectors.account_balances(province_finance, fund, as_of=DAY)
    assert {r.account.code: r.balance_fen for r in rows if r.balance_fen} == {
        "1001": 13_000,
        "1122": 7_800,
        "4001": 19_500,
        "4002": 1_300,
    }
    with django_assert_num_queries(2):  # type: ignore[operator]
        tb = selectors.trial_balance(province_finance, fund, start=date(2025, 3, 1), end=DAY)
    assert tb.balanced and tb.totals["period_debit_fen"] == 13 * 2_600
    with django_assert_num_queries(2):  # type: ignore[operator]  # the account + the GROUP BY
        page = selectors.party_balances(
            province_finance, fund, account_code="1122", as_of=DAY, size=10
        )
    assert [(r.party_type, r.party_name, r.balance_fen) for r in page.rows] == [
        ("union", "芙蓉区某公司工会", 6_000),
        ("union", "荷塘区某公司工会", 1_800),
    ]
    assert page.next_cursor is None
    with django_assert_num_queries(1):  # type: ignore[operator]
        status = selectors.reserve_status(fund, 2025)
    assert status.contributions_fen == 20_800


def test_a_city_sees_its_subtree_only(
    spread: None, fund: Fund, city_a_finance: User, city_b_finance: User
) -> None:
    a = {
        r.account.code: r.balance_fen
        for r in selectors.account_balances(city_a_finance, fund, as_of=DAY)
    }
    b = {
        r.account.code: r.balance_fen
        for r in selectors.account_balances(city_b_finance, fund, as_of=DAY)
    }
    assert (a["1001"], b["1001"]) == (10_000, 3_000)
    assert selectors.entries_for(city_a_finance).count() == 20
    assert selectors.entries_for(city_b_finance).count() == 6
    assert selectors.trial_balance(city_b_finance, fund, start=DAY, end=DAY).balanced
    assert selectors.funds_for(city_b_finance).get() == fund


def test_party_pages_and_settled_parties(
    spread: None, tree: factories.Tree, fund: Fund, province_finance: User
) -> None:
    settled = selectors.party_balances(
        province_finance, fund, account_code="1122", as_of=DAY, include_settled=True, size=3
    )
    assert [r.party_name for r in settled.rows] == [
        "芙蓉区某公司工会",
        "荷塘区某公司工会",
        "芙蓉某公司",
    ]
    assert settled.rows[2].balance_fen == 0
    rest = selectors.party_balances(
        province_finance,
        fund,
        account_code="1122",
        as_of=DAY,
        include_settled=True,
        after=settled.next_cursor,
        size=3,
    )
    assert [r.party_name for r in rest.rows] == ["荷塘某公司"]
    assert rest.next_cursor is None


def test_no_scope_no_rows(spread: None, fund: Fund) -> None:
    orphan = User.objects.create_user("orphan_reader", "x")
    assert not selectors.entries_for(orphan).exists()
    assert not selectors.funds_for(orphan).exists()
    assert all(r.balance_fen == 0 for r in selectors.account_balances(orphan, fund, as_of=DAY))
