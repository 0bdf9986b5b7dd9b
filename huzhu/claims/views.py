"""Staff screens of claim review (Chinese): the review queue (审核工作台), a claim's detail with the
engine's explanation, documents, history and the actions the viewer may take, the review policy
(审核规则) and a member's claim history.

Thin: every object comes through an ``access_*`` function (out of scope → 404, S5), every write is
one call of ``huzhu.claims.review``. Lists never show diagnoses or plain ID numbers (S7, S11); a
reviewer sees the diagnoses after stating a reason (audited, S8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from huzhu.claims import review, selectors
from huzhu.claims.access import access_claim
from huzhu.claims.forms import (
    AppealForm,
    ApproveForm,
    NoteForm,
    PolicyForm,
    RejectForm,
    RevealForm,
    SendBackForm,
)
from huzhu.claims.models import (
    Claim,
    ClaimAdjustment,
    ClaimDocument,
    ClaimKind,
    ClaimStatus,
    ClaimStep,
    Product,
    ReviewPolicy,
)
from huzhu.claims.pricing import FLAG_LABELS, policy_for
from huzhu.core.errors import InvalidInput
from huzhu.core.money import format_fen
from huzhu.core.paging import keyset_page
from huzhu.members.access import access_member
from huzhu.orgs.models import Union, User, subtree_q
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import unions_for
from huzhu.orgs.views import int_param
from huzhu.rules.reasons import Reason
from huzhu.web.auth import staff_required, staff_user, url_or_none
from huzhu.web.forms import union_choices

PAGE_SIZE = 50
UNION_CHOICES_LIMIT = 300

#: Never loaded for a list row: the member's encrypted fields (lists show the masked forms).
_MEMBER_SECRETS = (
    "member__id_number_enc",
    "member__phone_enc",
    "member__bank_account_enc",
    "family_member__id_number_enc",
)


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    statuses: tuple[str, ...]


TABS: tuple[Tab, ...] = (
    Tab("review", "待审核", tuple(review.FIRST_REVIEW_STATUSES)),
    Tab("second", "待复核", (ClaimStatus.SECOND_REVIEW,)),
    Tab("approved", "已核准", (ClaimStatus.APPROVED,)),
    Tab("rejected", "不予给付", (ClaimStatus.REJECTED,)),
    Tab("paid", "已支付", (ClaimStatus.PAID,)),
    Tab("quarantined", "待授权", (ClaimStatus.QUARANTINED,)),
)
_TABS = {t.key: t for t in TABS}

STATUS_STYLES: dict[str, str] = {
    ClaimStatus.QUARANTINED: "text-bg-secondary",
    ClaimStatus.SUBMITTED: "text-bg-info",
    ClaimStatus.IN_REVIEW: "text-bg-primary",
    ClaimStatus.SECOND_REVIEW: "text-bg-warning",
    ClaimStatus.APPROVED: "text-bg-success",
    ClaimStatus.REJECTED: "text-bg-danger",
    ClaimStatus.APPEALED: "text-bg-info",
    ClaimStatus.PAID: "text-bg-dark",
    ClaimStatus.CANCELLED: "text-bg-light",
}


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # pages with personal data (S4)
    return response


# --- plain reasons -------------------------------------------------------------------------------
def plain_reason(claim: Claim) -> str:
    """Why the claim stands where it stands, in one plain Chinese sentence (for the member's
    history and the lists): the reviewer's reason code, the engine's reason, or the flags."""
    status = claim.status
    if status == ClaimStatus.REJECTED and claim.rejection_code:
        code = review.RejectionCode(claim.rejection_code)
        text = f"{code.label}：{review.REJECTION_TEXTS[code]}"
        return text + (f"（{claim.rejection_note}）" if claim.rejection_note else "")
    if claim.reason and claim.reason in Reason.__members__:
        return Reason(claim.reason).text
    if status in (ClaimStatus.IN_REVIEW, ClaimStatus.SECOND_REVIEW, ClaimStatus.SUBMITTED):
        flags = [FLAG_LABELS.get(f, f) for f in claim.flags]
        waiting = "等待市（州）总工会复核" if status == ClaimStatus.SECOND_REVIEW else "人工审核中"
        return f"{waiting}" + (f"（{'、'.join(flags)}）" if flags else "")
    if status == ClaimStatus.APPEALED:
        return "已提出申诉，等待重新审核"
    if status == ClaimStatus.APPROVED:
        if claim.benefit_fen == 0:
            return "年度内其他结算变动后重新计算，本次补助为 0.00 元"
        if claim.deducted_at_discharge:
            return f"已核准补助 {format_fen(claim.benefit_fen)} 元，出院结算时由医院直接减免"
        return f"已核准补助 {format_fen(claim.benefit_fen)} 元，待支付到职工银行账户"
    if status == ClaimStatus.PAID:
        return f"补助 {format_fen(claim.paid_fen or claim.benefit_fen)} 元已支付"
    if status == ClaimStatus.CANCELLED:
        return Reason.CANCELLED.text
    return ""


# --- the queue -----------------------------------------------------------------------------------
def _flag_filter(qs: QuerySet[Claim], flag: str) -> QuerySet[Claim]:
    # The flags are a JSON list of codes: matched on its text, the same on SQLite and PostgreSQL
    # (JSON containment is not available on SQLite).
    return qs.annotate(flags_text=Cast("flags", TextField())).filter(
        flags_text__contains=f'"{flag}"'
    )


def _queue_filters(request: HttpRequest, user: User) -> tuple[dict[str, Any], QuerySet[Claim]]:
    qs = selectors.claims_for(user)
    product = request.GET.get("product", "")
    if product not in Product.values:
        product = ""
    kind = request.GET.get("kind", "")
    if kind not in ClaimKind.values:
        kind = ""
    flag = request.GET.get("flag", "")
    if flag not in FLAG_LABELS:
        flag = ""
    if product:
        qs = qs.filter(product=product)
    if kind:
        qs = qs.filter(kind=kind)
    if flag:
        qs = _flag_filter(qs, flag)
    union: Union | None = None
    union_id = int_param(request, "union")
    union_code = request.GET.get("union_code", "").strip()[:20]
    if union_id is not None:
        union = unions_for(user).filter(pk=union_id).first()
    elif union_code:
        union = unions_for(user).filter(code=union_code).first()
    if union is not None:
        qs = qs.filter(subtree_q(union.path, "union_path"))
    elif union_id is not None or union_code:
        qs = qs.none()  # a union outside the scope: nothing (and its name is never shown)
    filters = {"product": product, "kind": kind, "flag": flag, "union": union}
    return filters, qs


@staff_required(Perm.CLAIM_VIEW)
def queue(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    tab = _TABS.get(request.GET.get("tab", ""), TABS[0])
    filters, qs = _queue_filters(request, user)
    # One bounded count per tab: a province holds millions of settled claims, and a tab's badge
    # needs no exact figure beyond COUNT_CAP ("9999+").
    counts = {t.key: _capped_count(qs.filter(status__in=t.statuses)) for t in TABS}
    rows_qs = (
        qs.filter(status__in=tab.statuses)
        .defer(*selectors.LIST_DEFERRED, *_MEMBER_SECRETS)
        .select_related("member", "union", "family_member")
    )
    page = keyset_page(
        rows_qs,
        after=int_param(request, "after"),
        before=int_param(request, "before"),
        size=PAGE_SIZE,
    )
    params = {
        k: v
        for k, v in request.GET.items()
        if k in ("product", "kind", "flag", "union", "union_code")
    }
    params = {k: v for k, v in params.items() if v}

    def url(**extra: Any) -> str:
        return "?" + urlencode({**params, "tab": tab.key, **extra})

    union = filters["union"]
    choices = union_choices(unions_for(user), UNION_CHOICES_LIMIT)
    return _no_store(
        render(
            request,
            "claims/review/queue.html",
            {
                "tab": tab,
                "tabs": [
                    (t, counts[t.key], "?" + urlencode({**params, "tab": t.key})) for t in TABS
                ],
                "page": page,
                "rows": [(c, STATUS_STYLES.get(c.status, ""), _flag_labels(c)) for c in page.rows],
                "prev_url": url(before=page.prev_cursor) if page.prev_cursor else None,
                "next_url": url(after=page.next_cursor) if page.next_cursor else None,
                "products": Product.choices,
                "kinds": ClaimKind.choices,
                "flags": list(FLAG_LABELS.items()),
                "product": filters["product"],
                "kind": filters["kind"],
                "flag": filters["flag"],
                "union": union,
                "union_choices": choices,
                "union_value": str(union.pk) if union else "",
                "union_code": union.code if union and choices is None else "",
                "filtered": bool(params),
            },
        )
    )


COUNT_CAP = 9999


def _capped_count(qs: QuerySet[Claim]) -> str:
    n = qs.order_by().values("pk")[: COUNT_CAP + 1].count()
    return f"{COUNT_CAP}+" if n > COUNT_CAP else str(n)


def _flag_labels(claim: Claim) -> list[str]:
    return [FLAG_LABELS.get(f, f) for f in claim.flags]


# --- the detail ----------------------------------------------------------------------------------
AMOUNT_ROWS: tuple[tuple[str, str], ...] = (
    ("medfee_sumamt", "医疗费总额"),
    ("fulamt_ownpay_amt", "全自费金额（不计入基数）"),
    ("overlmt_selfpay", "超限价自费（不计入基数）"),
    ("preselfpay_amt", "先行自付（不计入基数）"),
    ("inscp_scp_amt", "政策范围内金额"),
    ("fund_pay_sumamt", "基本医保等基金支付"),
    ("hosp_part_amt", "医院负担"),
    ("other_reimbursed", "其他已报销"),
    ("psn_part_amt", "个人负担"),
)


def _actions(user: User, claim: Claim) -> dict[str, Any]:
    perms = user.perms()
    reviewer = Perm.CLAIM_REVIEW in perms
    creator = claim.created_by_id is not None and claim.created_by_id == user.pk
    status = claim.status
    second_why = review.may_second_approve(user, claim) if reviewer else "no"
    return {
        "can_start": reviewer
        and not creator
        and status in (ClaimStatus.SUBMITTED, ClaimStatus.APPEALED),
        "can_decide": reviewer and not creator and status == ClaimStatus.IN_REVIEW,
        "can_second": status == ClaimStatus.SECOND_REVIEW and second_why is None,
        "second_why": second_why if status == ClaimStatus.SECOND_REVIEW and reviewer else None,
        "creator_blocked": reviewer
        and creator
        and status in (*review.FIRST_REVIEW_STATUSES, ClaimStatus.SECOND_REVIEW),
        "can_appeal": Perm.CLAIM_FILE in perms and review.may_appeal(claim),
        "can_see_diagnoses": reviewer and bool(claim.diagnoses_enc),
        "needs_lump_confirm": needs_lump_confirm(claim),
    }


def needs_lump_confirm(claim: Claim) -> bool:
    """A critical illness not priced yet: the approval confirms the disease and severity."""
    return claim.product == Product.CRITICAL_ILLNESS and "priced" not in (claim.lump_sum or {})


def _approve_form(claim: Claim) -> ApproveForm:
    facts = claim.lump_sum or {}
    initial = {"disease": facts.get("disease_claimed"), "severity": facts.get("severity_claimed")}
    return ApproveForm(auto_id="approve_%s", lump_sum=needs_lump_confirm(claim), initial=initial)


def _status_label(status: str) -> str:
    return ClaimStatus(status).label if status in ClaimStatus.values else status


def _percent(rate: str) -> str:
    """An explanation's exact rate text as a percentage: "0.5" → "50%", "0.125" → "12.5%"."""
    try:
        value = Decimal(rate) * 100
    except InvalidOperation:
        return rate
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def _document_url(claim: Claim, document: ClaimDocument) -> str | None:
    # The documents' download page belongs to the manual-claims screens (``manual:document``).
    return url_or_none("manual:document", document.pk)


