"""Staff pages of group enrollment (Chinese): batches, roster upload with the row-by-row preview,
the error report, confirmation with a progress bar (htmx polls the job), coverage per member and per
unit, withdrawal, renewal. Thin: every write is one service call; every object comes through an
``access_*`` function (out of scope → 404, S5).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from huzhu.core.errors import InvalidInput
from huzhu.enrollment import selectors, services
from huzhu.enrollment.access import access_batch, access_enrollment
from huzhu.enrollment.forms import (
    ConfirmForm,
    LeftUnitForm,
    NewBatchForm,
    ReasonForm,
    RenewForm,
    UploadForm,
)
from huzhu.enrollment.jobs import batch_job, submit_confirmation, submit_renewal, submit_validation
from huzhu.enrollment.models import (
    BatchSource,
    BatchStatus,
    EnrollmentStatus,
    RowErrorKind,
)
from huzhu.enrollment.roster import (
    ReportError,
    RosterFileError,
    error_report,
    template_workbook,
)
from huzhu.jobs.access import access_job
from huzhu.members.access import access_member
from huzhu.orgs.access import access_union, access_unit
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import enrolling_unions_for
from huzhu.orgs.views import int_param
from huzhu.plans.loader import plan_for
from huzhu.web.auth import staff_required, staff_user

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UNION_CHOICES_LIMIT = 500
ERRORS_PER_PAGE = 100
ENROLLMENTS_PER_PAGE = 50


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # pages with personal data (S4)
    return response


def _years() -> list[int]:
    today = timezone.localdate()
    return [today.year, today.year + 1]


def _form_errors(request: HttpRequest, exc: InvalidInput) -> None:
    for error in exc.errors:
        messages.error(request, error.message)


# --- list and new ------------------------------------------------------------------------------
@staff_required(Perm.ENROLLMENT_VIEW)
def batch_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    year = int_param(request, "year")
    status = request.GET.get("status", "")
    if status not in BatchStatus.values:
        status = ""
    page = Paginator(selectors.list_batches(user, year=year, status=status), 30).get_page(
        request.GET.get("page")
    )
    return _no_store(
        render(
            request,
            "enrollment/list.html",
            {
                "page": page,
                "year": year,
                "status": status,
                "statuses": BatchStatus.choices,
                "years": _years(),
                "can_edit": user.has_perm_code(Perm.ENROLLMENT_EDIT),
            },
        )
    )


@staff_required(Perm.ENROLLMENT_EDIT)
def batch_new(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    unions = [
        (u.pk, f"{u.name}（{u.get_kind_display()}）")
        for u in enrolling_unions_for(user).order_by("path")[:UNION_CHOICES_LIMIT]
    ]
    form = NewBatchForm(request.POST or None, unions=unions, years=_years())
    if request.method == "POST" and form.is_valid():
        union = access_union(user, form.cleaned_data["union"])
        try:
            batch = services.create_batch(
                acting_user=user, union=union, plan_year=form.cleaned_data["plan_year"]
            )
        except InvalidInput as exc:
            for error in exc.errors:
                form.add_error(None, error.message)
        else:
            messages.success(request, "已建立参保批次，请上传花名册")
            return redirect("enrollment:batch", batch.pk)
    return render(request, "enrollment/new.html", {"form": form, "has_unions": bool(unions)})


@staff_required(Perm.ENROLLMENT_VIEW)
def template_download(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(template_workbook(), content_type=XLSX)
    response["Content-Disposition"] = (
        "attachment; filename=roster-template.xlsx; "
        "filename*=UTF-8''%E8%8A%B1%E5%90%8D%E5%86%8C%E6%A8%A1%E6%9D%BF.xlsx"
    )
    return response


# --- one batch ---------------------------------------------------------------------------------
def _batch_context(request: HttpRequest, user: User, batch_id: int) -> dict[str, Any]:
    batch = access_batch(user, batch_id)
    job = batch_job(batch)
    show_job = job is not None and (not job.finished or job.status == "failed")
    errors = selectors.batch_errors(batch)
    error_page = Paginator(errors, ERRORS_PER_PAGE).get_page(request.GET.get("errors"))
    enrollments = Paginator(selectors.batch_enrollments(batch), ENROLLMENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    can_edit = user.has_perm_code(Perm.ENROLLMENT_EDIT)
    plan = plan_for(batch.plan_version)
    resumable = batch.status == BatchStatus.CONFIRMING and (
        job is None or job.finished or job.stalled
    )
    return {
        "batch": batch,
        "job": job if show_job else None,
        "poll_url": reverse("enrollment:job_progress", args=[job.pk]) if job else "",
        "error_page": error_page,
        "enrollments": enrollments,
        "status_counts": selectors.status_counts(selectors.batch_enrollments(batch)),
        "can_edit": can_edit,
        "can_upload": can_edit and batch.is_open and batch.source == BatchSource.ROSTER,
        "can_confirm": can_edit
        and (
            (batch.status == BatchStatus.VALIDATED and batch.source == BatchSource.ROSTER)
            or (batch.status == BatchStatus.DRAFT and batch.source == BatchSource.RENEWAL)
        )
        and batch.valid_count > 0,
        "can_resume": can_edit and resumable,
        "can_cancel": can_edit
        and batch.status not in (BatchStatus.ACTIVE, BatchStatus.CANCELLED, BatchStatus.CONFIRMING),
        "has_family_product": plan.family_inpatient is not None,
        "upload_form": UploadForm(),
        "confirm_form": ConfirmForm(),
        "reason_form": ReasonForm(),
        "dropped_kind": RowErrorKind.DROPPED,
        "today": timezone.localdate(),
        "pending_status": EnrollmentStatus.PENDING,
        "active_status": EnrollmentStatus.ACTIVE,
    }


@staff_required(Perm.ENROLLMENT_VIEW)
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    context = _batch_context(request, staff_user(request), pk)
    return _no_store(render(request, "enrollment/detail.html", context))


@require_POST
@staff_required(Perm.ENROLLMENT_EDIT)
def batch_upload(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_batch(user, pk, Perm.ENROLLMENT_EDIT)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for error in form.errors.get("file", []):
            messages.error(request, str(error))
        return redirect("enrollment:batch", batch.pk)
    upload = form.cleaned_data["file"]
    try:
        outcome = services.attach_roster(
            acting_user=user, batch=batch, file_name=upload.name or "", content=upload.read()
        )
    except InvalidInput as exc:
        _form_errors(request, exc)
        return redirect("enrollment:batch", batch.pk)
    if outcome.duplicate:
        messages.info(
            request,
            f"该文件已在参保批次 #{outcome.batch.pk} 中上传过，未重复导入（同一文件只导入一次）",
        )
        return redirect("enrollment:batch", outcome.batch.pk)
    submit_validation(acting_user=user, batch=batch)
    batch.refresh_from_db()
    if batch.status == BatchStatus.VALIDATED:
        messages.success(request, "花名册已上传并完成逐行校验，结果见下方")
    else:
        messages.success(request, "花名册已上传，正在逐行校验（进度见下方）")
    return redirect("enrollment:batch", batch.pk)


@staff_required(Perm.ENROLLMENT_EDIT)
def batch_error_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The bad rows as uploaded, with 「错误原因」: the clerk's own file handed back (S11)."""
    user = staff_user(request)
    batch = access_batch(user, pk, Perm.ENROLLMENT_EDIT)
    errors = [
        ReportError(e.row_number or 0, e.column, e.message)
        for e in selectors.batch_errors(batch).filter(kind=RowErrorKind.ROW)
    ]
    try:
        roster = services.load_roster(batch)
    except (RosterFileError, InvalidInput):
        messages.error(request, "该批次没有可用的花名册文件")
        return redirect("enrollment:batch", batch.pk)
    content = error_report(roster, errors)
    response = HttpResponse(content, content_type=XLSX)
    response["Content-Disposition"] = f"attachment; filename=roster-errors-{batch.pk}.xlsx"
    response["X-Huzhu-Reveal"] = "1"  # the user's own uploaded rows, handed back
    return _no_store(response)


