"""Staff screens of the batch settlement feed (docs/settlement-feed.md) and the consent screen:

- 结算文件: the files received (list, detail with every problem per line and every record's
  outcome) and the upload of a file on a partner's behalf (``partner.manage``);
- 结算对账: reconciliation reports (list, detail with the differences) and a new report from the
  partner's totals (``partner.manage``);
- 结算数据: the settlement records received, filtered by partner, status and day — masked ID
  number and status, never a diagnosis (S7);
- 待授权结算: quarantined claims per member, with the link to the member's page where the clerk
  records the paper consent; granting it releases them automatically (``huzhu.claims.receivers``).

Reading needs ``claim.view``; every object comes through a scoped query or ``access_*`` (out of
scope → 404, S5). Thin: every write is one ``huzhu.claims.feed`` call.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db.models import Count, Min, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django_htmx.http import HttpResponseClientRefresh

from huzhu.claims import feed
from huzhu.claims.access import access_file
from huzhu.claims.models import (
    ClaimStatus,
    FeedOutcome,
    Partner,
    SettlementFile,
    SettlementFileLine,
    SettlementStatus,
)
from huzhu.claims.selectors import claims_for, files_for, partners_for, settlements_for
from huzhu.core.errors import InvalidInput
from huzhu.core.money import format_fen
from huzhu.core.paging import keyset_page
from huzhu.members.models import Member
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.orgs.views import int_param
from huzhu.rules.reasons import Reason
from huzhu.web.auth import staff_required, staff_user
from huzhu.web.forms import StaffForm

PAGE_SIZE = 50
LINES_PER_PAGE = 200
PARTNER_CHOICES_LIMIT = 500
OUTCOME_LABELS = dict(FeedOutcome.choices)
STATUS_LABELS = dict(SettlementStatus.choices)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # pages with personal data (S4)
    return response


def _reason_label(code: str | None) -> str:
    if not code:
        return ""
    if code == "OUT_OF_SCOPE":
        return "不在服务范围"
    try:
        return Reason(code).label
    except ValueError:
        return code


def _partner_options(user: User) -> list[tuple[int, str]]:
    return [
        (p.pk, f"{p.name}（{p.partner_id}）")
        for p in partners_for(user).order_by("organisation_path", "partner_id")[
            :PARTNER_CHOICES_LIMIT
        ]
    ]


def _keep(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str]:
    return {k: request.GET[k] for k in names if request.GET.get(k)}


def _pager(page: Any, keep: dict[str, str]) -> dict[str, str | None]:
    def url(key: str, cursor: int | None) -> str | None:
        return None if cursor is None else "?" + urlencode({**keep, key: cursor})

    return {"prev_url": url("before", page.prev_cursor), "next_url": url("after", page.next_cursor)}


# --- files ---------------------------------------------------------------------------------------
@staff_required(Perm.CLAIM_VIEW)
def file_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    rows = files_for(user).select_related("partner", "feed_import")
    partner_id = int_param(request, "partner")
    if partner_id is not None:
        rows = rows.filter(partner_id=partner_id)
    status = request.GET.get("status", "")
    if status in feed.FILE_STATUS_LABELS:
        rows = rows.filter(status=status)
    else:
        status = ""
    page = keyset_page(
        rows,
        after=int_param(request, "after"),
        before=int_param(request, "before"),
        size=PAGE_SIZE,
    )
    return render(
        request,
        "claims/feed/files.html",
        {
            "page": page,
            "partners": _partner_options(user),
            "partner_id": partner_id,
            "status": status,
            "statuses": list(feed.FILE_STATUS_LABELS.items()),
            "status_labels": feed.FILE_STATUS_LABELS,
            "can_upload": user.has_perm_code(Perm.PARTNER_MANAGE),
            **_pager(page, _keep(request, ("partner", "status"))),
        },
    )


def _file_context(settlement_file: SettlementFile) -> dict[str, Any]:
    summary = feed.file_summary(settlement_file)
    return {
        "file": settlement_file,
        "summary": summary,
        "status_label": feed.FILE_STATUS_LABELS.get(settlement_file.status, ""),
        "outcomes": [
            (OUTCOME_LABELS.get(k, k), k, v) for k, v in sorted(summary["outcomes"].items())
        ],
        "problems": feed.FileOutcome(settlement_file).problems,
        "job": feed.import_job(settlement_file),
    }


@staff_required(Perm.CLAIM_VIEW)
def file_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    settlement_file = access_file(user, pk)
    lines = SettlementFileLine.objects.filter(file=settlement_file).order_by("position")
    after = int_param(request, "after") or 0
    rows = list(lines.filter(position__gt=after)[: LINES_PER_PAGE + 1])
    more = len(rows) > LINES_PER_PAGE
    rows = rows[:LINES_PER_PAGE]
    context = _file_context(settlement_file)
    job = context["job"]
    context.update(
        {
            "lines": [
                {
                    "line": r.line,
                    "setl_id": r.setl_id,
                    "record_type": "撤销" if r.record_type == "cancel" else "结算",
                    "outcome": r.outcome,
                    "outcome_label": OUTCOME_LABELS.get(r.outcome, r.outcome),
                    "reason": _reason_label(r.reason),
                    "benefit": format_fen(r.benefit_fen),
                }
                for r in rows
            ],
            "next_url": f"?after={rows[-1].position}" if more and rows else None,
            "prev_url": "?" if after else None,
            "show_job": job is not None and not job.finished,
            "poll_url": reverse("feed:file_progress", args=[settlement_file.pk]),
        }
    )
    return _no_store(render(request, "claims/feed/file.html", context))


@staff_required(Perm.CLAIM_VIEW)
def file_progress(request: HttpRequest, pk: int) -> HttpResponse:
    settlement_file = access_file(staff_user(request), pk)
    return _progress(request, settlement_file, reverse("feed:file_progress", args=[pk]))


def _progress(request: HttpRequest, settlement_file: SettlementFile, poll_url: str) -> HttpResponse:
    job = feed.import_job(settlement_file)
    if job is None or (job.finished and getattr(request, "htmx", False)):
        return HttpResponseClientRefresh()  # the page shows the outcome
    return render(request, "jobs/_progress.html", {"job": job, "poll_url": poll_url})


# --- upload --------------------------------------------------------------------------------------
class UploadForm(StaffForm):
    partner = forms.TypedChoiceField(label="结算合作方", coerce=int)
    file = forms.FileField(
        label="结算文件",
        help_text="UTF-8 编码的 CSV（.csv）或 JSON lines（.jsonl），格式见《结算批量文件说明》",
    )
    declared_count = forms.IntegerField(
        label="声明记录数", min_value=0, help_text="合作方声明的记录数（结算与撤销记录合计）"
    )
    declared_total = forms.CharField(
        label="声明金额合计（元）",
        max_length=20,
        help_text="合作方声明的全部结算记录医疗费总额（medfee_sumamt）之和，两位小数",
    )

    def __init__(self, *args: Any, partners: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["partner"]).choices = partners
        self.fields["file"].widget.attrs["accept"] = ".csv,.jsonl,.ndjson"

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if Path(upload.name or "").suffix.lower() not in (".csv", ".jsonl", ".ndjson", ".json"):
            raise forms.ValidationError("只能上传 .csv 或 .jsonl 文件")
        if (upload.size or 0) > feed.MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"文件过大（不能超过 {feed.MAX_FILE_BYTES // 1024 // 1024} MB）"
            )
        return upload


def _upload_partners(user: User) -> list[tuple[int, str]]:
    return [
        (p.pk, f"{p.name}（{p.partner_id}）")
        for p in feed.upload_partners(user)[:PARTNER_CHOICES_LIMIT]
    ]


def _upload_partner(user: User, partner_id: int) -> Partner | None:
    return feed.upload_partners(user).filter(pk=partner_id).first()


@staff_required(Perm.PARTNER_MANAGE)
def upload(request: HttpRequest) -> HttpResponse:
    """The upload form; after a POST the same page shows the file's result (``?file=``)."""
    user = staff_user(request)
    shown = None
    file_id = int_param(request, "file")
    if file_id is not None and request.method == "GET":
        shown = access_file(user, file_id, Perm.PARTNER_MANAGE)
        if request.GET.get("progress"):
            return _progress(
                request, shown, reverse("feed:upload") + f"?file={shown.pk}&progress=1"
            )
    form = UploadForm(request.POST or None, request.FILES or None, partners=_upload_partners(user))
    if request.method == "POST" and form.is_valid():
        partner = _upload_partner(user, form.cleaned_data["partner"])
        if partner is None:
            form.add_error("partner", "该合作方不存在、已停用或不在您的管辖范围内")
        else:
            upload_file = form.cleaned_data["file"]
            outcome = feed.import_settlement_file(
                acting_user=user,
                partner=partner,
                filename=upload_file.name or "",
                content=upload_file.read(),
                declared_count=form.cleaned_data["declared_count"],
                declared_total=form.cleaned_data["declared_total"],
            )
            result = outcome.file.status
            if outcome.duplicate:
                messages.info(request, "该文件此前已接收，未重复导入；以下为此前的结果")
            elif result == feed.FileStatus.REJECTED:
                messages.error(request, "文件已拒收，未导入任何记录：请按下列问题修改后重新上传")
            elif result == feed.FileStatus.IMPORTING:
                messages.success(request, "文件已通过校验，正在后台逐条处理（进度见下方）")
            else:
                messages.success(request, "文件已接收并处理完毕")
            return redirect(reverse("feed:upload") + f"?file={outcome.file.pk}")
    context: dict[str, Any] = {
        "form": form,
        "has_partners": bool(cast(forms.ChoiceField, form.fields["partner"]).choices),
    }
    if shown is not None:
        context.update(_file_context(shown))
        context["poll_url"] = reverse("feed:upload") + f"?file={shown.pk}&progress=1"
        context["show_job"] = context["job"] is not None and not context["job"].finished
        context["can_view"] = user.has_perm_code(Perm.CLAIM_VIEW)
    status = 422 if request.method == "POST" else 200
    return _no_store(render(request, "claims/feed/upload.html", context, status=status))


