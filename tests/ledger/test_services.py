"""Posting, reversal, period closing and the scheme's movements (RULES.md §7, S15)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from huzhu.core.errors import ConflictError, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.core.money import parse_rate
from huzhu.ledger import services
from huzhu.ledger.models import (
    Account,
    AccountBalance,
    ClosedPeriod,
    Fund,
    JournalEntry,
    JournalLine,
    SourceType,
)
from huzhu.ledger.selectors import account_balances, reserve_status
from huzhu.ledger.services import LineSpec, Party, PartyAmount, PayerShare
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import User
from tests import factories
from tests.ledger.conftest import DAY


def balances(fund: Fund) -> dict[str, int]:
    return {
        b.account.code: b.balance_fen
        for b in AccountBalance.objects.filter(fund=fund).select_related("account")
    }


def receive(tree: factories.Tree, amount: int, source: str = "seed") -> JournalEntry:
    """Money in the bank (a contribution paid by a unit), so that outflows can be posted."""
    services.post_contribution_invoiced(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        invoice_id=f"inv-{source}",
        payers=[PayerShare(Party.unit(tree.unit_1), amount)],
    )
    return services.post_contribution_received(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        payment_id=f"pay-{source}",
        payer=Party.unit(tree.unit_1),
        amount_fen=amount,
    )


def test_post_entry_numbers_balances_and_audits(tree: factories.Tree, fund: Fund) -> None:
    entry = receive(tree, 12_000)
    assert entry.fund == fund
    assert (entry.year, entry.number, entry.period) == (2025, 2, "2025-03")
    assert entry.display_number == "2025-000002"
    assert entry.organisation == tree.grassroots_1
    assert entry.organisation_path == tree.grassroots_1.path
    assert entry.total_fen == 12_000
    assert balances(fund) == {"1001": 12_000, "1122": 0, "4001": 12_000}
    events = AuditEvent.objects.filter(event="ledger.post").order_by("seq")
    assert [e.object_id for e in events] == [str(e.pk) for e in JournalEntry.objects.order_by("pk")]
    assert events.last().detail["number"] == "2025-000002"  # type: ignore[union-attr]


def test_fund_is_the_province_for_every_union(tree: factories.Tree, fund: Fund) -> None:
    assert fund.organisation == tree.province
    assert services.fund_for(tree.grassroots_3) == fund
    assert Fund.objects.count() == 1


def test_post_entry_reports_every_error_at_once(tree: factories.Tree, fund: Fund) -> None:
    with pytest.raises(InvalidInput) as exc:
        services.post_entry(
            acting_user=None,
            organisation=tree.city_a,
            date=DAY,
            memo="  ",
            lines=[
                LineSpec("9999", debit_fen=100),
                LineSpec("1001", debit_fen=0, credit_fen=0),
                LineSpec("1122", credit_fen=50),  # needs a party
                LineSpec("4001", debit_fen=-5),
            ],
            source_type=SourceType.OPERATING_COST,
            source_id="",
        )
    messages = exc.value.by_field()
    assert messages["memo"] == ["摘要不能为空"]
    assert messages["source_id"] == ["业务编号不能为空，且不超过64个字符"]
    assert messages["lines"] == [
        "第 1 条分录：科目“9999”不存在",
        "第 2 条分录：借方和贷方必须有且只有一方金额大于零",
        "第 3 条分录：科目 1122 应收互助金 须注明往来对象（用人单位、工会、职工）",
        "第 4 条分录：金额必须是不小于零的整数（分）",
        "借贷不平衡：借方合计 1.00 元，贷方合计 0.50 元",
    ]
    assert JournalEntry.objects.count() == 0
    assert JournalLine.objects.count() == 0


def test_single_line_and_unbalanced_are_refused(tree: factories.Tree) -> None:
    for lines in (
        [LineSpec.debit("5101", 100)],
        [LineSpec.debit("5101", 100), LineSpec.credit("1001", 99)],
    ):
        with pytest.raises(InvalidInput):
            services.post_entry(
                acting_user=None,
                organisation=tree.province,
                date=DAY,
                memo="测试",
                lines=lines,
                source_type=SourceType.OPERATING_COST,
                source_id="x",
            )
    assert JournalEntry.objects.count() == 0


def test_reversal_source_type_only_through_reverse_entry(tree: factories.Tree) -> None:
    with pytest.raises(InvalidInput) as exc:
        services.post_entry(
            acting_user=None,
            organisation=tree.province,
            date=DAY,
            memo="测试",
            lines=[LineSpec.debit("1001", 1), LineSpec.credit("4001", 1)],
            source_type=SourceType.REVERSAL,
            source_id="1",
        )
    assert exc.value.by_field() == {"source_type": ["冲销凭证须通过“冲销”功能生成"]}


def test_idempotent_posting_returns_the_same_entry(tree: factories.Tree, fund: Fund) -> None:
    first = receive(tree, 5_000)
    events = AuditEvent.objects.count()
    again = services.post_contribution_received(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY + timedelta(days=3),  # a retry on another day is still the same payment
        payment_id="pay-seed",
        payer=Party.unit(tree.unit_1),
        amount_fen=5_000,
    )
    assert again.pk == first.pk
    assert JournalEntry.objects.count() == 2
    assert AuditEvent.objects.count() == events
    assert balances(fund)["1001"] == 5_000
    with pytest.raises(ConflictError):
        services.post_contribution_received(
            acting_user=None,
            organisation=tree.grassroots_1,
            date=DAY,
            payment_id="pay-seed",
            payer=Party.unit(tree.unit_1),
            amount_fen=4_000,
        )
    assert JournalEntry.objects.count() == 2


def test_bank_and_reserve_never_go_negative(tree: factories.Tree, fund: Fund) -> None:
    user = factories.staff(tree.province, "finance")
    receive(tree, 1_000)
    before = balances(fund)
    with pytest.raises(InvalidInput) as exc:
        services.post_operating_cost(
            acting_user=user,
            organisation=tree.province,
            date=DAY,
            amount_fen=1_001,
            memo="印刷费",
            request_id="r1",
        )
    assert exc.value.by_field()["lines"] == [
        "科目 1001 互助金专户存款 余额不足：当前余额 10.00 元，本次减少 10.01 元"
        "（基金与风险储备金不得透支）"
    ]
    assert balances(fund) == before
    assert JournalEntry.objects.count() == 2
    assert JournalEntry.objects.filter(source_type=SourceType.OPERATING_COST).count() == 0
    # the whole balance may be spent
    services.post_operating_cost(
        acting_user=user,
        organisation=tree.province,
        date=DAY,
        amount_fen=1_000,
        memo="印刷费",
        request_id="r2",
    )
    assert balances(fund)["1001"] == 0


def test_reverse_entry_mirrors_and_restores_balances(tree: factories.Tree, fund: Fund) -> None:
    user = factories.staff(tree.province, "finance")
    receive(tree, 10_000)
    before = balances(fund)
    cost = services.post_operating_cost(
        acting_user=user,
        organisation=tree.province,
        date=DAY,
        amount_fen=2_500,
        memo="系统运维费",
        request_id="r1",
    )
    assert balances(fund)["1001"] == 7_500
    reversal = services.reverse_entry(acting_user=user, entry=cost, reason="重复录入", date=DAY)
    assert reversal.reverses == cost
    assert reversal.source_type == SourceType.REVERSAL
    assert reversal.memo == "冲销 2025-000003：重复录入"
    assert sorted(
        (line.account.code, line.debit_fen, line.credit_fen) for line in reversal.lines.all()
    ) == [("1001", 2_500, 0), ("5101", 0, 2_500)]
    assert balances(fund) == {**before, "5101": 0}
    assert AuditEvent.objects.filter(event="ledger.reverse", object_id=str(reversal.pk)).exists()

    with pytest.raises(InvalidInput) as exc:
        services.reverse_entry(acting_user=user, entry=cost, reason="再冲一次", date=DAY)
    assert exc.value.by_field() == {"entry": ["该凭证已被冲销（冲销凭证 2025-000004）"]}
    with pytest.raises(InvalidInput) as exc:
        services.reverse_entry(acting_user=user, entry=reversal, reason="", date=DAY)
    assert exc.value.by_field() == {
        "reason": ["请填写冲销原因"],
        "entry": ["冲销凭证不能再被冲销；如需恢复，请重新记账"],
    }
    with pytest.raises(InvalidInput) as exc:
        services.reverse_entry(
            acting_user=user,
            entry=JournalEntry.objects.get(number=1),
            reason="x",
            date=DAY - timedelta(days=1),
        )
    assert exc.value.by_field() == {"date": ["冲销日期不能早于原凭证日期 2025-03-10"]}
    assert JournalEntry.objects.count() == 4


def test_reversal_that_would_overdraw_the_bank_is_refused(tree: factories.Tree) -> None:
    user = factories.staff(tree.province, "finance")
    received = receive(tree, 10_000)
    services.post_operating_cost(
        acting_user=user,
        organisation=tree.province,
        date=DAY,
        amount_fen=6_000,
        memo="租金",
        request_id="r1",
    )
    with pytest.raises(InvalidInput):
        services.reverse_entry(acting_user=user, entry=received, reason="退款", date=DAY)
    assert not JournalEntry.objects.filter(reverses=received).exists()


def test_posting_outside_the_actor_scope_is_refused(tree: factories.Tree) -> None:
    city_b_finance = factories.staff(tree.city_b, "finance")
    with pytest.raises(InvalidInput) as exc:
        services.post_contribution_received(
            acting_user=city_b_finance,
            organisation=tree.grassroots_1,
            date=DAY,
            payment_id="p",
            payer=Party.unit(tree.unit_1),
            amount_fen=100,
        )
    assert exc.value.by_field() == {"organisation": ["该组织不在您的管辖范围内"]}


def test_manual_spending_needs_the_post_permission(tree: factories.Tree) -> None:
    auditor = factories.staff(tree.province, "auditor")
    with pytest.raises(NotPermitted):
        services.post_health_spending(
            acting_user=auditor,
            organisation=tree.province,
            date=DAY,
            amount_fen=1,
            memo="x",
            request_id="r",
        )


def test_manual_spending_validates_all_fields(tree: factories.Tree) -> None:
    user = factories.staff(tree.province, "finance")
    with pytest.raises(InvalidInput) as exc:
        services.post_health_spending(
            acting_user=user,
            organisation=tree.province,
            date=timezone.localdate() + timedelta(days=1),
            amount_fen=0,
            memo="",
            request_id="",
        )
    assert exc.value.by_field() == {
        "amount": ["金额必须大于零"],
        "memo": ["请填写摘要（用途、收款方、依据）"],
        "date": ["记账日期不能晚于今天"],
        "request_id": ["请求编号缺失，请刷新页面后重试"],
    }


# --- periods --------------------------------------------------------------------------------
def test_closed_period_refuses_postings(tree: factories.Tree, fund: Fund) -> None:
    user = factories.staff(tree.province, "finance")
    receive(tree, 10_000)  # 2025-03
    with pytest.raises(InvalidInput) as exc:
        services.close_period(acting_user=user, fund=fund, period="2025-04")
    assert exc.value.by_field() == {"period": ["请先结账更早的会计期间 2025-03"]}
    closed = services.close_period(acting_user=user, fund=fund, period="2025-03")
    assert closed.period == "2025-03"
    assert AuditEvent.objects.filter(event="ledger.close_period").count() == 1
    with pytest.raises(InvalidInput) as exc:
        services.post_operating_cost(
            acting_user=user,
            organisation=tree.province,
            date=DAY,
            amount_fen=100,
            memo="费用",
            request_id="r1",
        )
    assert exc.value.by_field() == {"date": ["会计期间 2025-03 已结账，不能再记账"]}
    # a reversal of a closed period's entry goes into an open period
    entry = JournalEntry.objects.get(number=2)
    with pytest.raises(InvalidInput):
        services.reverse_entry(acting_user=user, entry=entry, reason="错账", date=DAY)
    reversal = services.reverse_entry(
        acting_user=user, entry=entry, reason="错账", date=date(2025, 4, 1)
    )
    assert reversal.period == "2025-04"
    with pytest.raises(InvalidInput) as exc:
        services.close_period(acting_user=user, fund=fund, period="2025-03")
    assert exc.value.by_field() == {"period": ["会计期间 2025-03 已结账"]}


def test_close_period_validation(tree: factories.Tree, fund: Fund) -> None:
    city_finance = factories.staff(tree.city_a, "finance")
    with pytest.raises(InvalidInput) as exc:
        services.close_period(acting_user=city_finance, fund=fund, period="2025-13")
    assert exc.value.by_field() == {
        "period": [
            "只有湖南省总工会的财务人员才能结账",
            "会计期间格式应为“年-月”，如 2026-03",
        ]
    }
    user = factories.staff(tree.province, "finance")
    this_month = services.period_of(timezone.localdate())
    with pytest.raises(InvalidInput) as exc:
        services.close_period(acting_user=user, fund=fund, period=this_month)
    assert "尚未结束" in exc.value.by_field()["period"][0]
    with pytest.raises(NotPermitted):
        services.close_period(
            acting_user=factories.staff(tree.province, "auditor"), fund=fund, period="2025-01"
        )
    assert ClosedPeriod.objects.count() == 0


# --- the scheme's movements -----------------------------------------------------------------
def test_contribution_invoice_and_payments(tree: factories.Tree, fund: Fund) -> None:
    unit, union = Party.unit(tree.unit_1), Party.union(tree.grassroots_1)
    member = factories.member(tree.grassroots_1, tree.unit_1)
    individual = Party.member(member)
    invoice = services.post_contribution_invoiced(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        invoice_id=17,
        payers=[
            PayerShare(individual, 4_000),
            PayerShare(unit, 6_000),
            PayerShare(union, 2_000, subsidy_fen=4_000),  # own share + a hardship waiver
        ],
    )
    assert invoice.memo == "缴费通知 17：应收互助金"
    assert sorted(
        (line.account.code, line.debit_fen, line.credit_fen, line.party_type, line.party_id)
        for line in invoice.lines.all()
    ) == sorted(
        [
            ("1122", 4_000, 0, "member", str(member.pk)),
            ("1122", 6_000, 0, "unit", str(tree.unit_1.pk)),
            ("1122", 6_000, 0, "union", str(tree.grassroots_1.pk)),
            ("4001", 0, 12_000, "", ""),
            ("4002", 0, 4_000, "", ""),
        ]
    )
    services.post_contribution_received(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        payment_id=1,
        payer=unit,
        amount_fen=6_000,
    )
    assert balances(fund) == {"1001": 6_000, "1122": 10_000, "4001": 12_000, "4002": 4_000}
    with pytest.raises(InvalidInput) as exc:
        services.post_contribution_invoiced(
            acting_user=None,
            organisation=tree.grassroots_1,
            date=DAY,
            invoice_id=18,
            payers=[PayerShare(unit, 0)],
        )
    assert exc.value.by_field() == {"payers": ["缴费通知的应收金额为零，无需记账"]}


def test_benefits_one_stop_and_after_review(tree: factories.Tree, fund: Fund) -> None:
    receive(tree, 100_000)
    member = Party.member(factories.member(tree.grassroots_1, tree.unit_1, name="李娜", male=False))
    hospital = Party.hospital("H43010500001", "湘雅医院")
    one_stop = services.post_benefit_approved(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        benefit_id="c1",
        amount_fen=30_000,
        one_stop=True,
        member=member,
        hospital=hospital,
    )
    assert one_stop.memo == "补助金核定 c1（李娜，由湘雅医院垫付）"
    reviewed = services.post_benefit_approved(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        benefit_id="c2",
        amount_fen=20_000,
        one_stop=False,
        member=member,
    )
    assert {(line.account.code, line.party_type) for line in reviewed.lines.all()} == {
        ("5001", ""),
        ("2241", "member"),
    }
    services.post_benefit_adjusted(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        adjustment_id="c1-cancel",
        change_fen=-5_000,
        one_stop=True,
        member=member,
        hospital=hospital,
    )
    assert balances(fund) == {
        "1001": 100_000,
        "1122": 0,
        "4001": 100_000,
        "5001": 45_000,
        "2242": 25_000,
        "2241": 20_000,
    }
    services.post_benefit_paid(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        payment_id="batch-1",
        one_stop=True,
        payees=[PartyAmount(hospital, 25_000)],
    )
    services.post_benefit_paid(
        acting_user=None,
        organisation=tree.grassroots_1,
        date=DAY,
        payment_id="pay-c2",
        one_stop=False,
        payees=[PartyAmount(member, 20_000)],
    )
    final = balances(fund)
    assert (final["1001"], final["2241"], final["2242"]) == (55_000, 0, 0)
    with pytest.raises(InvalidInput) as exc:
        services.post_benefit_approved(
            acting_user=None,
            organisation=tree.grassroots_1,
            date=DAY,
            benefit_id="c3",
            amount_fen=0,
            one_stop=True,
            member=hospital,
        )
    assert exc.value.by_field() == {
        "amount": ["补助金额必须大于零"],
        "member": ["须指明职工"],
        "hospital": ["一站式结算的补助须指明垫付的医疗机构"],
    }
    with pytest.raises(InvalidInput) as exc:
        services.post_benefit_paid(
            acting_user=None,
            organisation=tree.grassroots_1,
            date=DAY,
            payment_id="bad",
            one_stop=True,
            payees=[PartyAmount(member, 1)],
        )
    assert exc.value.by_field() == {"payees": ["收款方应为医疗机构"]}


def test_reserve_allocation_flags_outside_5_to_10_percent(tree: factories.Tree, fund: Fund) -> None:
    user = factories.staff(tree.province, "finance")
    receive(tree, 1_000_000)  # contributions of 2025: 10 000.00
    low = services.post_reserve_allocation(
        acting_user=user,
        organisation=tree.province,
        date=DAY,
        year=2025,
        amount_fen=40_000,
        allocation_id="a1",
    )
    assert low.status.contributions_fen == 1_000_000
    assert (low.status.low_fen, low.status.high_fen) == (50_000, 100_000)
    assert low.status.allocated_fen == 40_000
    assert not low.status.within_range
    event = AuditEvent.objects.get(event="ledger.post", object_id=str(low.entry.pk))
    assert event.detail["within_5_10_percent"] is False
    ok = services.post_reserve_allocation(
        acting_user=user,
        organisation=tree.province,
        date=DAY,
        year=2025,
        amount_fen=40_000,
        allocation_id="a2",
    )
    assert ok.status.allocated_fen == 80_000 and ok.status.within_range
    assert reserve_status(fund, 2025).expected_fen(parse_rate("0.08")) == 80_000
    services.reverse_entry(acting_user=user, entry=ok.entry, reason="金额有误", date=DAY)
    assert reserve_status(fund, 2025).allocated_fen == 40_000
    assert balances(fund)["3101"] == 40_000
    with pytest.raises(InvalidInput) as exc:
        services.post_reserve_allocation(
            acting_user=factories.staff(tree.city_a, "finance"),
            organisation=tree.city_a,
            date=DAY,
            year=2025,
            amount_fen=1,
            allocation_id="a3",
        )
    assert exc.value.by_field() == {"organisation": ["风险储备金由湖南省总工会计提"]}


def test_balances_as_of_a_date(tree: factories.Tree, fund: Fund) -> None:
    user = factories.staff(tree.province, "finance")
    receive(tree, 10_000)
    services.post_operating_cost(
        acting_user=user,
        organisation=tree.province,
        date=DAY + timedelta(days=5),
        amount_fen=1_000,
        memo="办公费",
        request_id="r1",
    )
    on_day = {r.account.code: r.balance_fen for r in account_balances(user, fund, as_of=DAY)}
    later = {
        r.account.code: r.balance_fen
        for r in account_balances(user, fund, as_of=DAY + timedelta(days=5))
    }
    assert (on_day["1001"], on_day["5101"]) == (10_000, 0)
    assert (later["1001"], later["5101"]) == (9_000, 1_000)


def test_user_without_organisation_cannot_post(tree: factories.Tree) -> None:
    orphan = User.objects.create_user("orphan", "x")
    with pytest.raises(InvalidInput):
        services.post_contribution_received(
            acting_user=orphan,
            organisation=tree.province,
            date=DAY,
            payment_id="p",
            payer=Party.unit(tree.unit_1),
            amount_fen=1,
        )


@pytest.mark.django_db(transaction=True)
def test_the_chart_of_accounts_survives_a_flush() -> None:
    """A flush (what every ``transaction=True`` test ends with) empties the chart seeded by the
    migration; the ledger's post_migrate handler puts it back."""
    call_command("flush", verbosity=0, interactive=False)
    assert list(Account.objects.order_by("code").values_list("code", "name")) == [
        ("1001", "互助金专户存款"),
        ("1122", "应收互助金"),
        ("2241", "应付补助金"),
        ("2242", "应付医疗机构垫付款"),
        ("3001", "互助基金"),
        ("3101", "风险储备金"),
        ("4001", "互助金收入"),
        ("4002", "工会补助收入"),
        ("5001", "补助支出"),
        ("5101", "运营成本"),
        ("5201", "健康服务支出"),
    ]
