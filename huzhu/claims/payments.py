"""Paying benefits (R15, S6, S15): payment batches, the bank transfer file, the bank's results.

Two kinds of batch, both per union (its whole subtree):

- ``member``: approved benefits owed to members (``deducted_at_discharge`` False) — after review,
  or one-stop records released after consent — paid by bank transfer to the member's account;
  the ledger moves Dr 2241 (per member) / Cr 1001.
- ``hospital``: one-stop amounts a hospital (or its medical-insurance agency, the settlement
  partner) deducted at discharge, cleared to that payee; Dr 2242 (per hospital) / Cr 1001.

Flow: ``create_*_batch`` takes every owed claim not already in a pending or paid line (the claim
rows are locked, ``SKIP LOCKED``: two finance officers building batches at the same moment take
disjoint claims; the partial unique constraint ``payment_line_claim_once`` is the backstop) →
``export_bank_file`` (CSV for the bank's bulk-transfer upload; holds full account numbers, so it
is audited with a stated reason) → ``record_bank_results`` per line from the bank's result file
or typed in (ONE ledger entry per recording for the lines that succeeded; failed lines free
their claims for a later batch) → completed when every line has a result. ``cancel_batch``
while nothing has a result.

Separation of duties (S6): the finance officer who creates, exports or records a batch must not
be the claim's creator, reviewer, approver or second approver; such claims are left out of a new
batch with the reason (another finance officer pays them), and an export or recording touching
one is refused.

Bank file columns (one row per line; ``BANK_FILE_COLUMNS``):

====================  ==========================================================================
序号                  line number in the batch
收款人                member's name / the hospital's (partner's) name
收款账号              member: the full account (decrypted); hospital: empty — the bank pays a
                      hospital from its payee registry (收款人登记簿) by the hospital code given in
                      用途; the platform holds no hospital accounts and never invents one
开户行                member's bank as registered; hospital: empty (registry)
金额(元)              yuan, two decimals
用途                  "职工互助保障补助金 <claim number>" (hospital: "一站式结算垫付款清算 <claim
                      number> 医疗机构编码 <code>")
业务参考号            the line reference: batch number + 5-digit line number; the bank echoes it
                      in its result file
====================  ==========================================================================

Every cell is escaped against spreadsheet formulas (S11). UTF-8 with BOM (Excel opens it) or GBK
(what many Chinese bank portals require).

Bank result file (CSV, UTF-8 or GBK): a header row naming at least 业务参考号 and 结果 (成功/失败),
with 银行流水号 (required for a success), 失败原因 (required for a failure) and optionally
金额(元) (checked against the line). Other columns (a bank often echoes the whole transfer file)
are ignored. Any bad row refuses the whole file with messages naming row and column; nothing is
written.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from huzhu.claims.models import (
    Claim,
    ClaimStatus,
    ClaimStep,
    PaymentBatch,
    PaymentBatchKind,
    PaymentBatchStatus,
    PaymentLine,
    PaymentLineResult,
)
from huzhu.claims.pricing import actor_label
from huzhu.core.audit import Event, record_event, register_event_labels
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.money import format_fen, parse_yuan
from huzhu.enrollment.roster import escape_formula
from huzhu.ledger.models import Fund, JournalEntry
from huzhu.ledger.services import Party, PartyAmount, fund_for, post_benefit_paid
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import Union, User, subtree_q
from huzhu.orgs.roles import Perm

EVENT_BATCH_CREATED = "claims.payment_batch_created"
EVENT_RESULTS_RECORDED = "claims.payment_results_recorded"
EVENT_BATCH_CANCELLED = "claims.payment_batch_cancelled"
register_event_labels(
    {
        EVENT_BATCH_CREATED: "生成补助金支付批次",
        EVENT_RESULTS_RECORDED: "登记银行支付结果",
        EVENT_BATCH_CANCELLED: "作废补助金支付批次",
    }
)

BANK_FILE_COLUMNS = ("序号", "收款人", "收款账号", "开户行", "金额(元)", "用途", "业务参考号")
RESULT_REFERENCE = "业务参考号"
RESULT_OUTCOME = "结果"
RESULT_BANK_REFERENCE = "银行流水号"
RESULT_REASON = "失败原因"
RESULT_AMOUNT = "金额(元)"
RESULT_COLUMNS = (RESULT_REFERENCE, RESULT_OUTCOME, RESULT_BANK_REFERENCE, RESULT_REASON)
ENCODINGS = {"utf-8": "UTF-8（Excel 可直接打开）", "gbk": "GBK（多数银行网银批量代发要求）"}
MAX_RESULT_FILE_BYTES = 5 * 1024 * 1024
MAX_RESULT_ROWS = 100_000
SUCCESS_WORDS = frozenset({"成功", "支付成功", "交易成功", "success", "succeeded"})
FAILURE_WORDS = frozenset({"失败", "支付失败", "交易失败", "failed", "failure"})
PURPOSE_MEMBER = "职工互助保障补助金"
PURPOSE_HOSPITAL = "一站式结算垫付款清算"
CANCELLED_REASON = "批次已作废，未支付"
#: Statuses a batch takes new results in.
_OPEN_FOR_RESULTS = (PaymentBatchStatus.EXPORTED,)

# The fields the batch screens and services read of a claim and its member: never the encrypted
# ID number or diagnoses (S7), and the bank account only when the file is exported.
_CLAIM_FIELDS = (
    "id",
    "number",
    "status",
    "union_id",
    "union_path",
    "member_id",
    "benefit_fen",
    "posted_fen",
    "paid_fen",
    "deducted_at_discharge",
    "hospital_code",
    "hospital_name",
    "created_by_id",
    "reviewed_by_id",
    "approved_by_id",
    "second_approved_by_id",
    "member__name",
    "member__bank_account_masked",
    "member__bank_name",
)


# --- values -------------------------------------------------------------------------------------
class ExclusionCode:
    NO_BANK_ACCOUNT = "no_bank_account"
    SEPARATION_OF_DUTIES = "separation_of_duties"
    OTHER_FUND = "other_fund"
    TAKEN = "taken"


@dataclass(frozen=True)
class Exclusion:
    """A claim owed but left out of the batch, and why (shown to finance)."""

    claim_id: int
    claim_number: str
    payee_name: str
    amount_fen: int
    code: str
    reason: str


@dataclass(frozen=True)
class Candidate:
    claim: Claim
    amount_fen: int
    payee_name: str


@dataclass
class Preview:
    """What a batch would take now (nothing locked, nothing written)."""

    kind: str
    union: Union
    hospital_code: str = ""
    included: list[Candidate] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)

    @property
    def total_fen(self) -> int:
        return sum(c.amount_fen for c in self.included)


@dataclass(frozen=True)
class BatchCreated:
    batch: PaymentBatch
    excluded: list[Exclusion]


@dataclass(frozen=True)
class BankFile:
    content: bytes
    filename: str
    content_type: str
    rows: int


@dataclass(frozen=True)
class ResultRow:
    """One result from the bank (a file row, a form entry or a JSON item). ``where`` names it in
    messages ("第 3 行"); ``amount_fen`` is checked against the line when given."""

    where: str
    reference: str
    outcome: str  # PaymentLineResult.SUCCEEDED | FAILED
    bank_reference: str = ""
    failure_reason: str = ""
    amount_fen: int | None = None


@dataclass(frozen=True)
class ResultsRecorded:
    succeeded: int
    failed: int
    skipped: int
    paid_fen: int
    entry: JournalEntry | None
    completed: bool


# --- helpers ------------------------------------------------------------------------------------
def line_reference(batch: PaymentBatch, line: PaymentLine) -> str:
    """业务参考号 of a line: the batch number and the 5-digit line number (letters and digits
    only — bank portals refuse most punctuation in this field)."""
    return f"{batch.number}{line.line_no:05d}"


def purpose_of(batch: PaymentBatch, line: PaymentLine) -> str:
    claim = line.claim
    if batch.kind == PaymentBatchKind.HOSPITAL:
        return f"{PURPOSE_HOSPITAL} {claim.number} 医疗机构编码 {claim.hospital_code}"
    return f"{PURPOSE_MEMBER} {claim.number}"


def _check_actor(actor: User, union: Union) -> None:
    require(actor, Perm.CLAIM_PAY)
    own = actor.organisation
    if own is None or not union.path.startswith(own.path):
        raise NotPermitted("组织不存在")


def _duty_conflict(actor: User, claim: Claim) -> bool:
    """S6: the payer is not the claim's creator, reviewer, approver or second approver."""
    return actor.pk in {
        claim.created_by_id,
        claim.reviewed_by_id,
        claim.approved_by_id,
        claim.second_approved_by_id,
    }