def _detail(
    request: HttpRequest, user: User, claim: Claim, *, status: int = 200, **forms: Any
) -> HttpResponse:
    actions = _actions(user, claim)
    explanation = claim.explanation or {}
    schedule = explanation.get("schedule") or {}
    documents = list(
        ClaimDocument.objects.filter(claim=claim).defer("content_enc").order_by("uploaded_at", "pk")
    )
    steps = list(ClaimStep.objects.filter(claim=claim).order_by("at", "pk"))
    adjustments = list(
        ClaimAdjustment.objects.filter(claim=claim).select_related("entry").order_by("pk")
    )
    ledger = user.has_perm_code(Perm.LEDGER_VIEW)
    context = {
        "claim": claim,
        "status_style": STATUS_STYLES.get(claim.status, ""),
        "insured_name": claim.family_member.name if claim.family_member else claim.member.name,
        "insured_masked": (
            claim.family_member.id_number_masked
            if claim.family_member
            else claim.member.id_number_masked
        ),
        "amounts": [(label, getattr(claim, name)) for name, label in AMOUNT_ROWS],
        "explanation_text": explanation.get("text", ""),
        "bands": [
            {**band, "percent": _percent(str(band.get("rate", "0")))}
            for band in schedule.get("bands") or []
        ],
        "schedule": schedule,
        "flags": _flag_labels(claim),
        "reason_text": plain_reason(claim),
        "rejection_label": (
            review.RejectionCode(claim.rejection_code).label if claim.rejection_code else ""
        ),
        "documents": [(d, _document_url(claim, d)) for d in documents],
        "steps": [
            (s, review.STEP_LABELS.get(s.action, s.action), _status_label(s.to_status))
            for s in steps
        ],
        "adjustments": [
            (a, reverse("ledger:entry", args=[a.entry_id]) if ledger and a.entry_id else None)
            for a in adjustments
        ],
        "policy": policy_for(claim.union),
        "appeal_deadline": review.appeal_deadline(claim)
        if claim.status == ClaimStatus.REJECTED
        else None,
        "member_url": reverse("members:detail", args=[claim.member_id])
        if user.has_perm_code(Perm.MEMBER_VIEW)
        else None,
        "history_url": reverse("claims:member_history", args=[claim.member_id]),
        "start_form": forms.get("start_form") or NoteForm(auto_id="start_%s"),
        "approve_form": forms.get("approve_form") or _approve_form(claim),
        "second_form": forms.get("second_form") or NoteForm(auto_id="second_%s"),
        "send_back_form": forms.get("send_back_form") or SendBackForm(auto_id="back_%s"),
        "reject_form": forms.get("reject_form") or RejectForm(auto_id="reject_%s"),
        "appeal_form": forms.get("appeal_form") or AppealForm(auto_id="appeal_%s"),
        "reveal_form": RevealForm(auto_id="diag_%s"),
        **actions,
    }
    return _no_store(render(request, "claims/review/detail.html", context, status=status))


