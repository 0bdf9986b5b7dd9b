"""S8: the append-only, hash-chained audit log and ``huzhu verify-audit``."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from huzhu.cli import main
from huzhu.core.audit import Event, compute_hash, first_problem, record_event
from huzhu.core.context import RequestInfo, current_request
from huzhu.core.models import AuditChain, AuditEvent
from huzhu.members import services as member_services
from huzhu.members.models import Member
from huzhu.members.services import MemberInput, create_member
from tests import factories


def _events() -> list[tuple[int, str]]:
    return list(AuditEvent.objects.order_by("seq").values_list("seq", "event"))


def _drop_append_only_triggers() -> None:
    """Only for tests that play the attacker; the test's transaction restores them."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER core_auditevent_no_update")
            cursor.execute("DROP TRIGGER core_auditevent_no_delete")
        else:
            cursor.execute("DROP TRIGGER core_auditevent_append_only ON core_auditevent")


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["verify-audit"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.django_db
def test_events_form_a_chain_with_actor_role_organisation_and_no_sensitive_values() -> None:
    tree = factories.tree()
    clerk = factories.staff(tree.grassroots_1, "clerk", username="clerk1")
    token = current_request.set(RequestInfo(ip="10.1.2.3", channel="web"))
    try:
        member = create_member(
            acting_user=clerk,
            union=tree.grassroots_1,
            data=MemberInput(
                name="王芳",
                id_number="430102197503010033",
                employment_type="contract",
                phone="13812345678",
                unit_id=tree.unit_1.pk,
            ),
        )
    finally:
        current_request.reset(token)
    event = AuditEvent.objects.get(event=Event.MEMBER_CREATED, object_id=str(member.pk))
    assert (event.actor_id, event.actor_username, event.actor_role) == (clerk.pk, "clerk1", "clerk")
    assert (event.organisation_id, event.ip, event.channel) == (
        tree.grassroots_1.pk,
        "10.1.2.3",
        "web",
    )
    assert (event.object_type, event.outcome) == ("members.member", "success")
    assert event.organisation_path == tree.grassroots_1.path
    assert event.occurred_at.utcoffset() is not None
    text = str(AuditEvent.objects.filter(pk=event.pk).values().get())
    assert "430102197503010033" not in text and "13812345678" not in text
    rows = list(AuditEvent.objects.order_by("seq"))
    # One test, one transaction: every event of it is on the transaction's one chain.
    assert {r.chain for r in rows} == {rows[0].chain}
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0].prev_hash == "0" * 64
    for previous, row in itertools.pairwise(rows):
        assert row.prev_hash == previous.hash
        assert row.hash == compute_hash(row)
    head = AuditChain.objects.get(id=rows[0].chain)
    assert (head.last_seq, head.last_hash) == (rows[-1].seq, rows[-1].hash)
    assert first_problem() is None


