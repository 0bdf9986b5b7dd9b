"""Finance screens of the mutual-aid fund (RULES.md §7): journal, entry detail with reversal,
account balances, trial balance, per-party receivables and payables, period closing, manual
postings of operating costs and health spending, and the risk reserve allocation.

Finance and auditors view (``ledger.view``); finance posts (``ledger.post``). Every figure comes
from the scoped selectors: a city's staff see the entries their subtree originated; the
province (the fund's owner) sees the whole fund.
"""

from __future__ import annotations

import json
import uuid
from datetime import date
from fractions import Fraction
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from huzhu.core.errors import InvalidInput
from huzhu.core.money import format_fen, format_rate, parse_rate
from huzhu.ledger import selectors, services
from huzhu.ledger.access import access_entry, access_fund
from huzhu.ledger.forms import ReserveForm, ReverseForm, SpendingForm
from huzhu.ledger.models import Fund, JournalEntry, PartyType, SourceType
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.orgs.views import int_param
from huzhu.web.auth import staff_required, staff_user

PAGE_SIZE = 20
PARTY_ACCOUNTS = [
    ("1122", "应收互助金（按缴费方）"),
    ("2241", "应付补助金（按职工）"),
    ("2242", "应付医疗机构垫付款（按医疗机构）"),
]


def _date_param(request: HttpRequest, name: str) -> date | None:
    try:
        return date.fromisoformat(request.GET.get(name, "").strip())
    except ValueError:
        return None


def _fund(request: HttpRequest, user: User) -> tuple[Fund | None, list[Fund]]:
    """The fund the page shows (``?fund=``, else the one covering the user's organisation)."""
    funds = list(selectors.funds_for(user).order_by("organisation_path"))
    fund_id = int_param(request, "fund")
    if fund_id is not None:
        return access_fund(user, fund_id), funds
    return (funds[0] if funds else None), funds


def _context(
    request: HttpRequest, user: User, fund: Fund | None, funds: list[Fund]
) -> dict[str, Any]:
    return {
        "fund": fund,
        "funds": funds,
        "fund_level": fund is not None and selectors.actor_is_fund_level(user, fund),
        "can_post": user.has_perm_code(Perm.LEDGER_POST),
        "today": timezone.localdate(),
    }