@staff_required(Perm.CLAIM_VIEW)
def detail(request: HttpRequest, claim_id: int) -> HttpResponse:
    user = staff_user(request)
    return _detail(request, user, access_claim(user, claim_id))


def _act(
    request: HttpRequest,
    claim_id: int,
    perm: Perm,
    form_name: str,
    form: Any,
    call: Callable[[User, Claim, dict[str, Any]], Claim],
    done: Callable[[Claim], str],
) -> HttpResponse:
    """One action: the claim (404 out of scope), the form, the service; success → the detail
    page again with a message; errors → the detail page with the form and its Chinese errors."""
    user = staff_user(request)
    claim = access_claim(user, claim_id, perm)
    if form.is_valid():
        try:
            updated = call(user, claim, form.cleaned_data)
        except InvalidInput as exc:
            # Field errors beside the field; the others (the claim's state, separation of duties)
            # above the page: the form they came from may not be shown in the claim's new state.
            for error in exc.errors:
                if error.field in form.fields:
                    form.add_error(error.field, error.message)
                else:
                    messages.error(request, error.message)
        else:
            messages.success(request, done(updated))
            return redirect("claims:detail", claim_id=claim.pk)
    return _detail(request, user, claim, status=422, **{form_name: form})


@require_POST
@staff_required(Perm.CLAIM_REVIEW)
def start_review(request: HttpRequest, claim_id: int) -> HttpResponse:
    return _act(
        request,
        claim_id,
        Perm.CLAIM_REVIEW,
        "start_form",
        NoteForm(request.POST, auto_id="start_%s"),
        lambda user, claim, data: review.start_review(
            acting_user=user, claim=claim, note=data["note"]
        ),
        lambda claim: f"已开始审核 {claim.number}",
    )


