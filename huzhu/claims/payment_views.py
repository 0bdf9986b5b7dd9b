"""Benefit payment pages (finance, Chinese), mounted at ``/claims/payments/``: the batches of the
user's subtree (keyset pages), a new batch (members, or one hospital's one-stop clearing) with a
preview of what it takes and what it leaves out and why, a batch with its lines, the bank file
(POST: it changes the batch and is audited, with a stated reason; the answer holds full account
numbers and is marked ``X-Huzhu-Reveal``), the bank's results (file or typed in per line) and
cancellation.

Thin: parse, call one service, render; every batch comes through ``access_payment_batch`` (out of
scope → 404, S5).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from huzhu.claims import payments
from huzhu.claims.access import access_payment_batch
from huzhu.claims.models import (
    PaymentBatch,
    PaymentBatchKind,
    PaymentBatchStatus,
    PaymentLine,
    PaymentLineResult,
)
from huzhu.claims.selectors import payment_batches_for
from huzhu.core.errors import InvalidInput
from huzhu.core.money import format_fen
from huzhu.core.paging import keyset_page
from huzhu.orgs.models import ENROLLING_KINDS, Union, User
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import unions_for
from huzhu.web.auth import staff_required, staff_user

PAGE_SIZE = 30
LINES_PER_PAGE = 100
PREVIEW_ROWS = 200
MAX_MESSAGES = 30
REVEAL_HEADER = "X-Huzhu-Reveal"


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # pages with personal data (S4)
    return response


def _errors_to_messages(request: HttpRequest, exc: InvalidInput) -> None:
    for error in exc.errors[:MAX_MESSAGES]:
        messages.error(request, error.message)
    if len(exc.errors) > MAX_MESSAGES:
        messages.error(request, f"……共 {len(exc.errors)} 处错误，请改正后重新提交")


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def paying_unions(user: User) -> QuerySet[Union]:
    """The unions a batch can be made for: the user's own and the union federations (总工会)
    below it — enrolling unions are paid through the federation that pools them."""
    return (
        unions_for(user)
        .filter(Q(pk=user.organisation_id) | ~Q(kind__in=ENROLLING_KINDS))
        .order_by("path")
    )


# --- forms --------------------------------------------------------------------------------------
class UnionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{'　' * max(obj.depth - self.base_depth, 0)}{obj.name}"

    base_depth = 0


class BatchForm(forms.Form):
    kind = forms.ChoiceField(
        label="批次类型",
        choices=PaymentBatchKind.choices,
        initial=PaymentBatchKind.MEMBER,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )
    union = UnionChoice(
        label="工会（含下级）",
        queryset=Union.objects.none(),
        widget=forms.Select(attrs={"class": "form-select"}),
    )
    hospital_code = forms.CharField(
        label="医疗机构编码", required=False, max_length=40, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["union"]
        assert isinstance(field, UnionChoice)
        field.queryset = paying_unions(user)
        own = user.organisation
        field.base_depth = own.depth if own is not None else 0
        field.initial = user.organisation_id

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") != PaymentBatchKind.HOSPITAL:
            data["hospital_code"] = ""
        return data


class ExportForm(forms.Form):
    reason = forms.CharField(
        label="导出原因",
        min_length=4,
        max_length=200,
        help_text="文件含职工完整银行账号，导出记入审计日志",
        widget=forms.TextInput(
            attrs={"class": "form-control", "placeholder": "如：提交工商银行批量代发"}
        ),
    )
    encoding = forms.ChoiceField(
        label="文件编码",
        choices=list(payments.ENCODINGS.items()),
        widget=forms.Select(attrs={"class": "form-select"}),
    )


class UploadForm(forms.Form):
    file = forms.FileField(
        label="银行结果文件（CSV）",
        widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".csv,.txt"}),
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="作废原因",
        max_length=200,
        widget=forms.TextInput(attrs={"class": "form-control"}),
    )


# --- the list -----------------------------------------------------------------------------------
@staff_required(Perm.CLAIM_VIEW)
def batch_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    qs = payment_batches_for(user).select_related("union", "created_by")
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    keep: dict[str, Any] = {}
    if status in PaymentBatchStatus.values:
        qs = qs.filter(status=status)
        keep["status"] = status
    if kind in PaymentBatchKind.values:
        qs = qs.filter(kind=kind)
        keep["kind"] = kind
    union_id = _int_param(request, "union")
    if union_id is not None:
        union = unions_for(user).filter(pk=union_id).first()
        # A union outside the subtree filters to nothing (and is not named on the page).
        qs = qs.filter(union=union) if union is not None else qs.none()
        keep["union"] = union_id
    page = keyset_page(
        qs, after=_int_param(request, "after"), before=_int_param(request, "before"), size=PAGE_SIZE
    )
    return _no_store(
        render(
            request,
            "claims/payments/list.html",
            {
                "rows": page.rows,
                "status": status,
                "kind": kind,
                "statuses": PaymentBatchStatus.choices,
                "kinds": PaymentBatchKind.choices,
                "can_pay": user.has_perm_code(Perm.CLAIM_PAY),
                "prev_url": "?" + urlencode({**keep, "before": page.prev_cursor})
                if page.prev_cursor is not None
                else None,
                "next_url": "?" + urlencode({**keep, "after": page.next_cursor})
                if page.next_cursor is not None
                else None,
            },
        )
    )


# --- a new batch --------------------------------------------------------------------------------
@staff_required(Perm.CLAIM_PAY)
def batch_create(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    if request.method == "POST":
        form = BatchForm(request.POST, user=user)
        if form.is_valid():
            union = form.cleaned_data["union"]
            try:
                if form.cleaned_data["kind"] == PaymentBatchKind.HOSPITAL:
                    created = payments.create_hospital_batch(
                        acting_user=user,
                        union=union,
                        hospital_code=form.cleaned_data["hospital_code"],
                    )
                else:
                    created = payments.create_member_batch(acting_user=user, union=union)
            except InvalidInput as exc:
                _errors_to_messages(request, exc)
            else:
                batch = created.batch
                messages.success(
                    request,
                    f"已生成支付批次 {batch.number}：{batch.line_count} 笔，"
                    f"合计 {format_fen(batch.total_fen)} 元。请导出银行文件提交银行。",
                )
                for exclusion in created.excluded[:MAX_MESSAGES]:
                    messages.warning(
                        request,
                        f"未纳入 {exclusion.claim_number}（{exclusion.payee_name}，"
                        f"{format_fen(exclusion.amount_fen)} 元）：{exclusion.reason}",
                    )
                if len(created.excluded) > MAX_MESSAGES:
                    messages.warning(request, f"……共 {len(created.excluded)} 笔未纳入")
                return redirect("payments:detail", payment_batch_id=batch.pk)
    else:
        form = BatchForm(request.GET or None, user=user)
    preview = None
    hospitals: list[payments.HospitalOwed] = []
    if form.is_bound and form.is_valid():
        union = form.cleaned_data["union"]
        kind = form.cleaned_data["kind"]
        code = form.cleaned_data["hospital_code"]
        if kind == PaymentBatchKind.HOSPITAL:
            hospitals = payments.hospitals_owed(union)
        if kind == PaymentBatchKind.MEMBER or code:
            preview = payments.preview_batch(
                acting_user=user, union=union, kind=kind, hospital_code=code
            )
    return _no_store(
        render(
            request,
            "claims/payments/create.html",
            {
                "form": form,
                "preview": preview,
                "included": preview.included[:PREVIEW_ROWS] if preview else [],
                "excluded": preview.excluded[:PREVIEW_ROWS] if preview else [],
                "preview_rows": PREVIEW_ROWS,
                "hospitals": hospitals,
                "union_id": form.cleaned_data["union"].pk
                if form.is_bound and form.is_valid()
                else None,
            },
        )
    )


# --- one batch ----------------------------------------------------------------------------------
def _detail_context(request: HttpRequest, user: User, batch: PaymentBatch) -> dict[str, Any]:
    lines = Paginator(payments.batch_lines(batch), LINES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "line": line,
            "reference": payments.line_reference(batch, line),
            "account": line.claim.member.bank_account_masked
            if batch.kind == PaymentBatchKind.MEMBER
            else "",
            "bank": line.claim.member.bank_name if batch.kind == PaymentBatchKind.MEMBER else "",
        }
        for line in lines
    ]
    summary = payments.line_summary(batch)
    can_pay = user.has_perm_code(Perm.CLAIM_PAY)
    open_batch = batch.status in (PaymentBatchStatus.DRAFT, PaymentBatchStatus.EXPORTED)
    has_results = summary["succeeded_count"] + summary["failed_count"] > 0
    return {
        "batch": batch,
        "lines": lines,
        "rows": rows,
        "summary": summary,
        "hospital": batch.kind == PaymentBatchKind.HOSPITAL,
        "can_export": can_pay and open_batch and summary["pending_count"] > 0,
        "can_record": can_pay
        and batch.status == PaymentBatchStatus.EXPORTED
        and summary["pending_count"] > 0,
        "can_cancel": can_pay and open_batch and not has_results,
        "export_form": ExportForm(),
        "upload_form": UploadForm(),
        "cancel_form": CancelForm(),
        "columns": payments.BANK_FILE_COLUMNS,
        "result_columns": payments.RESULT_COLUMNS,
    }


@staff_required(Perm.CLAIM_VIEW)
def batch_detail(request: HttpRequest, payment_batch_id: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_payment_batch(user, payment_batch_id)
    return _no_store(
        render(request, "claims/payments/detail.html", _detail_context(request, user, batch))
    )


@require_POST
@staff_required(Perm.CLAIM_PAY)
def batch_export(request: HttpRequest, payment_batch_id: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_payment_batch(user, payment_batch_id, Perm.CLAIM_PAY)
    form = ExportForm(request.POST)
    if not form.is_valid():
        for name, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{form.fields[name].label}：{error}")
        return redirect("payments:detail", payment_batch_id=batch.pk)
    try:
        bank_file = payments.export_bank_file(
            acting_user=user,
            batch=batch,
            reason=form.cleaned_data["reason"],
            encoding=form.cleaned_data["encoding"],
        )
    except InvalidInput as exc:
        _errors_to_messages(request, exc)
        return redirect("payments:detail", payment_batch_id=batch.pk)
    response = HttpResponse(bank_file.content, content_type=bank_file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{bank_file.filename}"'
    # The transfer file holds the members' full account numbers: a necessary, audited export of
    # sensitive data for the bank (S11) — the one answer allowed to carry them.
    response[REVEAL_HEADER] = "1"
    return _no_store(response)


def _recorded(request: HttpRequest, done: payments.ResultsRecorded) -> None:
    if done.succeeded or done.failed:
        text = f"已登记银行结果：成功 {done.succeeded} 笔（{format_fen(done.paid_fen)} 元）"
        text += f"，失败 {done.failed} 笔"
        if done.entry is not None:
            text += f"，记账凭证 {done.entry.display_number}"
        messages.success(request, text + "。")
    if done.skipped:
        messages.info(request, f"{done.skipped} 笔结果此前已登记，未重复处理。")
    if not (done.succeeded or done.failed or done.skipped):
        messages.info(request, "没有新的结果。")
    if done.completed:
        messages.success(request, "批次所有明细均已有银行结果，批次已完成。")


@require_POST
@staff_required(Perm.CLAIM_PAY)
def results_upload(request: HttpRequest, payment_batch_id: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_payment_batch(user, payment_batch_id, Perm.CLAIM_PAY)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "请选择银行返回的结果文件（CSV）")
        return redirect("payments:detail", payment_batch_id=batch.pk)
    upload = form.cleaned_data["file"]
    if upload.size > payments.MAX_RESULT_FILE_BYTES:
        messages.error(request, "文件过大（超过 5 MB）")
        return redirect("payments:detail", payment_batch_id=batch.pk)
    try:
        rows = payments.parse_result_file(upload.read())
        done = payments.record_bank_results(acting_user=user, batch=batch, rows=rows)
    except InvalidInput as exc:
        messages.error(request, f"结果文件“{upload.name}”未登记，请改正以下问题后重新上传：")
        _errors_to_messages(request, exc)
    else:
        _recorded(request, done)
    return redirect("payments:detail", payment_batch_id=batch.pk)


@require_POST
@staff_required(Perm.CLAIM_PAY)
def results_manual(request: HttpRequest, payment_batch_id: int) -> HttpResponse:
    """Results typed in per line (``result_<line id>`` = succeeded / failed, with
    ``bank_reference_<id>`` or ``failure_reason_<id>``); lines left blank are not touched."""
    user = staff_user(request)
    batch = access_payment_batch(user, payment_batch_id, Perm.CLAIM_PAY)
    rows: list[payments.ResultRow] = []
    lines = PaymentLine.objects.filter(batch=batch, result=PaymentLineResult.PENDING).order_by(
        "line_no"
    )
    for line in lines.only("id", "line_no", "batch_id"):
        outcome = request.POST.get(f"result_{line.pk}", "").strip()
        if not outcome:
            continue
        rows.append(
            payments.ResultRow(
                where=f"序号 {line.line_no}",
                reference=payments.line_reference(batch, line),
                outcome=outcome,
                bank_reference=request.POST.get(f"bank_reference_{line.pk}", ""),
                failure_reason=request.POST.get(f"failure_reason_{line.pk}", ""),
            )
        )
    if not rows:
        messages.error(request, "请至少为一笔明细选择“成功”或“失败”")
        return redirect("payments:detail", payment_batch_id=batch.pk)
    try:
        done = payments.record_bank_results(acting_user=user, batch=batch, rows=rows)
    except InvalidInput as exc:
        _errors_to_messages(request, exc)
    else:
        _recorded(request, done)
    return redirect("payments:detail", payment_batch_id=batch.pk)


@require_POST
@staff_required(Perm.CLAIM_PAY)
def batch_cancel(request: HttpRequest, payment_batch_id: int) -> HttpResponse:
    user = staff_user(request)
    batch = access_payment_batch(user, payment_batch_id, Perm.CLAIM_PAY)
    try:
        payments.cancel_batch(acting_user=user, batch=batch, reason=request.POST.get("reason", ""))
    except InvalidInput as exc:
        _errors_to_messages(request, exc)
    else:
        messages.success(request, f"支付批次 {batch.number} 已作废，其中的补助可重新生成批次支付。")
    return redirect("payments:detail", payment_batch_id=batch.pk)