def _duty_message(actor: User) -> str:
    return f"{actor.username} 经办或审核了该申请，按职责分离须由其他财务人员支付"


def owed_claims(union: Union, kind: str, hospital_code: str | None = None) -> QuerySet[Claim]:
    """Approved claims of ``union``'s subtree still owed (posted > paid) and not in a pending or
    paid line: to members (``member``) or to hospitals that deducted them (``hospital``; one
    hospital's when ``hospital_code`` is given)."""
    busy = PaymentLine.objects.filter(claim=OuterRef("pk")).exclude(result=PaymentLineResult.FAILED)
    qs = Claim.objects.filter(
        subtree_q(union.path, "union_path"),
        status=ClaimStatus.APPROVED,
        benefit_fen__gt=0,
        posted_fen__gt=F("paid_fen"),
        deducted_at_discharge=kind == PaymentBatchKind.HOSPITAL,
    ).exclude(Exists(busy))
    if hospital_code is not None:
        qs = qs.filter(hospital_code=hospital_code)
    return qs.select_related("member").only(*_CLAIM_FIELDS).order_by("pk")


@dataclass(frozen=True)
class HospitalOwed:
    code: str
    name: str
    claims: int
    amount_fen: int


def hospitals_owed(union: Union) -> list[HospitalOwed]:
    """The hospitals owed one-stop amounts in ``union``'s subtree (the clearing form's choices),
    largest amount first (one grouped query)."""
    rows = (
        owed_claims(union, PaymentBatchKind.HOSPITAL)
        .exclude(hospital_code="")
        .order_by()
        .values("hospital_code", "hospital_name")
        .annotate(n=Count("id"), amount=Sum(F("posted_fen") - F("paid_fen")))
    )
    merged: dict[str, HospitalOwed] = {}
    for row in rows:
        code = row["hospital_code"]
        before = merged.get(code)
        merged[code] = HospitalOwed(
            code,
            (before.name if before else "") or row["hospital_name"] or "",
            (before.claims if before else 0) + row["n"],
            (before.amount_fen if before else 0) + (row["amount"] or 0),
        )
    return sorted(merged.values(), key=lambda h: (-h.amount_fen, h.code))


