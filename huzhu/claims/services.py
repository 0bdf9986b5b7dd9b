"""One-stop settlement (R12, INTERFACES.md §3, S12, S14, S16): receive, price, answer, cancel.

``receive_settlement`` is what ``POST /api/v1/settlements`` and the batch feed call after the
request is authenticated and the body parsed (``huzhu.claims.intake``). In one durable transaction
it stores the record (unique per partner and ``setl_id``: exactly once), finds the insured person
by the blind index of the ID number, checks the partner's scope and the member's consent, locks the
person's year state, prices the record with the engine, applies the review policy (R14), posts the
approval to the ledger and writes the audit event. The answer is stored with the record, so a repeat
of the same body answers the same and a different body answers 409.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from huzhu.claims.intake import SettleRecord, parse_settle_body
from huzhu.claims.models import (
    BenefitYear,
    Channel,
    Claim,
    ClaimKind,
    ClaimStatus,
    Partner,
    Settlement,
    SettlementFile,
    SettlementStatus,
)
from huzhu.claims.pricing import (
    FLAG_LABELS,
    Insured,
    add_step,
    apply_state,
    engine_plans,
    find_insured,
    lock_year,
    member_info,
    plan_versions_for,
    policy_for,
    post_change,
    record_plan_use,
    risk_flags,
    save_year,
    settlement_claim_number,
    state_of,
    version_by_code,
)
from huzhu.core.audit import record_event, register_event_labels
from huzhu.core.errors import ConflictError
from huzhu.core.money import format_fen
from huzhu.members.models import Consent, ConsentPurpose
from huzhu.members.services import id_number_index
from huzhu.orgs.models import User
from huzhu.rules import engine
from huzhu.rules.engine import Result
from huzhu.rules.explain import render_explanation
from huzhu.rules.lumpsum import screen_diagnoses
from huzhu.rules.reasons import Reason

logger = logging.getLogger(__name__)

EVENT_SETTLEMENT_RECEIVED = "claims.settlement_received"
EVENT_SETTLEMENT_CANCELLED = "claims.settlement_cancelled"
EVENT_SETTLEMENT_RELEASED = "claims.settlement_released"
register_event_labels(
    {
        EVENT_SETTLEMENT_RECEIVED: "接收医保结算（一站式）",
        EVENT_SETTLEMENT_CANCELLED: "医保结算撤销",
        EVENT_SETTLEMENT_RELEASED: "授权后处理隔离的结算",
    }
)


class OutOfScope(Exception):
    """The member is outside the partner's organisation subtree (HTTP 403)."""


class UnknownSettlement(Exception):
    """No settlement with this ``setl_id`` for this partner (HTTP 404)."""


@dataclass(frozen=True)
class Answer:
    """What the API answers: HTTP status and JSON body."""

    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def _partner_actor(partner: Partner) -> str:
    return f"partner:{partner.partner_id}"


def _explanation(result: Result) -> dict[str, Any]:
    data = dict(result.explanation)
    if data:
        data["text"] = render_explanation(result.explanation)
    return data


def _answer_body(
    setl_id: str, status: str, result: Result | None, *, reason: str | None = None
) -> dict[str, Any]:
    if result is None:
        return {
            "setl_id": setl_id,
            "status": status,
            "product": None,
            "benefit": "0.00",
            "reason": reason,
            "explanation": {"reason": reason, "text": Reason(reason).text if reason else ""},
        }
    return {
        "setl_id": setl_id,
        "status": status,
        "product": result.product,
        "benefit": format_fen(result.benefit),
        "reason": reason
        if reason is not None
        else (result.reason.value if result.reason else None),
        "explanation": _explanation(result),
    }


def has_consent(member_id: int) -> bool:
    return Consent.objects.filter(
        member_id=member_id, purpose=ConsentPurpose.MEDICAL_DATA, withdrawn_at__isnull=True
    ).exists()


def _replay(existing: Settlement, body_hash: str) -> Answer:
    if existing.body_hash != body_hash:
        raise ConflictError(
            f"结算ID {existing.setl_id} 已以不同内容提交过，不能更改（如需更正请先撤销）"
        )
    return Answer(200, existing.response, replayed=True)


