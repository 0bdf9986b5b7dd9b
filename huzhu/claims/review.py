"""Review of claims (R15, S6): start review, approve, second approval at the city union, send
back, reject with a reason code, one appeal; and the review policy (R14 limits).

States (``ClaimStatus``)::

    submitted ─┐                     ┌─> approved ──(payment)──> paid
    appealed ──┴─> in_review ─approve┤
                      │  ^           └─> second_review ─second_approve─> approved
                      │  └──send_back──────┘   │
                      └─reject─> rejected <─reject
                                    └─appeal (once, within APPEAL_DAYS)─> appealed

Separation of duties (S6): the claim's creator never approves it (nor decides it at all), and the
second approver is neither the creator nor the first approver; the second approver works at a city
(or the provincial) union above the claim's union. Every step is a ``ClaimStep`` (the visible
history) and an audit event naming the responsible person, in the step's transaction.

Money: an approval posts the claim's current price to the ledger (``pricing.post_change``: owed to
the member, 2241 — a reviewed claim was never deducted at discharge). A rejection takes a priced
record out of the person's year and prices the year again (``withdraw_priced``), so a later record
gains what the rejected one held (RULES.md §4); an approved appeal puts the record back in the year
and prices it at the end of the year's list.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from huzhu.claims.intake import SettleRecord, parse_settle_body
from huzhu.claims.models import (
    BenefitYear,
    Claim,
    ClaimKind,
    ClaimStatus,
    Product,
    ReviewPolicy,
)
from huzhu.claims.pricing import (
    Insured,
    add_step,
    apply_state,
    clear_caches,
    engine_plans,
    find_insured,
    lock_year,
    member_info,
    plan_versions_for,
    policy_for,
    post_change,
    record_plan_use,
    save_year,
    state_of,
    version_by_code,
)
from huzhu.core.audit import record_event, register_event_labels
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, InvalidInput
from huzhu.core.money import format_fen
from huzhu.members.models import Member
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import Union, UnionKind, User
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import scope_path
from huzhu.rules import engine
from huzhu.rules.engine import Amounts
from huzhu.rules.reasons import Reason

#: An appeal must be registered within this many days of the rejection (settings may override).
APPEAL_DAYS = 60

#: Products priced in the running year state (RULES.md §4); the others are lump sums (§5).
YEAR_PRODUCTS = (Product.INPATIENT, Product.SPECIAL_OUTPATIENT, Product.FAMILY_INPATIENT)
LUMP_SUM_PRODUCTS = (Product.CRITICAL_ILLNESS, Product.MATERNITY)

#: Organisation kinds whose reviewers give the second approval of large amounts.
SECOND_APPROVER_KINDS = (UnionKind.CITY, UnionKind.PROVINCIAL)

#: Queue statuses (the 待审核 tab): waiting for a first reviewer.
FIRST_REVIEW_STATUSES = (ClaimStatus.SUBMITTED, ClaimStatus.IN_REVIEW, ClaimStatus.APPEALED)


class RejectionCode(models.TextChoices):
    DOCUMENTS_MISSING = "documents_missing", "材料不全"
    NOT_COVERED_EVENT = "not_covered_event", "非保障范围"
    DUPLICATE_CLAIM = "duplicate_claim", "重复申请"
    FALSE_MATERIAL = "false_material", "材料不实"
    OTHER = "other", "其他"


#: What a rejection code tells the member, in one plain sentence.
REJECTION_TEXTS: dict[str, str] = {
    RejectionCode.DOCUMENTS_MISSING: "申请材料不全，无法核实本次费用。",
    RejectionCode.NOT_COVERED_EVENT: "本次就医不属于互助保障的保障范围。",
    RejectionCode.DUPLICATE_CLAIM: "本次就医已经申请过，不能重复给付。",
    RejectionCode.FALSE_MATERIAL: "申请材料经核实与实际情况不符。",
    RejectionCode.OTHER: "经审核不予给付。",
}


EVENT_REVIEW_STARTED = "claims.review_started"
EVENT_APPROVED = "claims.approved"
EVENT_SECOND_REVIEW = "claims.second_review"
EVENT_SECOND_APPROVED = "claims.second_approved"
EVENT_SENT_BACK = "claims.sent_back"
EVENT_REJECTED = "claims.rejected"
EVENT_APPEALED = "claims.appealed"
EVENT_DIAGNOSES_VIEWED = "claims.diagnoses_viewed"
EVENT_POLICY_UPDATED = "claims.policy_updated"
register_event_labels(
    {
        EVENT_REVIEW_STARTED: "开始审核理赔申请",
        EVENT_APPROVED: "理赔申请核准",
        EVENT_SECOND_REVIEW: "理赔申请初审通过（待复核）",
        EVENT_SECOND_APPROVED: "理赔申请复核通过",
        EVENT_SENT_BACK: "理赔申请复核退回",
        EVENT_REJECTED: "理赔申请不予给付",
        EVENT_APPEALED: "理赔申诉登记",
        EVENT_DIAGNOSES_VIEWED: "查看理赔诊断信息",
        EVENT_POLICY_UPDATED: "修改理赔审核规则",
    }
)

#: Chinese labels of every step action (the lead's, the payment's and this module's).
STEP_LABELS: dict[str, str] = {
    "quarantine": "隔离待授权",
    "flag": "转人工审核",
    "submit": "提交申请",
    "auto_approve": "自动核准",
    "reject": "不予给付",
    "reprice": "重新计算",
    "cancel": "撤销",
    "start_review": "开始审核",
    "approve": "审核核准",
    "approve_first": "初审通过，待复核",
    "second_approve": "复核通过",
    "send_back": "复核退回",
    "appeal": "申诉",
    "appeal_reprice": "申诉后重新计算",
    "file": "手工申请",
    "price_lump_sum": "核定关爱金/补助金",
    "release_lump_sum": "撤回已核定金额",
    "batch": "纳入支付批次",
    "pay": "支付成功",
    "payment_failed": "支付失败",
    "batch_cancelled": "支付批次作废",
}

NOTE_MAX = 500


def appeal_days() -> int:
    return int(getattr(settings, "HUZHU_CLAIM_APPEAL_DAYS", APPEAL_DAYS))


# --- checks ----------------------------------------------------------------------------------
def _state_error(claim: Claim, action: str) -> InvalidInput:
    label = ClaimStatus(claim.status).label
    return _invalid("status", f"该申请当前状态为“{label}”，不能{action}", ErrorCode.STATE)


def _invalid(field: str, message: str, code: ErrorCode = ErrorCode.INVALID) -> InvalidInput:
    errors = ErrorCollector()
    errors.add(field, message, code)
    return InvalidInput(list(errors.errors))


def _require_scope(acting_user: User, claim: Claim, perm: Perm) -> None:
    """The permission and the claim in the actor's subtree, else it does not exist (404, S5)."""
    require(acting_user, perm)
    path = scope_path(acting_user)
    if path is None or not claim.union_path.startswith(path):
        raise NotPermitted("理赔申请不存在")