# --- reconciliation ------------------------------------------------------------------------------
@staff_required(Perm.CLAIM_VIEW)
def report_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    rows = feed.reports_for(user).select_related("partner")
    partner_id = int_param(request, "partner")
    if partner_id is not None:
        rows = rows.filter(partner_id=partner_id)
    day = _date_param(request, "date")
    if day is not None:
        rows = rows.filter(day=day)
    page = keyset_page(
        rows, after=int_param(request, "after"), before=int_param(request, "before"), size=PAGE_SIZE
    )
    return render(
        request,
        "claims/feed/reports.html",
        {
            "page": page,
            "partners": _partner_options(user),
            "partner_id": partner_id,
            "day": day,
            "can_reconcile": user.has_perm_code(Perm.PARTNER_MANAGE),
            **_pager(page, _keep(request, ("partner", "date"))),
        },
    )


def _report_context(report: Any) -> dict[str, Any]:
    answer = feed.report_answer(report)
    return {"report": report, "answer": answer, "source_label": _SOURCE_LABELS.get(report.source)}


_SOURCE_LABELS = {"api": "合作方接口", "web": "页面录入", "cli": "命令行"}


@staff_required(Perm.CLAIM_VIEW)
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = feed.access_report(staff_user(request), pk)
    return render(request, "claims/feed/report.html", _report_context(report))


