"""Paying benefits (R15, S6, S15): payment batches, the bank transfer file, the bank's results,
hospital clearing — and the ledger moving 2241/2242 → 1001 exactly.

Approved claims come from the real settlement service: a member without consent is quarantined,
then consents and the record is released — an approved benefit owed to the member (2241); a
member with consent is approved at once and the hospital deducts it at discharge (2242)."""

from __future__ import annotations

import csv
import io
import itertools
import threading
from dataclasses import dataclass

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huzhu.claims.models import (
    Claim,
    ClaimStatus,
    ClaimStep,
    Partner,
    PaymentBatch,
    PaymentBatchKind,
    PaymentBatchStatus,
    PaymentLine,
    PaymentLineResult,
)
from huzhu.claims.payments import (
    BANK_FILE_COLUMNS,
    ExclusionCode,
    ResultRow,
    cancel_batch,
    create_hospital_batch,
    create_member_batch,
    export_bank_file,
    hospitals_owed,
    line_reference,
    parse_result_file,
    preview_batch,
    record_bank_results,
)
from huzhu.claims.services import receive_settlement, release_quarantined
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.ledger.models import Fund, JournalEntry
from huzhu.ledger.services import (
    Party,
    PayerShare,
    post_contribution_invoiced,
    post_contribution_received,
)
from huzhu.members.models import Member
from huzhu.members.services import grant_consent
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import Union, User
from huzhu.plans.models import PlanVersion
from tests import factories
from tests.claims.conftest import Person, cover, ledger_clean, settle_body
from tests.contributions.conftest import balance

pytestmark = pytest.mark.django_db

_accounts = itertools.count(1)
_setl = itertools.count(1)


# --- building blocks (shared with the view, API and browser tests) ------------------------------
def bank_account() -> str:
    """A valid-looking 19-digit card number, different for every member."""
    return f"622202100{next(_accounts):010d}"


def fund_bank(union: Union, amount_fen: int = 10_000_000) -> None:
    """Money in the fund's bank account (1001): a contribution invoiced and received."""
    payer = Party.union(union)
    key = f"pay-test-{union.pk}-{next(_setl)}"
    post_contribution_invoiced(
        acting_user=None,
        organisation=union,
        date=timezone.localdate(),
        invoice_id=key,
        payers=[PayerShare(payer, amount_fen)],
    )
    post_contribution_received(
        acting_user=None,
        organisation=union,
        date=timezone.localdate(),
        payment_id=key,
        payer=payer,
        amount_fen=amount_fen,
    )


def insured(
    tree: factories.Tree,
    plan: PlanVersion,
    *,
    account: bool = True,
    union: Union | None = None,
    name: str = "李娜",
) -> Person:
    certno = factories.id_number()
    union = union or tree.grassroots_1
    unit = {tree.grassroots_1: tree.unit_1, tree.grassroots_2: tree.unit_2}[union]
    member = factories.member(
        union, unit, number=certno, name=name, bank_account=bank_account() if account else ""
    )
    if account:
        Member.objects.filter(pk=member.pk).update(bank_name="中国工商银行长沙分行")
    return Person(member, certno, cover(member, plan))


def member_owed(partner: Partner, person: Person, *, base: str = "12000.00") -> Claim:
    """An approved claim owed to the member: quarantined without consent, released after it."""
    setl_id = f"PAY{next(_setl):06d}"
    receive_settlement(partner=partner, body=settle_body(person.certno, setl_id, base=base))
    grant_consent(acting_user=None, member=person.member)
    release_quarantined(member_id=person.member.pk)
    claim = Claim.objects.get(record_key=setl_id)
    assert claim.status == ClaimStatus.APPROVED and not claim.deducted_at_discharge
    return claim


def hospital_owed(partner: Partner, person: Person, *, base: str = "12000.00") -> Claim:
    """An approved one-stop claim the hospital deducted at discharge (the member consents)."""
    grant_consent(acting_user=None, member=person.member)
    setl_id = f"PAY{next(_setl):06d}"
    receive_settlement(partner=partner, body=settle_body(person.certno, setl_id, base=base))
    claim = Claim.objects.get(record_key=setl_id)
    assert claim.status == ClaimStatus.APPROVED and claim.deducted_at_discharge
    return claim


