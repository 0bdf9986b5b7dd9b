"""Plan screens (Chinese): list, readable view, upload with a validation report, download,
comparison, new version (copy), draft correction, activation and retirement.

Thin: each view checks access (``staff_required`` + ``access_plan_version``), calls one service or
selector, and renders. Activation and retirement are POSTs behind a confirmation page; the buttons
are shown only to those who may use them.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from huzhu.core.errors import ConflictError, FieldError, InvalidInput
from huzhu.orgs.models import Union
from huzhu.orgs.roles import Perm
from huzhu.plans import services
from huzhu.plans.access import access_plan_version, can_copy, can_import, can_manage
from huzhu.plans.forms import CompareForm, PlanTextForm, PlanUploadForm
from huzhu.plans.loader import plan_for, plan_with_references
from huzhu.plans.models import PlanVersion
from huzhu.plans.presentation import compare, describe, path_label
from huzhu.plans.selectors import active_with_same_start, list_plans, plans_for
from huzhu.web.auth import staff_required, staff_user


def _error_rows(errors: list[FieldError]) -> list[dict[str, str]]:
    return [
        {"path": e.field or "（整个文件）", "label": path_label(e.field), "message": e.message}
        for e in errors
    ]


def _region_names(codes: set[str]) -> dict[str, str]:
    """The union that runs each pooling area (湖南省总工会 for 430000), for display."""
    names: dict[str, str] = {}
    rows = Union.objects.filter(region_code__in=codes, kind__in=["provincial", "city"]).values_list(
        "region_code", "name"
    )
    for code, name in rows:
        names.setdefault(code, name)
    return names


@require_GET
@staff_required(Perm.PLAN_VIEW)
def plan_list(request: HttpRequest) -> HttpResponse:
    actor = staff_user(request)
    versions = list(list_plans(actor))
    names = _region_names({v.region for v in versions})
    choices = [(v.pk, f"{v.code}（{v.get_status_display()}）") for v in versions]
    context = {
        "rows": [{"version": v, "region_name": names.get(v.region, "")} for v in versions],
        "can_import": can_import(actor),
        "compare_form": CompareForm(choices=choices),
    }
    return render(request, "plans/list.html", context)


@require_GET
@staff_required(Perm.PLAN_VIEW)
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    actor = staff_user(request)
    version = access_plan_version(actor, plan_id)
    plan = plan_with_references(version)
    context = {
        "version": version,
        "view": describe(plan),
        "region_name": _region_names({version.region}).get(version.region, ""),
        "can_manage": can_manage(actor, version),
        "can_copy": can_copy(actor, version),
        "copies": list(plans_for(actor).filter(previous=version).order_by("starts_on", "code")),
    }
    return render(request, "plans/detail.html", context)


@require_GET
@staff_required(Perm.PLAN_VIEW)
def plan_download(request: HttpRequest, plan_id: int) -> HttpResponse:
    version = access_plan_version(staff_user(request), plan_id)
    response = HttpResponse(version.source_yaml, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{version.code}.yaml"'
    return response


@require_http_methods(["GET", "POST"])
@staff_required(Perm.PLAN_IMPORT)
def plan_upload(request: HttpRequest) -> HttpResponse:
    """Upload: 「校验」 reports without storing; 「导入」 stores a valid file as a draft."""
    actor = staff_user(request)
    context: dict[str, Any] = {"checked": False, "errors": [], "valid_plan": None}
    status = 200
    if request.method == "POST":
        form = PlanUploadForm(request.POST, request.FILES)
        if form.is_valid():
            yaml_text = form.cleaned_data["yaml_text"]
            filename = form.cleaned_data["filename"]
            context["checked"] = True
            context["filename"] = filename
            context["yaml_text"] = yaml_text
            try:
                if request.POST.get("action") == "import":
                    version = services.import_plan(
                        acting_user=actor, yaml_text=yaml_text, filename=filename
                    )
                    messages.success(
                        request,
                        f"方案 {version.code} 已导入为草稿（参数哈希 {version.hash_prefix}…）",
                    )
                    return redirect("plans:detail", plan_id=version.pk)
                plan = services.validate_plan_text(yaml_text)
                context["valid_plan"] = describe(plan)
            except InvalidInput as exc:
                context["errors"] = _error_rows(exc.errors)
                status = 422
        else:
            status = 422
    else:
        form = PlanUploadForm()
    context["form"] = form
    return render(request, "plans/upload.html", context, status=status)


@require_GET
@staff_required(Perm.PLAN_VIEW)
def plan_compare(request: HttpRequest) -> HttpResponse:
    actor = staff_user(request)
    versions = list(list_plans(actor))
    choices = [(v.pk, f"{v.code}（{v.get_status_display()}）") for v in versions]
    form = CompareForm(request.GET or None, choices=choices)
    context: dict[str, Any] = {
        "form": form,
        "rows": None,
        "only_diff": request.GET.get("diff") == "1",
    }
    if form.is_valid():
        left = access_plan_version(actor, form.cleaned_data["a"])
        right = access_plan_version(actor, form.cleaned_data["b"])
        rows = compare(plan_for(left), plan_for(right))
        context.update(
            left=left,
            right=right,
            rows=rows,
            differences=sum(1 for row in rows if row.differs),
        )
    return render(request, "plans/compare.html", context)


def _confirm(
    request: HttpRequest,
    version: PlanVersion,
    *,
    action: str,
    errors: list[dict[str, str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    replaced = active_with_same_start(version) if action == "activate" else None
    context = {"version": version, "action": action, "replaced": replaced, "errors": errors or []}
    return render(request, "plans/confirm.html", context, status=status)


@require_http_methods(["GET", "POST"])
@staff_required(Perm.PLAN_ACTIVATE)
def plan_activate(request: HttpRequest, plan_id: int) -> HttpResponse:
    actor = staff_user(request)
    version = access_plan_version(actor, plan_id, Perm.PLAN_ACTIVATE)
    if request.method == "POST":
        try:
            services.activate_plan(acting_user=actor, plan_version=version)
        except InvalidInput as exc:
            return _confirm(
                request, version, action="activate", errors=_error_rows(exc.errors), status=422
            )
        except ConflictError as exc:
            rows = [{"path": "status", "label": "状态", "message": str(exc)}]
            return _confirm(request, version, action="activate", errors=rows, status=409)
        messages.success(request, f"方案 {version.code} 已启用")
        return redirect("plans:detail", plan_id=version.pk)
    return _confirm(request, version, action="activate")


@require_http_methods(["GET", "POST"])
@staff_required(Perm.PLAN_ACTIVATE)
def plan_retire(request: HttpRequest, plan_id: int) -> HttpResponse:
    actor = staff_user(request)
    version = access_plan_version(actor, plan_id, Perm.PLAN_ACTIVATE)
    if request.method == "POST":
        try:
            services.retire_plan(acting_user=actor, plan_version=version)
        except InvalidInput as exc:
            return _confirm(
                request, version, action="retire", errors=_error_rows(exc.errors), status=422
            )
        messages.success(request, f"方案 {version.code} 已停用")
        return redirect("plans:detail", plan_id=version.pk)
    return _confirm(request, version, action="retire")


@require_http_methods(["GET", "POST"])
@staff_required(Perm.PLAN_IMPORT)
def plan_copy(request: HttpRequest, plan_id: int) -> HttpResponse:
    """A new version: the source's text to edit (new code, an effective date in the year)."""
    actor = staff_user(request)
    source = access_plan_version(actor, plan_id, Perm.PLAN_IMPORT)
    errors: list[dict[str, str]] = []
    status = 200
    if request.method == "POST":
        form = PlanTextForm(request.POST)
        if form.is_valid():
            try:
                version = services.copy_plan_version(
                    acting_user=actor, source=source, yaml_text=form.cleaned_data["text"]
                )
            except InvalidInput as exc:
                errors = _error_rows(exc.errors)
                status = 422
            else:
                messages.success(request, f"新版本 {version.code} 已建立为草稿")
                return redirect("plans:detail", plan_id=version.pk)
        else:
            status = 422
    else:
        form = PlanTextForm(initial={"text": source.source_yaml})
    context = {"version": source, "form": form, "errors": errors, "mode": "copy"}
    return render(request, "plans/edit.html", context, status=status)


@require_http_methods(["GET", "POST"])
@staff_required(Perm.PLAN_IMPORT)
def plan_edit(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Correct a draft that was never active nor used (anything else is copied instead)."""
    actor = staff_user(request)
    version = access_plan_version(actor, plan_id, Perm.PLAN_IMPORT)
    if not version.is_editable:
        messages.error(request, "只有从未启用、从未使用的草稿可以修改；请复制为新版本")
        return redirect("plans:detail", plan_id=version.pk)
    errors: list[dict[str, str]] = []
    status = 200
    if request.method == "POST":
        form = PlanTextForm(request.POST)
        if form.is_valid():
            try:
                services.update_draft(
                    acting_user=actor, plan_version=version, yaml_text=form.cleaned_data["text"]
                )
            except InvalidInput as exc:
                errors = _error_rows(exc.errors)
                status = 422
            else:
                messages.success(request, f"草稿 {version.code} 已修改")
                return redirect("plans:detail", plan_id=version.pk)
        else:
            status = 422
    else:
        form = PlanTextForm(initial={"text": version.source_yaml})
    context = {"version": version, "form": form, "errors": errors, "mode": "edit"}
    return render(request, "plans/edit.html", context, status=status)