def _note(note: str) -> str:
    return (note or "").strip()[:NOTE_MAX]


def is_second_approver_org(user: User) -> bool:
    org = user.organisation
    return org is not None and org.kind in SECOND_APPROVER_KINDS


def may_second_approve(user: User, claim: Claim) -> str | None:
    """Why ``user`` may not give the second approval of ``claim`` (None: they may)."""
    if not user.has_perm_code(Perm.CLAIM_REVIEW):
        return "您没有理赔审核权限"
    org = user.organisation
    if org is None or org.kind not in SECOND_APPROVER_KINDS:
        return "大额理赔须由市（州）总工会或省总工会的审核人员复核"
    if not claim.union_path.startswith(org.path):
        return "该申请不在您的管辖范围内"
    if claim.created_by_id is not None and claim.created_by_id == user.pk:
        return "申请的经办人不能审核本人经办的申请（职责分离）"
    if claim.approved_by_id is not None and claim.approved_by_id == user.pk:
        return "初审人不能复核本人初审的申请（职责分离）"
    return None


def _not_creator(user: User, claim: Claim) -> None:
    if claim.created_by_id is not None and claim.created_by_id == user.pk:
        raise _invalid(
            "acting_user",
            "申请的经办人不能审核本人经办的申请（职责分离）",
            ErrorCode.FORBIDDEN,
        )


