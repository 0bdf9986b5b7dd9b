"""Staff pages for members (参保职工): list and search, detail with masked personal data, the
audited 「查看明文」 action, hardship records, family members, consents, create and edit.

Personal data is shown masked everywhere (S11); a plain value is shown once, to a role allowed by
``UNMASKABLE_FIELDS``, after a stated reason, and audited (S8). A search by ID number never puts the
plain number in a URL or a page: the form posts, and the list is addressed by the blind index.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from huzhu.core.errors import InvalidInput
from huzhu.members.access import access_member
from huzhu.members.forms import ConsentForm, FamilyForm, HardshipForm, MemberForm, RevealForm
from huzhu.members.models import CURRENT_NOTICE_VERSION, EmploymentType, Member
from huzhu.members.selectors import (
    MemberFilter,
    attach_flags,
    looks_like_id_number,
    page_members,
    search_members,
)
from huzhu.members.services import (
    FIELD_LABELS,
    REVEALABLE,
    add_family_member,
    create_member,
    current_hardship,
    grant_consent,
    id_number_index,
    record_hardship,
    reveal_member_field,
    update_member,
    withdraw_consent,
)
from huzhu.orgs.access import access_union, access_unit
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.roles import UNMASKABLE_FIELDS, Perm
from huzhu.orgs.selectors import units_for
from huzhu.orgs.views import int_param
from huzhu.web.auth import staff_required, staff_user

UNIT_FILTER_LIMIT = 200
_INDEX_RE = re.compile(r"^[0-9a-f]{32}$")
_FILTER_KEYS = ("q", "idx", "unit", "union", "employment_type", "hardship")


# --- list --------------------------------------------------------------------------------------
def _search_redirect(params: dict[str, str]) -> HttpResponse:
    """Turn a search into list parameters: an ID number becomes its blind index."""
    clean = {k: v.strip() for k, v in params.items() if k in _FILTER_KEYS and v.strip()}
    q = clean.pop("q", "")
    clean.pop("idx", None)
    if q:
        if looks_like_id_number(q):
            clean["idx"] = id_number_index(q)
        else:
            clean["q"] = q[:50]
    return redirect(reverse("members:list") + ("?" + urlencode(clean) if clean else ""))


@staff_required(Perm.MEMBER_VIEW)
def member_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _search_redirect({k: str(request.POST.get(k, "")) for k in _FILTER_KEYS})
    q = request.GET.get("q", "").strip()
    if q and looks_like_id_number(q):
        return _search_redirect({k: str(request.GET.get(k, "")) for k in _FILTER_KEYS})
    user = staff_user(request)
    today = timezone.localdate()
    employment_type = request.GET.get("employment_type", "")
    if employment_type not in EmploymentType.values:
        employment_type = ""
    hardship = {"1": True, "0": False}.get(request.GET.get("hardship", ""))
    unit_id = int_param(request, "unit")
    flt = MemberFilter(
        q=q[:50], unit_id=unit_id, employment_type=employment_type, hardship=hardship
    )
    qs = search_members(user, flt, today=today)
    idx = request.GET.get("idx", "")
    if idx:
        qs = qs.filter(id_number_index=idx) if _INDEX_RE.match(idx) else qs.none()
    union = None
    union_id = int_param(request, "union")
    if union_id is not None:
        union = access_union(user, union_id)
        qs = qs.filter(subtree_q(union.path, "union_path"))
    unit = None
    if unit_id is not None:
        unit = units_for(user).filter(pk=unit_id).first()
    page = page_members(
        qs,
        after=int_param(request, "after"),
        before=int_param(request, "before"),
        size=settings.HUZHU_MEMBER_PAGE_SIZE,
    )
    attach_flags(page.rows, today=today)
    unit_options = list(
        units_for(user).order_by("name", "pk").values_list("pk", "name")[: UNIT_FILTER_LIMIT + 1]
    )
    base = {k: request.GET[k] for k in _FILTER_KEYS if request.GET.get(k)}

    def page_url(key: str, cursor: int | None) -> str | None:
        return None if cursor is None else "?" + urlencode({**base, key: cursor})

    return render(
        request,
        "members/list.html",
        {
            "page": page,
            "q": q,
            "by_id_number": bool(idx),
            "employment_type": employment_type,
            "employment_types": EmploymentType.choices,
            "hardship": request.GET.get("hardship", ""),
            "unit": unit,
            "unit_id": unit_id,
            "union": union,
            "unit_options": unit_options if len(unit_options) <= UNIT_FILTER_LIMIT else None,
            "filtered": bool(base),
            "prev_url": page_url("before", page.prev_cursor),
            "next_url": page_url("after", page.next_cursor),
            "can_edit": user.has_perm_code(Perm.MEMBER_EDIT),
        },
    )


# --- detail ------------------------------------------------------------------------------------
def revealable_fields(user: User, member: Member) -> set[str]:
    """The fields this user may see in plain text for this member (S7 field matrix)."""
    if not user.has_perm_code(Perm.MEMBER_UNMASK):
        return set()
    allowed: set[str] = set()
    for role in user.role_codes():
        allowed |= UNMASKABLE_FIELDS.get(role, frozenset())
    present = {
        "id_number": bool(member.id_number_masked),
        "phone": bool(member.phone_masked),
        "bank_account": bool(member.bank_account_masked),
    }
    return {f for f in allowed if present.get(f)}


def _section_context(user: User, member: Member) -> dict[str, Any]:
    consents = list(member.consents.select_related("recorded_by").order_by("-granted_at"))
    return {
        "member": member,
        "can_edit": user.has_perm_code(Perm.MEMBER_EDIT),
        "hardship_records": list(
            member.hardship_records.select_related("recorded_by").order_by("-valid_from", "-pk")
        ),
        "family": list(member.family.defer("id_number_enc").order_by("pk")),
        "consents": consents,
        "active_consent": next((c for c in consents if c.active), None),
        "hardship_now": current_hardship(member, timezone.localdate()),
        "today": timezone.localdate(),
        "notice_version": CURRENT_NOTICE_VERSION,
    }


def _detail(
    request: HttpRequest, user: User, member: Member, status: int = 200, **forms: Any
) -> HttpResponse:
    context = _section_context(user, member)
    revealable = revealable_fields(user, member)
    context.update(
        {
            "pii_rows": [
                (f, FIELD_LABELS[f], getattr(member, f"{f}_masked"), f in revealable)
                for f in REVEALABLE
            ],
            "hardship_form": forms.get("hardship_form") or HardshipForm(),
            "family_form": forms.get("family_form") or FamilyForm(),
            "consent_form": forms.get("consent_form") or ConsentForm(),
        }
    )
    return render(request, "members/detail.html", context, status=status)


@staff_required(Perm.MEMBER_VIEW)
def member_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    return _detail(request, user, access_member(user, pk))


def _section(
    request: HttpRequest,
    user: User,
    member: Member,
    template: str,
    form_name: str,
    form: Any,
    note: str,
    anchor: str,
) -> HttpResponse:
    """The answer to a section form (``note``: what was saved, empty when the form has errors):
    the section alone for htmx, else the whole page (redirect after a successful post)."""
    status = 200 if note else 422
    if getattr(request, "htmx", False):
        context = _section_context(user, member)
        context[form_name] = form
        context["note"] = note
        return render(request, template, context, status=status)
    if note:
        messages.success(request, note)
        return redirect(reverse("members:detail", args=[member.pk]) + anchor)
    return _detail(request, user, member, status=status, **{form_name: form})


@require_POST
@staff_required(Perm.MEMBER_EDIT)
def hardship_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    member = access_member(user, pk, Perm.MEMBER_EDIT)
    form = HardshipForm(request.POST)
    note = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            record_hardship(
                acting_user=user,
                member=member,
                source=data["source"],
                valid_from=data["valid_from"],
                valid_to=data["valid_to"],
                evidence=data["evidence"],
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            note = "已登记困难职工认定"
            form = HardshipForm()
    return _section(
        request, user, member, "members/_hardship.html", "hardship_form", form, note, "#hardship"
    )


@require_POST
@staff_required(Perm.MEMBER_EDIT)
def family_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    member = access_member(user, pk, Perm.MEMBER_EDIT)
    form = FamilyForm(request.POST)
    note = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            add_family_member(
                acting_user=user,
                member=member,
                name=data["name"],
                id_number=data["id_number"],
                relation=data["relation"],
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            note = "已添加家庭成员"
            form = FamilyForm()
    return _section(
        request, user, member, "members/_family.html", "family_form", form, note, "#family"
    )


@require_POST
@staff_required(Perm.MEMBER_EDIT)
def consent_grant(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    member = access_member(user, pk, Perm.MEMBER_EDIT)
    form = ConsentForm(request.POST)
    note = ""
    if form.is_valid():
        grant_consent(acting_user=user, member=member, channel=form.cleaned_data["channel"])
        note = "已登记医保数据授权"
        form = ConsentForm()
    return _section(
        request, user, member, "members/_consents.html", "consent_form", form, note, "#consents"
    )


@require_POST
@staff_required(Perm.MEMBER_EDIT)
def consent_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    member = access_member(user, pk, Perm.MEMBER_EDIT)
    withdrawn = withdraw_consent(acting_user=user, member=member)
    note = "已撤回医保数据授权" if withdrawn else "该职工没有有效的授权，无需撤回"
    return _section(
        request,
        user,
        member,
        "members/_consents.html",
        "consent_form",
        ConsentForm(),
        note,
        "#consents",
    )


# --- 查看明文 ------------------------------------------------------------------------------------
@staff_required(Perm.MEMBER_UNMASK)
def reveal(request: HttpRequest, pk: int, field: str) -> HttpResponse:
    """GET: the reason form (``?cancel=1``: the masked value again); POST: the plain value, once.

    A field the role may not see in plain text does not exist for it (404)."""
    user = staff_user(request)
    member = access_member(user, pk)
    if field not in revealable_fields(user, member):
        raise Http404("无此字段")
    htmx = bool(getattr(request, "htmx", False))
    context: dict[str, Any] = {
        "member": member,
        "field": field,
        "label": FIELD_LABELS[field],
        "masked": getattr(member, f"{field}_masked"),
        "can_reveal": True,
    }
    if request.method == "GET" and request.GET.get("cancel"):
        return render(request, "members/_pii.html", context)
    form = RevealForm(request.POST or None, auto_id=f"id_{field}_%s")
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            value = reveal_member_field(
                acting_user=user, member=member, field=field, reason=form.cleaned_data["reason"]
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
            status = 422
        else:
            context["plain"] = value
            template = "members/_pii_plain.html" if htmx else "members/reveal.html"
            response = render(request, template, context)
            response.headers["Cache-Control"] = "no-store"
            # Marks the one response that shows a plain value on purpose (audited above); the
            # S9 test guard checks every other response for plain personal data.
            response.headers["X-Huzhu-Reveal"] = "1"
            return response
    context["form"] = form
    template = "members/_reveal_form.html" if htmx else "members/reveal.html"
    return render(request, template, context, status=status)


# --- create and edit ---------------------------------------------------------------------------
@staff_required(Perm.MEMBER_EDIT)
def member_create(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    unit_id = int_param(request, "unit")
    union_id = int_param(request, "union")
    preset_unit = access_unit(user, unit_id) if unit_id is not None else None
    preset_union = access_union(user, union_id) if union_id is not None else None
    form = MemberForm(request.POST or None, user=user, union=preset_union, unit=preset_unit)
    if request.method == "POST" and form.is_valid():
        try:
            member = create_member(
                acting_user=user, union=form.cleaned_data["union_obj"], data=form.to_input()
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"已新增职工：{member.name}")
            return redirect("members:detail", pk=member.pk)
    status = 422 if form.errors else 200
    return render(request, "members/form.html", {"form": form, "member": None}, status=status)


@staff_required(Perm.MEMBER_EDIT)
def member_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    member = access_member(user, pk, Perm.MEMBER_EDIT)
    form = MemberForm(request.POST or None, user=user, member=member)
    if request.method == "POST" and form.is_valid():
        try:
            update_member(acting_user=user, member=member, data=form.to_input())
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "职工信息已保存")
            return redirect("members:detail", pk=member.pk)
    status = 422 if form.errors else 200
    return render(request, "members/form.html", {"form": form, "member": member}, status=status)


@staff_required(Perm.MEMBER_EDIT)
def unit_field(request: HttpRequest) -> HttpResponse:
    """htmx: the unit field of the member form for the chosen union."""
    user = staff_user(request)
    form = MemberForm(request.GET, user=user)
    return render(request, "web/_field.html", {"field": form["unit"]})
