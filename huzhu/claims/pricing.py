"""The database side of the benefit engine: who the insured person is, which plan versions price
their year, the locked year state, and how a change of the state reaches claims and the ledger.

Every function here runs inside the caller's transaction. The year state row
(``BenefitYear``) is locked before it is read (``select_for_update``; SQLite's IMMEDIATE
transactions serialise writers anyway), so two settlements of one person never price against the
same state: the cap holds under concurrency (S16).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import Q
from django.utils import timezone

from huzhu.claims.models import (
    BenefitYear,
    Claim,
    ClaimAdjustment,
    ClaimStatus,
    ClaimStep,
    HospitalShare,
    ReviewPolicy,
)
from huzhu.enrollment.models import Enrollment, EnrollmentStatus, ProductSet
from huzhu.enrollment.services import plan_regions_of
from huzhu.ledger.services import Party, post_benefit_adjusted
from huzhu.members.models import FamilyMember, HardshipRecord, Member
from huzhu.orgs.models import Union, User
from huzhu.plans.loader import plan_for
from huzhu.plans.models import PlanStatus, PlanVersion
from huzhu.plans.services import mark_used
from huzhu.rules.engine import MemberInfo, YearState
from huzhu.rules.plan import Plan, PlanVersions

_NEVER = date(1, 1, 1)
_CACHE_SECONDS = 60.0


# --- the insured person ----------------------------------------------------------------------
@dataclass(frozen=True)
class Insured:
    """The person a settlement or claim is for: a member, or a member's family member."""

    member: Member
    family_member: FamilyMember | None
    person_index: str
    enrollment: Enrollment | None

    @property
    def member_type(self) -> str:
        return ProductSet.FAMILY if self.family_member is not None else ProductSet.SELF


def find_insured(person_index: str, year: int) -> Insured | None:
    """The member (or family member) whose ID blind index is ``person_index``, with their
    enrollment for ``year`` (the live one first; a withdrawn share keeps its dates)."""
    enrollments = list(
        Enrollment.objects.filter(person_index=person_index, plan_year=year)
        .select_related("member", "member__union", "family_member")
        .order_by("-id")
    )
    if enrollments:
        order = {EnrollmentStatus.ACTIVE: 0, EnrollmentStatus.PENDING: 1}
        enrollments.sort(key=lambda e: order.get(EnrollmentStatus(e.status), 2))
        chosen = enrollments[0]
        return Insured(chosen.member, chosen.family_member, person_index, chosen)
    member = Member.objects.filter(id_number_index=person_index).select_related("union").first()
    if member is not None:
        return Insured(member, None, person_index, None)
    family = FamilyMember.objects.filter(id_number_index=person_index).select_related(
        "member", "member__union"
    )
    relative = family.first()
    if relative is not None:
        return Insured(relative.member, relative, person_index, None)
    return None


def member_info(insured: Insured) -> MemberInfo:
    """The engine's view of the insured person: coverage of the enrollment (none without one)
    and the member's dated hardship records (RULES.md §4; family members have none)."""
    enrollment = insured.enrollment
    if (
        enrollment is not None
        and enrollment.status == EnrollmentStatus.ACTIVE
        and enrollment.coverage_start is not None
        and enrollment.coverage_end is not None
    ):
        start, end = enrollment.coverage_start, enrollment.coverage_end
    else:
        start, end = date.max, _NEVER
    periods: tuple[tuple[date | None, date | None], ...] = ()
    if insured.family_member is None:
        periods = tuple(
            HardshipRecord.objects.filter(member=insured.member)
            .order_by("valid_from")
            .values_list("valid_from", "valid_to")
        )
    return MemberInfo(
        member_type=insured.member_type,
        coverage_start=start,
        coverage_end=end,
        hardship_periods=periods,
    )


# --- plan versions ---------------------------------------------------------------------------
_plan_cache: dict[tuple[int, int], tuple[float, list[PlanVersion]]] = {}
_plan_lock = threading.Lock()


def clear_caches() -> None:
    with _plan_lock:
        _plan_cache.clear()
        _policy_cache.clear()
        _share_cache.clear()