def _locked(claim: Claim) -> Claim:
    """The claim locked for this transaction (with its year state locked first, in the order a
    cancellation locks them, so the two never wait on each other), freshly read."""
    head = Claim.objects.only("person_index", "product", "year").get(pk=claim.pk)
    if head.product in YEAR_PRODUCTS:
        list(
            BenefitYear.objects.select_for_update()
            .filter(person_index=head.person_index, product=head.product, year=head.year)
            .values_list("pk", flat=True)
        )
    return (
        Claim.objects.select_for_update(of=("self",))
        .select_related(
            "member", "member__union", "union", "family_member", "enrollment", "settlement"
        )
        .get(pk=claim.pk)
    )


def _audit(
    acting_user: User | None,
    event: str,
    claim: Claim,
    *,
    actor_text: str = "",
    **detail: Any,
) -> None:
    record_event(
        actor=acting_user,
        actor_username=actor_text,
        event=event,
        obj=claim,
        organisation_id=claim.union_id,
        detail={"number": claim.number, "status": claim.status, **detail},
    )


def _save(claim: Claim, *fields: str) -> None:
    claim.updated_at = timezone.now()
    claim.save(update_fields=[*fields, "updated_at"])


# --- start review ----------------------------------------------------------------------------
def start_review(*, acting_user: User, claim: Claim, note: str = "") -> Claim:
    """submitted / appealed → in_review; the reviewer who took it is recorded."""
    _require_scope(acting_user, claim, Perm.CLAIM_REVIEW)
    with transaction.atomic(durable=True):
        claim = _locked(claim)
        if claim.status not in (ClaimStatus.SUBMITTED, ClaimStatus.APPEALED):
            raise _state_error(claim, "开始审核")
        _not_creator(acting_user, claim)
        previous = claim.status
        claim.status = ClaimStatus.IN_REVIEW
        claim.reviewed_by = acting_user
        _save(claim, "status", "reviewed_by")
        add_step(
            claim,
            action="start_review",
            from_status=previous,
            acting_user=acting_user,
            note=_note(note) or ("受理申诉，重新审核" if previous == ClaimStatus.APPEALED else ""),
        )
        _audit(acting_user, EVENT_REVIEW_STARTED, claim, previous=previous)
    return claim


# --- approval --------------------------------------------------------------------------------
def approve(
    *,
    acting_user: User,
    claim: Claim,
    note: str = "",
    disease: int | None = None,
    severity: str | None = None,
) -> Claim:
    """The first reviewer's approval (in_review). Above the policy's second-approval limit the
    claim waits for a second approver (second_review); otherwise it is approved and its price is
    posted to the ledger, owed to the member. An appealed claim's record first re-enters its year
    (it may then turn out to pay nothing: the claim is then rejected with the engine's reason).
    Lump sums: the reviewer confirms the disease and severity (critical illness) first."""
    _require_scope(acting_user, claim, Perm.CLAIM_REVIEW)
    note = _note(note)
    with transaction.atomic(durable=True):
        claim = _locked(claim)
        if claim.status != ClaimStatus.IN_REVIEW:
            raise _state_error(claim, "核准")
        _not_creator(acting_user, claim)
        if claim.product in LUMP_SUM_PRODUCTS:
            if "priced" not in (claim.lump_sum or {}) and not _price_lump_sum(
                claim, acting_user, disease=disease, severity=severity
            ):
                # Confirmed, but the rules pay nothing (already paid, not covered, the cap).
                _audit(acting_user, EVENT_REJECTED, claim, reason=claim.reason)
                return claim
        elif (
            claim.appealed_at is not None
            and not _in_year(claim)
            and not _reenter_year(claim, acting_user)
        ):
            # The appeal is upheld but the record pays nothing now (the engine's reason).
            _audit(acting_user, EVENT_APPROVED, claim, benefit_fen=0, reason=claim.reason)
            return claim
        policy = policy_for(claim.union)
        previous = claim.status
        claim.approved_by = acting_user
        if claim.benefit_fen > policy.second_approval_limit_fen:
            claim.status = ClaimStatus.SECOND_REVIEW
            _save(claim, "status", "approved_by")
            add_step(
                claim,
                action="approve_first",
                from_status=previous,
                acting_user=acting_user,
                amount_fen=claim.benefit_fen,
                note=note
                or (
                    f"补助金额超过复核金额 {format_fen(policy.second_approval_limit_fen)} 元，"
                    "须由市（州）总工会复核"
                ),
            )
            _audit(acting_user, EVENT_SECOND_REVIEW, claim, benefit_fen=claim.benefit_fen)
            return claim
        _approve_and_post(claim, acting_user, previous, note, action="approve")
        _audit(acting_user, EVENT_APPROVED, claim, benefit_fen=claim.benefit_fen)
    return claim


