"""Confirmation, coverage, withdrawal, leaving a unit, renewal (RULES.md §2, R1–R4, S17)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from huzhu.core.errors import InvalidInput
from huzhu.core.ids import make_id_number
from huzhu.core.models import AuditEvent
from huzhu.enrollment import services
from huzhu.enrollment.models import (
    BatchStatus,
    Enrollment,
    EnrollmentBatch,
    EnrollmentStatus,
    RosterRowError,
)
from huzhu.enrollment.selectors import is_covered
from huzhu.members.models import Consent, HardshipRecord, Member
from huzhu.members.services import add_family_member, id_number_index, record_hardship
from tests import factories
from tests.enrollment.conftest import World, active_plan, person, row, xlsx

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 1)


def confirmed(
    world: World,
    rows: list[list[Any]],
    *,
    union: Any = None,
    today: date = TODAY,
    accept: bool = True,
    **kwargs: Any,
) -> EnrollmentBatch:
    batch = services.create_batch(
        acting_user=world.clerk,
        union=union or world.tree.grassroots_1,
        plan_year=2026,
        today=today,
    )
    services.attach_roster(
        acting_user=world.clerk, batch=batch, file_name="r.xlsx", content=xlsx(rows)
    )
    services.validate_batch(batch=batch, today=today)
    return services.confirm_batch(
        acting_user=world.clerk, batch=batch, accept_invalid_rows=accept, today=today, **kwargs
    )


def test_confirm_creates_members_enrollments_hardship_and_consent(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    a, b = person(), person(male=False)
    batch = confirmed(
        world,
        [
            row(
                name="张伟",
                id_number=a,
                uscc=uscc,
                phone="13800138000",
                hardship="是",
                consent="是",
                account="6217002870012345678",
                bank="中国银行",
            ),
            row(name="李娜", id_number=b, uscc=uscc, category="女50"),
            row(name="坏行", id_number="123", uscc=uscc),
        ],
    )
    assert batch.status == BatchStatus.AWAITING_PAYMENT
    assert (batch.enrolled_count, batch.members_created, batch.error_count) == (2, 2, 1)
    assert batch.enrollment_date == date(2026, 3, 2)
    zhang = Member.objects.get(id_number_index=id_number_index(a))
    assert zhang.unit_id == world.tree.unit_1.pk and zhang.union_id == world.tree.grassroots_1.pk
    assert zhang.phone_masked == "138****8000" and zhang.bank_name == "中国银行"
    hardship = HardshipRecord.objects.get(member=zhang)
    assert (hardship.valid_from, hardship.valid_to, hardship.source) == (
        date(2026, 1, 1),
        date(2026, 12, 31),
        "union_file",
    )
    consent = Consent.objects.get(member=zhang)
    assert consent.channel == "paper_via_union" and consent.withdrawn_at is None
    li = Member.objects.get(id_number_index=id_number_index(b))
    assert li.retirement_category == "female50"
    assert not HardshipRecord.objects.filter(member=li).exists()
    assert not Consent.objects.filter(member=li).exists()
    enrollments = Enrollment.objects.filter(batch=batch).order_by("row_number")
    assert [
        (e.member_id, e.status, e.hardship, e.coverage_start, e.row_number) for e in enrollments
    ] == [(zhang.pk, "pending", True, None, 2), (li.pk, "pending", False, None, 3)]
    assert list(
        RosterRowError.objects.filter(batch=batch).values_list("row_number", flat=True)
    ) == [4]
    events = set(AuditEvent.objects.values_list("event", flat=True))
    assert {
        "enrollment.batch_confirm",
        "enrollment.create",
        "member.create",
        "hardship.create",
        "consent.grant",
    } <= events


def test_existing_member_is_linked_and_updated_not_duplicated(world: World) -> None:
    t = world.tree
    number = person()
    old = factories.member(t.grassroots_2, t.unit_2, name="张伟", number=number)
    record_hardship(
        acting_user=None,
        member=old,
        source="civil_affairs",
        valid_from=date(2025, 6, 1),
        valid_to=None,
    )
    batch = confirmed(
        world,
        [row(name="张伟", id_number=number, uscc=t.unit_1.uscc, employment="在编", hardship="是")],
    )
    assert Member.objects.filter(id_number_index=id_number_index(number)).count() == 1
    old.refresh_from_db()
    assert (old.unit_id, old.union_id, old.employment_type) == (
        t.unit_1.pk,
        t.grassroots_1.pk,
        "established",
    )
    assert (batch.members_created, batch.members_updated) == (0, 1)
    # dated hardship records exist: the roster's 是 adds nothing
    assert HardshipRecord.objects.filter(member=old).count() == 1
    assert Enrollment.objects.get(batch=batch).member_id == old.pk


def test_existing_woman_keeps_her_recorded_category(world: World) -> None:
    t = world.tree
    number = person(male=False)
    factories.member(t.grassroots_1, t.unit_1, name="李娜", male=False, number=number)
    batch = confirmed(world, [row(name="李娜", id_number=number, uscc=t.unit_1.uscc)])
    assert batch.error_count == 0 and batch.enrolled_count == 1


def test_same_file_twice_creates_nothing_new(world: World) -> None:
    t = world.tree
    content = xlsx([row(id_number=person(), uscc=t.unit_1.uscc)])
    batch = services.create_batch(
        acting_user=world.clerk, union=t.grassroots_1, plan_year=2026, today=TODAY
    )
    first = services.attach_roster(
        acting_user=world.clerk, batch=batch, file_name="a.xlsx", content=content
    )
    assert not first.duplicate
    other = services.create_batch(
        acting_user=world.clerk, union=t.grassroots_1, plan_year=2026, today=TODAY
    )
    again = services.attach_roster(
        acting_user=world.clerk, batch=other, file_name="b.xlsx", content=content
    )
    assert again.duplicate and again.batch.pk == batch.pk
    other.refresh_from_db()
    assert other.file_sha256 == "" and other.status == "draft"
    # and the database refuses a second live batch with the same file
    with pytest.raises(IntegrityError), transaction.atomic():
        EnrollmentBatch.objects.filter(pk=other.pk).update(file_sha256=batch.file_sha256)
    # after cancellation the same file may be uploaded again
    services.cancel_batch(acting_user=world.clerk, batch=batch, reason="重新整理")
    assert not services.attach_roster(
        acting_user=world.clerk, batch=other, file_name="b.xlsx", content=content
    ).duplicate


def test_one_live_share_per_person_per_year_in_the_database(world: World) -> None:
    t = world.tree
    number = person()
    batch = confirmed(world, [row(id_number=number, uscc=t.unit_1.uscc)])
    enrollment = Enrollment.objects.get(batch=batch)
    other = services.create_batch(
        acting_user=None, union=t.grassroots_3, plan_year=2026, today=TODAY
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Enrollment.objects.create(
            batch=other,
            member=enrollment.member,
            person_index=enrollment.person_index,
            union=t.grassroots_3,
            union_path=t.grassroots_3.path,
            plan_version=world.plan,
            plan_year=2026,
            enrollment_date=date(2026, 3, 2),
        )
    # a withdrawn share frees the year
    services.withdraw_enrollment(
        acting_user=world.clerk, enrollment=enrollment, reason="离职", today=TODAY
    )
    Enrollment.objects.create(
        batch=other,
        member=enrollment.member,
        person_index=enrollment.person_index,
        union=t.grassroots_3,
        union_path=t.grassroots_3.path,
        plan_version=world.plan,
        plan_year=2026,
        enrollment_date=date(2026, 3, 2),
    )


@pytest.mark.parametrize(
    ("paid_on", "start"),
    [
        (date(2025, 12, 20), date(2026, 1, 1)),  # paid before the year: from Jan 1
        (date(2025, 12, 31), date(2026, 1, 1)),
        (date(2026, 3, 5), date(2026, 3, 6)),  # the day after payment
        (date(2026, 12, 30), date(2026, 12, 31)),
    ],
)
def test_coverage_dates(world: World, paid_on: date, start: date) -> None:
    batch = confirmed(
        world, [row(id_number=person(), uscc=world.tree.unit_1.uscc)], today=date(2025, 12, 1)
    )
    assert batch.enrollment_date == date(2026, 1, 1)
    services.activate_batch_coverage(acting_user=None, batch=batch, paid_on=paid_on)
    enrollment = Enrollment.objects.get(batch=batch)
    assert (enrollment.status, enrollment.coverage_start, enrollment.coverage_end) == (
        "active",
        start,
        date(2026, 12, 31),
    )
    assert is_covered(enrollment.person_index, start)
    assert not is_covered(enrollment.person_index, start - timedelta(days=1))
    assert is_covered(enrollment.person_index, date(2026, 12, 31))
    assert not is_covered(enrollment.person_index, date(2027, 1, 1))
    batch.refresh_from_db()
    assert batch.status == "active" and batch.paid_on == paid_on
    # idempotent for the contributions side
    services.activate_batch_coverage(acting_user=None, batch=batch, paid_on=date(2026, 6, 1))
    enrollment.refresh_from_db()
    assert enrollment.coverage_start == start


def test_activation_after_the_year_and_from_a_wrong_state_is_refused(world: World) -> None:
    batch = confirmed(world, [row(id_number=person(), uscc=world.tree.unit_1.uscc)])
    with pytest.raises(InvalidInput, match="晚于2026年度结束"):
        services.activate_batch_coverage(acting_user=None, batch=batch, paid_on=date(2026, 12, 31))
    draft = services.create_batch(
        acting_user=None, union=world.tree.grassroots_1, plan_year=2026, today=TODAY
    )
    with pytest.raises(InvalidInput, match="不能开始保障"):
        services.activate_batch_coverage(acting_user=None, batch=draft, paid_on=TODAY)
    assert Enrollment.objects.get(batch=batch).status == "pending"


def test_withdraw_before_start_refunds_after_start_refused(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    batch = confirmed(
        world,
        [
            row(id_number=person(), uscc=uscc),
            row(name="二", id_number=person(), uscc=uscc),
            row(name="三", id_number=person(), uscc=uscc),
        ],
        today=date(2025, 12, 1),
    )
    first, second, third = Enrollment.objects.filter(batch=batch).order_by("row_number")
    # not paid yet: withdrawn, nothing to refund
    services.withdraw_enrollment(
        acting_user=world.clerk, enrollment=first, reason="本人放弃", today=date(2025, 12, 2)
    )
    assert (first.status, first.refund_due) == ("withdrawn", False)
    services.activate_batch_coverage(acting_user=None, batch=batch, paid_on=date(2025, 12, 10))
    second.refresh_from_db()
    received: list[tuple[int, bool]] = []

    def hook(sender: Any, enrollment: Enrollment, refund_due: bool, **_: Any) -> None:
        received.append((enrollment.pk, refund_due))

    services.enrollment_withdrawn.connect(hook)
    try:
        services.withdraw_enrollment(
            acting_user=world.clerk, enrollment=second, reason="调离", today=date(2025, 12, 20)
        )
    finally:
        services.enrollment_withdrawn.disconnect(hook)
    assert (second.status, second.refund_due) == ("refunded", True)
    # on_commit hooks do not run inside the test transaction; the signal is wired on commit
    third.refresh_from_db()
    with pytest.raises(InvalidInput, match="年度中途不能退保"):
        services.withdraw_enrollment(
            acting_user=world.clerk, enrollment=third, reason="离职", today=date(2026, 1, 1)
        )
    third.refresh_from_db()
    assert third.status == "active"


def test_withdraw_signal_fires_on_commit(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    batch = confirmed(
        world, [row(id_number=person(), uscc=world.tree.unit_1.uscc)], today=date(2025, 12, 1)
    )
    services.activate_batch_coverage(acting_user=None, batch=batch, paid_on=date(2025, 12, 10))
    enrollment = Enrollment.objects.get(batch=batch)
    received: list[bool] = []

    def hook(sender: Any, enrollment: Enrollment, refund_due: bool, **_: Any) -> None:
        received.append(refund_due)

    services.enrollment_withdrawn.connect(hook)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.withdraw_enrollment(
                acting_user=None, enrollment=enrollment, reason="调离", today=date(2025, 12, 20)
            )
    finally:
        services.enrollment_withdrawn.disconnect(hook)
    assert received == [True]


def test_member_left_unit_keeps_cover_to_year_end(world: World) -> None:
    batch = confirmed(world, [row(id_number=person(), uscc=world.tree.unit_1.uscc)])
    services.activate_batch_coverage(acting_user=None, batch=batch, paid_on=date(2026, 3, 5))
    enrollment = Enrollment.objects.get(batch=batch)
    assert (
        services.member_left_unit(
            acting_user=None, member=enrollment.member, left_on=date(2026, 7, 15)
        )
        == 1
    )
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.coverage_end, enrollment.left_unit_on) == (
        "active",
        date(2026, 12, 31),
        date(2026, 7, 15),
    )
    assert is_covered(enrollment.person_index, date(2026, 11, 30))


def test_confirm_requires_acceptance_when_rows_are_invalid(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    batch = services.create_batch(
        acting_user=world.clerk, union=world.tree.grassroots_1, plan_year=2026, today=TODAY
    )
    services.attach_roster(
        acting_user=world.clerk,
        batch=batch,
        file_name="r.xlsx",
        content=xlsx([row(id_number=person(), uscc=uscc), row(id_number="1", uscc=uscc)]),
    )
    services.validate_batch(batch=batch, today=TODAY)
    with pytest.raises(InvalidInput, match="有1行错误"):
        services.confirm_batch(acting_user=world.clerk, batch=batch, today=TODAY)
    batch.refresh_from_db()
    assert batch.status == "validated" and Enrollment.objects.count() == 0


def test_confirmation_resumes_after_the_committed_chunk(world: World) -> None:
    """S17 in-process: a confirmation stopped after some chunks continues after them; every row
    exactly once (the subprocess kill test is in test_crash.py)."""
    uscc = world.tree.unit_1.uscc
    rows = [
        row(name=f"职工{i}", id_number=person(date(1980, 1, 1 + i)), uscc=uscc) for i in range(7)
    ]
    batch = services.create_batch(
        acting_user=None, union=world.tree.grassroots_1, plan_year=2026, today=TODAY
    )
    services.attach_roster(acting_user=None, batch=batch, file_name="r.xlsx", content=xlsx(rows))
    services.validate_batch(batch=batch, today=TODAY)
    services.start_confirmation(acting_user=None, batch=batch, today=TODAY)

    class Crash(Exception):
        pass

    class Stop:
        calls = 0

        def begin(self, total: int, message: str = "", *, done: int = 0) -> None:
            pass

        def update(self, done: int, message: str | None = None, *, force: bool = False) -> None:
            self.calls += 1
            if self.calls == 2:
                raise Crash  # inside the second chunk's transaction: that chunk rolls back

    with pytest.raises(Crash):
        services.run_confirmation(batch=batch, progress=Stop(), chunk_size=3)
    batch.refresh_from_db()
    assert (batch.status, batch.last_row_done, Enrollment.objects.count()) == ("confirming", 4, 3)
    services.run_confirmation(batch=batch, chunk_size=3)
    batch.refresh_from_db()
    assert batch.status == "awaiting_payment" and batch.enrolled_count == 7
    assert Enrollment.objects.count() == 7 == Member.objects.count()
    assert sorted(Enrollment.objects.values_list("row_number", flat=True)) == list(range(2, 9))
    # running it again changes nothing
    services.run_confirmation(batch=batch, chunk_size=3)
    assert Enrollment.objects.count() == 7


def test_family_members_enrolled_under_the_family_product(world: World) -> None:
    t = world.tree
    number = person()
    worker = factories.member(t.grassroots_1, t.unit_1, number=number)
    spouse = add_family_member(
        acting_user=None,
        member=worker,
        name="配偶",
        id_number=make_id_number("430102", date(1986, 1, 1), 22),
        relation="spouse",
    )
    batch = confirmed(world, [row(id_number=number, uscc=t.unit_1.uscc)], include_family=True)
    family = Enrollment.objects.get(batch=batch, product_set="family")
    assert (family.family_member_id, family.member_id, family.person_index) == (
        spouse.pk,
        worker.pk,
        spouse.id_number_index,
    )
    assert batch.enrolled_count == 2


# --- renewal -----------------------------------------------------------------------------------
def _active_2026(world: World, rows: list[list[Any]]) -> EnrollmentBatch:
    batch = confirmed(world, rows, today=date(2025, 12, 1))
    services.activate_batch_coverage(acting_user=None, batch=batch, paid_on=date(2025, 12, 10))
    return batch


def test_renewal_drafts_next_year_and_drops_people_past_the_age_rule(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    young = person(date(1985, 3, 12))
    retiring = make_id_number("430102", date(1966, 10, 15), 11)  # 60y+6m → 2027-04-15: kept
    retired = make_id_number("430102", date(1966, 1, 10), 11)  # 60y+4m → 2026-05-10: dropped
    woman50 = make_id_number("430102", date(1976, 3, 5), 12)  # 50y+8m → 2026-11-05: dropped
    leaver = person(date(1990, 1, 1))
    _active_2026(
        world,
        [
            row(name="年轻", id_number=young, uscc=uscc),
            row(name="将退", id_number=retiring, uscc=uscc),
            row(name="已退", id_number=retired, uscc=uscc),
            row(name="女五十", id_number=woman50, uscc=uscc, category="女50"),
            row(name="离职", id_number=leaver, uscc=uscc),
        ],
    )
    leaver_member = Member.objects.get(id_number_index=id_number_index(leaver))
    services.member_left_unit(acting_user=None, member=leaver_member, left_on=date(2026, 8, 1))
    with pytest.raises(InvalidInput, match="没有已启用的2027年度保障方案"):
        services.draft_renewals(acting_user=world.clerk, year=2027)
    assert not EnrollmentBatch.objects.filter(plan_year=2027).exists()
    active_plan(2027)
    outcome = services.draft_renewals(acting_user=world.clerk, year=2027)
    [item] = outcome.unions
    batch = item.batch
    assert batch is not None
    assert (batch.status, batch.source, batch.plan_year, batch.plan_version.code) == (
        "draft",
        "renewal",
        2027,
        "HUNAN-2027",
    )
    assert item.carried == 2 and batch.valid_count == 2
    dropped = {name: reason for name, _, reason in item.dropped}
    assert dropped == {
        "已退": "已超过参保年龄上限：按退休类别“男”，法定退休日期为2026-05-10，早于参保日期"
        "2027-01-01",
        "女五十": "已超过参保年龄上限：按退休类别“女50”，法定退休日期为2026-11-05，早于参保日期"
        "2027-01-01",
        "离职": "已于2026-08-01离开单位",
    }
    assert RosterRowError.objects.filter(batch=batch, kind="dropped").count() == 3
    # a second run drafts nothing new
    again = services.draft_renewals(acting_user=world.clerk, year=2027)
    assert again.unions[0].existing and again.created == []
    # the union confirms: enrollments of 2027, pending payment
    done = services.confirm_batch(acting_user=world.clerk, batch=batch, today=date(2026, 12, 1))
    assert done.status == "awaiting_payment" and done.enrolled_count == 2
    names = set(Enrollment.objects.filter(plan_year=2027).values_list("member__name", flat=True))
    assert names == {"年轻", "将退"}
    assert Enrollment.objects.filter(plan_year=2027, status="pending").count() == 2


def test_renewal_rechecks_the_age_rule_on_the_actual_enrollment_date(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    retiring = make_id_number("430102", date(1966, 8, 15), 11)  # 60y+5m → 2027-01-15
    _active_2026(world, [row(name="将退", id_number=retiring, uscc=uscc)])
    active_plan(2027)
    [item] = services.draft_renewals(acting_user=None, year=2027).unions
    assert item.carried == 1
    assert item.batch is not None
    done = services.confirm_batch(acting_user=None, batch=item.batch, today=date(2027, 3, 1))
    assert done.enrolled_count == 0 and done.error_count == 1
    drop = RosterRowError.objects.get(batch=done)
    assert "2027-01-15" in drop.message and "2027-03-02" in drop.message


def test_statuses_are_checked_by_the_database(world: World) -> None:
    batch = confirmed(world, [row(id_number=person(), uscc=world.tree.unit_1.uscc)])
    with pytest.raises(IntegrityError), transaction.atomic():
        Enrollment.objects.filter(batch=batch).update(status="active")  # no coverage dates
    with pytest.raises(IntegrityError), transaction.atomic():
        EnrollmentBatch.objects.filter(pk=batch.pk).update(status="paid")
    assert EnrollmentStatus.PENDING in Enrollment.objects.values_list("status", flat=True)


def test_a_conflict_while_writing_keeps_nothing_of_the_chunk(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone enrolls a person between the check and the write: the database's one-share
    constraint refuses the chunk, nothing of it is written, the batch stays resumable."""
    t = world.tree
    number = person()
    batch = services.create_batch(
        acting_user=None, union=t.grassroots_1, plan_year=2026, today=TODAY
    )
    services.attach_roster(
        acting_user=None,
        batch=batch,
        file_name="r.xlsx",
        content=xlsx(
            [
                row(id_number=number, uscc=t.unit_1.uscc),
                row(name="二", id_number=person(), uscc=t.unit_1.uscc),
            ]
        ),
    )
    services.validate_batch(batch=batch, today=TODAY)
    services.start_confirmation(acting_user=None, batch=batch, today=TODAY)
    other = World(t, world.plan, factories.staff(t.county_a2, "clerk"))
    confirmed(other, [row(id_number=number, uscc=t.unit_2.uscc)], union=t.grassroots_2)
    monkeypatch.setattr(
        "huzhu.enrollment.validation.enrolled_elsewhere", lambda *args, **kwargs: set()
    )
    with pytest.raises(InvalidInput, match="发现冲突"):
        services.run_confirmation(batch=batch)
    batch.refresh_from_db()
    assert (batch.status, batch.last_row_done, batch.enrolled_count) == ("confirming", 0, 0)
    assert not Enrollment.objects.filter(batch=batch).exists()
    monkeypatch.undo()
    done = services.run_confirmation(batch=batch)
    assert (done.status, done.enrolled_count, done.error_count) == ("awaiting_payment", 1, 1)