# --- journal --------------------------------------------------------------------------------
@staff_required(Perm.LEDGER_VIEW)
def journal(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund, funds = _fund(request, user)
    chart = selectors.chart()
    account = request.GET.get("account", "").strip()
    if account not in {a.code for a in chart}:
        account = ""
    period = request.GET.get("period", "").strip()
    period_error = ""
    if period and services.parse_period(period) is None:
        period_error = "会计期间格式应为“年-月”，如 2026-03；已忽略该条件"
        period = ""
    source_type = request.GET.get("source_type", "").strip()
    if source_type not in SourceType.values:
        source_type = ""
    context = _context(request, user, fund, funds)
    context.update(
        {
            "chart": chart,
            "account": account,
            "period": period,
            "period_error": period_error,
            "source_type": source_type,
            "source_types": SourceType.choices,
            "page": None,
            "page_size": PAGE_SIZE,
        }
    )
    if fund is not None:
        flt = selectors.JournalFilter(account=account, period=period, source_type=source_type)
        page = selectors.page_entries(
            selectors.search_entries(user, fund, flt),
            after=int_param(request, "after"),
            before=int_param(request, "before"),
            size=PAGE_SIZE,
        )
        base = {
            k: v
            for k, v in {
                "fund": request.GET.get("fund", ""),
                "account": account,
                "period": period,
                "source_type": source_type,
            }.items()
            if v
        }

        def page_url(key: str, cursor: int | None) -> str | None:
            return None if cursor is None else "?" + urlencode({**base, key: cursor})

        context.update(
            {
                "page": page,
                "filtered": bool(account or period or source_type),
                "prev_url": page_url("before", page.prev_cursor),
                "next_url": page_url("after", page.next_cursor),
            }
        )
    return render(request, "ledger/journal.html", context)


def _entry_context(user: User, entry: JournalEntry) -> dict[str, Any]:
    lines = list(entry.lines.select_related("account").order_by("pk"))
    reversal = JournalEntry.objects.filter(reverses=entry).first()
    # The reversal (or the original) is shown only when the actor may see it too.
    visible = selectors.entries_for(user)
    return {
        "entry": entry,
        "lines": lines,
        "debit_total": sum(line.debit_fen for line in lines),
        "credit_total": sum(line.credit_fen for line in lines),
        "reversal": reversal if reversal and visible.filter(pk=reversal.pk).exists() else None,
        "original": entry.reverses
        if entry.reverses_id and visible.filter(pk=entry.reverses_id).exists()
        else None,
        "can_reverse": user.has_perm_code(Perm.LEDGER_POST)
        and reversal is None
        and entry.reverses_id is None,
        "party_labels": dict(PartyType.choices),
    }


@staff_required(Perm.LEDGER_VIEW)
def entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    entry = access_entry(user, pk)
    context = _entry_context(user, entry)
    context["form"] = ReverseForm(initial={"date": timezone.localdate()})
    return render(request, "ledger/entry.html", context)


@require_POST
@staff_required(Perm.LEDGER_POST)
def entry_reverse(request: HttpRequest, pk: int) -> HttpResponse:
    user = staff_user(request)
    entry = access_entry(user, pk, Perm.LEDGER_POST)
    form = ReverseForm(request.POST)
    if form.is_valid():
        try:
            reversal = services.reverse_entry(
                acting_user=user,
                entry=entry,
                reason=form.cleaned_data.get("reason") or "",
                date=form.cleaned_data.get("date") or timezone.localdate(),
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                f"已生成冲销凭证 {reversal.display_number}，冲销凭证 {entry.display_number}",
            )
            return redirect("ledger:entry", pk=reversal.pk)
    else:
        for error in services.reversal_errors(
            entry=entry,
            reason=form.cleaned_data.get("reason") or "",
            date=form.cleaned_data.get("date"),
        ):
            if error.field not in form.errors:
                form.add_error(error.field if error.field in form.fields else None, error.message)
    context = _entry_context(user, entry)
    context["form"] = form
    return render(request, "ledger/entry.html", context, status=422)


# --- balances -------------------------------------------------------------------------------
@staff_required(Perm.LEDGER_VIEW)
def balances(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund, funds = _fund(request, user)
    as_of = _date_param(request, "as_of") or timezone.localdate()
    context = _context(request, user, fund, funds)
    context["as_of"] = as_of
    if fund is not None:
        rows = selectors.account_balances(user, fund, as_of=as_of)
        context["rows"] = rows
        context["debit_total"] = sum(r.debit_fen for r in rows)
        context["credit_total"] = sum(r.credit_fen for r in rows)
    return render(request, "ledger/balances.html", context)


@staff_required(Perm.LEDGER_VIEW)
def trial_balance(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund, funds = _fund(request, user)
    today = timezone.localdate()
    period = request.GET.get("period", "").strip() or services.period_of(today)
    parsed = services.parse_period(period)
    error = ""
    if parsed is None:
        error = "会计期间格式应为“年-月”，如 2026-03；已显示本月"
        period = services.period_of(today)
        parsed = (today.year, today.month)
    start = date(parsed[0], parsed[1], 1)
    end = services.period_end(*parsed)
    context = _context(request, user, fund, funds)
    context.update({"period": period, "error": error, "start": start, "end": end})
    if fund is not None:
        context["tb"] = selectors.trial_balance(user, fund, start=start, end=end)
    return render(request, "ledger/trial_balance.html", context)


@staff_required(Perm.LEDGER_VIEW)
def parties(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund, funds = _fund(request, user)
    account = request.GET.get("account", "1122")
    if account not in dict(PARTY_ACCOUNTS):
        account = "1122"
    as_of = _date_param(request, "as_of") or timezone.localdate()
    include_settled = request.GET.get("all") == "1"
    context = _context(request, user, fund, funds)
    context.update(
        {
            "account_code": account,
            "party_accounts": PARTY_ACCOUNTS,
            "as_of": as_of,
            "include_settled": include_settled,
            "party_labels": dict(PartyType.choices),
        }
    )
    if fund is not None:
        page = selectors.party_balances(
            user,
            fund,
            account_code=account,
            as_of=as_of,
            include_settled=include_settled,
            after=request.GET.get("after") or None,
            size=PAGE_SIZE * 2,
        )
        params = {"account": account, "as_of": as_of.isoformat()}
        if include_settled:
            params["all"] = "1"
        if request.GET.get("fund"):
            params["fund"] = request.GET["fund"]
        context["page"] = page
        context["page_total"] = sum(row.balance_fen for row in page.rows)
        context["next_url"] = (
            "?" + urlencode({**params, "after": page.next_cursor}) if page.next_cursor else None
        )
        context["first_url"] = "?" + urlencode(params) if request.GET.get("after") else None
    return render(request, "ledger/parties.html", context)


# --- periods --------------------------------------------------------------------------------
@staff_required(Perm.LEDGER_VIEW)
def periods(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund, funds = _fund(request, user)
    context = _context(request, user, fund, funds)
    if fund is not None:
        context["rows"] = selectors.period_summaries(user, fund)
        context["this_period"] = services.period_of(timezone.localdate())
    return render(request, "ledger/periods.html", context)


@require_POST
@staff_required(Perm.LEDGER_POST)
def period_close(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund_id = request.POST.get("fund", "")
    fund = access_fund(user, int(fund_id), Perm.LEDGER_POST) if fund_id.isdigit() else None
    if fund is None:
        messages.error(request, "请选择基金")
        return redirect("ledger:periods")
    period = request.POST.get("period", "")
    try:
        closed = services.close_period(acting_user=user, fund=fund, period=period)
    except InvalidInput as exc:
        for error in exc.errors:
            messages.error(request, error.message)
    else:
        messages.success(request, f"会计期间 {closed.period} 已结账")
    return redirect(reverse("ledger:periods") + f"?fund={fund.pk}")


# --- manual postings ------------------------------------------------------------------------
_SPENDING = {
    "operating_cost": services.post_operating_cost,
    "health_spending": services.post_health_spending,
}


@staff_required(Perm.LEDGER_POST)
def spending(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    if request.method != "POST":
        form = SpendingForm(
            user=user,
            initial={"request_id": uuid.uuid4().hex, "date": timezone.localdate()},
        )
        return render(request, "ledger/spending.html", {"form": form})
    form = SpendingForm(request.POST, user=user)
    valid = form.is_valid()
    data = form.cleaned_data
    arguments: dict[str, Any] = {
        "acting_user": user,
        "organisation": data.get("union_obj"),
        "date": data.get("date"),
        "amount_fen": data.get("amount"),
        "memo": data.get("memo") or "",
        "request_id": data.get("request_id") or "",
    }
    post = _SPENDING.get(data.get("kind") or "")
    if valid and post is not None:
        try:
            entry = post(**arguments)
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(
                request,
                f"已记账：凭证 {entry.display_number}，金额 {format_fen(entry.total_fen)} 元",
            )
            return redirect("ledger:entry", pk=entry.pk)
    else:
        # Show the service's findings too, beside the fields the form could parse.
        for error in services.spending_errors(**arguments):
            name = form.service_field_map.get(error.field, error.field)
            if name in form.fields and name not in form.errors:
                form.add_error(name, error.message)
    return render(request, "ledger/spending.html", {"form": form}, status=422)


# --- risk reserve ---------------------------------------------------------------------------
def _plan_rate(fund: Fund, year: int) -> Fraction | None:
    """The active plan's ``risk_reserve_rate`` for the fund's area and year, when there is one."""
    from huzhu.plans.selectors import versions_for_year

    for version in versions_for_year(fund.organisation.region_code, year):
        try:
            return parse_rate(str(json.loads(version.parameters)["risk_reserve_rate"]))
        except (KeyError, ValueError, TypeError):
            continue
    return None


def _reserve_context(
    request: HttpRequest, user: User, fund: Fund | None, funds: list[Fund], year: int
) -> dict[str, Any]:
    context = _context(request, user, fund, funds)
    context["year"] = year
    context["years"] = list(range(timezone.localdate().year, timezone.localdate().year - 6, -1))
    if fund is not None and context["fund_level"]:
        status = selectors.reserve_status(fund, year)
        rate = _plan_rate(fund, year)
        context.update(
            {
                "status": status,
                "rate": format_rate(rate) if rate is not None else None,
                "expected_fen": status.expected_fen(rate) if rate is not None else None,
                "can_allocate": context["can_post"]
                and fund.organisation_id == user.organisation_id,
            }
        )
    return context


@staff_required(Perm.LEDGER_VIEW)
def reserve(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund, funds = _fund(request, user)
    year = int_param(request, "year") or timezone.localdate().year
    context = _reserve_context(request, user, fund, funds, year)
    context["form"] = ReserveForm(
        initial={
            "request_id": uuid.uuid4().hex,
            "date": timezone.localdate(),
            "amount": format_fen(context["expected_fen"]) if context.get("expected_fen") else "",
        }
    )
    return render(request, "ledger/reserve.html", context)


@require_POST
@staff_required(Perm.LEDGER_POST)
def reserve_allocate(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    fund_id = request.POST.get("fund", "")
    fund = access_fund(user, int(fund_id), Perm.LEDGER_POST) if fund_id.isdigit() else None
    year_text = request.POST.get("year", "")
    year = int(year_text) if year_text.isdigit() and len(year_text) == 4 else 0
    form = ReserveForm(request.POST)
    if fund is not None and form.is_valid() and year:
        try:
            result = services.post_reserve_allocation(
                acting_user=user,
                organisation=user.organisation or fund.organisation,
                date=form.cleaned_data.get("date") or timezone.localdate(),
                year=year,
                amount_fen=form.cleaned_data["amount"],
                allocation_id=form.cleaned_data.get("request_id") or uuid.uuid4().hex,
                memo=form.cleaned_data.get("memo") or "",
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            status = result.status
            text = (
                f"已计提风险储备金：凭证 {result.entry.display_number}，"
                f"{year} 年累计计提 {format_fen(status.allocated_fen)} 元"
            )
            if status.within_range:
                messages.success(request, text + "，在当年互助金收入的 5%–10% 之内")
            else:
                messages.warning(
                    request,
                    text + f"，不在当年互助金收入的 5%–10%（{format_fen(status.low_fen)}–"
                    f"{format_fen(status.high_fen)} 元）之内，请核实",
                )
            return redirect("ledger:entry", pk=result.entry.pk)
    if fund is None:
        form.add_error(None, "请选择基金")
    if not year:
        form.add_error(None, "保障年度无效")
    funds = list(selectors.funds_for(user).order_by("organisation_path"))
    context = _reserve_context(request, user, fund, funds, year or timezone.localdate().year)
    context["form"] = form
    return render(request, "ledger/reserve.html", context, status=422)