def receive_settlement(
    *,
    partner: Partner,
    body: object,
    channel: str = Channel.API,
    file: SettlementFile | None = None,
    record: SettleRecord | None = None,
) -> Answer:
    """Receive one settle record (validated here unless ``record`` is given). Raises
    ``InvalidInput`` (422), ``ConflictError`` (409) or ``OutOfScope`` (403)."""
    record = record or parse_settle_body(body)
    existing = Settlement.objects.filter(partner=partner, setl_id=record.setl_id).first()
    if existing is not None:
        return _replay(existing, record.body_hash)
    person_index = id_number_index(record.certno)
    insured = find_insured(person_index, record.adm_date.year)
    if insured is not None and not insured.member.union_path.startswith(partner.organisation_path):
        record_event(
            actor=None,
            actor_username=_partner_actor(partner),
            event=EVENT_SETTLEMENT_RECEIVED,
            object_type="claims.settlement",
            object_id=record.setl_id,
            outcome="denied",
            organisation_id=partner.organisation_id,
            detail={"partner": partner.partner_id, "reason": "member_out_of_scope"},
        )
        raise OutOfScope("该职工不在本合作方的服务范围内")
    try:
        with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
            return _receive(partner, record, insured, person_index, channel, file)
    except IntegrityError:
        # A concurrent identical request won the unique (partner, setl_id): answer as a repeat.
        existing = Settlement.objects.filter(partner=partner, setl_id=record.setl_id).first()
        if existing is None:
            raise
        return _replay(existing, record.body_hash)


def _masked(certno: str) -> str:
    return f"{certno[:3]}{'*' * 11}{certno[-4:]}"


def _receive(
    partner: Partner,
    record: SettleRecord,
    insured: Insured | None,
    person_index: str,
    channel: str,
    file: SettlementFile | None,
) -> Answer:
    settlement = Settlement.objects.create(
        partner=partner,
        setl_id=record.setl_id,
        channel=channel,
        file=file,
        body_hash=record.body_hash,
        body_enc=json.dumps(record.normalized, ensure_ascii=False, sort_keys=True),
        person_index=person_index,
        certno_masked=_masked(record.certno),
        member=insured.member if insured else None,
        union_path=insured.member.union_path if insured else "",
        med_type=record.med_type,
        adm_date=record.adm_date,
        setl_time=timezone.make_aware(record.setl_time),
        medfee_sumamt=record.amounts.medfee_sumamt,
        status=SettlementStatus.REJECTED,
    )
    if insured is None:
        body = _answer_body(record.setl_id, SettlementStatus.REJECTED, None, reason="NOT_FOUND")
        _finish(settlement, SettlementStatus.REJECTED, "NOT_FOUND", 0, body)
        return Answer(200, body)
    claim = _new_claim(settlement, insured, record, partner)
    if not has_consent(insured.member.pk):
        # S12: kept, not used, until the member consents (then ``release_quarantined``).
        claim.status = ClaimStatus.QUARANTINED
        claim.reason = Reason.NO_CONSENT.value
        claim.save()
        add_step(
            claim,
            action="quarantine",
            from_status="",
            acting_user=None,
            actor_text=_partner_actor(partner),
            note="职工尚未授权医保数据使用，结算数据已隔离保存，授权后自动处理",
        )
        body = _answer_body(
            record.setl_id, SettlementStatus.QUARANTINED, None, reason=Reason.NO_CONSENT.value
        )
        _finish(settlement, SettlementStatus.QUARANTINED, Reason.NO_CONSENT.value, 0, body)
        return Answer(200, body)
    postings: list[Callable[[], object]] = []
    status, result = price_claim(
        claim,
        insured,
        record,
        acting_user=None,
        actor_text=_partner_actor(partner),
        one_stop_answer=channel == Channel.API,
        postings=postings,
    )
    body = _answer_body(record.setl_id, status, result)
    _finish(settlement, status, body["reason"] or "", result.benefit, body)
    # The ledger posting takes the fund's entry-number lock, which every settlement shares: post
    # last, so the lock is held only for the posting itself and the commit.
    for post in postings:
        post()
    return Answer(200, body)


def _finish(
    settlement: Settlement, status: str, reason: str, benefit: int, body: dict[str, Any]
) -> None:
    settlement.status = status
    settlement.reason = reason
    settlement.benefit_fen = benefit
    settlement.response = body
    Settlement.objects.filter(pk=settlement.pk).update(
        status=status, reason=reason, benefit_fen=benefit, response=body
    )
    record_event(
        actor=None,
        actor_username=_partner_actor(settlement.partner),
        event=EVENT_SETTLEMENT_RECEIVED,
        object_type="claims.settlement",
        object_id=str(settlement.pk),
        organisation_id=settlement.member.union_id if settlement.member else None,
        detail={
            "partner": settlement.partner.partner_id,
            "setl_id": settlement.setl_id,
            "status": status,
            "reason": reason,
            "benefit_fen": benefit,
        },
    )