def _other_funds(union: Union) -> list[Fund]:
    """Funds pooled below ``union``'s own fund inside its subtree: their claims are paid from
    their own bank account, by a batch of the union that pools them."""
    own = fund_for(union)
    return list(
        Fund.objects.filter(subtree_q(union.path, "organisation_path"))
        .exclude(pk=own.pk)
        .order_by("-organisation_path")
    )


def _payee_name(claim: Claim, kind: str) -> str:
    if kind == PaymentBatchKind.HOSPITAL:
        return (claim.hospital_name or claim.hospital_code)[:100]
    return claim.member.name[:100]


def _exclusion(claim: Claim, kind: str, code: str, reason: str) -> Exclusion:
    return Exclusion(
        claim.pk,
        claim.number,
        _payee_name(claim, kind),
        claim.posted_fen - claim.paid_fen,
        code,
        reason,
    )


def _classify(
    actor: User, kind: str, claims: Iterable[Claim], funds: list[Fund]
) -> tuple[list[Candidate], list[Exclusion]]:
    included: list[Candidate] = []
    excluded: list[Exclusion] = []
    for claim in claims:
        other = next((f for f in funds if claim.union_path.startswith(f.organisation_path)), None)
        if other is not None:
            excluded.append(
                _exclusion(
                    claim,
                    kind,
                    ExclusionCode.OTHER_FUND,
                    f"属于「{other.name}」，请由该基金所属工会发起支付",
                )
            )
        elif _duty_conflict(actor, claim):
            excluded.append(
                _exclusion(claim, kind, ExclusionCode.SEPARATION_OF_DUTIES, _duty_message(actor))
            )
        elif kind == PaymentBatchKind.MEMBER and not claim.member.bank_account_masked:
            excluded.append(
                _exclusion(
                    claim,
                    kind,
                    ExclusionCode.NO_BANK_ACCOUNT,
                    "职工未登记银行账号，请先在职工信息中登记后再支付",
                )
            )
        else:
            included.append(
                Candidate(claim, claim.posted_fen - claim.paid_fen, _payee_name(claim, kind))
            )
    return included, excluded


def _check_kind(kind: str, hospital_code: str) -> None:
    errors = ErrorCollector()
    if kind not in PaymentBatchKind.values:
        errors.add("kind", "批次类型无效（member 或 hospital）")
    if kind == PaymentBatchKind.HOSPITAL and not hospital_code.strip():
        errors.add("hospital_code", "请选择要清算的医疗机构", ErrorCode.REQUIRED)
    errors.raise_if_any()


def preview_batch(
    *, acting_user: User, union: Union, kind: str, hospital_code: str = ""
) -> Preview:
    """What ``create_*_batch`` would take now and what it would leave out, and why."""
    _check_actor(acting_user, union)
    _check_kind(kind, hospital_code)
    hospital_code = hospital_code.strip()
    code = hospital_code if kind == PaymentBatchKind.HOSPITAL else None
    included, excluded = _classify(
        acting_user, kind, owed_claims(union, kind, code), _other_funds(union)
    )
    return Preview(kind, union, hospital_code, included, excluded)


# --- creating a batch ---------------------------------------------------------------------------
def create_member_batch(*, acting_user: User, union: Union) -> BatchCreated:
    """A batch paying every approved benefit owed to members of ``union``'s subtree."""
    return _create_batch(acting_user, union, PaymentBatchKind.MEMBER, "")


def create_hospital_batch(*, acting_user: User, union: Union, hospital_code: str) -> BatchCreated:
    """A clearing batch of the one-stop amounts ``hospital_code`` deducted at discharge for
    members of ``union``'s subtree."""
    return _create_batch(acting_user, union, PaymentBatchKind.HOSPITAL, hospital_code)


def _new_number(kind: str) -> str:
    return f"{'QS' if kind == PaymentBatchKind.HOSPITAL else 'ZF'}-{secrets.token_hex(8)}"