@require_POST
@staff_required(Perm.ENROLLMENT_EDIT)
def batch_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_batch(user, pk, Perm.ENROLLMENT_EDIT)
    form = ConfirmForm(request.POST)
    form.is_valid()
    try:
        submit_confirmation(
            acting_user=user,
            batch=batch,
            accept_invalid_rows=bool(form.cleaned_data.get("accept_invalid_rows")),
            include_family=bool(form.cleaned_data.get("include_family")),
        )
    except InvalidInput as exc:
        _form_errors(request, exc)
    else:
        messages.success(request, "已开始确认参保，完成后批次进入“待缴费”状态")
    return redirect("enrollment:batch", batch.pk)


@require_POST
@staff_required(Perm.ENROLLMENT_EDIT)
def batch_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_batch(user, pk, Perm.ENROLLMENT_EDIT)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.cancel_batch(acting_user=user, batch=batch, reason=reason)
    except InvalidInput as exc:
        _form_errors(request, exc)
    else:
        messages.success(request, "参保批次已作废")
    return redirect("enrollment:batch", batch.pk)


@require_POST
@staff_required(Perm.ENROLLMENT_EDIT)
def enrollment_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    enrollment = access_enrollment(user, pk, Perm.ENROLLMENT_EDIT)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.withdraw_enrollment(acting_user=user, enrollment=enrollment, reason=reason)
    except InvalidInput as exc:
        _form_errors(request, exc)
    else:
        messages.success(request, "已退出参保" + ("，待退费" if enrollment.refund_due else ""))
    if request.POST.get("next_member"):
        return redirect("enrollment:member", enrollment.member_id)
    return redirect("enrollment:batch", enrollment.batch_id)