@pytest.mark.django_db
def test_a_service_that_fails_after_its_change_leaves_neither_change_nor_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = factories.tree()
    before_events, before_members = _events(), Member.objects.count()
    real = member_services.record_event

    def record_then_fail(**kwargs: Any) -> Any:
        real(**kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(member_services, "record_event", record_then_fail)
    with pytest.raises(RuntimeError):
        factories.member(tree.grassroots_1, tree.unit_1)
    assert _events() == before_events
    assert Member.objects.count() == before_members
    assert first_problem() is None


@pytest.mark.django_db
def test_a_failing_audit_write_undoes_the_change(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = factories.tree()
    before_events, before_members = _events(), Member.objects.count()

    def broken(**kwargs: Any) -> Any:
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(member_services, "record_event", broken)
    with pytest.raises(DatabaseError):
        factories.member(tree.grassroots_1, tree.unit_1)
    assert (_events(), Member.objects.count()) == (before_events, before_members)


@pytest.mark.django_db
def test_an_event_written_inside_a_rolled_back_transaction_is_gone() -> None:
    factories.tree()
    before = _events()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        record_event(actor=None, event=Event.EXPORT, object_type="x", object_id="1")
        1 / 0  # noqa: B018
    assert _events() == before
    record_event(actor=None, event=Event.EXPORT, object_type="x", object_id="2")
    assert first_problem() is None  # the chain continues without a gap


@pytest.mark.django_db
def test_verify_audit_passes_on_a_clean_chain(capsys: pytest.CaptureFixture[str]) -> None:
    factories.tree()
    count = AuditEvent.objects.count()
    assert count > 5
    status, out, err = _verify(capsys)
    chains = AuditChain.objects.count()
    assert (status, out, err) == (0, f"审计链完整：{chains} 条链，共 {count} 条事件\n", "")


@pytest.mark.django_db
def test_verify_audit_names_an_edited_row(capsys: pytest.CaptureFixture[str]) -> None:
    factories.tree()
    target = AuditEvent.objects.get(seq=3)
    _drop_append_only_triggers()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_auditevent SET actor_username = %s WHERE id = %s", ["mallory", target.pk]
        )
    status, out, err = _verify(capsys)
    assert status == 1 and out == ""
    assert err == (
        f"审计链异常：第 {target.chain} 号链第 3 条（事件 id={target.pk}）："
        "内容与哈希不一致（该条被修改）\n"
    )


@pytest.mark.django_db
def test_verify_audit_names_a_row_edited_with_a_recomputed_hash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An attacker who recomputes the edited row's hash breaks the next row's link."""
    factories.tree()
    target = AuditEvent.objects.get(seq=3)
    target.outcome = "failure"
    forged = compute_hash(target)
    following = AuditEvent.objects.get(seq=4)
    _drop_append_only_triggers()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_auditevent SET outcome = 'failure', hash = %s WHERE id = %s",
            [forged, target.pk],
        )
    status, _, err = _verify(capsys)
    assert status == 1
    assert err == (
        f"审计链异常：第 {following.chain} 号链第 4 条（事件 id={following.pk}）："
        "前序哈希不一致（前一条被修改或删除）\n"
    )


@pytest.mark.django_db
def test_verify_audit_names_a_deleted_row(capsys: pytest.CaptureFixture[str]) -> None:
    factories.tree()
    after = AuditEvent.objects.get(seq=5)
    _drop_append_only_triggers()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE seq = 4")
    status, _, err = _verify(capsys)
    assert status == 1
    assert err == (
        f"审计链异常：第 {after.chain} 号链第 5 条（事件 id={after.pk}）："
        "第 4 条审计事件缺失（已被删除）\n"
    )


@pytest.mark.django_db
def test_verify_audit_notices_the_newest_row_deleted(capsys: pytest.CaptureFixture[str]) -> None:
    factories.tree()
    newest = AuditEvent.objects.order_by("-seq").first()
    assert newest is not None
    _drop_append_only_triggers()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM core_auditevent WHERE id = %s", [newest.pk])
    status, _, err = _verify(capsys)
    assert status == 1
    assert err == (
        f"审计链异常：第 {newest.chain} 号链第 {newest.seq} 条（链尾）："
        "链尾与链头记录不一致（最新的事件被删除）\n"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE core_auditevent SET outcome = 'failure'",
        "UPDATE core_auditevent SET detail = '{}' WHERE seq = 1",
        "DELETE FROM core_auditevent WHERE seq = 1",
        "DELETE FROM core_auditevent",
    ],
)
def test_the_database_refuses_update_and_delete(statement: str) -> None:
    factories.tree()
    before = list(AuditEvent.objects.order_by("seq").values_list("seq", "hash", "outcome"))
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "hash", "outcome")) == before


@pytest.mark.django_db
def test_the_orm_cannot_edit_or_delete_events_either() -> None:
    factories.tree()
    count = AuditEvent.objects.count()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(outcome="failure")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=2).delete()
    assert AuditEvent.objects.count() == count
    assert first_problem() is None


@pytest.mark.django_db
def test_truncate_is_refused_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; its DELETE trigger covers the case")
    factories.tree()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE core_auditevent")


@pytest.mark.django_db
def test_every_member_service_writes_its_event() -> None:
    tree = factories.tree()
    clerk = factories.staff(tree.grassroots_1, "clerk")
    member = factories.member(tree.grassroots_1, tree.unit_1)
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    member_services.record_hardship(
        acting_user=clerk,
        member=member,
        source="union_file",
        valid_from=date(2026, 1, 1),
        valid_to=None,
    )
    member_services.add_family_member(
        acting_user=clerk,
        member=member,
        name="李娜",
        id_number="11010519491231002X",
        relation="parent",
    )
    member_services.grant_consent(acting_user=clerk, member=member)
    member_services.withdraw_consent(acting_user=clerk, member=member)
    member_services.reveal_member_field(
        acting_user=clerk, member=member, field="id_number", reason="核对理赔申请"
    )
    events = list(
        AuditEvent.objects.filter(seq__gt=start)
        .order_by("seq")
        .values_list("event", "actor_username", "outcome")
    )
    assert events == [
        (Event.HARDSHIP_RECORDED, clerk.username, "success"),
        (Event.FAMILY_CREATED, clerk.username, "success"),
        (Event.CONSENT_GRANTED, clerk.username, "success"),
        (Event.CONSENT_WITHDRAWN, clerk.username, "success"),
        (Event.MEMBER_UNMASKED, clerk.username, "success"),
    ]
    reveal = AuditEvent.objects.get(event=Event.MEMBER_UNMASKED)
    assert reveal.detail == {"field": "id_number", "reason": "核对理赔申请"}
