"""Split agreements and the invoice of a batch (RULES.md §6, §7; R4, R8): per person and per
payer, set-based, posted to the ledger, idempotent."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from huzhu.contributions.funding_models import Invoice, InvoiceLine, InvoicePayer, SplitAgreement
from huzhu.contributions.funding_services import (
    SplitInput,
    agreements_in_force,
    create_invoice,
    create_split_agreement,
)
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.enrollment.models import Enrollment
from huzhu.ledger.models import JournalEntry, JournalLine
from huzhu.members.services import add_family_member, record_hardship
from huzhu.orgs.access import NotPermitted
from tests import factories
from tests.contributions.conftest import DAY, FundingWorld, Person, member_named, owed

pytestmark = pytest.mark.django_db


def percent(
    world: FundingWorld,
    unit: object,
    individual: str,
    union: str,
    valid_from: date = date(2026, 1, 1),
) -> SplitAgreement:
    return create_split_agreement(
        acting_user=world.clerk,
        unit=unit,  # type: ignore[arg-type]
        data=SplitInput(valid_from=valid_from, mode="percent", individual=individual, union=union),
    )


# --- split agreements --------------------------------------------------------------------------
def test_split_agreement_validation_in_chinese(world: FundingWorld) -> None:
    unit = world.tree.unit_1
    with pytest.raises(InvalidInput) as caught:
        create_split_agreement(
            acting_user=world.clerk,
            unit=unit,
            data=SplitInput(
                valid_from=None, mode="amount", individual="40", employer="40.005", union="abc"
            ),
        )
    by_field = caught.value.by_field()
    assert by_field["valid_from"] == ["请填写生效日期"]
    assert "单位金额格式不正确" in by_field["employer"][0]
    assert "工会金额格式不正确" in by_field["union"][0]
    with pytest.raises(InvalidInput) as caught:
        create_split_agreement(
            acting_user=world.clerk,
            unit=unit,
            data=SplitInput(
                valid_from=date(2026, 1, 1),
                mode="amount",
                individual="40",
                employer="40",
                union="30",
            ),
        )
    assert caught.value.by_field()["individual"] == [
        "个人、单位、工会金额合计 110.00 元，应等于保障方案的互助金 120.00 元"
    ]
    with pytest.raises(InvalidInput, match="个人与工会比例之和不能超过100%"):
        percent(world, unit, "60", "50")
    assert not SplitAgreement.objects.exists()
    agreement = create_split_agreement(
        acting_user=world.clerk,
        unit=unit,
        data=SplitInput(
            valid_from=date(2026, 1, 1),
            mode="amount",
            individual="40",
            employer="50",
            union="30",
            note="职代会通过",
        ),
    )
    assert (
        agreement.individual_fen,
        agreement.employer_fen,
        agreement.union_fen,
        agreement.basis_fen,
    ) == (4000, 5000, 3000, 12000)
    assert agreement.describe() == "个人 40.00 元，单位 50.00 元，工会 30.00 元"
    with pytest.raises(InvalidInput, match="2026-01-01起已有分担协议"):
        percent(world, unit, "30", "20")
    event = AuditEvent.objects.get(event="funding.split_create")
    assert (event.actor_id, event.organisation_id) == (world.clerk.pk, unit.union_id)


def test_split_agreement_scope_and_role(world: FundingWorld) -> None:
    t = world.tree
    outsider = factories.staff(t.county_a2, "clerk")
    percent(world, t.unit_1, "30", "20")  # in scope: recorded
    with pytest.raises(NotPermitted):
        create_split_agreement(
            acting_user=outsider,
            unit=t.unit_1,
            data=SplitInput(valid_from=DAY, mode="percent", individual="1"),
        )
    auditor = factories.staff(t.county_a1, "auditor")
    with pytest.raises(NotPermitted):
        create_split_agreement(
            acting_user=auditor,
            unit=t.unit_1,
            data=SplitInput(valid_from=DAY, mode="percent", individual="1"),
        )
    assert SplitAgreement.objects.count() == 1


def test_federation_agreement_has_no_employer(world: FundingWorld) -> None:
    federation = factories.union(world.tree.county_a1, "芙蓉区骑手工会联合会", "federation")
    with pytest.raises(InvalidInput, match="个人与工会比例之和应为100%"):
        create_split_agreement(
            acting_user=world.clerk,
            federation=federation,
            data=SplitInput(valid_from=DAY, mode="percent", individual="50", union="30"),
        )
    agreement = create_split_agreement(
        acting_user=world.clerk,
        federation=federation,
        data=SplitInput(valid_from=DAY, mode="percent", individual="50", union="50"),
    )
    assert agreement.describe() == "个人 50%，工会 50%"
    with pytest.raises(InvalidInput, match="只有工会联合会"):
        create_split_agreement(
            acting_user=world.clerk,
            federation=world.tree.grassroots_1,
            data=SplitInput(valid_from=DAY, mode="percent", individual="100"),
        )


def test_the_agreement_in_force_on_the_invoice_date_applies(world: FundingWorld) -> None:
    unit = world.tree.unit_1
    old = percent(world, unit, "50", "0", date(2025, 1, 1))
    new = percent(world, unit, "30", "20", date(2026, 3, 1))
    later = percent(world, unit, "10", "10", date(2026, 7, 1))
    assert agreements_in_force(world.tree.grassroots_1, [unit.pk], date(2026, 2, 28))[0] == {
        unit.pk: old
    }
    assert agreements_in_force(world.tree.grassroots_1, [unit.pk], DAY)[0] == {unit.pk: new}
    assert agreements_in_force(world.tree.grassroots_1, [unit.pk], date(2026, 7, 1))[0] == {
        unit.pk: later
    }


# --- invoices ----------------------------------------------------------------------------------
def test_invoice_per_person_and_per_payer(world: FundingWorld) -> None:
    t = world.tree
    other_unit = factories.unit(t.grassroots_1, "芙蓉第二公司")  # no agreement: individual pays all
    percent(world, t.unit_1, "30", "20")
    people = [
        Person("甲", t.unit_1),
        Person("乙", t.unit_1, hardship=True),
        Person("丙", t.unit_1),
        Person("丁", other_unit),
        Person("戊", other_unit, hardship=True),
    ]
    # 甲 is registered already, with a spouse who joins the optional family product
    jia = factories.member(t.grassroots_1, t.unit_1, name="甲", number=people[0].number)
    add_family_member(
        acting_user=None,
        member=jia,
        name="甲之妻",
        id_number=factories.id_number(male=False),
        relation="spouse",
    )
    batch = world.enroll(people, include_family=True)
    assert Enrollment.objects.filter(batch=batch).count() == 6
    invoice = create_invoice(acting_user=world.clerk, batch=batch, today=DAY)
    assert (invoice.person_count, invoice.total_fen, invoice.status) == (
        6,
        5 * 12000 + 6000,
        "open",
    )
    assert owed(invoice) == {
        # 甲丙 36.00 each; 乙 waived; 丁 120.00; 戊 waived (the whole 120.00 is the union's);
        # the spouse's own fee 60.00 is the worker's, without split or waiver
        ("individual", None): (3600 * 2 + 12000 + 6000, 0, 0),
        ("employer", t.unit_1.pk): (6000 * 3, 0, 0),
        ("union", None): (2400 * 3, 0, 0),
        ("union_waiver", None): (3600 + 12000, 0, 0),
    }
    lines = {line.person_name: line for line in InvoiceLine.objects.filter(invoice=invoice)}
    assert [
        lines["乙"].individual_fen,
        lines["乙"].employer_fen,
        lines["乙"].union_fen,
        lines["乙"].waiver_fen,
        lines["乙"].hardship,
    ] == [0, 6000, 2400, 3600, True]
    assert lines["丁"].agreement is None and lines["丁"].individual_fen == 12000
    assert lines["甲"].id_number_masked.count("*") == 11
    spouse = lines["甲之妻"]
    assert (spouse.family, spouse.individual_fen, spouse.contribution_fen) == (True, 6000, 6000)
    assert sum(line.contribution_fen for line in lines.values()) == invoice.total_fen
    # the payers' names: the union collects its workers' part
    names = set(InvoicePayer.objects.filter(invoice=invoice).values_list("name", flat=True))
    assert names == {
        "芙蓉区某公司工会（代收职工个人缴费）",
        "芙蓉某公司",
        "芙蓉区某公司工会",
        "芙蓉区某公司工会（困难职工减免）",
    }
    # the ledger: Dr 1122 per payer, Cr 4001 contributions, Cr 4002 the waivers
    entry = invoice.ledger_entry
    assert entry is not None and entry.organisation_id == t.grassroots_1.pk
    posted = sorted(
        JournalLine.objects.filter(entry=entry).values_list(
            "account__code", "debit_fen", "credit_fen", "party_type", "party_id"
        )
    )
    union_id = str(t.grassroots_1.pk)
    assert posted == sorted(
        [
            ("1122", 25200, 0, "union", union_id),
            ("1122", 18000, 0, "unit", str(t.unit_1.pk)),
            ("1122", 7200, 0, "union", union_id),
            ("1122", 15600, 0, "union", union_id),
            ("4001", 0, 50400, "", ""),
            ("4002", 0, 15600, "", ""),
        ]
    )


def test_invoice_is_idempotent_and_needs_a_confirmed_batch(world: FundingWorld) -> None:
    batch = world.enroll(world.people(2))
    invoice = create_invoice(acting_user=world.clerk, batch=batch, today=DAY)
    entries, events = JournalEntry.objects.count(), AuditEvent.objects.count()
    again = create_invoice(acting_user=world.clerk, batch=batch, today=date(2026, 4, 1))
    assert again.pk == invoice.pk and again.issued_on == DAY
    assert (JournalEntry.objects.count(), AuditEvent.objects.count()) == (entries, events)
    from huzhu.enrollment.services import create_batch

    draft = create_batch(
        acting_user=world.clerk, union=world.tree.grassroots_1, plan_year=2026, today=DAY
    )
    with pytest.raises(InvalidInput, match="只有确认参保后待缴费的批次才能生成缴费通知"):
        create_invoice(acting_user=world.clerk, batch=draft, today=DAY)
    assert Invoice.objects.count() == 1


def test_an_amount_agreement_that_no_longer_adds_up_blocks_the_invoice(
    world: FundingWorld,
) -> None:
    unit = world.tree.unit_1
    agreement = create_split_agreement(
        acting_user=world.clerk,
        unit=unit,
        data=SplitInput(
            valid_from=date(2026, 1, 1), mode="amount", individual="40", employer="50", union="30"
        ),
    )
    # the agreement was made for another plan's contribution (150.00)
    SplitAgreement.objects.filter(pk=agreement.pk).update(employer_fen=8000, basis_fen=15000)
    batch = world.enroll(world.people(2))
    with pytest.raises(InvalidInput) as caught:
        create_invoice(acting_user=world.clerk, batch=batch, today=DAY)
    assert caught.value.errors[0].message == (
        "芙蓉某公司的分担协议（2026-01-01起，按金额约定）分担金额合计 150.00 元，"
        "与互助金 120.00 元不符（HUNAN-2026），请先登记新的分担协议"
    )
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()


def test_hardship_is_taken_as_of_the_invoice_date(world: FundingWorld) -> None:
    batch = world.enroll(world.people(2))
    member = member_named("职工001")
    record_hardship(
        acting_user=None,
        member=member,
        source="civil_affairs",
        valid_from=date(2026, 4, 1),
        valid_to=None,
    )
    before = create_invoice(acting_user=world.clerk, batch=batch, today=DAY)
    assert owed(before) == {("individual", None): (24000, 0, 0)}
    batch2 = world.enroll([Person("新职工", world.tree.unit_1)])
    member2 = member_named("新职工")
    record_hardship(
        acting_user=None,
        member=member2,
        source="civil_affairs",
        valid_from=date(2026, 1, 1),
        valid_to=DAY,
    )
    after = create_invoice(acting_user=world.clerk, batch=batch2, today=DAY)
    assert owed(after) == {("union_waiver", None): (12000, 0, 0)}


def test_invoice_queries_do_not_grow_with_the_batch(world: FundingWorld) -> None:
    percent(world, world.tree.unit_1, "30", "20")
    # the first posting of all opens the fund and its counters: not the steady state
    create_invoice(
        acting_user=world.clerk, batch=world.enroll([Person("预热", world.tree.unit_1)]), today=DAY
    )
    small = world.enroll(world.people(2, hardship=[1]))
    big = world.enroll(
        [Person(f"大批{i:03d}", world.tree.unit_1, hardship=i % 7 == 0) for i in range(60)]
    )
    counts = []
    for batch in (small, big):
        with CaptureQueriesContext(connection) as queries:
            create_invoice(acting_user=world.clerk, batch=batch, today=DAY)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_invoice_scope(world: FundingWorld) -> None:
    batch = world.enroll(world.people(1))
    outsider = factories.staff(world.tree.county_a2, "finance")
    with pytest.raises(NotPermitted):
        create_invoice(acting_user=outsider, batch=batch)
    reviewer = factories.staff(world.tree.county_a1, "reviewer")
    with pytest.raises(NotPermitted):
        create_invoice(acting_user=reviewer, batch=batch)
    assert not Invoice.objects.exists()