class ReconcileForm(StaffForm):
    partner = forms.TypedChoiceField(label="结算合作方", coerce=int)
    day = forms.DateField(
        label="对账日期",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="按结算时间（setl_time）的日期",
    )
    count = forms.IntegerField(label="对方笔数", min_value=0, help_text="当日结算笔数，不含已撤销")
    medfee = forms.CharField(label="对方医疗费总额合计（元）", max_length=20)
    benefit = forms.CharField(
        label="对方已减免补助金额合计（元）", max_length=20, help_text="医院出院时已直接减免的补助"
    )
    records = forms.CharField(
        label="逐笔清单（可选）",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="每行一笔：结算ID,状态(settled/cancelled，可空),医疗费总额(可空),补助金额(可空)",
    )
    service_field_map = {"medfee_sumamt": "medfee", "date": "day"}

    def __init__(self, *args: Any, partners: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["partner"]).choices = partners

    def record_list(self) -> list[dict[str, str]] | None:
        text = (self.cleaned_data.get("records") or "").strip()
        if not text:
            return None
        records = []
        for row in csv.reader(io.StringIO(text)):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            item = dict(zip(("setl_id", "status", "medfee_sumamt", "benefit"), cells, strict=False))
            records.append({k: v for k, v in item.items() if v})
        return records