def plan_versions_for(union: Union, year: int) -> list[PlanVersion]:
    """The active versions of ``year`` of the most specific pooling area covering ``union``
    (a revision prices records admitted on or after its ``effective_from``)."""
    key = (union.pk, year)
    now = time.monotonic()
    cached = _plan_cache.get(key)
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    regions = plan_regions_of(union)
    versions = list(
        PlanVersion.objects.filter(
            region__in=regions, year=year, status__in=[PlanStatus.ACTIVE, PlanStatus.RETIRED]
        )
    )
    chosen: list[PlanVersion] = []
    for region in regions:
        own = [v for v in versions if v.region == region]
        if any(v.status == PlanStatus.ACTIVE for v in own):
            chosen = sorted(own, key=lambda v: v.starts_on)
            break
    with _plan_lock:
        _plan_cache[key] = (now, chosen)
    return chosen


def engine_plans(versions: list[PlanVersion]) -> Plan | PlanVersions:
    plans = [plan_for(v) for v in versions]
    return plans[0] if len(plans) == 1 else PlanVersions(plans)


def version_by_code(versions: Iterable[PlanVersion], code: str | None) -> PlanVersion | None:
    return next((v for v in versions if v.code == code), None)


def record_plan_use(version: PlanVersion | None) -> None:
    """A version that priced a benefit can never change again (ARCHITECTURE.md convention 2)."""
    if version is not None and version.used_at is None:
        mark_used(version)


# --- the locked year state -------------------------------------------------------------------
def lock_year(insured: Insured, product: str, year: int) -> BenefitYear:
    """The (person, product, year) state row, created if missing, locked until commit."""
    BenefitYear.objects.bulk_create(
        [
            BenefitYear(
                person_index=insured.person_index,
                product=product,
                year=year,
                member=insured.member,
                state=YearState.empty(product, year).to_json(),
            )
        ],
        ignore_conflicts=True,
    )
    return BenefitYear.objects.select_for_update().get(
        person_index=insured.person_index, product=product, year=year
    )


def state_of(row: BenefitYear) -> YearState:
    return YearState.from_json(row.state)


def save_year(row: BenefitYear, state: YearState) -> None:
    row.state = state.to_json()
    row.total_fen = state.total
    row.updated_at = timezone.now()
    BenefitYear.objects.filter(pk=row.pk).update(
        state=row.state, total_fen=row.total_fen, updated_at=row.updated_at
    )


# --- claims and the ledger -------------------------------------------------------------------
def settlement_claim_number(settlement_pk: int) -> str:
    """A one-stop claim's number: ``YZ`` + date + the settlement row's id in 10 digits. Unique
    by construction (one claim per settlement) — random digits collide within a day once a
    province settles some thousands (the birthday bound), which the crash drill of
    ``bench_settlements`` hit at 8,000."""
    return f"YZ{timezone.localdate():%Y%m%d}{settlement_pk:010d}"


def new_claim_number(prefix: str) -> str:
    """A manual claim's number: ``SG`` + date + 10 random digits, drawn again while taken. Manual
    filings are a few hundred a day, made one member at a time; the unique constraint stays the
    backstop."""
    while True:
        number = f"{prefix}{timezone.localdate():%Y%m%d}{secrets.randbelow(10**10):010d}"
        if not Claim.objects.filter(number=number).exists():
            return number


def actor_label(acting_user: User | None, fallback: str = "系统") -> str:
    return acting_user.username if acting_user is not None else fallback


def add_step(
    claim: Claim,
    *,
    action: str,
    from_status: str,
    acting_user: User | None,
    note: str = "",
    amount_fen: int | None = None,
    actor_text: str = "",
) -> ClaimStep:
    return ClaimStep.objects.create(
        claim=claim,
        action=action,
        from_status=from_status,
        to_status=claim.status,
        actor=acting_user,
        actor_label=actor_text or actor_label(acting_user),
        amount_fen=amount_fen,
        note=note[:500],
    )


def payable_parties(claim: Claim) -> tuple[Party, Party | None]:
    member = Party.member(claim.member)
    if claim.deducted_at_discharge:
        return member, Party.hospital(claim.hospital_code, claim.hospital_name)
    return member, None


def post_change(
    claim: Claim,
    change_fen: int,
    *,
    acting_user: User | None,
    cause: str,
    track: bool = True,
) -> ClaimAdjustment | None:
    """Post a change of what the fund owes for ``claim`` (approval, re-pricing, cancellation):
    Dr 5001 / Cr 2242 (hospital deducted it) or Cr 2241 (owed to the member); negative the other
    way round. Records the adjustment; ``track`` keeps ``claim.posted_fen`` in step (False when the
    caller has already set it, before inserting the claim)."""
    if change_fen == 0:
        return None
    member, hospital = payable_parties(claim)
    reference = f"claim-{claim.pk}-{secrets.token_hex(6)}"
    entry = post_benefit_adjusted(
        acting_user=acting_user,
        organisation=claim.union,
        date=timezone.localdate(),
        adjustment_id=reference,
        change_fen=change_fen,
        one_stop=claim.deducted_at_discharge,
        member=member,
        hospital=hospital,
        memo=f"{cause} {claim.number}",
    )
    adjustment = ClaimAdjustment.objects.create(
        claim=claim, change_fen=change_fen, cause=cause, entry=entry
    )
    if track:
        claim.posted_fen += change_fen
    return adjustment