def bank_rows(batch: PaymentBatch, outcomes: dict[int, str] | None = None) -> list[ResultRow]:
    """Result rows for every line of the batch: success unless ``outcomes[line_no]`` says
    "failed" (the reason is then "账户已销户")."""
    outcomes = outcomes or {}
    rows = []
    for line in batch.lines.order_by("line_no"):
        outcome = outcomes.get(line.line_no, PaymentLineResult.SUCCEEDED)
        rows.append(
            ResultRow(
                where=f"第 {line.line_no} 条",
                reference=line_reference(batch, line),
                outcome=outcome,
                bank_reference=f"BANK{batch.pk:04d}{line.line_no:05d}"
                if outcome == PaymentLineResult.SUCCEEDED
                else "",
                failure_reason="账户已销户" if outcome == PaymentLineResult.FAILED else "",
            )
        )
    return rows


def result_csv(batch: PaymentBatch, outcomes: dict[int, str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["业务参考号", "结果", "银行流水号", "失败原因"])
    for row in bank_rows(batch, outcomes):
        writer.writerow(
            [
                row.reference,
                "成功" if row.outcome == "succeeded" else "失败",
                row.bank_reference,
                row.failure_reason,
            ]
        )
    return buffer.getvalue().encode("utf-8")


def payable(code: str, party_type: str = "", party_id: object = None) -> int:
    """Credits minus debits (what a liability account owes)."""
    return -balance(code, party_type, party_id)


@dataclass
class PayWorld:
    tree: factories.Tree
    plan: PlanVersion
    partner: Partner
    finance: User  # 长沙市总工会 finance
    finance2: User  # another finance officer of 长沙市总工会


def pay_world(tree: factories.Tree, plan: PlanVersion, partner: Partner) -> PayWorld:
    """Money in the bank and two finance officers of 长沙市总工会."""
    fund_bank(tree.province)
    return PayWorld(
        tree,
        plan,
        partner,
        factories.staff(tree.city_a, "finance", username="cs_finance"),
        factories.staff(tree.city_a, "finance", username="cs_finance2"),
    )


@pytest.fixture
def world(tree: factories.Tree, plan: PlanVersion, partner: Partner) -> PayWorld:
    return pay_world(tree, plan, partner)


def _events(name: str) -> int:
    return AuditEvent.objects.filter(event=name).count()


# --- creating a member batch --------------------------------------------------------------------
def test_member_batch_takes_owed_claims_and_lists_those_without_an_account(world):
    w = world
    paid_to = insured(w.tree, w.plan, name="李娜")
    no_account = insured(w.tree, w.plan, account=False, name="王芳")
    at_discharge = insured(w.tree, w.plan, name="赵磊")
    owed = member_owed(w.partner, paid_to)
    missing = member_owed(w.partner, no_account)
    hospital_owed(w.partner, at_discharge)

    created = create_member_batch(acting_user=w.finance, union=w.tree.city_a)

    batch = created.batch
    assert batch.kind == PaymentBatchKind.MEMBER and batch.status == PaymentBatchStatus.DRAFT
    assert batch.number == f"ZF{timezone.localdate():%Y%m%d}{batch.pk:06d}"
    assert (batch.line_count, batch.total_fen) == (1, 620000)
    line = PaymentLine.objects.get(batch=batch)
    assert (line.line_no, line.claim_id, line.amount_fen, line.payee_name) == (
        1,
        owed.pk,
        620000,
        "李娜",
    )
    assert line.result == PaymentLineResult.PENDING
    assert [(e.claim_id, e.code, e.amount_fen, e.payee_name) for e in created.excluded] == [
        (missing.pk, ExclusionCode.NO_BANK_ACCOUNT, 620000, "王芳")
    ]
    assert "未登记银行账号" in created.excluded[0].reason
    step = ClaimStep.objects.filter(claim=owed).latest("id")
    assert (step.action, step.to_status, step.actor_id) == ("batch", "approved", w.finance.pk)
    assert batch.number in step.note
    event = AuditEvent.objects.get(event="claims.payment_batch_created")
    assert event.detail["lines"] == 1 and event.detail["excluded"] == 1
    # Nothing moves in the ledger until the bank pays.
    assert payable("2241") == 1240000


def test_a_claim_is_in_one_batch_only(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    create_member_batch(acting_user=w.finance, union=w.tree.city_a)
    with pytest.raises(InvalidInput) as caught:
        create_member_batch(acting_user=w.finance2, union=w.tree.city_a)
    assert "没有可以支付的职工补助" in caught.value.errors[0].message
    assert PaymentBatch.objects.count() == 1


def test_preview_matches_what_the_batch_takes(world):
    w = world
    owed = member_owed(w.partner, insured(w.tree, w.plan))
    missing = member_owed(w.partner, insured(w.tree, w.plan, account=False, name="王芳"))
    preview = preview_batch(acting_user=w.finance, union=w.tree.city_a, kind="member")
    assert [c.claim.pk for c in preview.included] == [owed.pk]
    assert preview.total_fen == 620000
    assert [e.claim_id for e in preview.excluded] == [missing.pk]
    assert PaymentBatch.objects.count() == 0


def test_out_of_scope_union_and_missing_permission_are_refused(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    with pytest.raises(NotPermitted):
        create_member_batch(acting_user=w.finance, union=w.tree.city_b)
    with pytest.raises(NotPermitted):
        create_member_batch(acting_user=w.finance, union=w.tree.province)
    reviewer = factories.staff(w.tree.city_a, "reviewer")
    with pytest.raises(NotPermitted):
        create_member_batch(acting_user=reviewer, union=w.tree.city_a)
    assert PaymentBatch.objects.count() == 0


def test_only_the_unions_subtree_is_taken(world):
    w = world
    inside = member_owed(w.partner, insured(w.tree, w.plan))
    member_owed(w.partner, insured(w.tree, w.plan, union=w.tree.grassroots_2, name="周敏"))
    created = create_member_batch(acting_user=w.finance, union=w.tree.county_a1)
    assert list(created.batch.lines.values_list("claim_id", flat=True)) == [inside.pk]
    assert created.batch.union_path == w.tree.county_a1.path


def test_claims_of_a_fund_pooled_below_are_left_to_that_fund(tree, plan, partner):
    """长沙 pools its own fund: the province's batch leaves 长沙's claims to 长沙's finance."""
    Fund.objects.create(
        organisation=tree.city_a, organisation_path=tree.city_a.path, name="长沙市职工互助保障基金"
    )
    fund_bank(tree.city_a)
    claim = member_owed(partner, insured(tree, plan))
    provincial = factories.staff(tree.province, "finance")
    with pytest.raises(InvalidInput):
        create_member_batch(acting_user=provincial, union=tree.province)
    preview = preview_batch(acting_user=provincial, union=tree.province, kind="member")
    assert [(e.claim_id, e.code) for e in preview.excluded] == [
        (claim.pk, ExclusionCode.OTHER_FUND)
    ]
    assert "长沙市职工互助保障基金" in preview.excluded[0].reason
    city = factories.staff(tree.city_a, "finance")
    batch = create_member_batch(acting_user=city, union=tree.city_a).batch
    export_bank_file(acting_user=city, batch=batch, reason="提交银行代发")
    record_bank_results(acting_user=city, batch=batch, rows=bank_rows(batch))
    entry = JournalEntry.objects.get(source_type="benefit_payment")
    assert entry.fund.organisation_id == tree.city_a.pk
    assert ledger_clean()


# --- S6 separation of duties --------------------------------------------------------------------
def test_the_approver_or_creator_does_not_pay(world):
    w = world
    approved = member_owed(w.partner, insured(w.tree, w.plan, name="李娜"))
    filed = member_owed(w.partner, insured(w.tree, w.plan, name="王芳"))
    other = member_owed(w.partner, insured(w.tree, w.plan, name="赵磊"))
    Claim.objects.filter(pk=approved.pk).update(approved_by=w.finance)
    Claim.objects.filter(pk=filed.pk).update(created_by=w.finance)

    created = create_member_batch(acting_user=w.finance, union=w.tree.city_a)
    assert list(created.batch.lines.values_list("claim_id", flat=True)) == [other.pk]
    assert {(e.claim_id, e.code) for e in created.excluded} == {
        (approved.pk, ExclusionCode.SEPARATION_OF_DUTIES),
        (filed.pk, ExclusionCode.SEPARATION_OF_DUTIES),
    }
    assert all("其他财务人员" in e.reason for e in created.excluded)
    # The other finance officer pays them.
    second = create_member_batch(acting_user=w.finance2, union=w.tree.city_a)
    assert set(second.batch.lines.values_list("claim_id", flat=True)) == {approved.pk, filed.pk}


def test_a_conflicted_officer_cannot_export_or_record(world):
    w = world
    claim = member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    Claim.objects.filter(pk=claim.pk).update(second_approved_by=w.finance2)
    with pytest.raises(InvalidInput) as caught:
        export_bank_file(acting_user=w.finance2, batch=batch, reason="提交银行代发")
    assert "按职责分离须由其他财务人员支付" in caught.value.errors[0].message
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.DRAFT
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    before = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        record_bank_results(acting_user=w.finance2, batch=batch, rows=bank_rows(batch))
    assert "第 1 条：cs_finance2 经办或审核了该申请" in caught.value.errors[0].message
    assert AuditEvent.objects.count() == before
    assert PaymentLine.objects.get().result == PaymentLineResult.PENDING


# --- the bank file --------------------------------------------------------------------------------
def _rows(content: bytes, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode(encoding))))


def test_bank_file_columns_full_account_and_audit(world):
    w = world
    person = insured(w.tree, w.plan, name="李娜")
    claim = member_owed(w.partner, person)
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    account = str(Member.objects.get(pk=person.member.pk).bank_account_enc)

    exported = export_bank_file(acting_user=w.finance, batch=batch, reason="提交工商银行批量代发")

    assert exported.content.startswith(b"\xef\xbb\xbf")
    assert exported.filename == f"{batch.number}.csv"
    assert exported.rows == 1
    rows = _rows(exported.content)
    assert rows == [
        list(BANK_FILE_COLUMNS),
        [
            "1",
            "李娜",
            account,
            "中国工商银行长沙分行",
            "6200.00",
            f"职工互助保障补助金 {claim.number}",
            f"{batch.number}00001",
        ],
    ]
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.EXPORTED and batch.exported_at is not None
    event = AuditEvent.objects.get(event="data.export")
    assert event.detail["what"] == "payment_bank_file"
    assert event.detail["reason"] == "提交工商银行批量代发"
    assert event.detail["full_bank_accounts"] is True
    assert account not in str(event.detail)
    # Exported again (a lost file): audited again, still the pending lines.
    again = export_bank_file(acting_user=w.finance, batch=batch, reason="文件丢失重新导出")
    assert _rows(again.content) == rows
    assert _events("data.export") == 2


def test_bank_file_in_gbk_and_formula_cells_escaped(world):
    w = world
    person = insured(w.tree, w.plan)
    member_owed(w.partner, person)
    Member.objects.filter(pk=person.member.pk).update(name="=李娜", bank_name="@工商银行")
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    exported = export_bank_file(
        acting_user=w.finance, batch=batch, reason="提交银行代发", encoding="gbk"
    )
    assert exported.content_type == "text/csv; charset=gbk"
    row = _rows(exported.content, "gbk")[1]
    assert (row[1], row[3]) == ("'=李娜", "'@工商银行")


def test_bank_file_needs_a_reason_and_an_open_batch(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    with pytest.raises(InvalidInput) as caught:
        export_bank_file(acting_user=w.finance, batch=batch, reason=" ", encoding="utf-16")
    assert {e.field for e in caught.value.errors} == {"reason", "encoding"}
    cancel_batch(acting_user=w.finance, batch=batch, reason="金额有误")
    with pytest.raises(InvalidInput) as caught:
        export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    assert caught.value.errors[0].message == "批次已作废，不能再导出银行文件"
    assert _events("data.export") == 0


def test_a_claim_changed_after_the_batch_blocks_the_export(world):
    w = world
    claim = member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.CANCELLED)
    with pytest.raises(InvalidInput) as caught:
        export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    assert "请作废本批次后重新生成" in caught.value.errors[0].message


# --- recording the bank's results -------------------------------------------------------------
def test_paid_lines_move_2241_to_the_bank_in_one_entry(world):
    w = world
    people = [insured(w.tree, w.plan, name=n) for n in ("李娜", "王芳")]
    claims = [member_owed(w.partner, p) for p in people]
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    bank_before = balance("1001")

    done = record_bank_results(acting_user=w.finance, batch=batch, rows=bank_rows(batch))

    assert (done.succeeded, done.failed, done.skipped, done.paid_fen) == (2, 0, 0, 1240000)
    assert done.completed
    entry = JournalEntry.objects.get(source_type="benefit_payment")
    assert done.entry == entry
    lines = sorted(
        (line.account.code, line.debit_fen, line.credit_fen, line.party_type, line.party_id)
        for line in entry.lines.select_related("account")
    )
    assert lines == sorted(
        [
            ("1001", 0, 1240000, "", ""),
            ("2241", 620000, 0, "member", str(people[0].member.pk)),
            ("2241", 620000, 0, "member", str(people[1].member.pk)),
        ]
    )
    assert balance("1001") == bank_before - 1240000
    assert payable("2241") == 0
    for claim in claims:
        claim.refresh_from_db()
        assert (claim.status, claim.paid_fen, claim.paid_by_id) == ("paid", 620000, w.finance.pk)
        assert claim.paid_at is not None
        step = claim.steps.latest("id")
        assert (step.action, step.from_status, step.to_status) == ("pay", "approved", "paid")
        assert "补助金已转入职工银行账户（**** " in step.note
    assert set(PaymentLine.objects.values_list("result", "entry_id")) == {("succeeded", entry.pk)}
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.COMPLETED and batch.completed_at is not None
    event = AuditEvent.objects.get(event="claims.payment_results_recorded")
    assert event.detail["succeeded"] == 2 and event.detail["paid"] == "12400.00"
    assert ledger_clean()


def test_a_failed_line_frees_its_claim_for_a_later_batch(world):
    w = world
    claims = [member_owed(w.partner, insured(w.tree, w.plan, name=n)) for n in ("李娜", "王芳")]
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    done = record_bank_results(
        acting_user=w.finance, batch=batch, rows=bank_rows(batch, {2: PaymentLineResult.FAILED})
    )
    assert (done.succeeded, done.failed, done.paid_fen, done.completed) == (1, 1, 620000, True)
    failed = PaymentLine.objects.get(batch=batch, line_no=2)
    assert (failed.result, failed.failure_reason, failed.entry_id) == ("failed", "账户已销户", None)
    claim = Claim.objects.get(pk=failed.claim_id)
    assert (claim.status, claim.paid_fen) == (ClaimStatus.APPROVED, 0)
    assert claim.steps.latest("id").action == "payment_failed"
    assert payable("2241") == 620000

    again = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    assert list(again.lines.values_list("claim_id", "amount_fen")) == [(claim.pk, 620000)]
    export_bank_file(acting_user=w.finance, batch=again, reason="重新支付")
    record_bank_results(acting_user=w.finance, batch=again, rows=bank_rows(again))
    assert {c.status for c in Claim.objects.filter(pk__in=[c.pk for c in claims])} == {"paid"}
    assert payable("2241") == 0
    assert JournalEntry.objects.filter(source_type="benefit_payment").count() == 2
    assert ledger_clean()


def test_results_in_two_uploads_post_two_entries_and_a_repeat_changes_nothing(world):
    w = world
    for name in ("李娜", "王芳", "赵磊"):
        member_owed(w.partner, insured(w.tree, w.plan, name=name))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    rows = bank_rows(batch)
    first = record_bank_results(acting_user=w.finance, batch=batch, rows=rows[:2])
    assert (first.succeeded, first.completed) == (2, False)
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.EXPORTED
    # The re-export holds only the line still pending.
    pending = _rows(
        export_bank_file(acting_user=w.finance, batch=batch, reason="补发剩余一笔").content
    )
    assert [r[0] for r in pending[1:]] == ["3"]
    second = record_bank_results(acting_user=w.finance, batch=batch, rows=rows)
    assert (second.succeeded, second.skipped, second.completed) == (1, 2, True)
    assert JournalEntry.objects.filter(source_type="benefit_payment").count() == 2
    events = _events("claims.payment_results_recorded")
    with pytest.raises(InvalidInput) as caught:  # the batch is completed
        record_bank_results(acting_user=w.finance, batch=batch, rows=rows)
    assert "不能再登记支付结果" in caught.value.errors[0].message
    assert _events("claims.payment_results_recorded") == events
    assert payable("2241") == 0 and ledger_clean()


def test_a_contradicting_repeat_is_refused(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    member_owed(w.partner, insured(w.tree, w.plan, name="王芳"))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    record_bank_results(acting_user=w.finance, batch=batch, rows=bank_rows(batch)[:1])
    with pytest.raises(InvalidInput) as caught:
        record_bank_results(
            acting_user=w.finance, batch=batch, rows=bank_rows(batch, {1: "failed"})
        )
    assert [e.message for e in caught.value.errors] == [
        "第 1 条「结果」：该笔已登记为“支付成功”，不能更改"
    ]
    assert PaymentLine.objects.get(batch=batch, line_no=2).result == "pending"


def test_results_need_an_exported_batch(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    with pytest.raises(InvalidInput) as caught:
        record_bank_results(acting_user=w.finance, batch=batch, rows=bank_rows(batch))
    assert caught.value.errors[0].message == "请先导出银行文件并提交银行，再登记支付结果"


def test_the_bank_balance_never_goes_negative(tree, plan, partner):
    fund_bank(tree.province, 100_000)  # 1000.00 yuan in the bank, 6200.00 owed
    finance = factories.staff(tree.city_a, "finance")
    claim = member_owed(partner, insured(tree, plan))
    batch = create_member_batch(acting_user=finance, union=tree.city_a).batch
    export_bank_file(acting_user=finance, batch=batch, reason="提交银行代发")
    events = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        record_bank_results(acting_user=finance, batch=batch, rows=bank_rows(batch))
    assert caught.value.errors[0].message == (
        "科目 1001 互助金专户存款 余额不足：当前余额 1000.00 元，本次减少 6200.00 元"
        "（基金与风险储备金不得透支）"
    )
    assert AuditEvent.objects.count() == events
    assert not JournalEntry.objects.filter(source_type="benefit_payment").exists()
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.APPROVED and claim.paid_fen == 0
    assert PaymentLine.objects.get().result == PaymentLineResult.PENDING
    assert balance("1001") == 100_000 and ledger_clean()


# --- the result file ----------------------------------------------------------------------------
def test_result_file_is_parsed_in_utf8_or_gbk_with_extra_columns(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    member_owed(w.partner, insured(w.tree, w.plan, name="王芳"))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    refs = [line_reference(batch, line) for line in batch.lines.order_by("line_no")]
    text = (
        "工商银行批量代发结果\r\n"
        "序号,收款人,金额(元),业务参考号,结果,银行流水号,失败原因\r\n"
        f"1,李娜,6200.00,{refs[0]},交易成功,ICBC0001,\r\n"
        f'2,王芳,"6,200.00",{refs[1]},失败,,户名不符\r\n'
        ",,,,,,\r\n"
    )
    rows = parse_result_file(text.encode("gbk"))
    assert [
        (r.where, r.reference, r.outcome, r.bank_reference, r.failure_reason, r.amount_fen)
        for r in rows
    ] == [
        ("第 3 行", refs[0], "succeeded", "ICBC0001", "", 620000),
        ("第 4 行", refs[1], "failed", "", "户名不符", 620000),
    ]
    done = record_bank_results(acting_user=w.finance, batch=batch, rows=rows)
    assert (done.succeeded, done.failed) == (1, 1)


def test_bad_result_rows_are_named_by_row_and_column_and_nothing_is_written(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    member_owed(w.partner, insured(w.tree, w.plan, name="王芳"))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    refs = [line_reference(batch, line) for line in batch.lines.order_by("line_no")]
    with pytest.raises(InvalidInput) as caught:
        parse_result_file(
            (
                "业务参考号,结果,银行流水号,失败原因,金额(元)\n"
                f"{refs[0]},已退回,X1,,6200.00\n"
                f",成功,X2,,12.345\n"
            ).encode()
        )
    assert [e.message for e in caught.value.errors] == [
        "第 2 行「结果」：应为“成功”或“失败”",
        "第 3 行「业务参考号」：不能为空",
        "第 3 行「金额(元)」：金额“12.345”格式不正确："
        "应为不带符号的数字，最多两位小数（如 1234.50）",
    ]
    rows = parse_result_file(
        (
            "业务参考号,结果,银行流水号,失败原因,金额(元)\n"
            f"{refs[0]},成功,,,6200.00\n"
            f"{refs[1]},失败,,,6100.00\n"
            "ZF2099010100000100001,成功,X3,,\n"
            f"{refs[0]},成功,X4,,\n"
        ).encode()
    )
    events = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        record_bank_results(acting_user=w.finance, batch=batch, rows=rows)
    assert [e.message for e in caught.value.errors] == [
        "第 2 行「银行流水号」：支付成功的须填写银行流水号",
        "第 3 行「失败原因」：支付失败的须填写失败原因",
        "第 3 行「金额(元)」：6100.00 元与批次明细的 6200.00 元不符",
        "第 4 行「业务参考号」：本批次没有业务参考号“ZF2099010100000100001”",
        "第 5 行「业务参考号」：与第 2 行重复",
    ]
    assert AuditEvent.objects.count() == events
    assert set(PaymentLine.objects.values_list("result", flat=True)) == {"pending"}
    assert not JournalEntry.objects.filter(source_type="benefit_payment").exists()
    assert set(Claim.objects.values_list("status", flat=True)) == {"approved"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "文件为空"),
        ("序号,收款人\n1,李娜\n".encode(), "找不到表头：结果文件须有「业务参考号」和「结果」列"),
        ("业务参考号,银行流水号\nA,B\n".encode(), "表头缺少「结果」列（成功/失败）"),
        ("业务参考号,结果\n".encode(), "结果文件中没有数据行"),
        (b"\xff\xfe\x00\x81", "无法识别文件编码：结果文件应为 UTF-8 或 GBK 编码的 CSV"),
    ],
)
def test_unusable_result_files(content, message):
    with pytest.raises(InvalidInput) as caught:
        parse_result_file(content)
    assert [e.message for e in caught.value.errors] == [message]


# --- hospital clearing ------------------------------------------------------------------------
def test_hospital_clearing_moves_2242_to_the_bank(world):
    w = world
    claims = [hospital_owed(w.partner, insured(w.tree, w.plan, name=n)) for n in ("李娜", "王芳")]
    member_owed(w.partner, insured(w.tree, w.plan, name="赵磊"))  # not the hospital's
    other = Partner.objects.create(
        partner_id="H430100002",
        name="湘雅医院",
        organisation=w.tree.city_a,
        organisation_path=w.tree.city_a.path,
        key_enc="11" * 32,
        scopes=["settle"],
    )
    hospital_owed(other, insured(w.tree, w.plan, name="周敏"))
    assert [(h.code, h.claims, h.amount_fen) for h in hospitals_owed(w.tree.city_a)] == [
        ("P430100001", 2, 1240000),
        ("H430100002", 1, 620000),
    ]

    batch = create_hospital_batch(
        acting_user=w.finance, union=w.tree.city_a, hospital_code="P430100001"
    ).batch
    assert batch.kind == PaymentBatchKind.HOSPITAL
    assert batch.number.startswith("QS")
    assert set(batch.lines.values_list("claim_id", "payee_name", "amount_fen")) == {
        (c.pk, "长沙市医疗保障事务中心", 620000) for c in claims
    }
    exported = export_bank_file(acting_user=w.finance, batch=batch, reason="与医保中心清算")
    rows = _rows(exported.content)
    assert rows[1][1:5] == ["长沙市医疗保障事务中心", "", "", "6200.00"]
    assert rows[1][5] == f"一站式结算垫付款清算 {claims[0].number} 医疗机构编码 P430100001"
    event = AuditEvent.objects.get(event="data.export")
    assert event.detail["full_bank_accounts"] is False

    assert payable("2242") == 1860000
    record_bank_results(acting_user=w.finance, batch=batch, rows=bank_rows(batch))
    entry = JournalEntry.objects.get(source_type="benefit_payment")
    assert sorted(
        (line.account.code, line.debit_fen, line.credit_fen, line.party_type, line.party_id)
        for line in entry.lines.select_related("account")
    ) == [("1001", 0, 1240000, "", ""), ("2242", 1240000, 0, "hospital", "P430100001")]
    assert payable("2242", "hospital", "P430100001") == 0
    assert payable("2242", "hospital", "H430100002") == 620000
    assert payable("2241") == 620000
    for claim in claims:
        claim.refresh_from_db()
        assert claim.status == ClaimStatus.PAID and claim.paid_fen == 620000
        assert "清算该笔一站式结算垫付款" in claim.steps.latest("id").note
    assert ledger_clean()


def test_hospital_batch_needs_a_hospital(world):
    with pytest.raises(InvalidInput) as caught:
        create_hospital_batch(acting_user=world.finance, union=world.tree.city_a, hospital_code=" ")
    assert caught.value.errors[0].field == "hospital_code"


# --- cancelling ---------------------------------------------------------------------------------
def test_cancel_frees_the_claims(world):
    w = world
    claim = member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    cancel_batch(acting_user=w.finance, batch=batch, reason="银行文件未提交，金额需复核")
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.CANCELLED
    line = PaymentLine.objects.get(batch=batch)
    assert (line.result, line.failure_reason) == ("failed", "批次已作废，未支付")
    assert claim.steps.latest("id").action == "batch_cancelled"
    event = AuditEvent.objects.get(event="claims.payment_batch_cancelled")
    assert event.detail["reason"] == "银行文件未提交，金额需复核"
    again = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    assert list(again.lines.values_list("claim_id", flat=True)) == [claim.pk]


def test_a_batch_with_results_cannot_be_cancelled(world):
    w = world
    member_owed(w.partner, insured(w.tree, w.plan))
    member_owed(w.partner, insured(w.tree, w.plan, name="王芳"))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    record_bank_results(acting_user=w.finance, batch=batch, rows=bank_rows(batch)[:1])
    with pytest.raises(InvalidInput) as caught:
        cancel_batch(acting_user=w.finance, batch=batch, reason="作废")
    assert "已有银行支付结果" in caught.value.errors[0].message
    batch.refresh_from_db()
    assert batch.status == PaymentBatchStatus.EXPORTED
    with pytest.raises(InvalidInput) as caught:
        cancel_batch(acting_user=w.finance, batch=batch, reason="")
    assert caught.value.errors[0].field == "reason"


def test_a_claim_cancelled_after_export_but_paid_by_the_bank_is_recorded_as_paid(world):
    """The bank paid what the file said: the money left, so the books say so and the claim's
    history tells finance to recover it."""
    w = world
    claim = member_owed(w.partner, insured(w.tree, w.plan))
    batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
    export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
    from huzhu.claims.services import _cancel_claim

    _cancel_claim(claim, acting_user=None, actor_text="测试", cause="医保结算撤销")
    record_bank_results(acting_user=w.finance, batch=batch, rows=bank_rows(batch))
    claim.refresh_from_db()
    assert (claim.status, claim.posted_fen, claim.paid_fen) == ("cancelled", 0, 620000)
    assert "多付款项待追回" in claim.steps.latest("id").note
    assert payable("2241", "member", claim.member_id) == -620000
    assert ledger_clean()


# --- concurrency (PostgreSQL: row locks; SQLite serialises writers) ----------------------------
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_take_disjoint_claims(tree, plan, partner):
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SKIP LOCKED) are PostgreSQL's; SQLite runs one writer at a time")
    fund_bank(tree.province)
    claims = [member_owed(partner, insured(tree, plan, name=f"职工{i}")) for i in range(12)]
    officers = [factories.staff(tree.city_a, "finance") for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def create(officer: User) -> None:
        try:
            barrier.wait()
            outcomes.append(create_member_batch(acting_user=officer, union=tree.city_a))
        except Exception as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(o,)) for o in officers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = list(PaymentLine.objects.values_list("claim_id", flat=True))
    assert len(taken) == len(set(taken))  # no claim twice
    assert sorted(taken) == sorted(c.pk for c in claims)  # and none forgotten
    # Either both batches got a share, or one took everything and the other found nothing.
    for outcome in outcomes:
        assert not isinstance(outcome, Exception) or isinstance(outcome, InvalidInput), outcome


# --- invariant: whatever the bank answers, in whatever uploads --------------------------------
@given(
    outcomes=st.lists(st.sampled_from(["succeeded", "failed"]), min_size=3, max_size=3),
    uploads=st.lists(st.integers(min_value=0, max_value=2), min_size=3, max_size=3),
)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_any_bank_answer_keeps_the_books_and_the_claims_in_step(world, outcomes, uploads):
    """The paid lines move exactly their amounts 2241 → 1001 in one entry per upload that paid
    something; paid claims are paid, failed ones are owed again and go into the next batch."""
    w = world
    if not Claim.objects.exists():
        for name in ("李娜", "王芳", "赵磊"):
            member_owed(w.partner, insured(w.tree, w.plan, name=name))
    # Each example runs in its own rolled-back block (the services' durable transactions nest
    # in it as in a test case's).
    block = transaction.atomic()
    block._from_testcase = True  # type: ignore[attr-defined]
    with block:
        bank_before, owed_before = balance("1001"), payable("2241")
        batch = create_member_batch(acting_user=w.finance, union=w.tree.city_a).batch
        export_bank_file(acting_user=w.finance, batch=batch, reason="提交银行代发")
        rows = bank_rows(batch, dict(enumerate(outcomes, start=1)))
        paying_uploads = 0
        for group in sorted(set(uploads)):
            chosen = [row for row, g in zip(rows, uploads, strict=True) if g == group]
            done = record_bank_results(acting_user=w.finance, batch=batch, rows=chosen)
            paying_uploads += done.entry is not None
        paid = 620000 * outcomes.count("succeeded")
        assert balance("1001") == bank_before - paid
        assert payable("2241") == owed_before - paid
        assert JournalEntry.objects.filter(source_type="benefit_payment").count() == paying_uploads
        batch.refresh_from_db()
        assert batch.status == PaymentBatchStatus.COMPLETED
        for line in batch.lines.select_related("claim"):
            expected = "paid" if line.result == "succeeded" else "approved"
            assert (line.claim.status, line.claim.paid_fen) == (
                expected,
                620000 if expected == "paid" else 0,
            )
        preview = preview_batch(acting_user=w.finance, union=w.tree.city_a, kind="member")
        failed = {line.claim_id for line in batch.lines.filter(result="failed")}
        assert {c.claim.pk for c in preview.included} == failed
        assert ledger_clean()
        transaction.set_rollback(True)