def _new_claim(
    settlement: Settlement, insured: Insured, record: SettleRecord, partner: Partner
) -> Claim:
    """The claim of a settlement, not yet saved: pricing decides its state before the insert."""
    amounts = record.amounts
    return Claim(
        number=settlement_claim_number(settlement.pk),
        kind=ClaimKind.ONE_STOP,
        status=ClaimStatus.SUBMITTED,
        member=insured.member,
        family_member=insured.family_member,
        person_index=insured.person_index,
        union=insured.member.union,
        union_path=insured.member.union_path,
        unit_id=insured.member.unit_id,
        enrollment=insured.enrollment,
        settlement=settlement,
        year=record.adm_date.year,
        record_key=record.setl_id,
        med_type=record.med_type,
        adm_date=record.adm_date,
        dscg_date=record.dscg_date,
        setl_time=timezone.make_aware(record.setl_time),
        hospital_code=partner.partner_id,
        hospital_name=partner.name,
        medfee_sumamt=amounts.medfee_sumamt,
        inscp_scp_amt=amounts.inscp_scp_amt,
        fund_pay_sumamt=amounts.fund_pay_sumamt,
        hosp_part_amt=amounts.hosp_part_amt,
        fulamt_ownpay_amt=amounts.fulamt_ownpay_amt,
        overlmt_selfpay=amounts.overlmt_selfpay,
        preselfpay_amt=amounts.preselfpay_amt,
        psn_part_amt=amounts.psn_part_amt,
        diagnoses_enc=";".join(record.diagnoses) if record.diagnoses else None,
    )


def price_claim(
    claim: Claim,
    insured: Insured,
    record: SettleRecord,
    *,
    acting_user: User | None,
    actor_text: str = "",
    one_stop_answer: bool,
    manual: bool = False,
    postings: list[Callable[[], object]] | None = None,
) -> tuple[str, Result]:
    """Price a claim's record in its person's locked year and decide what happens next (R14).

    Returns the settlement status to answer and the engine result. ``one_stop_answer``: the
    hospital is waiting for the answer at discharge and deducts an approved benefit; otherwise an
    approved benefit is owed to the member. ``manual``: filed by a clerk; always reviewed.
    ``postings``: when given, the ledger posting is appended to it for the caller to run at the end
    of its transaction (instead of being posted here).
    """
    versions = plan_versions_for(insured.member.union, record.adm_date.year)
    info = member_info(insured)
    engine_record = record.engine_record()
    if not versions:
        # No active plan covers the member's union for that year.
        result = _not_covered_result(record)
        return _reject(claim, result, acting_user, actor_text), result
    plans = engine_plans(versions)
    key = engine.locate(plans, engine_record, info)
    if key is None:
        result, _ = engine.settle(plans, None, engine_record, info)
        return _reject(claim, result, acting_user, actor_text), result
    year_row = lock_year(insured, *key)
    state = state_of(year_row)
    if state.find(record.setl_id) is not None:
        result = engine.rejected(plans, state, engine_record, info, Reason.DUPLICATE)
        return _reject(claim, result, acting_user, actor_text), result
    result, new_state = engine.settle(plans, state, engine_record, info)
    claim.product = result.product or ""
    claim.base_fen = result.base
    claim.explanation = _explanation(result)
    claim.plan_code = result.plan_code or ""
    version = version_by_code(versions, result.plan_code)
    if version is not None:
        claim.plan_version = version
        claim.parameters_hash = version.parameters_hash
    if not result.counted or new_state is None:
        return _reject(claim, result, acting_user, actor_text), result
    save_year(year_row, new_state)
    record_plan_use(version)
    claim.benefit_fen = result.benefit
    if result.benefit == 0:
        # Counted but nothing due (deductible, cap): the record stays in the year and may gain a
        # price if an earlier record is cancelled (``apply_state``).
        return _reject(claim, result, acting_user, actor_text), result
    policy = policy_for(insured.member.union)
    flags = risk_flags(
        policy=policy,
        insured=insured,
        union_path=claim.union_path,
        year=claim.year,
        benefit_fen=result.benefit,
        adm_date=record.adm_date,
        hospital_code=claim.hospital_code,
        critical_candidates=bool(screen_diagnoses(record.diagnoses)),
        exclude_key=claim.record_key,
        one_stop=not manual,
    )
    claim.flags = flags
    now = timezone.now()
    if manual or flags or result.benefit > policy.auto_approve_limit_fen:
        claim.status = ClaimStatus.SUBMITTED if manual else ClaimStatus.IN_REVIEW
        claim.save()
        why = "、".join(FLAG_LABELS[f] for f in flags)
        if not manual and not flags:
            why = f"超过自动核准上限 {format_fen(policy.auto_approve_limit_fen)} 元"
        add_step(
            claim,
            action="submit" if manual else "flag",
            from_status="",
            acting_user=acting_user,
            actor_text=actor_text,
            amount_fen=result.benefit,
            note=("手工申请已提交，等待审核" if manual else f"转人工审核：{why}"),
        )
        return SettlementStatus.PENDING_REVIEW, result
    claim.status = ClaimStatus.APPROVED
    claim.deducted_at_discharge = one_stop_answer
    claim.decided_at = now
    change = result.benefit - claim.posted_fen
    claim.posted_fen = result.benefit
    claim.save()

    def post() -> object:
        return post_change(
            claim, change, acting_user=acting_user, cause="补助金核定（自动）", track=False
        )

    if postings is None:
        post()
    else:
        postings.append(post)
    add_step(
        claim,
        action="auto_approve",
        from_status="",
        acting_user=acting_user,
        actor_text=actor_text,
        amount_fen=result.benefit,
        note="无风险提示且未超过自动核准上限，自动核准"
        + ("，由医院出院时直接减免" if one_stop_answer else "，待支付给职工"),
    )
    return SettlementStatus.APPROVED, result