@staff_required(Perm.PARTNER_MANAGE)
def reconcile(request: HttpRequest) -> HttpResponse:
    """The partner's totals of a day → the report, shown on the same page (``?report=``)."""
    user = staff_user(request)
    form = ReconcileForm(request.POST or None, partners=_upload_partners(user))
    if request.method == "POST" and form.is_valid():
        partner = _upload_partner(user, form.cleaned_data["partner"])
        if partner is None:
            form.add_error("partner", "该合作方不存在、已停用或不在您的管辖范围内")
        else:
            data = form.cleaned_data
            try:
                totals = feed.partner_totals(
                    count=data["count"],
                    medfee=data["medfee"],
                    benefit=data["benefit"],
                    records=form.record_list(),
                )
                report = feed.reconcile(
                    acting_user=user, partner=partner, day=data["day"], totals=totals, source="web"
                )
            except InvalidInput as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, "对账完成")
                return redirect(reverse("feed:reconcile") + f"?report={report.pk}")
    context: dict[str, Any] = {
        "form": form,
        "has_partners": bool(cast(forms.ChoiceField, form.fields["partner"]).choices),
    }
    report_id = int_param(request, "report")
    if report_id is not None and request.method == "GET":
        context.update(_report_context(feed.access_report(user, report_id, Perm.PARTNER_MANAGE)))
    status = 422 if request.method == "POST" else 200
    return render(request, "claims/feed/reconcile.html", context, status=status)


# --- settlement records --------------------------------------------------------------------------
def _date_param(request: HttpRequest, name: str) -> date | None:
    text = request.GET.get(name, "").strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


@staff_required(Perm.CLAIM_VIEW)
def settlement_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    rows = (
        settlements_for(user)
        .select_related("partner", "member", "file")
        .only(
            "id",
            "setl_id",
            "channel",
            "certno_masked",
            "status",
            "reason",
            "setl_time",
            "received_at",
            "medfee_sumamt",
            "benefit_fen",
            "file_id",
            "partner__name",
            "partner__partner_id",
            "member__name",
            "file__filename",
        )
    )
    partner_id = int_param(request, "partner")
    if partner_id is not None:
        rows = rows.filter(partner_id=partner_id)
    status = request.GET.get("status", "")
    if status in STATUS_LABELS:
        rows = rows.filter(status=status)
    else:
        status = ""
    day = _date_param(request, "date")
    if day is not None:
        start, end = feed.day_bounds(day)
        rows = rows.filter(setl_time__gte=start, setl_time__lt=end)
    page = keyset_page(
        rows, after=int_param(request, "after"), before=int_param(request, "before"), size=PAGE_SIZE
    )
    for row in page.rows:
        row.reason_label = _reason_label(row.reason)  # type: ignore[attr-defined]
    return _no_store(
        render(
            request,
            "claims/feed/settlements.html",
            {
                "page": page,
                "partners": _partner_options(user),
                "partner_id": partner_id,
                "status": status,
                "statuses": SettlementStatus.choices,
                "day": day,
                **_pager(page, _keep(request, ("partner", "status", "date"))),
            },
        )
    )


# --- consent / quarantine ------------------------------------------------------------------------
@staff_required(Perm.CLAIM_VIEW)
def quarantine(request: HttpRequest) -> HttpResponse:
    """Quarantined settlements per member (S12): the data is kept, unused, until the member's
    paper consent is recorded on the member's page; then it is processed automatically."""
    user = staff_user(request)
    groups = (
        claims_for(user)
        .filter(status=ClaimStatus.QUARANTINED)
        .values("member_id")
        .annotate(count=Count("id"), first=Min("setl_time"), medfee=Sum("medfee_sumamt"))
        .order_by("member_id")
    )
    after = int_param(request, "after")
    if after is not None:
        groups = groups.filter(member_id__gt=after)
    rows = list(groups[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    members = Member.objects.select_related("unit", "union").in_bulk([r["member_id"] for r in rows])
    can_consent = user.has_perm_code(Perm.MEMBER_EDIT)
    items = [
        {
            "member": members[r["member_id"]],
            "count": r["count"],
            "first": r["first"],
            "medfee": format_fen(r["medfee"] or 0),
            "url": reverse("members:detail", args=[r["member_id"]]) + "#consents",
        }
        for r in rows
        if r["member_id"] in members
    ]
    return _no_store(
        render(
            request,
            "claims/feed/quarantine.html",
            {
                "items": items,
                "can_consent": can_consent,
                "next_url": f"?after={rows[-1]['member_id']}" if more and rows else None,
                "prev_url": "?" if after is not None else None,
                "today": timezone.localdate(),
            },
        )
    )
