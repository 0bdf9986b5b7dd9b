"""The daily reconciliation (issue #5 item 2): a partner's totals of a day against what was
received — every kind of difference listed, the reports kept as history."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone

from huzhu.claims.feed import (
    EVENT_RECONCILED,
    partner_totals,
    reconcile,
    report_answer,
)
from huzhu.claims.intake import parse_cancel_body
from huzhu.claims.models import ReconciliationReport, Settlement
from huzhu.claims.services import cancel_settlement, receive_settlement
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from tests.claims.conftest import covered_person, make_partner, settle_body

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 10)


def _received(tree: Any, plan: Any, partner: Any, person: Any) -> None:
    """On 10 March: S1 approved (6200.00 deducted), S2 quarantined, S3 cancelled, S4 pending
    review (a critical-illness candidate), S6 pending review (many claims); S5 on 11 March."""
    waiting = covered_person(tree, plan, consent=False, name="李四")
    receive_settlement(partner=partner, body=settle_body(person.certno, "S1"))
    receive_settlement(partner=partner, body=settle_body(waiting.certno, "S2"))
    receive_settlement(
        partner=partner, body=settle_body(person.certno, "S3", setl_time="2026-03-10 11:00:00")
    )
    moment, digest = parse_cancel_body({"cancel_time": "2026-03-10 15:00:00"})
    cancel_settlement(partner=partner, setl_id="S3", cancel_time=moment, body_hash=digest)
    receive_settlement(
        partner=partner,
        body=settle_body(
            person.certno, "S4", diagnoses=("C34.9",), setl_time="2026-03-10 12:00:00"
        ),
    )
    receive_settlement(
        partner=partner, body=settle_body(person.certno, "S5", setl_time="2026-03-11 00:00:00")
    )
    receive_settlement(
        partner=partner,
        body=settle_body(person.certno, "S6", base="100.00", setl_time="2026-03-10 23:59:59"),
    )


def test_every_kind_of_difference_is_listed(tree, plan, partner, person):
    _received(tree, plan, partner, person)
    assert dict(Settlement.objects.values_list("setl_id", "status")) == {
        "S1": "approved",
        "S2": "quarantined",
        "S3": "cancelled",
        "S4": "pending_review",
        "S5": "approved",
        "S6": "pending_review",
    }
    totals = partner_totals(
        count="5",
        medfee="150000.00",
        benefit="6000.00",
        records=[
            {"setl_id": "S1", "medfee_sumamt": "29999.00", "benefit": "6000.00"},
            {"setl_id": "S2", "benefit": "0"},
            {"setl_id": "S3"},  # they think it stands; we cancelled it
            {"setl_id": "S5"},  # 11 March at our side
            {"setl_id": "S6", "status": "cancelled"},  # they cancelled; we never heard
            "S9",  # never reached us
        ],
    )
    report = reconcile(acting_user=None, partner=partner, day=DAY, totals=totals, source="cli")
    answer = report_answer(report)
    assert answer["theirs"] == {"count": 5, "medfee_sumamt": "150000.00", "benefit": "6000.00"}
    assert answer["ours"] == {"count": 4, "medfee_sumamt": "120000.00", "benefit": "6200.00"}
    assert answer["balanced"] is False
    assert [(d["kind"], d["setl_id"], d["theirs"], d["ours"]) for d in answer["differences"]] == [
        ("count", None, "5", "4"),
        ("medfee_total", None, "150000.00", "120000.00"),
        ("benefit_total", None, "6000.00", "6200.00"),
        ("missing_ours", "S9", "已结算", ""),
        ("missing_theirs", "S4", "", "已结算"),
        ("other_day", "S5", "2026-03-10", "2026-03-11"),
        ("status", "S3", "已结算", "已撤销"),
        ("status", "S6", "已撤销", "已结算"),
        ("amount", "S1", "29999.00", "30000.00"),
        ("benefit", "S1", "6000.00", "6200.00"),
    ]
    messages = {d["setl_id"]: d["message"] for d in answer["differences"] if d["setl_id"]}
    assert messages["S9"] == "对方有结算 S9（已结算），我方没有收到"
    assert messages["S4"] == "我方收到结算 S4（医疗费 30000.00 元），对方清单中没有"
    assert messages["S3"] == "结算 S3：对方为“已结算”，我方为“已撤销”"
    assert report.difference_count == 10
    assert AuditEvent.objects.filter(event=EVENT_RECONCILED).count() == 1


def test_matching_totals_give_a_balanced_report_and_history_is_kept(tree, plan, partner, person):
    _received(tree, plan, partner, person)
    totals = partner_totals(count=4, medfee="120000.00", benefit="6200.00")
    first = reconcile(acting_user=None, partner=partner, day=DAY, totals=totals, source="web")
    assert (first.difference_count, first.differences) == (0, [])
    assert report_answer(first)["balanced"] is True
    later = reconcile(
        acting_user=None,
        partner=partner,
        day=DAY,
        totals=partner_totals(count=3, medfee="120000.00", benefit="6200.00"),
        source="web",
    )
    assert later.difference_count == 1
    assert list(ReconciliationReport.objects.order_by("pk").values_list("pk", flat=True)) == [
        first.pk,
        later.pk,
    ]


def test_another_partners_settlements_do_not_count(tree, plan, partner, person):
    other = make_partner(tree.city_a, partner_id="P430100002")
    receive_settlement(partner=other, body=settle_body(person.certno, "S1"))
    report = reconcile(
        acting_user=None,
        partner=partner,
        day=DAY,
        totals=partner_totals(count=0, medfee="0", benefit="0", records=[]),
        source="cli",
    )
    assert report.difference_count == 0
    assert (report.our_count, report.our_medfee_fen, report.our_benefit_fen) == (0, 0, 0)


def test_the_day_is_the_local_date_of_the_settlement_time(tree, plan, partner, person):
    # 00:30 Beijing time is the previous day in UTC: it belongs to 11 March.
    receive_settlement(
        partner=partner, body=settle_body(person.certno, "S1", setl_time="2026-03-11 00:30:00")
    )
    totals = partner_totals(count=1, medfee="30000.00", benefit="6200.00")
    on_11 = reconcile(
        acting_user=None, partner=partner, day=date(2026, 3, 11), totals=totals, source="cli"
    )
    on_10 = reconcile(acting_user=None, partner=partner, day=DAY, totals=totals, source="cli")
    assert on_11.difference_count == 0
    assert on_10.our_count == 0 and on_10.difference_count == 3


def test_invalid_totals_name_every_field():
    with pytest.raises(InvalidInput) as caught:
        partner_totals(
            count="x",
            medfee="1.234",
            benefit=None,
            records=[
                {"setl_id": "S1", "status": "paid"},
                {"setl_id": "S1"},
                {"setl_id": "S2", "medfee_sumamt": "-1", "other": 1},
                "bad id!",
            ],
        )
    assert [e.field for e in caught.value.errors] == [
        "count",
        "medfee_sumamt",
        "benefit",
        "records[0].status",
        "records[1].setl_id",
        "records[2].other",
        "records[2].medfee_sumamt",
        "records[3].setl_id",
    ]


def test_a_future_day_cannot_be_reconciled(partner):
    tomorrow = timezone.localdate() + timedelta(days=1)
    with pytest.raises(InvalidInput):
        reconcile(
            acting_user=None,
            partner=partner,
            day=tomorrow,
            totals=partner_totals(count=0, medfee="0", benefit="0"),
            source="cli",
        )
    assert ReconciliationReport.objects.count() == 0
