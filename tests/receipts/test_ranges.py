"""Number ranges (号段): allocation, exhaustion and switching, never issuing outside a range."""

from __future__ import annotations

from datetime import date

import pytest

from huzhu.contributions.receipt_models import Receipt, ReceiptRange
from huzhu.contributions.receipt_selectors import receipt_issuer_for
from huzhu.contributions.receipt_services import ReceiptEvent, allocate_range
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.access import NotPermitted
from tests import factories
from tests.receipts.conftest import ReceiptWorld, code_for


def test_allocate_records_who_and_audits(world: ReceiptWorld) -> None:
    r = world.range_
    assert (r.code, r.year, r.first_number, r.last_number, r.next_number) == (
        code_for(world.today.year),
        world.today.year,
        1,
        1000,
        1,
    )
    assert r.allocated_by == world.finance
    assert r.issuer_path == world.tree.city_a.path
    event = AuditEvent.objects.get(event=ReceiptEvent.RANGE_ALLOCATED, object_id=str(r.pk))
    assert event.actor_username == "cs_finance"
    assert event.detail == {"code": r.code, "year": r.year, "first": 1, "last": 1000}


def test_allocate_reports_every_error_at_once_in_chinese(world: ReceiptWorld) -> None:
    before = ReceiptRange.objects.count()
    with pytest.raises(InvalidInput) as caught:
        allocate_range(
            acting_user=world.finance,
            issuer=world.tree.grassroots_1,
            code="4303012",
            year=1999,
            first_number="0",
            last_number="12345678901",
        )
    errors = caught.value.by_field()
    assert set(errors) == {"issuer", "year", "code", "first_number", "last_number"}
    assert errors["issuer"] == [
        "基层工会不是财政票据的开具单位，号段只能分配给县级以上总工会或产业工会"
    ]
    assert errors["code"] == ["票据代码应为8位数字（地区2位＋分类2位＋种类2位＋年度2位）"]
    assert errors["first_number"] == ["起始号码应为1至10位数字，且不为0"]
    assert ReceiptRange.objects.count() == before


def test_allocate_checks_code_against_year_and_province(world: ReceiptWorld) -> None:
    year = world.today.year
    with pytest.raises(InvalidInput) as caught:
        allocate_range(
            acting_user=world.finance,
            issuer=world.tree.city_a,
            code=f"440301{(year + 1) % 100:02d}",
            year=year,
            first_number="5000",
            last_number="4000",
        )
    assert caught.value.by_field() == {
        "code": [
            f"票据代码末两位应为年度“{year % 100:02d}”",
            "票据代码前两位应为开票单位所在省份的行政区划代码“43”",
        ],
        "last_number": ["终止号码不能小于起始号码"],
    }


def test_overlapping_range_of_the_same_code_is_refused(world: ReceiptWorld) -> None:
    year = world.today.year
    with pytest.raises(InvalidInput) as caught:
        allocate_range(
            acting_user=world.finance,
            issuer=world.tree.county_a1,
            code=code_for(year),
            year=year,
            first_number="0000000990",
            last_number="0000001990",
        )
    assert caught.value.by_field() == {
        "first_number": [f"与已登记的号段 0000000001–0000001000（票据代码 {code_for(year)}）重叠"]
    }
    # Adjacent is fine, and so is the same numbers under another code.
    allocate_range(
        acting_user=world.finance,
        issuer=world.tree.county_a1,
        code=code_for(year),
        year=year,
        first_number="1001",
        last_number="1990",
    )
    allocate_range(
        acting_user=world.finance,
        issuer=world.tree.county_a1,
        code=f"430302{year % 100:02d}",
        year=year,
        first_number="1",
        last_number="1000",
    )


def test_only_finance_within_scope_allocates(world: ReceiptWorld) -> None:
    clerk = factories.staff(world.tree.city_a, "clerk")
    other_finance = factories.staff(world.tree.city_b, "finance")
    year = world.today.year
    for user in (clerk, other_finance):
        with pytest.raises(NotPermitted):
            allocate_range(
                acting_user=user,
                issuer=world.tree.city_a,
                code=code_for(year),
                year=year,
                first_number="2001",
                last_number="3000",
            )
    assert ReceiptRange.objects.count() == 1