#: Statuses whose amount is owed (posted to the ledger).
POSTED_STATUSES = (ClaimStatus.APPROVED, ClaimStatus.PAID)


def apply_state(
    year_row: BenefitYear,
    before: YearState,
    after: YearState,
    *,
    acting_user: User | None,
    cause: str,
) -> list[Claim]:
    """Store ``after`` and bring every claim of the year in line with its new price.

    A cancellation or a reviewer's rejection removes a record and re-prices the rest (RULES.md §4):
    a claim whose price changed gets its new amount; an owed claim (approved or paid) posts the
    change to the ledger; a counted claim that paid nothing (e.g. ``CAP_REACHED``) and now has a
    price becomes approved (owed to the member); a removed record's owed amount is reversed.
    Returns the claims that changed.
    """
    save_year(year_row, after)
    old = {r.setl_id: r.price for r in before.records}
    new = {r.setl_id: r.price for r in after.records}
    keys = [k for k in set(old) | set(new) if old.get(k, 0) != new.get(k, 0)]
    if not keys:
        return []
    changed: list[Claim] = []
    claims = Claim.objects.select_related("member", "union").filter(
        person_index=year_row.person_index, record_key__in=keys
    )
    now = timezone.now()
    for claim in claims:
        price = new.get(claim.record_key, 0)
        previous_status = claim.status
        claim.benefit_fen = price
        if claim.status in POSTED_STATUSES:
            post_change(claim, price - claim.posted_fen, acting_user=acting_user, cause=cause)
        elif claim.status == ClaimStatus.REJECTED and price > 0 and not claim.rejection_code:
            # A counted record that paid nothing (deductible, cap) gains a price when an earlier
            # record leaves the year: the member is owed it, after the fact (not at discharge).
            claim.status = ClaimStatus.APPROVED
            claim.deducted_at_discharge = False
            claim.reason = ""
            claim.decided_at = now
            post_change(claim, price, acting_user=acting_user, cause=cause)
        claim.updated_at = now
        claim.save(
            update_fields=[
                "benefit_fen",
                "posted_fen",
                "status",
                "reason",
                "deducted_at_discharge",
                "decided_at",
                "updated_at",
            ]
        )
        add_step(
            claim,
            action="reprice",
            from_status=previous_status,
            acting_user=acting_user,
            amount_fen=price,
            note=f"{cause}：重新计算后补助金额为 {price / 100:.2f} 元",
        )
        changed.append(claim)
    return changed


# --- review policy and risk flags (R14) ------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    auto_approve_limit_fen: int = 2_000_000
    large_amount_fen: int = 3_000_000
    many_claims_count: int = 4
    new_enrollment_days: int = 30
    hospital_share_percent: int = 30
    hospital_share_min_claims: int = 50
    second_approval_limit_fen: int = 2_000_000


_policy_cache: dict[str, tuple[float, Policy]] = {}


def policy_for(union: Union) -> Policy:
    """The nearest ancestor-or-self's ``ReviewPolicy``, else the defaults (cached for a minute)."""
    now = time.monotonic()
    cached = _policy_cache.get(union.path)
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    parts = [p for p in union.path.split("/") if p]
    prefixes = ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]
    rows = sorted(
        ReviewPolicy.objects.select_related("organisation").filter(organisation__path__in=prefixes),
        key=lambda r: len(r.organisation.path),
    )
    policy = Policy()
    if rows:
        row = rows[-1]
        policy = Policy(
            auto_approve_limit_fen=row.auto_approve_limit_fen,
            large_amount_fen=row.large_amount_fen,
            many_claims_count=row.many_claims_count,
            new_enrollment_days=row.new_enrollment_days,
            hospital_share_percent=row.hospital_share_percent,
            hospital_share_min_claims=row.hospital_share_min_claims,
            second_approval_limit_fen=row.second_approval_limit_fen,
        )
    with _plan_lock:
        _policy_cache[union.path] = (now, policy)
    return policy