def second_approve(*, acting_user: User, claim: Claim, note: str = "") -> Claim:
    """second_review → approved, by a city-level (or provincial) reviewer above the claim's
    union who is neither its creator nor its first approver."""
    _require_scope(acting_user, claim, Perm.CLAIM_REVIEW)
    with transaction.atomic(durable=True):
        claim = _locked(claim)
        if claim.status != ClaimStatus.SECOND_REVIEW:
            raise _state_error(claim, "复核")
        why = may_second_approve(acting_user, claim)
        if why is not None:
            raise _invalid("acting_user", why, ErrorCode.FORBIDDEN)
        claim.second_approved_by = acting_user
        _approve_and_post(claim, acting_user, claim.status, _note(note), action="second_approve")
        _audit(acting_user, EVENT_SECOND_APPROVED, claim, benefit_fen=claim.benefit_fen)
    return claim


def _approve_and_post(
    claim: Claim, acting_user: User, previous: str, note: str, *, action: str
) -> None:
    claim.status = ClaimStatus.APPROVED
    claim.decided_at = timezone.now()
    if claim.posted_fen == 0:
        # A reviewed claim was never deducted by the hospital: the member is owed it (RULES.md
        # §7). (Nothing posted yet, so no earlier posting names the hospital.)
        claim.deducted_at_discharge = False
    post_change(
        claim,
        claim.benefit_fen - claim.posted_fen,
        acting_user=acting_user,
        cause="补助金核定（审核）",
    )
    _save(
        claim,
        "status",
        "decided_at",
        "deducted_at_discharge",
        "posted_fen",
        "approved_by",
        "second_approved_by",
    )
    add_step(
        claim,
        action=action,
        from_status=previous,
        acting_user=acting_user,
        amount_fen=claim.benefit_fen,
        note=note or f"核准补助 {format_fen(claim.benefit_fen)} 元，待支付给职工",
    )


def send_back(*, acting_user: User, claim: Claim, note: str) -> Claim:
    """second_review → in_review with the second approver's note (the first approval lapses)."""
    _require_scope(acting_user, claim, Perm.CLAIM_REVIEW)
    note = _note(note)
    if len(note) < 2:
        raise _invalid("note", "请填写退回原因", ErrorCode.REQUIRED)
    with transaction.atomic(durable=True):
        claim = _locked(claim)
        if claim.status != ClaimStatus.SECOND_REVIEW:
            raise _state_error(claim, "退回")
        why = may_second_approve(acting_user, claim)
        if why is not None:
            raise _invalid("acting_user", why, ErrorCode.FORBIDDEN)
        previous = claim.status
        claim.status = ClaimStatus.IN_REVIEW
        claim.approved_by = None
        _save(claim, "status", "approved_by")
        add_step(
            claim, action="send_back", from_status=previous, acting_user=acting_user, note=note
        )
        _audit(acting_user, EVENT_SENT_BACK, claim)
    return claim