# --- jobs --------------------------------------------------------------------------------------
@staff_required(Perm.ENROLLMENT_VIEW)
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    job = access_job(staff_user(request), pk)
    if job.finished and getattr(request, "htmx", False):
        return HttpResponseClientRefresh()  # the page shows the outcome
    return render(
        request,
        "jobs/_progress.html",
        {"job": job, "poll_url": reverse("enrollment:job_progress", args=[job.pk])},
    )


@staff_required(Perm.ENROLLMENT_VIEW)
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = access_job(staff_user(request), pk)
    return render(
        request,
        "enrollment/job.html",
        {"job": job, "poll_url": reverse("enrollment:job_progress", args=[job.pk])},
    )


# --- renewal -----------------------------------------------------------------------------------
@staff_required(Perm.ENROLLMENT_EDIT)
def renew(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    years = [y + 1 for y in _years()]
    form = RenewForm(request.POST or None, years=years)
    if request.method == "POST" and form.is_valid():
        year = form.cleaned_data["year"]
        _unions, _versions, problems = services.renewal_plans(acting_user=user, year=year)
        if problems:
            for problem in problems:
                form.add_error(None, problem)
        else:
            job = submit_renewal(acting_user=user, year=year)
            return redirect("enrollment:job", job.pk)
    return render(request, "enrollment/renew.html", {"form": form})


# --- coverage views ----------------------------------------------------------------------------
@staff_required(Perm.MEMBER_VIEW)
def member_coverage(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    member = access_member(user, pk)
    return _no_store(
        render(
            request,
            "enrollment/member.html",
            {
                "member": member,
                "enrollments": list(selectors.member_enrollments(member)),
                "today": timezone.localdate(),
                "can_edit": user.has_perm_code(Perm.ENROLLMENT_EDIT),
                "reason_form": ReasonForm(),
                "left_form": LeftUnitForm(),
            },
        )
    )


@require_POST
@staff_required(Perm.ENROLLMENT_EDIT)
def member_left(request: HttpRequest, pk: int) -> HttpResponse:
    """The member left the unit: the year's share stays active to Dec 31 (RULES.md §2)."""
    user = staff_user(request)
    member = access_member(user, pk)
    form = LeftUnitForm(request.POST)
    if not form.is_valid():
        messages.error(request, "请填写离开单位日期")
    else:
        count = services.member_left_unit(
            acting_user=user, member=member, left_on=form.cleaned_data["left_on"]
        )
        messages.success(
            request,
            f"已登记离开单位；本年度 {count} 条参保记录保障持续至12月31日，续保时不再纳入",
        )
    return redirect("enrollment:member", member.pk)


@staff_required(Perm.UNIT_VIEW)
def unit_coverage(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    unit = access_unit(user, pk)
    year = int_param(request, "year") or timezone.localdate().year
    rows = selectors.unit_enrollments(unit, year)
    page = Paginator(rows, 100).get_page(request.GET.get("page"))
    return _no_store(
        render(
            request,
            "enrollment/unit.html",
            {
                "unit": unit,
                "year": year,
                "years": sorted({*_years(), year, year - 1}),
                "page": page,
                "counts": selectors.status_counts(selectors.unit_enrollments(unit, year)),
                "today": timezone.localdate(),
            },
        )
    )