def _not_covered_result(record: SettleRecord) -> Result:
    return Result(
        setl_id=record.setl_id,
        record_type="settle",
        product=None,
        year=record.adm_date.year,
        base=record.engine_record().base,
        benefit=0,
        cumulative_benefit=0,
        reason=Reason.NOT_COVERED,
        explanation={
            "reason": {"code": Reason.NOT_COVERED.value, "text": Reason.NOT_COVERED.text},
        },
    )


def _reject(claim: Claim, result: Result, acting_user: User | None, actor_text: str) -> str:
    claim.status = ClaimStatus.REJECTED
    claim.product = result.product or claim.product
    claim.base_fen = result.base
    claim.benefit_fen = 0 if not result.counted else result.benefit
    claim.reason = result.reason.value if result.reason else ""
    claim.explanation = _explanation(result) or claim.explanation
    claim.decided_at = timezone.now()
    claim.save()
    add_step(
        claim,
        action="reject",
        from_status="",
        acting_user=acting_user,
        actor_text=actor_text,
        amount_fen=0,
        note=f"不予给付：{result.reason.text if result.reason else ''}",
    )
    return SettlementStatus.REJECTED


# --- cancellation ----------------------------------------------------------------------------
def cancel_settlement(
    *, partner: Partner, setl_id: str, cancel_time: datetime, body_hash: str
) -> Answer:
    """2305: cancel a settlement of this partner. The record leaves its year, the year is priced
    again, and the answer's benefit is the change of the year's entitlement (RULES.md §4)."""
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        settlement = (
            # of=self: PostgreSQL refuses FOR UPDATE on the nullable side of the member join.
            Settlement.objects.select_for_update(of=("self",))
            .filter(partner=partner, setl_id=setl_id)
            .select_related("partner", "member")
            .first()
        )
        if settlement is None:
            raise UnknownSettlement(setl_id)
        if settlement.cancel_response is not None:
            if settlement.cancel_body_hash != body_hash:
                raise ConflictError(f"结算ID {setl_id} 已撤销，撤销内容不能更改")
            return Answer(200, settlement.cancel_response, replayed=True)
        claim = (
            Claim.objects.filter(settlement=settlement).select_related("member", "union").first()
        )
        change = 0
        explanation: dict[str, Any] = {}
        if claim is not None:
            change, explanation = _cancel_claim(
                claim, acting_user=None, actor_text=_partner_actor(partner), cause="医保结算撤销"
            )
        if not explanation:
            explanation = {
                "text": f"结算 {setl_id} 已撤销；该笔结算未计入补助，补助金额不变。",
            }
        body = {
            "setl_id": setl_id,
            "status": "cancelled",
            "benefit": format_fen(change),
            "explanation": explanation,
        }
        moment = timezone.make_aware(cancel_time)
        Settlement.objects.filter(pk=settlement.pk).update(
            status=SettlementStatus.CANCELLED,
            cancel_time=moment,
            cancel_body_hash=body_hash,
            cancel_response=body,
        )
        record_event(
            actor=None,
            actor_username=_partner_actor(partner),
            event=EVENT_SETTLEMENT_CANCELLED,
            object_type="claims.settlement",
            object_id=str(settlement.pk),
            organisation_id=settlement.member.union_id if settlement.member else None,
            detail={"partner": partner.partner_id, "setl_id": setl_id, "change_fen": change},
        )
        return Answer(200, body)