def _approved_message(claim: Claim) -> str:
    if claim.status == ClaimStatus.SECOND_REVIEW:
        amount = format_fen(claim.benefit_fen)
        return f"初审通过：补助 {amount} 元超过复核金额，已提交市（州）总工会复核"
    if claim.status == ClaimStatus.APPROVED:
        return f"已核准补助 {format_fen(claim.benefit_fen)} 元，待支付给职工"
    return f"申诉成立，但重新计算后本次不予给付：{plain_reason(claim)}"


@require_POST
@staff_required(Perm.CLAIM_REVIEW)
def approve(request: HttpRequest, claim_id: int) -> HttpResponse:
    user = staff_user(request)
    claim = access_claim(user, claim_id, Perm.CLAIM_REVIEW)
    lump = needs_lump_confirm(claim)
    return _act(
        request,
        claim_id,
        Perm.CLAIM_REVIEW,
        "approve_form",
        ApproveForm(request.POST, auto_id="approve_%s", lump_sum=lump),
        lambda user, claim, data: review.approve(
            acting_user=user,
            claim=claim,
            note=data["note"],
            disease=data.get("disease"),
            severity=data.get("severity") or None,
        ),
        _approved_message,
    )


@require_POST
@staff_required(Perm.CLAIM_REVIEW)
def second_approve(request: HttpRequest, claim_id: int) -> HttpResponse:
    return _act(
        request,
        claim_id,
        Perm.CLAIM_REVIEW,
        "second_form",
        NoteForm(request.POST, auto_id="second_%s"),
        lambda user, claim, data: review.second_approve(
            acting_user=user, claim=claim, note=data["note"]
        ),
        lambda claim: f"复核通过，已核准补助 {format_fen(claim.benefit_fen)} 元",
    )