def _create_batch(actor: User, union: Union, kind: str, hospital_code: str) -> BatchCreated:
    _check_actor(actor, union)
    _check_kind(kind, hospital_code)
    hospital_code = hospital_code.strip()
    with transaction.atomic(durable=True):
        query = owed_claims(
            union, kind, hospital_code if kind == PaymentBatchKind.HOSPITAL else None
        )
        seen = {c.pk: c for c in query}
        # Lock the owed claims; rows another batch is taking right now are skipped (SKIP LOCKED):
        # two concurrent creations take disjoint claims. (SQLite runs one writer at a time.)
        locked = list(query.select_for_update(skip_locked=True, of=("self",)))
        locked_ids = {c.pk for c in locked}
        # A fresh statement sees lines committed by a batch that held these rows until now.
        taken = set(
            PaymentLine.objects.filter(claim_id__in=locked_ids)
            .exclude(result=PaymentLineResult.FAILED)
            .values_list("claim_id", flat=True)
        )
        busy = [c for pk, c in seen.items() if pk not in locked_ids or pk in taken]
        included, excluded = _classify(
            actor, kind, [c for c in locked if c.pk not in taken], _other_funds(union)
        )
        excluded += [
            _exclusion(c, kind, ExclusionCode.TAKEN, "已被同时生成的另一个支付批次纳入")
            for c in busy
        ]
        if not included:
            where = "该医疗机构" if kind == PaymentBatchKind.HOSPITAL else "职工"
            message = f"{union.name}及下级没有可以支付的{where}补助"
            if excluded:
                message += f"（{len(excluded)} 笔因故未能纳入，见预览中的原因）"
            raise InvalidInput([FieldError("union", message, ErrorCode.STATE)])
        now = timezone.now()
        batch = PaymentBatch.objects.create(
            number=_new_number(kind),
            kind=kind,
            union=union,
            union_path=union.path,
            total_fen=sum(c.amount_fen for c in included),
            line_count=len(included),
            created_by=actor,
            created_at=now,
        )
        # Readable and unique: kind, date, the row id.
        batch.number = (
            f"{'QS' if kind == PaymentBatchKind.HOSPITAL else 'ZF'}"
            f"{timezone.localdate():%Y%m%d}{batch.pk:06d}"
        )
        PaymentBatch.objects.filter(pk=batch.pk).update(number=batch.number)
        try:
            with transaction.atomic():
                PaymentLine.objects.bulk_create(
                    [
                        PaymentLine(
                            batch=batch,
                            line_no=index,
                            claim=c.claim,
                            amount_fen=c.amount_fen,
                            payee_name=c.payee_name,
                        )
                        for index, c in enumerate(included, start=1)
                    ]
                )
        except IntegrityError:
            # payment_line_claim_once: a claim went into another batch between the lock and the
            # insert (cannot happen while the lock holds; the constraint is the backstop).
            raise ConflictError("部分补助刚被另一个支付批次纳入，请重新生成") from None
        label = "一站式结算清算批次" if kind == PaymentBatchKind.HOSPITAL else "支付批次"
        ClaimStep.objects.bulk_create(
            [
                ClaimStep(
                    claim=c.claim,
                    action="batch",
                    from_status=ClaimStatus.APPROVED,
                    to_status=ClaimStatus.APPROVED,
                    actor=actor,
                    actor_label=actor_label(actor),
                    amount_fen=c.amount_fen,
                    note=f"纳入{label} {batch.number}，待银行支付",
                    at=now,
                )
                for c in included
            ]
        )
        record_event(
            actor=actor,
            event=EVENT_BATCH_CREATED,
            obj=batch,
            organisation_id=union.pk,
            detail={
                "number": batch.number,
                "kind": kind,
                "hospital_code": hospital_code,
                "lines": batch.line_count,
                "total": format_fen(batch.total_fen),
                "excluded": len(excluded),
            },
        )
    return BatchCreated(batch, excluded)


# --- the bank file ------------------------------------------------------------------------------
def _locked_batch(batch: PaymentBatch) -> PaymentBatch:
    return PaymentBatch.objects.select_for_update().select_related("union").get(pk=batch.pk)


def _lines(batch: PaymentBatch) -> QuerySet[PaymentLine]:
    return (
        PaymentLine.objects.filter(batch=batch)
        .select_related("claim", "claim__member")
        .only(
            "id",
            "batch_id",
            "line_no",
            "claim_id",
            "amount_fen",
            "payee_name",
            "result",
            "bank_reference",
            "failure_reason",
            "entry_id",
            "recorded_at",
            *(f"claim__{f}" for f in _CLAIM_FIELDS),
        )
        .order_by("line_no")
    )


