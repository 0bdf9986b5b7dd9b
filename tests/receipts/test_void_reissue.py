"""Voiding and reissuing (换开): reasons, chains, verification status, audit."""

from __future__ import annotations

import pytest

from huzhu.contributions.receipt_models import Receipt, ReceiptStatus
from huzhu.contributions.receipt_selectors import receipts_for_payer, verify_public
from huzhu.contributions.receipt_services import (
    ReceiptEvent,
    reissue_receipt,
    void_receipt,
)
from huzhu.contributions.receipt_xml import verify_receipt_xml
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.access import NotPermitted
from tests import factories
from tests.receipts.conftest import ReceiptWorld


def test_void_needs_a_reason_and_changes_nothing_without_one(world: ReceiptWorld) -> None:
    receipt = world.issue("v1")
    with pytest.raises(InvalidInput) as caught:
        void_receipt(acting_user=world.finance, receipt=receipt, reason="  ")
    assert caught.value.by_field() == {"reason": ["请填写作废原因"]}
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.ISSUED and receipt.voided_at is None


def test_void_marks_the_receipt_and_verification_says_voided(world: ReceiptWorld) -> None:
    receipt = world.issue("v2")
    voided = void_receipt(acting_user=world.finance, receipt=receipt, reason="交款人名称错误")
    assert voided.status == ReceiptStatus.VOIDED
    assert voided.voided_by == world.finance and voided.void_reason == "交款人名称错误"
    found = verify_public(receipt.code, receipt.number, receipt.check_code)
    assert found is not None
    assert (found.status, found.status_label) == ("voided", "已作废")
    assert found.voided_on == world.today
    event = AuditEvent.objects.get(event=ReceiptEvent.VOIDED, object_id=str(receipt.pk))
    assert event.detail == {"code": receipt.code, "number": "0000000001", "total_fen": 12000}
    assert "交款人名称错误" not in str(event.detail)
    # The number stays used: the next receipt takes the next number.
    assert world.issue("v3").number == 2
    with pytest.raises(InvalidInput) as caught:
        void_receipt(acting_user=world.finance, receipt=receipt, reason="再次作废")
    assert caught.value.by_field() == {"receipt": ["该票据已作废"]}


def test_reissue_voids_the_old_one_and_references_it(world: ReceiptWorld) -> None:
    old = world.issue("r1")
    world.issue("r2")
    new = reissue_receipt(
        acting_user=world.finance,
        receipt=old,
        reason="单位名称变更",
        payer_name="芙蓉某公司（更名后）",
    )
    old.refresh_from_db()
    assert old.status == ReceiptStatus.VOIDED and old.void_reason == "换开：单位名称变更"
    assert new.reissue_of == old
    assert new.number == 3 and new.code == old.code
    assert new.status == ReceiptStatus.ISSUED
    assert (new.payer_name, new.payer_reference) == ("芙蓉某公司（更名后）", old.payer_reference)
    assert (new.items, new.total_fen) == (old.items, old.total_fen)
    assert (new.source_type, new.source_id) == (old.source_type, old.source_id)
    assert new.payer_unit == old.payer_unit and new.payer_org_path == old.payer_org_path
    assert f'<Replaces code="{old.code}" number="{old.number_text}" />' in new.signed_xml
    assert verify_receipt_xml(new.signed_xml.encode())
    events = AuditEvent.objects.filter(
        event__in=[ReceiptEvent.VOIDED, ReceiptEvent.ISSUED, ReceiptEvent.REISSUED]
    ).order_by("seq")
    assert [e.event for e in events] == [
        ReceiptEvent.ISSUED,
        ReceiptEvent.ISSUED,
        ReceiptEvent.VOIDED,
        ReceiptEvent.ISSUED,
        ReceiptEvent.REISSUED,
    ]
    # A retried issue for the same payment now answers the reissued receipt.
    assert world.issue("r1").pk == new.pk
    # The payer's own list holds both, newest first.
    assert [r.pk for r in receipts_for_payer(world.tree.unit_1)][:3] == [
        new.pk,
        Receipt.objects.get(source_id="r2").pk,
        old.pk,
    ]


def test_a_receipt_is_reissued_once_and_a_voided_one_can_be(world: ReceiptWorld) -> None:
    old = world.issue("once")
    void_receipt(acting_user=world.finance, receipt=old, reason="重复开具")
    new = reissue_receipt(acting_user=world.finance, receipt=old, reason="重新开具")
    old.refresh_from_db()
    assert old.void_reason == "重复开具"  # already voided: the first reason stays
    with pytest.raises(InvalidInput) as caught:
        reissue_receipt(acting_user=world.finance, receipt=old, reason="再换一次")
    assert caught.value.by_field() == {"receipt": [f"该票据已换开为 {new.code}-{new.number_text}"]}
    assert Receipt.objects.count() == 2


def test_failed_reissue_changes_nothing(world: ReceiptWorld) -> None:
    old = world.issue("fail")
    with pytest.raises(InvalidInput) as caught:
        reissue_receipt(acting_user=world.finance, receipt=old, reason="", payer_name=" ")
    assert caught.value.by_field() == {
        "reason": ["请填写作废原因"],
        "payer_name": ["交款人名称不能为空"],
    }
    old.refresh_from_db()
    assert old.status == ReceiptStatus.ISSUED
    assert Receipt.objects.count() == 1
    world.range_.refresh_from_db()
    assert world.range_.next_number == 2


def test_void_and_reissue_need_finance_on_the_issuer_side(world: ReceiptWorld) -> None:
    receipt = world.issue("perm")
    for user in (
        factories.staff(world.tree.city_a, "clerk"),
        factories.staff(world.tree.grassroots_1, "finance"),  # payer side: sees, may not void
        factories.staff(world.tree.city_b, "finance"),
    ):
        with pytest.raises(NotPermitted):
            void_receipt(acting_user=user, receipt=receipt, reason="越权")
        with pytest.raises(NotPermitted):
            reissue_receipt(acting_user=user, receipt=receipt, reason="越权")
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.ISSUED
    assert Receipt.objects.count() == 1


def test_reissue_without_numbers_left_keeps_the_old_receipt(world: ReceiptWorld) -> None:
    from huzhu.contributions.receipt_models import ReceiptRange

    old = world.issue("last-number")
    ReceiptRange.objects.filter(pk=world.range_.pk).update(next_number=1001)  # used up
    with pytest.raises(InvalidInput) as caught:
        reissue_receipt(acting_user=world.finance, receipt=old, reason="名称错误")
    assert "没有可用的票据号段" in caught.value.by_field()["issuer"][0]
    old.refresh_from_db()
    assert old.status == ReceiptStatus.ISSUED and old.voided_at is None
    assert not AuditEvent.objects.filter(event=ReceiptEvent.VOIDED).exists()