# --- rejection -------------------------------------------------------------------------------
def reject(*, acting_user: User, claim: Claim, code: str, note: str = "") -> Claim:
    """in_review (any reviewer but the creator) or second_review (a second approver) → rejected
    with a reason code; a priced record leaves its year and the year is priced again."""
    _require_scope(acting_user, claim, Perm.CLAIM_REVIEW)
    note = _note(note)
    errors = ErrorCollector()
    if code not in RejectionCode.values:
        errors.add("code", "请选择不予给付的原因", ErrorCode.REQUIRED)
    elif code == RejectionCode.OTHER and len(note) < 2:
        errors.add("note", "原因为“其他”时须填写说明", ErrorCode.REQUIRED)
    errors.raise_if_any()
    with transaction.atomic(durable=True):
        claim = _locked(claim)
        if claim.status == ClaimStatus.SECOND_REVIEW:
            why = may_second_approve(acting_user, claim)
            if why is not None:
                raise _invalid("acting_user", why, ErrorCode.FORBIDDEN)
        elif claim.status != ClaimStatus.IN_REVIEW:
            raise _state_error(claim, "作不予给付处理")
        _not_creator(acting_user, claim)
        previous = claim.status
        label = RejectionCode(code).label
        change = withdraw_priced(claim, acting_user=acting_user, cause=f"审核不予给付（{label}）")
        claim.status = ClaimStatus.REJECTED
        claim.rejection_code = code
        claim.rejection_note = note
        claim.decided_at = timezone.now()
        claim.benefit_fen = 0
        _save(
            claim,
            "status",
            "rejection_code",
            "rejection_note",
            "decided_at",
            "benefit_fen",
            "posted_fen",
        )
        add_step(
            claim,
            action="reject",
            from_status=previous,
            acting_user=acting_user,
            amount_fen=0,
            note=f"不予给付：{label}" + (f"。{note}" if note else ""),
        )
        _audit(acting_user, EVENT_REJECTED, claim, code=code, year_change_fen=change)
    return claim


def withdraw_priced(claim: Claim, *, acting_user: User | None, cause: str) -> int:
    """Take a rejected claim's record out of its person's year and price the year again
    (RULES.md §4, as a cancellation does): later records re-priced, owed amounts adjusted in the
    ledger. Returns the change of the year's entitlement. The caller sets the claim's status.

    Runs inside the caller's transaction, with the year row locked (``_locked``)."""
    change = 0
    if (
        claim.product in YEAR_PRODUCTS
        and BenefitYear.objects.filter(
            person_index=claim.person_index, product=claim.product, year=claim.year
        ).exists()
    ):
        insured = Insured(claim.member, claim.family_member, claim.person_index, claim.enrollment)
        year_row = lock_year(insured, claim.product, claim.year)
        before = state_of(year_row)
        if before.find(claim.record_key) is not None:
            versions = plan_versions_for(claim.member.union, claim.year)
            result, after = engine.cancel(engine_plans(versions), before, claim.record_key)
            assert after is not None  # the record was in the state
            apply_state(year_row, before, after, acting_user=acting_user, cause=cause)
            change = result.benefit
            # apply_state re-priced this claim too (to 0) and saved it: read what it wrote.
            fresh = Claim.objects.only("benefit_fen", "posted_fen").get(pk=claim.pk)
            claim.benefit_fen, claim.posted_fen = fresh.benefit_fen, fresh.posted_fen
    elif claim.product in LUMP_SUM_PRODUCTS and "priced" in (claim.lump_sum or {}):
        change = _release_lump_sum(claim, acting_user, cause)
    if claim.posted_fen:
        post_change(claim, -claim.posted_fen, acting_user=acting_user, cause=cause)
    return change