def export_bank_file(
    *, acting_user: User, batch: PaymentBatch, reason: str, encoding: str = "utf-8"
) -> BankFile:
    """The bank transfer file of the batch's pending lines (see the module docstring for the
    columns). It holds the members' full account numbers: a necessary export of sensitive data,
    so it needs a stated reason and is audited (S8, S11). The batch becomes ``exported``; an
    exported batch may be exported again (the pending lines only)."""
    _check_actor(acting_user, batch.union)
    errors = ErrorCollector()
    reason = (reason or "").strip()
    if len(reason) < 4:
        errors.add(
            "reason", "请填写导出原因（至少4个字），导出文件含完整银行账号", ErrorCode.REQUIRED
        )
    elif len(reason) > 200:
        errors.add("reason", "导出原因不能超过200个字")
    if encoding not in ENCODINGS:
        errors.add("encoding", "文件编码应为 utf-8 或 gbk")
    errors.raise_if_any()
    with transaction.atomic(durable=True):
        batch = _locked_batch(batch)
        if batch.status not in (PaymentBatchStatus.DRAFT, PaymentBatchStatus.EXPORTED):
            raise InvalidInput(
                [
                    FieldError(
                        "batch",
                        f"批次{batch.get_status_display()}，不能再导出银行文件",
                        ErrorCode.STATE,
                    )
                ]
            )
        lines = list(_lines(batch).filter(result=PaymentLineResult.PENDING))
        if not lines:
            raise InvalidInput([FieldError("batch", "批次中没有待支付的明细", ErrorCode.STATE)])
        for line in lines:
            claim = line.claim
            where = f"第 {line.line_no} 行（{claim.number}）"
            if _duty_conflict(acting_user, claim):
                errors.add("batch", f"{where}：{_duty_message(acting_user)}")
            elif claim.status != ClaimStatus.APPROVED or (
                claim.posted_fen - claim.paid_fen != line.amount_fen
            ):
                errors.add(
                    "batch",
                    f"{where}：该申请在生成批次后已变更（{claim.get_status_display()}，"
                    f"应付 {format_fen(claim.posted_fen - claim.paid_fen)} 元），"
                    "请作废本批次后重新生成",
                    ErrorCode.STATE,
                )
        errors.raise_if_any()
        accounts: dict[int, str] = {}
        if batch.kind == PaymentBatchKind.MEMBER:
            from huzhu.members.models import Member

            accounts = {
                m.pk: str(m.bank_account_enc or "")
                for m in Member.objects.filter(
                    pk__in={line.claim.member_id for line in lines}
                ).only("id", "bank_account_enc")
            }
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(BANK_FILE_COLUMNS)
        for line in lines:
            claim = line.claim
            if batch.kind == PaymentBatchKind.MEMBER:
                account = accounts.get(claim.member_id, "")
                if not account:
                    errors.add(
                        "batch", f"第 {line.line_no} 行（{line.payee_name}）：银行账号已被清除"
                    )
                bank = claim.member.bank_name
            else:
                account, bank = "", ""
            cells = [
                str(line.line_no),
                line.payee_name,
                account,
                bank,
                format_fen(line.amount_fen),
                purpose_of(batch, line),
                line_reference(batch, line),
            ]
            writer.writerow([escape_formula(c) for c in cells])
        errors.raise_if_any()
        text = buffer.getvalue()
        if encoding == "gbk":
            try:
                content = text.encode("gbk")
            except UnicodeEncodeError as exc:
                bad = text[exc.start : exc.end]
                raise InvalidInput(
                    [
                        FieldError(
                            "encoding",
                            f"文件中的字符“{bad}”无法用 GBK 编码表示，请改用 UTF-8 导出",
                        )
                    ]
                ) from None
        else:
            content = b"\xef\xbb\xbf" + text.encode("utf-8")
        now = timezone.now()
        first_export = batch.status == PaymentBatchStatus.DRAFT
        batch.status = PaymentBatchStatus.EXPORTED
        batch.exported_at = now
        PaymentBatch.objects.filter(pk=batch.pk).update(status=batch.status, exported_at=now)
        record_event(
            actor=acting_user,
            event=Event.EXPORT,
            obj=batch,
            organisation_id=batch.union_id,
            detail={
                "what": "payment_bank_file",
                "number": batch.number,
                "kind": batch.kind,
                "rows": len(lines),
                "encoding": encoding,
                "full_bank_accounts": batch.kind == PaymentBatchKind.MEMBER,
                "reason": reason,
                "first_export": first_export,
            },
        )
    return BankFile(
        content=content,
        filename=f"{batch.number}.csv",
        content_type=f"text/csv; charset={'gbk' if encoding == 'gbk' else 'utf-8'}",
        rows=len(lines),
    )


# --- the bank's results -------------------------------------------------------------------------
def parse_outcome(text: str) -> str | None:
    value = text.strip().lower()
    if value in SUCCESS_WORDS:
        return PaymentLineResult.SUCCEEDED
    if value in FAILURE_WORDS:
        return PaymentLineResult.FAILED
    return None


