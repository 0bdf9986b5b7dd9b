"""Settlement partner screens (S14; ``partner.manage``, the system administrator): list, create
(the key is shown once), detail, edit scopes and IP allow-list, rotate the key (the new key is
shown once), deactivate and activate.

A key is never stored in plain text and never shown again: the page that shows it is the answer
to the POST that made it, marked ``Cache-Control: no-store`` so that no browser cache or "back"
keeps it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from huzhu.claims import partners as services
from huzhu.claims.access import access_partner
from huzhu.claims.models import (
    Partner,
    PartnerScope,
    Settlement,
    SettlementStatus,
    SignatureMethod,
)
from huzhu.claims.selectors import partners_for
from huzhu.core.errors import InvalidInput
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import unions_for
from huzhu.web.auth import staff_required, staff_user
from huzhu.web.forms import ScopedUnionMixin, StaffForm

LIST_LIMIT = 500
_CHECKBOXES = {"class": "form-check-input"}


class _PartnerFields(StaffForm):
    name = forms.CharField(
        label="合作方名称",
        required=False,
        max_length=200,
        help_text="如“长沙市医疗保障事务中心”或医院信息系统的名称",
    )
    scopes = forms.MultipleChoiceField(
        label="权限范围",
        required=False,
        choices=PartnerScope.choices,
        widget=forms.CheckboxSelectMultiple(attrs=_CHECKBOXES),
    )
    ip_allowlist = forms.CharField(
        label="IP 白名单",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="每行一个地址或网段（如 10.1.2.3 或 10.1.2.0/24）；留空表示不限来源地址",
    )
    sm2_public_key = forms.CharField(
        label="SM2 公钥",
        required=False,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
        help_text="仅 SM2 签名方式填写：04 开头的 130 位十六进制（未压缩点）",
    )
    service_field_map = {"organisation": "union"}


class PartnerCreateForm(_PartnerFields, ScopedUnionMixin):
    method = forms.ChoiceField(
        label="签名方式",
        choices=SignatureMethod.choices,
        initial=SignatureMethod.HMAC,
        widget=forms.RadioSelect(attrs=_CHECKBOXES),
        help_text="HMAC-SHA256：平台生成密钥，仅显示一次；SM3withSM2：合作方提供其 SM2 公钥",
    )
    field_order = ["name", "union", "union_code", "method", "scopes", "ip_allowlist"]

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_union_field(unions_for(user), label="所属工会（服务范围）")
        self.service_field_map = {**self.service_field_map, "organisation": self.union_field_name}
        if not self.is_bound:
            self.initial.setdefault("scopes", [PartnerScope.SETTLE, PartnerScope.CANCEL])
        self.order_fields(self.field_order)


class PartnerEditForm(_PartnerFields):
    pass


def _no_store(response: HttpResponse) -> HttpResponse:
    # The page shows a key once: no cache, no "back" copy (S14).
    response.headers["Cache-Control"] = "no-store"
    return response


def _lines(text: str) -> list[str]:
    return [line for line in text.split() if line]


@staff_required(Perm.PARTNER_MANAGE)
def partner_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    rows: QuerySet[Partner] = (
        partners_for(user)
        .select_related("organisation")
        .order_by("organisation_path", "partner_id")[: LIST_LIMIT + 1]
    )
    found = list(rows)
    return render(
        request,
        "claims/partners/list.html",
        {"partners": found[:LIST_LIMIT], "more": len(found) > LIST_LIMIT},
    )


@staff_required(Perm.PARTNER_MANAGE)
def partner_create(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    form = PartnerCreateForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            partner, key = services.create_partner(
                acting_user=user,
                name=data.get("name") or "",
                organisation=data["union_obj"],
                method=data.get("method") or SignatureMethod.HMAC,
                scopes=data.get("scopes") or [],
                ip_allowlist=data.get("ip_allowlist") or "",
                sm2_public_key=data.get("sm2_public_key") or None,
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            return _no_store(
                render(
                    request,
                    "claims/partners/key.html",
                    {"partner": partner, "key": key, "created": True},
                )
            )
    status = 422 if request.method == "POST" else 200
    return render(
        request, "claims/partners/form.html", {"form": form, "partner": None}, status=status
    )


def _detail_context(partner: Partner) -> dict[str, Any]:
    counts = dict(
        Settlement.objects.filter(partner=partner)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    last = Settlement.objects.filter(partner=partner).aggregate(last=Max("received_at"))["last"]
    return {
        "partner": partner,
        "scope_labels": [label for value, label in PartnerScope.choices if value in partner.scopes],
        "ip_lines": _lines(partner.ip_allowlist),
        "status_counts": [
            (label, counts.get(value, 0)) for value, label in SettlementStatus.choices
        ],
        "total": sum(counts.values()),
        "last_activity": last,
    }


@staff_required(Perm.PARTNER_MANAGE)
def partner_detail(request: HttpRequest, pk: int) -> HttpResponse:
    partner = access_partner(staff_user(request), pk)
    return render(request, "claims/partners/detail.html", _detail_context(partner))


@staff_required(Perm.PARTNER_MANAGE)
def partner_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    partner = access_partner(user, pk)
    initial = {
        "name": partner.name,
        "scopes": list(partner.scopes),
        "ip_allowlist": partner.ip_allowlist,
        "sm2_public_key": partner.sm2_public_key,
    }
    form = PartnerEditForm(request.POST or None, initial=initial)
    if partner.signature_method != SignatureMethod.SM2:
        del form.fields["sm2_public_key"]
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.update_partner(
                acting_user=user,
                partner=partner,
                name=data.get("name") or "",
                scopes=data.get("scopes") or [],
                ip_allowlist=data.get("ip_allowlist") or "",
                sm2_public_key=(
                    data.get("sm2_public_key") or ""
                    if partner.signature_method == SignatureMethod.SM2
                    else None
                ),
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"已保存合作方 {partner.partner_id} 的设置")
            return redirect("partners:detail", pk=partner.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request, "claims/partners/form.html", {"form": form, "partner": partner}, status=status
    )


@require_POST
@staff_required(Perm.PARTNER_MANAGE)
def partner_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    partner = access_partner(user, pk)
    try:
        key = services.rotate_key(acting_user=user, partner=partner)
    except InvalidInput as exc:
        for error in exc.errors:
            messages.error(request, error.message)
        return redirect("partners:detail", pk=partner.pk)
    return _no_store(
        render(
            request, "claims/partners/key.html", {"partner": partner, "key": key, "created": False}
        )
    )


@require_POST
@staff_required(Perm.PARTNER_MANAGE)
def partner_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    partner = access_partner(user, pk)
    services.deactivate(acting_user=user, partner=partner)
    messages.success(request, f"已停用合作方 {partner.partner_id}：其请求此后一律被拒绝")
    return redirect("partners:detail", pk=partner.pk)


@require_POST
@staff_required(Perm.PARTNER_MANAGE)
def partner_activate(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    partner = access_partner(user, pk)
    services.activate(acting_user=user, partner=partner)
    messages.success(request, f"已启用合作方 {partner.partner_id}")
    return redirect("partners:detail", pk=partner.pk)
