"""The finance screens (Chinese), with scoping: entries carry the organisation that originated
them, so a city's finance staff see their subtree's entries and nothing of another city's; the
province (the fund's owner) sees the whole fund."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from huzhu.core.models import AuditEvent
from huzhu.ledger import services
from huzhu.ledger.models import ClosedPeriod, Fund, JournalEntry
from huzhu.ledger.services import Party, PayerShare
from huzhu.orgs.models import User
from tests import factories
from tests.ledger.conftest import DAY
from tests.web.conftest import login_verified


@pytest.fixture
def login() -> Callable[[User], Client]:
    return lambda user: login_verified(Client(), user)


@pytest.fixture
def books(tree: factories.Tree, fund: Fund) -> dict[str, JournalEntry]:
    """Contributions from a unit in city A (芙蓉某公司) and one in city B (荷塘某公司)."""
    entries = {}
    for key, union, unit, amount in (
        ("a", tree.grassroots_1, tree.unit_1, 12_000),
        ("b", tree.grassroots_3, tree.unit_3, 30_000),
    ):
        payer = Party.unit(unit)
        services.post_contribution_invoiced(
            acting_user=None,
            organisation=union,
            date=DAY,
            invoice_id=f"inv-{key}",
            payers=[PayerShare(payer, amount * 2)],
        )
        entries[key] = services.post_contribution_received(
            acting_user=None,
            organisation=union,
            date=DAY,
            payment_id=f"pay-{key}",
            payer=payer,
            amount_fen=amount,
        )
    return entries


def text(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


def test_journal_province_sees_all_city_sees_its_subtree(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    province_finance: User,
    city_a_finance: User,
    city_b_finance: User,
) -> None:
    page = text(login(province_finance).get(reverse("ledger:journal")))
    assert "缴费到账 pay-a：芙蓉某公司" in page and "缴费到账 pay-b：荷塘某公司" in page
    assert "显示全部凭证" in page
    page = text(login(city_a_finance).get(reverse("ledger:journal")))
    assert "缴费到账 pay-a：芙蓉某公司" in page
    assert "荷塘" not in page
    assert "仅显示长沙市总工会及下级组织发生的业务" in page
    page = text(login(city_b_finance).get(reverse("ledger:journal")))
    assert "荷塘某公司" in page and "芙蓉" not in page


def test_journal_filters_and_keyset_pages(
    login: Callable[[User], Client], books: dict[str, JournalEntry], province_finance: User
) -> None:
    client = login(province_finance)
    page = text(client.get(reverse("ledger:journal"), {"account": "4001"}))
    assert page.count('class="border-top border-2 journal-entry"') == 2  # the two invoices
    page = text(client.get(reverse("ledger:journal"), {"source_type": "contribution_payment"}))
    assert page.count('class="border-top border-2 journal-entry"') == 2
    page = text(client.get(reverse("ledger:journal"), {"period": "2025-13"}))
    assert "会计期间格式应为“年-月”" in page
    page = text(client.get(reverse("ledger:journal"), {"period": "2025-04"}))
    assert "没有符合条件的凭证" in page
    first_id = JournalEntry.objects.order_by("pk").first().pk  # type: ignore[union-attr]
    page = text(client.get(reverse("ledger:journal"), {"after": first_id + 2}))
    assert page.count('class="border-top border-2 journal-entry"') == 2


def test_journal_query_count_does_not_grow_with_entries(
    login: Callable[[User], Client], tree: factories.Tree, province_finance: User
) -> None:
    client = login(province_finance)

    def post(count: int, prefix: str) -> None:
        for i in range(count):
            services.post_contribution_received(
                acting_user=None,
                organisation=tree.grassroots_1,
                date=DAY,
                payment_id=f"{prefix}{i}",
                payer=Party.unit(tree.unit_1),
                amount_fen=100 + i,
            )

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("ledger:journal"))
        assert response.status_code == 200
        return len(captured)

    post(2, "few")
    client.get(reverse("ledger:journal"))  # warm the session
    few = queries()
    post(25, "many")
    assert queries() == few <= 12


def test_only_finance_and_auditors_see_the_ledger(
    login: Callable[[User], Client], tree: factories.Tree, books: dict[str, JournalEntry]
) -> None:
    auditor = factories.staff(tree.province, "auditor")
    assert login(auditor).get(reverse("ledger:journal")).status_code == 200
    for role in ("clerk", "reviewer", "plan_manager", "auditadmin"):
        user = factories.staff(tree.province, role)
        assert login(user).get(reverse("ledger:journal")).status_code == 404, role
        assert login(user).get(reverse("ledger:entry", args=[books["a"].pk])).status_code == 404
    assert login(auditor).get(reverse("ledger:spending")).status_code == 404
    anonymous = Client().get(reverse("ledger:journal"))
    assert anonymous.status_code == 302


def test_entry_detail_is_scoped(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    city_a_finance: User,
    city_b_finance: User,
) -> None:
    url = reverse("ledger:entry", args=[books["a"].pk])
    response = login(city_a_finance).get(url)
    assert response.status_code == 200
    page = text(response)
    assert "记账凭证 2025-000002" in page
    assert "用人单位：芙蓉某公司" in page
    assert "✓ 借贷平衡" in page
    assert "确认冲销" in page
    assert login(city_b_finance).get(url).status_code == 404


def test_reverse_from_the_entry_page(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    city_a_finance: User,
    city_b_finance: User,
    tree: factories.Tree,
) -> None:
    entry = books["a"]
    url = reverse("ledger:reverse", args=[entry.pk])
    outsiders = [login(city_b_finance), login(factories.staff(tree.province, "auditor"))]
    events = AuditEvent.objects.count()
    # another city's finance, and an auditor: 404 and nothing written
    for outsider in outsiders:
        assert outsider.post(url, {"reason": "越权"}).status_code == 404
    assert AuditEvent.objects.count() == events
    assert JournalEntry.objects.count() == 4
    client = login(city_a_finance)
    response = client.post(url, {"reason": "", "date": "2025-03"})
    assert response.status_code == 422
    page = text(response)
    assert "请填写冲销原因" in page
    assert "日期格式不正确" in page
    assert not JournalEntry.objects.filter(reverses=entry).exists()
    response = client.post(url, {"reason": "银行退回", "date": "2025-03-20"})
    reversal = JournalEntry.objects.get(reverses=entry)
    assert response.status_code == 302
    assert response["Location"] == reverse("ledger:entry", args=[reversal.pk])
    page = text(client.get(response["Location"]))
    assert "已生成冲销凭证 2025-000005，冲销凭证 2025-000002" in page
    assert "冲销 2025-000002：银行退回" in page
    page = text(client.get(reverse("ledger:entry", args=[entry.pk])))
    assert 'id="reversal-link"' in page and "确认冲销" not in page


def test_balances_and_trial_balance(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    province_finance: User,
    city_a_finance: User,
) -> None:
    page = text(login(province_finance).get(reverse("ledger:balances"), {"as_of": "2025-03-31"}))
    rows = dict(re.findall(r"<td>(\d{4})</td>.*?fw-semibold[^>]*>([-\d,.]+)</td>", page, re.S))
    assert rows["1001"] == "420.00" and rows["1122"] == "420.00" and rows["4001"] == "840.00"
    page = text(login(city_a_finance).get(reverse("ledger:balances"), {"as_of": "2025-03-31"}))
    rows = dict(re.findall(r"<td>(\d{4})</td>.*?fw-semibold[^>]*>([-\d,.]+)</td>", page, re.S))
    assert rows["1001"] == "120.00" and rows["4001"] == "240.00"
    page = text(login(province_finance).get(reverse("ledger:balances"), {"as_of": "2025-03-01"}))
    rows = dict(re.findall(r"<td>(\d{4})</td>.*?fw-semibold[^>]*>([-\d,.]+)</td>", page, re.S))
    assert rows["1001"] == "0.00"

    page = text(login(city_a_finance).get(reverse("ledger:trial_balance"), {"period": "2025-03"}))
    assert "✓ 借贷平衡" in page
    totals = re.search(r'id="trial-totals">(.*?)</tr>', page, re.S)
    assert totals is not None
    assert re.findall(r">([\d,.]+)</td>", totals.group(1)) == [
        "0.00",
        "0.00",
        "360.00",
        "360.00",
        "240.00",
        "240.00",
    ]
    page = text(login(city_a_finance).get(reverse("ledger:trial_balance"), {"period": "x"}))
    assert "已显示本月" in page


def test_party_receivables(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    province_finance: User,
    city_a_finance: User,
) -> None:
    page = text(login(province_finance).get(reverse("ledger:parties")))
    assert "芙蓉某公司" in page and "荷塘某公司" in page
    assert "120.00" in page and "300.00" in page  # half of each invoice is still owed
    page = text(login(city_a_finance).get(reverse("ledger:parties")))
    assert "芙蓉某公司" in page and "荷塘" not in page
    page = text(login(province_finance).get(reverse("ledger:parties"), {"account": "2241"}))
    assert "没有未结清的往来" in page


def test_period_closing_screen(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    fund: Fund,
    province_finance: User,
    city_a_finance: User,
) -> None:
    page = text(login(city_a_finance).get(reverse("ledger:periods")))
    assert "2025-03" in page and "未结账" in page
    assert "结账由湖南省总工会财务人员办理" in page
    assert ">结账</button>" not in page
    response = login(city_a_finance).post(
        reverse("ledger:period_close"), {"fund": fund.pk, "period": "2025-03"}, follow=True
    )
    assert "只有湖南省总工会的财务人员才能结账" in text(response)
    assert not ClosedPeriod.objects.exists()
    client = login(province_finance)
    assert ">结账</button>" in text(client.get(reverse("ledger:periods")))
    response = client.post(
        reverse("ledger:period_close"), {"fund": fund.pk, "period": "2025-03"}, follow=True
    )
    assert "会计期间 2025-03 已结账" in text(response)
    assert ClosedPeriod.objects.filter(fund=fund, period="2025-03").exists()


def test_spending_form_shows_every_error_at_once(
    login: Callable[[User], Client], province_finance: User
) -> None:
    client = login(province_finance)
    page = text(client.get(reverse("ledger:spending")))
    request_id = re.search(r'name="request_id" value="([0-9a-f]{32})"', page)
    assert request_id is not None
    response = client.post(
        reverse("ledger:spending"),
        {
            "kind": "",
            "union": "",
            "date": "2025-02-30",
            "amount": "12.345",
            "memo": "",
            "request_id": request_id.group(1),
        },
    )
    assert response.status_code == 422
    page = text(response)
    for message in (
        "请选择支出类别",
        "请选择工会组织",
        "日期格式不正确",
        "金额“12.345”格式不正确",
        "请填写摘要（用途、收款方、依据）",
    ):
        assert message in page, message
    assert JournalEntry.objects.count() == 0


def test_spending_posts_once_per_form(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    tree: factories.Tree,
    province_finance: User,
) -> None:
    client = login(province_finance)
    data = {
        "kind": "operating_cost",
        "union": str(tree.province.pk),
        "date": "2025-03-15",
        "amount": "150.5",
        "memo": "宣传资料印刷费（发票 No.123）",
        "request_id": "a" * 32,
    }
    response = client.post(reverse("ledger:spending"), data)
    assert response.status_code == 302
    entry = JournalEntry.objects.get(source_type="operating_cost")
    assert entry.total_fen == 15_050 and entry.posted_by == province_finance
    assert response["Location"] == reverse("ledger:entry", args=[entry.pk])
    again = client.post(reverse("ledger:spending"), data)  # a resubmitted form
    assert again["Location"] == response["Location"]
    assert JournalEntry.objects.filter(source_type="operating_cost").count() == 1
    # more than the bank holds (420.00 - 150.50 left)
    response = client.post(
        reverse("ledger:spending"),
        {**data, "kind": "health_spending", "amount": "300.00", "request_id": "b" * 32},
    )
    assert response.status_code == 422
    assert "余额不足：当前余额 269.50 元，本次减少 300.00 元" in text(response)


def test_reserve_screen_and_allocation(
    login: Callable[[User], Client],
    books: dict[str, JournalEntry],
    fund: Fund,
    province_finance: User,
    city_a_finance: User,
) -> None:
    page = text(login(city_a_finance).get(reverse("ledger:reserve")))
    assert "风险储备金由湖南省总工会按当年互助金收入的 5%–10%" in page
    client = login(province_finance)
    page = text(client.get(reverse("ledger:reserve"), {"year": 2025}))
    assert "840.00 元" in page  # the year's contributions
    assert "42.00 – 84.00 元" in page
    response = client.post(
        reverse("ledger:reserve_allocate"),
        {
            "fund": fund.pk,
            "year": 2025,
            "amount": "30.00",
            "date": DAY.isoformat(),
            "request_id": "c" * 32,
        },
        follow=True,
    )
    page = text(response)
    assert "已计提风险储备金：凭证 2025-000005，2025 年累计计提 30.00 元" in page
    assert "不在当年互助金收入的 5%–10%（42.00–84.00 元）之内，请核实" in page
    response = client.post(
        reverse("ledger:reserve_allocate"),
        {
            "fund": fund.pk,
            "year": 2025,
            "amount": "",
            "date": DAY.isoformat(),
            "request_id": "d" * 32,
        },
    )
    assert response.status_code == 422
    assert "请填写计提金额" in text(response)
    assert JournalEntry.objects.filter(source_type="reserve_allocation").count() == 1


def test_empty_ledger_pages_say_so(
    login: Callable[[User], Client], tree: factories.Tree, city_a_finance: User
) -> None:
    client = login(city_a_finance)
    for name in ("journal", "balances", "trial_balance", "parties", "periods", "reserve"):
        response = client.get(reverse(f"ledger:{name}"))
        assert response.status_code == 200, name
        assert "本统筹区的互助基金尚未记账" in text(response), name


def test_a_fund_outside_scope_is_404(
    login: Callable[[User], Client], tree: factories.Tree, city_a_finance: User
) -> None:
    other_root = factories.union(None, "另一省总工会", "provincial", "450000")
    other = services.fund_for(other_root)
    response = login(city_a_finance).get(reverse("ledger:journal"), {"fund": other.pk})
    assert response.status_code == 404