def _cancel_claim(
    claim: Claim, *, acting_user: User | None, actor_text: str, cause: str
) -> tuple[int, dict[str, Any]]:
    """Take the claim's record out of its year (cancellation, or a reviewer's rejection of a
    priced claim) and re-price; returns the change of the year's entitlement and the explanation."""
    change = 0
    explanation: dict[str, Any] = {}
    if claim.product and claim.product in ("inpatient", "special_outpatient", "family_inpatient"):
        insured = Insured(claim.member, claim.family_member, claim.person_index, claim.enrollment)
        if BenefitYear.objects.filter(
            person_index=claim.person_index, product=claim.product, year=claim.year
        ).exists():
            year_row = lock_year(insured, claim.product, claim.year)
            before = state_of(year_row)
            if before.find(claim.record_key) is not None:
                versions = plan_versions_for(claim.member.union, claim.year)
                result, after = engine.cancel(engine_plans(versions), before, claim.record_key)
                assert after is not None
                apply_state(year_row, before, after, acting_user=acting_user, cause=cause)
                change = result.benefit
                explanation = _explanation(result)
                claim.refresh_from_db()
    if claim.posted_fen and claim.status not in (ClaimStatus.CANCELLED,):
        post_change(claim, -claim.posted_fen, acting_user=acting_user, cause=cause)
    previous = claim.status
    claim.status = ClaimStatus.CANCELLED
    claim.benefit_fen = 0
    claim.updated_at = timezone.now()
    claim.save(update_fields=["status", "benefit_fen", "posted_fen", "updated_at"])
    add_step(
        claim,
        action="cancel",
        from_status=previous,
        acting_user=acting_user,
        actor_text=actor_text,
        amount_fen=change,
        note=f"{cause}：年度补助合计变动 {format_fen(change)} 元",
    )
    return change, explanation


# --- consent granted: process the quarantined records ----------------------------------------
def release_quarantined(*, member_id: int, acting_user: User | None = None) -> int:
    """Price every quarantined settlement of a member who now consents, in settlement-time order
    (S12). The hospital did not deduct them: approved benefits are owed to the member. Returns
    the number processed; nothing happens while consent is still missing."""
    if not has_consent(member_id):
        return 0
    done = 0
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        claims = list(
            # of=self: PostgreSQL refuses FOR UPDATE on the nullable side of the settlement join.
            Claim.objects.select_for_update(of=("self",))
            .filter(member_id=member_id, status=ClaimStatus.QUARANTINED)
            .select_related("settlement", "settlement__partner", "member", "member__union")
            .order_by("setl_time", "record_key")
        )
        for claim in claims:
            settlement = claim.settlement
            assert settlement is not None
            body = json.loads(str(settlement.body_enc))
            record = parse_settle_body(body)
            insured = find_insured(claim.person_index, claim.year)
            assert insured is not None
            claim.reason = ""
            status, result = price_claim(
                claim,
                insured,
                record,
                acting_user=acting_user,
                actor_text="授权后自动处理",
                one_stop_answer=False,
            )
            Settlement.objects.filter(pk=settlement.pk).update(
                status=status,
                reason=result.reason.value if result.reason else "",
                benefit_fen=result.benefit,
            )
            done += 1
        if done:
            record_event(
                actor=acting_user,
                event=EVENT_SETTLEMENT_RELEASED,
                object_type="members.member",
                object_id=str(member_id),
                detail={"count": done},
            )
    return done


def today() -> date:
    return timezone.localdate()