# --- appeal ----------------------------------------------------------------------------------
def appeal(
    *,
    claim: Claim,
    reason: str,
    acting_user: User | None = None,
    member: Member | None = None,
) -> Claim:
    """rejected → appealed, once, within ``appeal_days()`` of the decision: registered by a
    clerk on the member's behalf (``acting_user`` with claim.file) or by the member in the
    portal (``member``, who must be the claim's member). Only a reviewer's rejection can be
    appealed: a benefit the rules price at zero is explained, not decided."""
    if (acting_user is None) == (member is None):
        raise ValueError("appeal needs exactly one of acting_user and member")
    if acting_user is not None:
        _require_scope(acting_user, claim, Perm.CLAIM_FILE)
    elif member is not None and member.pk != claim.member_id:
        raise NotPermitted("理赔申请不存在")
    reason = _note(reason)
    if len(reason) < 4:
        raise _invalid("reason", "请填写申诉理由（至少4个字）", ErrorCode.REQUIRED)
    actor_text = f"member:{member.pk}" if member is not None else ""
    with transaction.atomic(durable=True):
        claim = _locked(claim)
        if claim.status != ClaimStatus.REJECTED:
            raise _state_error(claim, "申诉")
        if not claim.rejection_code:
            raise _invalid(
                "status",
                "该申请是按保障方案规则计算为不予给付，不属于审核决定，不能申诉；"
                "如结算数据有误，请由医疗机构撤销后重新结算",
                ErrorCode.STATE,
            )
        if claim.appealed_at is not None:
            raise _invalid("status", "每项申请只能申诉一次，该申请已申诉过", ErrorCode.STATE)
        decided = claim.decided_at or claim.updated_at
        deadline = decided + timedelta(days=appeal_days())
        now = timezone.now()
        if now > deadline:
            raise _invalid(
                "reason",
                f"申诉须在不予给付决定后 {appeal_days()} 日内提出"
                f"（截止 {timezone.localtime(deadline):%Y-%m-%d}）",
                ErrorCode.STATE,
            )
        previous = claim.status
        claim.status = ClaimStatus.APPEALED
        claim.appeal_reason = reason
        claim.appealed_at = now
        _save(claim, "status", "appeal_reason", "appealed_at")
        add_step(
            claim,
            action="appeal",
            from_status=previous,
            acting_user=acting_user,
            actor_text="职工本人" if member is not None else "",
            note=f"申诉理由：{reason}" + ("（经办人代为登记）" if acting_user is not None else ""),
        )
        _audit(acting_user, EVENT_APPEALED, claim, actor_text=actor_text)
    return claim


def appeal_deadline(claim: Claim) -> Any:
    decided = claim.decided_at or claim.updated_at
    return decided + timedelta(days=appeal_days())


def may_appeal(claim: Claim) -> bool:
    return (
        claim.status == ClaimStatus.REJECTED
        and bool(claim.rejection_code)
        and claim.appealed_at is None
        and timezone.now() <= appeal_deadline(claim)
    )


def _in_year(claim: Claim) -> bool:
    if claim.product not in YEAR_PRODUCTS:
        return False
    row = BenefitYear.objects.filter(
        person_index=claim.person_index, product=claim.product, year=claim.year
    ).first()
    return row is not None and state_of(row).find(claim.record_key) is not None


def settle_record_of(claim: Claim) -> SettleRecord:
    """The claim's record as the engine prices it: a one-stop claim's settlement body as
    received; a manual claim's figures as entered from the settlement sheet."""
    if claim.kind == ClaimKind.ONE_STOP and claim.settlement is not None:
        return parse_settle_body(json.loads(str(claim.settlement.body_enc)))
    assert claim.adm_date is not None, "a manual hospitalization claim has an admission date"
    moment = claim.setl_time or claim.created_at
    diagnoses = tuple(d for d in str(claim.diagnoses_enc or "").split(";") if d)
    return SettleRecord(
        setl_id=claim.record_key,
        certno="",
        med_type=claim.med_type,
        adm_date=claim.adm_date,
        dscg_date=claim.dscg_date,
        setl_time=timezone.localtime(moment).replace(tzinfo=None),
        amounts=Amounts(
            medfee_sumamt=claim.medfee_sumamt,
            inscp_scp_amt=claim.inscp_scp_amt,
            fund_pay_sumamt=claim.fund_pay_sumamt,
            hosp_part_amt=claim.hosp_part_amt,
            other_reimbursed=claim.other_reimbursed,
            fulamt_ownpay_amt=claim.fulamt_ownpay_amt,
            overlmt_selfpay=claim.overlmt_selfpay,
            preselfpay_amt=claim.preselfpay_amt,
            psn_part_amt=claim.psn_part_amt,
        ),
        diagnoses=diagnoses,
        normalized={},
    )