def test_exhausted_range_moves_to_the_next_one(world: ReceiptWorld) -> None:
    year = world.today.year
    small = allocate_range(
        acting_user=world.finance,
        issuer=world.tree.county_a1,
        code=code_for(year),
        year=year,
        first_number="5001",
        last_number="5002",
    )
    following = allocate_range(
        acting_user=world.finance,
        issuer=world.tree.county_a1,
        code=f"430302{year % 100:02d}",
        year=year,
        first_number="0000000101",
        last_number="0000000200",
    )
    county = world.tree.county_a1
    issued = [world.issue(f"switch-{i}", issuer=county) for i in range(4)]
    assert [(r.code, r.number) for r in issued] == [
        (small.code, 5001),
        (small.code, 5002),
        (following.code, 101),
        (following.code, 102),
    ]
    small.refresh_from_db()
    following.refresh_from_db()
    assert small.is_exhausted and small.next_number == 5003
    assert following.next_number == 103
    assert issued[2].receipt_range == following


def test_never_issues_outside_a_range(world: ReceiptWorld) -> None:
    year = world.today.year
    allocate_range(
        acting_user=world.finance,
        issuer=world.tree.county_a2,
        code=code_for(year),
        year=year,
        first_number="7001",
        last_number="7001",
    )
    county = world.tree.county_a2
    first = world.issue("only-one", issuer=county)
    assert first.number == 7001
    before = Receipt.objects.count()
    with pytest.raises(InvalidInput) as caught:
        world.issue("one-too-many", issuer=county)
    assert caught.value.by_field() == {
        "issuer": [
            f"天心区总工会{year}年度没有可用的票据号段（号段未登记或已用完），"
            "请先登记财政部门分配的号段"
        ]
    }
    assert Receipt.objects.count() == before
    # A union that never had a range is refused the same way (a system caller: no actor).
    with pytest.raises(InvalidInput) as caught:
        world.issue("no-range", issuer=world.tree.city_b, system=True)
    assert caught.value.by_field()["issuer"][0].startswith(
        f"株洲市总工会{year}年度没有可用的票据号段"
    )
    assert Receipt.objects.count() == before


def test_a_range_serves_its_year_only(world: ReceiptWorld) -> None:
    from huzhu.contributions.receipt_models import PayerKind
    from huzhu.contributions.receipt_services import issue_receipt

    with pytest.raises(InvalidInput) as caught:
        issue_receipt(
            acting_user=world.finance,
            issuer=world.issuer,
            payer_name="芙蓉某公司",
            payer_kind=PayerKind.UNIT,
            payer_reference=world.tree.unit_1.uscc,
            items=[("单位承担互助金", 100)],
            total_fen=100,
            issued_on=date(world.today.year - 1, 12, 31),
            source_type="test.payment",
            source_id="last-year",
        )
    assert "没有可用的票据号段" in caught.value.by_field()["issuer"][0]


def test_issuer_for_a_grassroots_union_is_the_nearest_with_numbers(world: ReceiptWorld) -> None:
    tree = world.tree
    year = world.today.year
    assert receipt_issuer_for(tree.grassroots_1, year) == tree.city_a
    assert receipt_issuer_for(tree.grassroots_3, year) is None
    allocate_range(
        acting_user=world.finance,
        issuer=tree.county_a1,
        code=code_for(year),
        year=year,
        first_number="9001",
        last_number="9001",
    )
    assert receipt_issuer_for(tree.grassroots_1, year) == tree.county_a1
    world.issue("uses-county", issuer=tree.county_a1)
    assert receipt_issuer_for(tree.grassroots_1, year) == tree.city_a  # county's range used up
    assert receipt_issuer_for(tree.grassroots_1, year + 1) is None