@require_POST
@staff_required(Perm.CLAIM_REVIEW)
def send_back(request: HttpRequest, claim_id: int) -> HttpResponse:
    return _act(
        request,
        claim_id,
        Perm.CLAIM_REVIEW,
        "send_back_form",
        SendBackForm(request.POST, auto_id="back_%s"),
        lambda user, claim, data: review.send_back(
            acting_user=user, claim=claim, note=data["note"]
        ),
        lambda claim: "已退回初审人重新审核",
    )


@require_POST
@staff_required(Perm.CLAIM_REVIEW)
def reject(request: HttpRequest, claim_id: int) -> HttpResponse:
    return _act(
        request,
        claim_id,
        Perm.CLAIM_REVIEW,
        "reject_form",
        RejectForm(request.POST, auto_id="reject_%s"),
        lambda user, claim, data: review.reject(
            acting_user=user, claim=claim, code=data["code"], note=data["note"]
        ),
        lambda claim: f"已作不予给付处理：{review.RejectionCode(claim.rejection_code).label}",
    )


@require_POST
@staff_required(Perm.CLAIM_FILE)
def appeal(request: HttpRequest, claim_id: int) -> HttpResponse:
    return _act(
        request,
        claim_id,
        Perm.CLAIM_FILE,
        "appeal_form",
        AppealForm(request.POST, auto_id="appeal_%s"),
        lambda user, claim, data: review.appeal(
            acting_user=user, claim=claim, reason=data["reason"]
        ),
        lambda claim: "已登记申诉，申请重新进入审核队列",
    )