def _decode(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise InvalidInput(
            [FieldError("file", "无法识别文件编码：结果文件应为 UTF-8 或 GBK 编码的 CSV")]
        ) from None


def parse_result_file(content: bytes) -> list[ResultRow]:
    """The rows of a bank result file (CSV). Raises ``InvalidInput`` listing every bad cell as
    "第 N 行「列名」：…" (N counts the file's lines, the header included)."""
    if not content:
        raise InvalidInput([FieldError("file", "文件为空", ErrorCode.REQUIRED)])
    if len(content) > MAX_RESULT_FILE_BYTES:
        raise InvalidInput([FieldError("file", "文件过大（超过 5 MB）")])
    text = _decode(content)
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    try:
        table = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise InvalidInput([FieldError("file", f"CSV 格式错误：{exc}")]) from None
    header_at = next(
        (i for i, row in enumerate(table[:10]) if RESULT_REFERENCE in [c.strip() for c in row]),
        None,
    )
    if header_at is None:
        raise InvalidInput(
            [
                FieldError(
                    "file",
                    f"找不到表头：结果文件须有「{RESULT_REFERENCE}」和「{RESULT_OUTCOME}」列",
                )
            ]
        )
    header = [c.strip().lstrip("\ufeff") for c in table[header_at]]
    if RESULT_OUTCOME not in header:
        raise InvalidInput([FieldError("file", f"表头缺少「{RESULT_OUTCOME}」列（成功/失败）")])
    column = {
        name: header.index(name) for name in (*RESULT_COLUMNS, RESULT_AMOUNT) if name in header
    }
    body = table[header_at + 1 :]
    if len(body) > MAX_RESULT_ROWS:
        raise InvalidInput([FieldError("file", f"结果文件超过 {MAX_RESULT_ROWS} 行")])
    errors = ErrorCollector()
    rows: list[ResultRow] = []
    for offset, cells in enumerate(body):
        number = header_at + offset + 2
        if not any(c.strip() for c in cells):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            index = column.get(name)
            if index is None or index >= len(cells):
                return ""
            value = cells[index].strip()
            # Our own export escapes formula-like cells with a leading apostrophe.
            return value[1:] if value.startswith("'") else value

        where = f"第 {number} 行"
        row_errors = len(errors.errors)
        reference = cell(RESULT_REFERENCE)
        if not reference:
            errors.add("file", f"{where}「{RESULT_REFERENCE}」：不能为空", ErrorCode.REQUIRED)
        outcome = parse_outcome(cell(RESULT_OUTCOME))
        if outcome is None:
            errors.add("file", f"{where}「{RESULT_OUTCOME}」：应为“成功”或“失败”")
        amount: int | None = None
        if RESULT_AMOUNT in column and cell(RESULT_AMOUNT):
            try:
                amount = parse_yuan(cell(RESULT_AMOUNT).replace(",", ""))
            except ValueError as exc:
                errors.add("file", f"{where}「{RESULT_AMOUNT}」：{exc}")
        if len(errors.errors) == row_errors and outcome is not None:
            rows.append(
                ResultRow(
                    where=where,
                    reference=reference,
                    outcome=outcome,
                    bank_reference=cell(RESULT_BANK_REFERENCE),
                    failure_reason=cell(RESULT_REASON),
                    amount_fen=amount,
                )
            )
    errors.raise_if_any()
    if not rows:
        raise InvalidInput([FieldError("file", "结果文件中没有数据行")])
    return rows


def _check_rows(
    actor: User,
    batch: PaymentBatch,
    rows: Sequence[ResultRow],
    by_reference: dict[str, PaymentLine],
) -> tuple[list[tuple[ResultRow, PaymentLine]], int]:
    """Every problem of every row (one ``InvalidInput``), else the rows to record and the number
    of rows repeating a result already recorded (skipped)."""
    errors = ErrorCollector()
    todo: list[tuple[ResultRow, PaymentLine]] = []
    seen: dict[str, str] = {}
    skipped = 0
    for row in rows:
        where = row.where
        line = by_reference.get(row.reference.strip())
        if line is None:
            errors.add(
                "file", f"{where}「{RESULT_REFERENCE}」：本批次没有业务参考号“{row.reference[:40]}”"
            )
            continue
        if row.reference in seen:
            errors.add("file", f"{where}「{RESULT_REFERENCE}」：与{seen[row.reference]}重复")
            continue
        seen[row.reference] = where
        bank_reference = row.bank_reference.strip()
        failure_reason = row.failure_reason.strip()
        if row.outcome not in (PaymentLineResult.SUCCEEDED, PaymentLineResult.FAILED):
            errors.add("file", f"{where}「{RESULT_OUTCOME}」：应为“成功”或“失败”")
            continue
        if row.outcome == PaymentLineResult.SUCCEEDED and not bank_reference:
            errors.add(
                "file",
                f"{where}「{RESULT_BANK_REFERENCE}」：支付成功的须填写银行流水号",
                ErrorCode.REQUIRED,
            )
        if len(bank_reference) > 64:
            errors.add("file", f"{where}「{RESULT_BANK_REFERENCE}」：不能超过64个字符")
        if row.outcome == PaymentLineResult.FAILED and not failure_reason:
            errors.add(
                "file", f"{where}「{RESULT_REASON}」：支付失败的须填写失败原因", ErrorCode.REQUIRED
            )
        if len(failure_reason) > 200:
            errors.add("file", f"{where}「{RESULT_REASON}」：不能超过200个字")
        if row.amount_fen is not None and row.amount_fen != line.amount_fen:
            errors.add(
                "file",
                f"{where}「{RESULT_AMOUNT}」：{format_fen(row.amount_fen)} 元与批次明细的 "
                f"{format_fen(line.amount_fen)} 元不符",
            )
        if line.result != PaymentLineResult.PENDING:
            same = line.result == row.outcome and (
                line.bank_reference == bank_reference
                if row.outcome == PaymentLineResult.SUCCEEDED
                else line.failure_reason == failure_reason
            )
            if same:
                skipped += 1
            else:
                errors.add(
                    "file",
                    f"{where}「{RESULT_OUTCOME}」：该笔已登记为“{line.get_result_display()}”，"
                    "不能更改",
                    ErrorCode.STATE,
                )
            continue
        if _duty_conflict(actor, line.claim):
            errors.add("file", f"{where}：{_duty_message(actor)}")
            continue
        todo.append((row, line))
    errors.raise_if_any()
    return todo, skipped


def _post_paid(
    actor: User, batch: PaymentBatch, lines: Sequence[PaymentLine]
) -> JournalEntry | None:
    """ONE entry for the lines that succeeded: Dr 2241 per member (2242 per hospital) / Cr 1001.
    The parties are those the approvals credited (``pricing.payable_parties``)."""
    if not lines:
        return None
    hospital = batch.kind == PaymentBatchKind.HOSPITAL
    payees: dict[tuple[str, str], PartyAmount] = {}
    for line in lines:
        claim = line.claim
        party = (
            Party.hospital(claim.hospital_code, claim.hospital_name)
            if hospital
            else Party.member(claim.member)
        )
        key = (party.party_type, party.party_id)
        before = payees.get(key)
        payees[key] = PartyAmount(
            before.party if before else party,
            (before.amount_fen if before else 0) + line.amount_fen,
        )
    return post_benefit_paid(
        acting_user=actor,
        organisation=batch.union,
        date=timezone.localdate(),
        # Unique per recording: a line gets its result once, so its id names the recording.
        payment_id=f"payment-batch-{batch.pk}-line-{min(line.pk for line in lines)}",
        one_stop=hospital,
        payees=list(payees.values()),
        memo=(
            f"{'一站式结算清算' if hospital else '补助金支付'} 批次 {batch.number}"
            f"（{len(lines)} 笔）"
        ),
    )


def record_bank_results(
    *, acting_user: User, batch: PaymentBatch, rows: Sequence[ResultRow]
) -> ResultsRecorded:
    """Record the bank's result of each row's line, all or nothing. The lines that succeeded post
    ONE ledger entry (Dr 2241 per member, or Dr 2242 per hospital / Cr 1001 — refused, with the
    ledger's message, if the bank balance would go negative) and their claims become paid; a
    failed line frees its claim for a later batch (it stays approved). A row repeating a result
    already recorded is skipped; one contradicting it is an error. The batch is completed when
    every line has a result."""
    _check_actor(acting_user, batch.union)
    if not rows:
        raise InvalidInput([FieldError("rows", "没有要登记的结果", ErrorCode.REQUIRED)])
    with transaction.atomic(durable=True):
        batch = _locked_batch(batch)
        if batch.status not in _OPEN_FOR_RESULTS:
            message = (
                "请先导出银行文件并提交银行，再登记支付结果"
                if batch.status == PaymentBatchStatus.DRAFT
                else f"批次{batch.get_status_display()}，不能再登记支付结果"
            )
            raise InvalidInput([FieldError("batch", message, ErrorCode.STATE)])
        lines = list(_lines(batch))
        by_reference = {line_reference(batch, line): line for line in lines}
        todo, skipped = _check_rows(acting_user, batch, rows, by_reference)
        if not todo:
            return ResultsRecorded(
                0, 0, skipped, 0, None, batch.status == PaymentBatchStatus.COMPLETED
            )
        now = timezone.now()
        hospital = batch.kind == PaymentBatchKind.HOSPITAL
        succeeded = [(r, line) for r, line in todo if r.outcome == PaymentLineResult.SUCCEEDED]
        failed = [(r, line) for r, line in todo if r.outcome == PaymentLineResult.FAILED]
        paid_total = sum(line.amount_fen for _, line in succeeded)
        # Post first, then lock the claims: the order every claim change keeps (a cancellation
        # posts its reversal, then saves the claim), so the two never wait on each other.
        entry = _post_paid(acting_user, batch, [line for _, line in succeeded])
        claims = {
            c.pk: c
            for c in Claim.objects.select_for_update(of=("self",))
            .filter(pk__in=[line.claim_id for _, line in todo])
            .select_related("member")
            .only(*_CLAIM_FIELDS, "paid_at", "paid_by_id", "updated_at")
        }
        steps: list[ClaimStep] = []
        changed_claims: list[Claim] = []
        for row, line in succeeded:
            claim = claims[line.claim_id]
            line.result = PaymentLineResult.SUCCEEDED
            line.bank_reference = row.bank_reference.strip()
            line.failure_reason = ""
            line.entry = entry
            line.recorded_at = now
            previous = claim.status
            claim.paid_fen += line.amount_fen
            claim.paid_at = now
            claim.paid_by = acting_user
            claim.updated_at = now
            note: str
            if previous == ClaimStatus.APPROVED:
                claim.status = ClaimStatus.PAID
                if hospital:
                    note = f"已与{line.payee_name}清算该笔一站式结算垫付款"
                else:
                    tail = claim.member.bank_account_masked
                    note = f"补助金已转入职工银行账户（{tail}）"
                note += f"，批次 {batch.number}，银行流水号 {line.bank_reference}"
            else:
                # The bank paid a line whose claim changed after the file was exported (e.g. a
                # cancelled settlement): the money left the account, so it is recorded as paid
                # and the difference is for finance to recover.
                note = (
                    f"银行已按批次 {batch.number} 支付 {format_fen(line.amount_fen)} 元，"
                    f"但该申请已{claim.get_status_display()}，多付款项待追回"
                )
            steps.append(
                ClaimStep(
                    claim=claim,
                    action="pay",
                    from_status=previous,
                    to_status=claim.status,
                    actor=acting_user,
                    actor_label=actor_label(acting_user),
                    amount_fen=line.amount_fen,
                    note=note[:500],
                    at=now,
                )
            )
            changed_claims.append(claim)
        for row, line in failed:
            claim = claims[line.claim_id]
            line.result = PaymentLineResult.FAILED
            line.failure_reason = row.failure_reason.strip()
            line.bank_reference = row.bank_reference.strip()
            line.recorded_at = now
            steps.append(
                ClaimStep(
                    claim=claim,
                    action="payment_failed",
                    from_status=claim.status,
                    to_status=claim.status,
                    actor=acting_user,
                    actor_label=actor_label(acting_user),
                    amount_fen=line.amount_fen,
                    note=(
                        f"银行支付失败（批次 {batch.number}）：{line.failure_reason}；"
                        "待核实后重新支付"
                    )[:500],
                    at=now,
                )
            )
        PaymentLine.objects.bulk_update(
            [line for _, line in todo],
            ["result", "bank_reference", "failure_reason", "entry", "recorded_at"],
        )
        if changed_claims:
            Claim.objects.bulk_update(
                changed_claims, ["status", "paid_fen", "paid_at", "paid_by", "updated_at"]
            )
        ClaimStep.objects.bulk_create(steps)
        pending = PaymentLine.objects.filter(batch=batch, result=PaymentLineResult.PENDING)
        completed = not pending.exists()
        if completed:
            batch.status = PaymentBatchStatus.COMPLETED
            batch.completed_at = now
            PaymentBatch.objects.filter(pk=batch.pk).update(status=batch.status, completed_at=now)
        record_event(
            actor=acting_user,
            event=EVENT_RESULTS_RECORDED,
            obj=batch,
            organisation_id=batch.union_id,
            detail={
                "number": batch.number,
                "succeeded": len(succeeded),
                "failed": len(failed),
                "skipped": skipped,
                "paid": format_fen(paid_total),
                "entry": entry.display_number if entry is not None else None,
                "completed": completed,
            },
        )
    return ResultsRecorded(len(succeeded), len(failed), skipped, paid_total, entry, completed)


# --- cancelling ---------------------------------------------------------------------------------
def cancel_batch(*, acting_user: User, batch: PaymentBatch, reason: str) -> PaymentBatch:
    """Cancel a batch nothing of which has a result yet (draft, or exported but — as the officer
    confirms — not submitted to the bank). Its claims are free for a new batch."""
    _check_actor(acting_user, batch.union)
    reason = (reason or "").strip()
    errors = ErrorCollector()
    if len(reason) < 2:
        errors.add("reason", "请填写作废原因", ErrorCode.REQUIRED)
    elif len(reason) > 200:
        errors.add("reason", "作废原因不能超过200个字")
    errors.raise_if_any()
    with transaction.atomic(durable=True):
        batch = _locked_batch(batch)
        if batch.status not in (PaymentBatchStatus.DRAFT, PaymentBatchStatus.EXPORTED):
            raise InvalidInput(
                [
                    FieldError(
                        "batch", f"批次{batch.get_status_display()}，不能作废", ErrorCode.STATE
                    )
                ]
            )
        lines = PaymentLine.objects.filter(batch=batch)
        if lines.exclude(result=PaymentLineResult.PENDING).exists():
            raise InvalidInput(
                [
                    FieldError(
                        "batch",
                        "批次已有银行支付结果，不能作废（请继续登记其余结果）",
                        ErrorCode.STATE,
                    )
                ]
            )
        now = timezone.now()
        claim_ids = list(lines.values_list("claim_id", flat=True))
        # The lines are kept (the record of what was prepared) but no longer hold their claims.
        lines.update(
            result=PaymentLineResult.FAILED, failure_reason=CANCELLED_REASON, recorded_at=now
        )
        ClaimStep.objects.bulk_create(
            [
                ClaimStep(
                    claim_id=claim_id,
                    action="batch_cancelled",
                    from_status=ClaimStatus.APPROVED,
                    to_status=ClaimStatus.APPROVED,
                    actor=acting_user,
                    actor_label=actor_label(acting_user),
                    note=f"支付批次 {batch.number} 已作废（{reason}），待重新支付"[:500],
                    at=now,
                )
                for claim_id in claim_ids
            ]
        )
        batch.status = PaymentBatchStatus.CANCELLED
        batch.completed_at = now
        PaymentBatch.objects.filter(pk=batch.pk).update(status=batch.status, completed_at=now)
        record_event(
            actor=acting_user,
            event=EVENT_BATCH_CANCELLED,
            obj=batch,
            organisation_id=batch.union_id,
            detail={"number": batch.number, "lines": len(claim_ids), "reason": reason},
        )
    return batch


# --- reads for the screens and the API ----------------------------------------------------------
def batch_lines(batch: PaymentBatch) -> QuerySet[PaymentLine]:
    """The lines of a batch for display (masked account only, no diagnoses)."""
    return _lines(batch)


def with_line_sums(qs: QuerySet[PaymentBatch]) -> QuerySet[PaymentBatch]:
    """Batches with ``<result>_sum`` (fen) of their lines per result, in the same query (lists
    without a query per batch)."""
    return qs.annotate(
        **{
            f"{result}_sum": Coalesce(
                Sum("lines__amount_fen", filter=Q(lines__result=result)), Value(0)
            )
            for result in PaymentLineResult.values
        }
    )


def line_summary(batch: PaymentBatch) -> dict[str, int]:
    rows = (
        PaymentLine.objects.filter(batch=batch)
        .order_by()
        .values("result")
        .annotate(n=Count("id"), amount=Sum("amount_fen"))
    )
    summary = {f"{r}_count": 0 for r in PaymentLineResult.values}
    summary |= {f"{r}_fen": 0 for r in PaymentLineResult.values}
    for row in rows:
        summary[f"{row['result']}_count"] = row["n"]
        summary[f"{row['result']}_fen"] = row["amount"] or 0
    return summary


__all__ = [
    "BANK_FILE_COLUMNS",
    "BankFile",
    "BatchCreated",
    "Candidate",
    "Exclusion",
    "ExclusionCode",
    "HospitalOwed",
    "Preview",
    "ResultRow",
    "ResultsRecorded",
    "batch_lines",
    "cancel_batch",
    "create_hospital_batch",
    "create_member_batch",
    "export_bank_file",
    "hospitals_owed",
    "line_reference",
    "line_summary",
    "owed_claims",
    "parse_result_file",
    "preview_batch",
    "record_bank_results",
    "with_line_sums",
]