def _reenter_year(claim: Claim, acting_user: User) -> bool:
    """An approved appeal: the record joins the end of its person's year again and is priced
    there (RULES.md §4). True when it has a price to approve; otherwise the claim is rejected
    with the engine's reason (e.g. the cap was reached meanwhile) — a counted zero record stays
    in the year and gains a price if an earlier record leaves it (``apply_state``).

    Not ``services.price_claim``: that decides the claim's next status itself (auto-approval,
    "submitted, waiting for review") — here the reviewer has already decided."""
    from huzhu.claims.services import _explanation, _not_covered_result, _reject

    record = settle_record_of(claim)
    insured = find_insured(claim.person_index, claim.year) or Insured(
        claim.member, claim.family_member, claim.person_index, claim.enrollment
    )
    versions = plan_versions_for(claim.member.union, record.adm_date.year)
    info = member_info(insured)
    engine_record = record.engine_record()
    claim.rejection_code = ""
    claim.rejection_note = ""
    if not versions:
        _reject(claim, _not_covered_result(record), acting_user, "")
        return False
    plans = engine_plans(versions)
    key = engine.locate(plans, engine_record, info)
    if key is None:
        result, _ = engine.settle(plans, None, engine_record, info)
        _reject(claim, result, acting_user, "")
        return False
    year_row = lock_year(insured, *key)
    state = state_of(year_row)
    result, new_state = engine.settle(plans, state, engine_record, info)
    claim.product = result.product or claim.product
    claim.base_fen = result.base
    claim.explanation = _explanation(result)
    claim.plan_code = result.plan_code or ""
    version = version_by_code(versions, result.plan_code)
    if version is not None:
        claim.plan_version = version
        claim.parameters_hash = version.parameters_hash
    if not result.counted or new_state is None or result.benefit == 0:
        if result.counted and new_state is not None:
            save_year(year_row, new_state)
            record_plan_use(version)
        _reject(claim, result, acting_user, "")
        return False
    save_year(year_row, new_state)
    record_plan_use(version)
    claim.benefit_fen = result.benefit
    claim.reason = ""
    claim.save()
    add_step(
        claim,
        action="appeal_reprice",
        from_status=claim.status,
        acting_user=acting_user,
        amount_fen=result.benefit,
        note=f"申诉成立，该次就医重新计入本年度，按年度累计重新计算补助 "
        f"{format_fen(result.benefit)} 元",
    )
    return True


# --- lump sums (the manual-claims module prices them) ----------------------------------------
def _price_lump_sum(
    claim: Claim, acting_user: User, *, disease: int | None, severity: str | None
) -> bool:
    """Price a critical illness (the reviewer's confirmed disease and severity) or a maternity
    at approval (``huzhu.claims.manual.price_lump_sum``, in this transaction). True when there is
    an amount to approve; otherwise the claim is rejected with the rules' reason."""
    from huzhu.claims.manual import price_lump_sum

    try:
        price_lump_sum(claim, acting_user, disease=disease, severity=severity)
    except ConflictError as exc:  # priced meanwhile: the state check above saw it first
        raise _invalid("status", str(exc), ErrorCode.STATE) from exc
    if claim.benefit_fen > 0:
        return True
    previous = claim.status
    claim.status = ClaimStatus.REJECTED
    claim.decided_at = timezone.now()
    _save(claim, "status", "decided_at")
    why = Reason(claim.reason).text if claim.reason in Reason.__members__ else ""
    add_step(
        claim,
        action="reject",
        from_status=previous,
        acting_user=acting_user,
        amount_fen=0,
        note=f"不予给付：{why}",
    )
    return False


def _release_lump_sum(claim: Claim, acting_user: User | None, cause: str) -> int:
    from huzhu.claims.manual import release_lump_sum

    return -release_lump_sum(claim, acting_user=acting_user, cause=cause)


