"""Issuing: sequential numbers, check code, idempotency, validation, audit (R11, S16)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from huzhu.contributions import receipt_signing
from huzhu.contributions.receipt_models import PayerKind, Receipt, ReceiptRange
from huzhu.contributions.receipt_services import ReceiptEvent, issue_receipt
from huzhu.core.errors import ConflictError, InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.access import NotPermitted
from tests import factories
from tests.receipts.conftest import ReceiptWorld


def test_numbers_are_sequential_from_the_range_start(world: ReceiptWorld) -> None:
    receipts = [world.issue(f"seq-{i}") for i in range(5)]
    assert [r.number for r in receipts] == [1, 2, 3, 4, 5]
    assert [r.number_text for r in receipts][:2] == ["0000000001", "0000000002"]
    assert {r.code for r in receipts} == {world.range_.code}
    world.range_.refresh_from_db()
    assert world.range_.next_number == 6


def test_receipt_fields_and_amount_in_capitals(world: ReceiptWorld) -> None:
    receipt = issue_receipt(
        acting_user=world.finance,
        issuer=world.issuer,
        payer_name="芙蓉某公司",
        payer_kind=PayerKind.UNIT,
        payer_reference=world.tree.unit_1.uscc.lower(),
        items=[("单位承担互助金（2026年度）", 960000), ("工会补助互助金", 240050)],
        total_fen=1200050,
        issued_on=world.today,
        source_type="test.payment",
        source_id="fields",
        payer=world.tree.unit_1,
    )
    assert receipt.payer_reference == world.tree.unit_1.uscc
    assert receipt.items == [
        {"name": "单位承担互助金（2026年度）", "amount_fen": 960000},
        {"name": "工会补助互助金", "amount_fen": 240050},
    ]
    assert receipt.issuer_name == "长沙市总工会"
    assert receipt.issued_by == world.finance
    assert receipt.payer_unit == world.tree.unit_1
    assert receipt.payer_org_path == world.tree.unit_1.union_path
    assert receipt.total_text == "12000.50"
    assert "<TotalAmountInWords>壹万贰仟元伍角整</TotalAmountInWords>" in receipt.signed_xml
    assert "<TotalAmount>12000.50</TotalAmount>" in receipt.signed_xml


def test_check_code_is_stable_and_verifiable(world: ReceiptWorld) -> None:
    receipt = world.issue("check")
    expected = receipt_signing.check_code(
        code=receipt.code,
        number=receipt.number,
        total_fen=receipt.total_fen,
        issued_on=receipt.issued_on,
    )
    assert receipt.check_code == expected
    assert len(expected) == 6 and all(c in "0123456789ABCDEF" for c in expected)
    # Derived from exactly (code, number, amount, date): any change gives another code.
    variants = {
        receipt_signing.check_code(
            code=receipt.code, number=receipt.number + 1, total_fen=12000, issued_on=world.today
        ),
        receipt_signing.check_code(
            code=receipt.code, number=receipt.number, total_fen=12001, issued_on=world.today
        ),
        receipt_signing.check_code(
            code=receipt.code,
            number=receipt.number,
            total_fen=12000,
            issued_on=world.today - timedelta(days=1),
        ),
    }
    assert expected not in variants
    assert receipt_signing.check_code_matches(expected, expected.lower())
    assert not receipt_signing.check_code_matches(expected, "000000")


def test_check_code_depends_on_the_deployment_key(world: ReceiptWorld, settings) -> None:  # type: ignore[no-untyped-def]
    receipt = world.issue("key")
    settings.HUZHU_SIGNING_KEY = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="
    receipt_signing.reset_key_cache()
    try:
        other = receipt_signing.check_code(
            code=receipt.code,
            number=receipt.number,
            total_fen=receipt.total_fen,
            issued_on=receipt.issued_on,
        )
    finally:
        receipt_signing.reset_key_cache()
    assert other != receipt.check_code


def test_retried_issue_returns_the_same_receipt(world: ReceiptWorld) -> None:
    first = world.issue("pay-42")
    events = AuditEvent.objects.filter(event=ReceiptEvent.ISSUED).count()
    again = world.issue("pay-42")
    assert again.pk == first.pk
    assert Receipt.objects.count() == 1
    assert AuditEvent.objects.filter(event=ReceiptEvent.ISSUED).count() == events
    world.range_.refresh_from_db()
    assert world.range_.next_number == 2


def test_retry_with_another_amount_is_a_conflict(world: ReceiptWorld) -> None:
    world.issue("pay-43", amount_fen=12000)
    with pytest.raises(ConflictError) as caught:
        world.issue("pay-43", amount_fen=13000)
    assert "已开具票据" in str(caught.value)
    assert Receipt.objects.count() == 1


def test_invalid_issue_reports_every_error_and_writes_nothing(world: ReceiptWorld) -> None:
    audit_before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        issue_receipt(
            acting_user=world.finance,
            issuer=world.issuer,
            payer_name=" ",
            payer_kind=PayerKind.UNIT,
            payer_reference="91430100MA00000000",
            items=[("", 100), ("个人缴纳互助金", 0)],
            total_fen=50,
            issued_on=world.today + timedelta(days=1),
            source_type="",
            source_id="",
        )
    errors = caught.value.by_field()
    assert set(errors) == {
        "payer_name",
        "payer_reference",
        "items",
        "source_type",
        "source_id",
        "issued_on",
    }
    assert errors["payer_name"] == ["交款人名称不能为空"]
    assert errors["items"] == ["第1个项目名称不能为空", "第2个项目金额应为大于0的整数分"]
    assert errors["issued_on"] == ["开票日期不能晚于今天"]
    assert errors["payer_reference"] == ["单位交款人：统一社会信用代码校验位不正确"]
    assert Receipt.objects.count() == 0
    assert AuditEvent.objects.count() == audit_before
    world.range_.refresh_from_db()
    assert world.range_.next_number == 1


def test_total_must_equal_the_items(world: ReceiptWorld) -> None:
    with pytest.raises(InvalidInput) as caught:
        issue_receipt(
            acting_user=world.finance,
            issuer=world.issuer,
            payer_name="芙蓉某公司",
            payer_kind=PayerKind.UNIT,
            payer_reference=world.tree.unit_1.uscc,
            items=[("单位承担互助金", 6000), ("工会补助互助金", 6000)],
            total_fen=12001,
            issued_on=world.today,
            source_type="test.payment",
            source_id="sum",
        )
    assert caught.value.by_field() == {
        "total_fen": ["合计金额与各项目金额之和不符（项目合计 12000 分）"]
    }


def test_individual_reference_is_never_stored_in_full(world: ReceiptWorld) -> None:
    number = factories.id_number()
    member = factories.member(world.tree.grassroots_1, world.tree.unit_1, number=number)
    receipt = issue_receipt(
        acting_user=world.finance,
        issuer=world.issuer,
        payer_name=member.name,
        payer_kind=PayerKind.INDIVIDUAL,
        payer_reference=number,
        items=[("个人缴纳互助金", 3000)],
        total_fen=3000,
        issued_on=world.today,
        source_type="test.payment",
        source_id="person",
        payer=member,
    )
    assert receipt.payer_reference == number[:3] + "*" * 11 + number[-4:]
    assert number not in receipt.signed_xml
    assert receipt.payer_member == member
    assert receipt.payer_org_path == world.tree.grassroots_1.path
    # A full number that fails its check is refused rather than stored.
    with pytest.raises(InvalidInput) as caught:
        issue_receipt(
            acting_user=world.finance,
            issuer=world.issuer,
            payer_name=member.name,
            payer_kind=PayerKind.INDIVIDUAL,
            payer_reference="430102198503120000",
            items=[("个人缴纳互助金", 3000)],
            total_fen=3000,
            issued_on=world.today,
            source_type="test.payment",
            source_id="person-2",
        )
    assert caught.value.by_field() == {"payer_reference": ["个人交款人代码应为脱敏后的证件号码"]}


def test_payer_must_match_its_kind(world: ReceiptWorld) -> None:
    with pytest.raises(InvalidInput) as caught:
        issue_receipt(
            acting_user=world.finance,
            issuer=world.issuer,
            payer_name="芙蓉区某公司工会",
            payer_kind=PayerKind.UNION,
            payer_reference="",
            items=[("工会补助互助金", 3000)],
            total_fen=3000,
            issued_on=world.today,
            source_type="test.payment",
            source_id="kind",
            payer=world.tree.unit_1,
        )
    assert caught.value.by_field() == {"payer_kind": ["交款人类型与所关联的交款人不一致"]}


def test_issuing_is_audited_without_personal_data(world: ReceiptWorld) -> None:
    receipt = world.issue("audit")
    event = AuditEvent.objects.get(event=ReceiptEvent.ISSUED, object_id=str(receipt.pk))
    assert event.actor_username == "cs_finance"
    assert event.organisation_id == world.issuer.pk
    assert event.detail == {
        "code": receipt.code,
        "number": "0000000001",
        "total_fen": 12000,
        "source_type": "test.payment",
        "source_id": "audit",
        "reissue_of": None,
    }
    assert receipt.payer_name not in str(event.detail)


def test_a_rolled_back_issue_gives_its_number_back(world: ReceiptWorld) -> None:
    world.issue("before")

    class PaymentFailed(Exception):
        pass

    with pytest.raises(PaymentFailed), transaction.atomic():
        rolled_back = world.issue("doomed")
        assert rolled_back.number == 2
        raise PaymentFailed
    assert not Receipt.objects.filter(source_id="doomed").exists()
    assert world.issue("after").number == 2
    assert list(Receipt.objects.order_by("number").values_list("number", flat=True)) == [1, 2]


def test_only_finance_of_the_issuers_subtree_issues(world: ReceiptWorld) -> None:
    clerk = factories.staff(world.tree.city_a, "clerk")
    county_finance = factories.staff(world.tree.county_a1, "finance")
    for user in (clerk, county_finance):
        with pytest.raises(NotPermitted):
            world.issue("not-allowed", acting_user=user)
    assert Receipt.objects.count() == 0
    province_finance = factories.staff(world.tree.province, "finance")
    assert world.issue("allowed", acting_user=province_finance).number == 1


def test_range_counter_cannot_run_past_its_end_in_the_database(world: ReceiptWorld) -> None:
    from django.db import IntegrityError
    from django.db.models import F

    with pytest.raises(IntegrityError), transaction.atomic():
        ReceiptRange.objects.filter(pk=world.range_.pk).update(next_number=F("last_number") + 2)


def test_duplicate_number_is_refused_by_the_database(world: ReceiptWorld) -> None:
    from django.db import IntegrityError

    receipt = world.issue("dup")
    clone = Receipt.objects.get(pk=receipt.pk)
    clone.pk = None
    clone.source_id = "dup-2"
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save(force_insert=True)