@staff_required(Perm.CLAIM_REVIEW)
def diagnoses(request: HttpRequest, claim_id: int) -> HttpResponse:
    """GET: the reason form (``?cancel=1``: hidden again); POST: the diagnosis codes, audited."""
    user = staff_user(request)
    claim = access_claim(user, claim_id, Perm.CLAIM_REVIEW)
    htmx = bool(getattr(request, "htmx", False))
    context: dict[str, Any] = {"claim": claim, "can_see_diagnoses": True}
    if request.method == "GET" and request.GET.get("cancel"):
        return _no_store(render(request, "claims/review/_diagnoses.html", context))
    form = RevealForm(request.POST or None, auto_id="diag_%s")
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            codes = review.reveal_diagnoses(
                acting_user=user, claim=claim, reason=form.cleaned_data["reason"]
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
            status = 422
        else:
            context["codes"] = codes
            template = "claims/review/_diagnoses.html" if htmx else "claims/review/diagnoses.html"
            return _no_store(render(request, template, context))
    context["reveal_form"] = form
    template = "claims/review/_diagnoses_form.html" if htmx else "claims/review/diagnoses.html"
    return _no_store(render(request, template, context, status=status))


# --- the review policy ---------------------------------------------------------------------------
@staff_required(Perm.CLAIM_POLICY)
def policy(request: HttpRequest) -> HttpResponse:
    """The review policy of the user's organisation: its own, else the nearest ancestor's, else
    the defaults — shown, and saved as the organisation's own."""
    user = staff_user(request)
    organisation = user.organisation
    if organisation is None:
        return render(request, "claims/review/policy.html", {"organisation": None})
    effective = policy_for(organisation)
    own = (
        ReviewPolicy.objects.filter(organisation=organisation).select_related("updated_by").first()
    )
    source = _policy_source(organisation, own)
    form = PolicyForm(request.POST or None, policy=effective)
    status = 200
    if request.method == "POST":
        limits = form.limits() if form.is_valid() else None
        if limits is not None:
            try:
                review.update_policy(acting_user=user, organisation=organisation, **limits)
            except InvalidInput as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, "审核规则已保存，即时生效")
                return redirect("claims:policy")
        status = 422
    return render(
        request,
        "claims/review/policy.html",
        {
            "organisation": organisation,
            "form": form,
            "own": own,
            "source": source,
            "effective": effective,
        },
        status=status,
    )


def _policy_source(organisation: Union, own: ReviewPolicy | None) -> str:
    if own is not None:
        return "本级规则"
    parts = [p for p in organisation.path.split("/") if p]
    prefixes = ["/".join(parts[: i + 1]) + "/" for i in range(len(parts) - 1)]
    inherited = (
        ReviewPolicy.objects.filter(organisation__path__in=prefixes)
        .select_related("organisation")
        .order_by("-organisation__depth")
        .first()
    )
    if inherited is not None:
        return f"沿用上级规则（{inherited.organisation.name}）"
    return "系统默认规则"


# --- a member's claims -----------------------------------------------------------------------
@staff_required(Perm.CLAIM_VIEW)
def member_history(request: HttpRequest, member_id: int) -> HttpResponse:
    """Every claim of a member (and of their family members), newest first: status, amount and
    why, in plain Chinese."""
    user = staff_user(request)
    member = access_member(user, member_id, Perm.CLAIM_VIEW)
    qs = (
        selectors.claims_for(user)
        .filter(member=member)
        .defer("diagnoses_enc", *_MEMBER_SECRETS)
        .select_related("family_member")
    )
    page = keyset_page(
        qs,
        after=int_param(request, "after"),
        before=int_param(request, "before"),
        size=PAGE_SIZE,
    )
    rows = [
        (
            c,
            STATUS_STYLES.get(c.status, ""),
            plain_reason(c),
            (c.explanation or {}).get("text", ""),
        )
        for c in page.rows
    ]
    return _no_store(
        render(
            request,
            "claims/review/member_history.html",
            {
                "member": member,
                "rows": rows,
                "prev_url": f"?before={page.prev_cursor}" if page.prev_cursor else None,
                "next_url": f"?after={page.next_cursor}" if page.next_cursor else None,
                "member_url": reverse("members:detail", args=[member.pk])
                if user.has_perm_code(Perm.MEMBER_VIEW)
                else None,
            },
        )
    )


def pending_review_count(user: User) -> int:
    """The dashboard's 「待审核理赔」: claims waiting for this reviewer's subtree."""
    statuses = [*review.FIRST_REVIEW_STATUSES]
    if review.is_second_approver_org(user):
        statuses.append(ClaimStatus.SECOND_REVIEW)
    return selectors.claims_for(user).filter(status__in=statuses).count()
