"""Staff pages of the member portal: the activation letter and the correction requests.

The activation code is shown once, on the printable letter answered to the POST that issued it
(never stored in plain, never shown again). Correction requests are listed for the members of the
user's subtree; making the correction itself stays in the member's edit screen.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from huzhu.core.errors import InvalidInput
from huzhu.core.paging import keyset_page
from huzhu.members.access import access_member
from huzhu.orgs.roles import Perm
from huzhu.orgs.views import int_param
from huzhu.portal.access import access_correction
from huzhu.portal.forms import HandleCorrectionForm, RevealReasonForm
from huzhu.portal.models import CorrectionRequest, CorrectionStatus
from huzhu.portal.selectors import corrections_for
from huzhu.portal.services import (
    correction_revealable,
    handle_correction,
    issue_activation_code,
    reveal_correction_value,
)
from huzhu.web.auth import staff_required, staff_user

PAGE_SIZE = 30


@require_POST
@staff_required(Perm.MEMBER_EDIT)
def issue_activation(request: HttpRequest, member_id: int) -> HttpResponse:
    """「生成会员服务激活码」: a new one-time code, shown once on the printable letter."""
    user = staff_user(request)
    member = access_member(user, member_id, Perm.MEMBER_EDIT)
    try:
        issued = issue_activation_code(acting_user=user, member=member)
    except InvalidInput as exc:
        for error in exc.errors:
            messages.error(request, error.message)
        return redirect("members:detail", pk=member.pk)
    response = render(
        request,
        "portal/staff/activation_letter.html",
        {
            "member": member,
            "issued": issued,
            "portal_url": request.build_absolute_uri(reverse("portal:activate")),
            "issuer": user.organisation,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@staff_required(Perm.MEMBER_VIEW)
def correction_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    status = request.GET.get("status", CorrectionStatus.PENDING)
    if status not in (*CorrectionStatus.values, "all"):
        status = CorrectionStatus.PENDING
    qs = (
        corrections_for(user)
        .select_related("member", "member__union", "handled_by")
        .defer("member__id_number_enc", "member__phone_enc", "member__bank_account_enc")
    )
    if status != "all":
        qs = qs.filter(status=status)
    page = keyset_page(
        qs, after=int_param(request, "after"), before=int_param(request, "before"), size=PAGE_SIZE
    )
    keep = {"status": status}
    return render(
        request,
        "portal/staff/corrections.html",
        {
            "rows": page.rows,
            "status": status,
            "statuses": [*CorrectionStatus.choices, ("all", "全部")],
            "can_handle": user.has_perm_code(Perm.MEMBER_EDIT),
            "prev_url": "?" + urlencode({**keep, "before": page.prev_cursor})
            if page.prev_cursor is not None
            else None,
            "next_url": "?" + urlencode({**keep, "after": page.next_cursor})
            if page.next_cursor is not None
            else None,
        },
    )


def _detail(
    request: HttpRequest, correction: CorrectionRequest, status: int = 200, **extra: Any
) -> HttpResponse:
    user = staff_user(request)
    context = {
        "c": correction,
        "form": extra.pop("form", None) or HandleCorrectionForm(),
        "reveal_form": extra.pop("reveal_form", None) or RevealReasonForm(),
        "can_reveal": correction_revealable(user, correction),
        **extra,
    }
    return render(request, "portal/staff/correction_detail.html", context, status=status)


@staff_required(Perm.MEMBER_EDIT)
def correction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One request; POST marks it done or rejected with a note."""
    user = staff_user(request)
    correction = access_correction(user, pk, Perm.MEMBER_EDIT)
    if request.method != "POST":
        return _detail(request, correction)
    form = HandleCorrectionForm(request.POST)
    if form.is_valid():
        try:
            handle_correction(
                acting_user=user,
                correction=correction,
                status=form.cleaned_data["status"],
                note=form.cleaned_data["note"],
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, "已处理该更正申请")
            return redirect("portal:staff_correction", pk=correction.pk)
    return _detail(request, correction, status=422, form=form)


@require_POST
@staff_required(Perm.MEMBER_EDIT)
def correction_reveal(request: HttpRequest, pk: int) -> HttpResponse:
    """The requested phone/account in plain text, once, after a stated reason (audited)."""
    user = staff_user(request)
    correction = access_correction(user, pk, Perm.MEMBER_EDIT)
    form = RevealReasonForm(request.POST)
    if form.is_valid():
        try:
            value = reveal_correction_value(
                acting_user=user, correction=correction, reason=form.cleaned_data["reason"]
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            response = _detail(request, correction, plain=value)
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Huzhu-Reveal"] = "1"  # the one answer that shows it (audited)
            return response
    return _detail(request, correction, status=422, reveal_form=form)