# --- diagnoses (S7, S8) ----------------------------------------------------------------------
def reveal_diagnoses(*, acting_user: User, claim: Claim, reason: str) -> list[str]:
    """The claim's diagnosis codes, for a reviewer who stated a reason; audited."""
    _require_scope(acting_user, claim, Perm.CLAIM_REVIEW)
    reason = (reason or "").strip()
    if len(reason) < 4:
        raise _invalid("reason", "请填写查看原因（至少4个字）", ErrorCode.REQUIRED)
    with transaction.atomic(durable=True):
        record_event(
            actor=acting_user,
            event=EVENT_DIAGNOSES_VIEWED,
            obj=claim,
            organisation_id=claim.union_id,
            detail={"number": claim.number, "reason": reason[:200]},
        )
    fresh = Claim.objects.only("diagnoses_enc").get(pk=claim.pk)
    return [d for d in str(fresh.diagnoses_enc or "").split(";") if d]


# --- review policy ---------------------------------------------------------------------------
#: The policy's fields: (name, label, money, lowest, highest) — money: fen, entered in yuan.
MAX_LIMIT_FEN = 100_000_000_00  # 1 亿元: any real limit is far below
POLICY_FIELDS: tuple[tuple[str, str, bool, int, int], ...] = (
    ("auto_approve_limit_fen", "自动核准上限", True, 1, MAX_LIMIT_FEN),
    ("second_approval_limit_fen", "需复核金额", True, 1, MAX_LIMIT_FEN),
    ("large_amount_fen", "大额提示金额", True, 1, MAX_LIMIT_FEN),
    ("many_claims_count", "年度多次理赔次数", False, 2, 100),
    ("new_enrollment_days", "参保后短期天数", False, 0, 366),
    ("hospital_share_percent", "医疗机构异常占比(%)", False, 1, 100),
    ("hospital_share_min_claims", "占比计算最少件数", False, 1, 1_000_000),
)


def update_policy(*, acting_user: User, organisation: Union, **limits: int) -> ReviewPolicy:
    """Set the review policy of ``organisation`` (within the actor's subtree); every field must be
    given. The nearest ancestor-or-self's policy applies to a claim (``pricing.policy_for``)."""
    require(acting_user, Perm.CLAIM_POLICY)
    path = scope_path(acting_user)
    if path is None or not organisation.path.startswith(path):
        raise NotPermitted("组织不存在")
    errors = ErrorCollector()
    names = {field[0] for field in POLICY_FIELDS}
    for unknown in sorted(set(limits) - names):
        errors.add(unknown, "不支持的审核规则项")
    values: dict[str, int] = {}
    for name, label, money, low, high in POLICY_FIELDS:
        value = limits.get(name)
        if value is None:
            errors.add(name, f"请填写{label}", ErrorCode.REQUIRED)
        elif not isinstance(value, int) or isinstance(value, bool):
            errors.add(name, f"{label}应为整数")
        elif not low <= value <= high:
            if money:
                errors.add(name, f"{label}应大于 0 元且不超过 {format_fen(high)} 元")
            else:
                errors.add(name, f"{label}应在 {low} 至 {high} 之间")
        else:
            values[name] = value
    errors.raise_if_any()
    with transaction.atomic(durable=True):
        row = ReviewPolicy.objects.select_for_update().filter(organisation=organisation).first()
        before: dict[str, int] = {}
        if row is None:
            row = ReviewPolicy(organisation=organisation)
        else:
            before = {name: getattr(row, name) for name in names}
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_by = acting_user
        row.updated_at = timezone.now()
        row.save()
        record_event(
            actor=acting_user,
            event=EVENT_POLICY_UPDATED,
            obj=row,
            organisation_id=organisation.pk,
            detail={
                "organisation": organisation.name,
                "changed": {n: [before.get(n), v] for n, v in values.items() if before.get(n) != v},
            },
        )
    # After the commit: the next claim of this process reads the new limits.
    clear_caches()
    return row