FLAG_LABELS: dict[str, str] = {
    "large_amount": "大额补助",
    "many_claims": "同一职工年度内多次理赔",
    "new_enrollment": "参保后短期内发生住院",
    "hospital_share": "医疗机构理赔占比异常",
    "critical_illness_candidate": "疑似重大疾病（待审核是否给付关爱金）",
    "manual_duplicate": "该次住院已有手工申请",
}


def area_path(path: str) -> str:
    """The city-level prefix of a union path (root/city/), the area of hospital shares."""
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[:2]) + "/"


def risk_flags(
    *,
    policy: Policy,
    insured: Insured,
    union_path: str,
    year: int,
    benefit_fen: int,
    adm_date: date | None,
    hospital_code: str,
    critical_candidates: bool,
    exclude_key: str,
    one_stop: bool,
) -> list[str]:
    """R14: the reasons a claim goes to a reviewer instead of being approved at once."""
    flags: list[str] = []
    if benefit_fen >= policy.large_amount_fen:
        flags.append("large_amount")
    earlier = list(
        Claim.objects.filter(person_index=insured.person_index, year=year)
        .exclude(record_key=exclude_key)
        .exclude(status__in=[ClaimStatus.CANCELLED, ClaimStatus.QUARANTINED])
        .values_list("kind", "adm_date", "status")
    )
    if len(earlier) + 1 >= policy.many_claims_count:
        flags.append("many_claims")
    enrollment = insured.enrollment
    if (
        enrollment is not None
        and enrollment.coverage_start is not None
        and adm_date is not None
        and (adm_date - enrollment.coverage_start).days < policy.new_enrollment_days
    ):
        flags.append("new_enrollment")
    if hospital_code and (area_path(union_path), hospital_code) in flagged_hospitals(year):
        flags.append("hospital_share")
    if critical_candidates:
        flags.append("critical_illness_candidate")
    if one_stop and any(
        kind == "manual" and day == adm_date and status != ClaimStatus.REJECTED
        for kind, day, status in earlier
    ):
        flags.append("manual_duplicate")
    return flags


_share_cache: dict[int, tuple[float, frozenset[tuple[str, str]]]] = {}


def flagged_hospitals(year: int) -> frozenset[tuple[str, str]]:
    """(area, hospital) pairs flagged for ``year`` — a daily statistic, cached for a minute."""
    now = time.monotonic()
    cached = _share_cache.get(year)
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    flagged = frozenset(
        HospitalShare.objects.filter(year=year, flagged=True).values_list(
            "area_path", "hospital_code"
        )
    )
    with _plan_lock:
        _share_cache[year] = (now, flagged)
    return flagged


def refresh_hospital_shares(year: int, *, min_claims: int = 50, percent: int = 30) -> int:
    """Recompute every hospital's share of its city's claims in ``year`` (set-based: one grouped
    query) and flag the shares at or above ``percent`` where the city has ``min_claims``."""
    from django.db.models import Count

    rows = (
        Claim.objects.filter(year=year)
        .exclude(hospital_code="")
        .exclude(status__in=[ClaimStatus.CANCELLED, ClaimStatus.QUARANTINED])
        .values("union_path", "hospital_code", "hospital_name")
        .annotate(n=Count("id"))
    )
    per_hospital: dict[tuple[str, str], list[object]] = {}
    per_area: dict[str, int] = {}
    for row in rows:
        area = area_path(row["union_path"])
        key = (area, row["hospital_code"])
        entry = per_hospital.setdefault(key, [row["hospital_name"], 0])
        entry[1] = int(entry[1]) + row["n"]  # type: ignore[call-overload]
        per_area[area] = per_area.get(area, 0) + row["n"]
    now = timezone.now()
    objects = []
    for (area, code), (name, count) in per_hospital.items():
        total = per_area[area]
        share = int(count) * 100 // total if total else 0  # type: ignore[call-overload]
        objects.append(
            HospitalShare(
                year=year,
                area_path=area,
                hospital_code=code,
                hospital_name=str(name)[:100],
                claims=int(count),  # type: ignore[call-overload]
                area_claims=total,
                share_percent=share,
                flagged=total >= min_claims and share >= percent,
                computed_at=now,
            )
        )
    HospitalShare.objects.filter(year=year).delete()
    HospitalShare.objects.bulk_create(objects)
    _share_cache.pop(year, None)
    return len(objects)


def scope_filter(path: str) -> Q:
    return Q(union_path__startswith=path)
