"""The audit log for the audit administrator (S8: only the audit administrator reads the log).

Everyone else gets a 404 (the page does not exist for them). Reading the log is itself audited.
Pages are keyset-paginated by id (newest first), never counted.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from huzhu.core.audit import EVENT_LABELS, Event, first_problem, record_event
from huzhu.core.models import AuditChain, AuditEvent
from huzhu.core.paging import keyset_page
from huzhu.orgs.models import Union, User, subtree_q
from huzhu.orgs.roles import Perm, Role
from huzhu.web.auth import staff_required, staff_user

PAGE_SIZE = 50
OUTCOME_LABELS = {"success": "成功", "failure": "失败", "denied": "拒绝"}
ROLE_LABELS = {r.value: r.label for r in Role}
# Keys of ``AuditEvent.detail`` as the audit administrator reads them (unknown keys as they are).
DETAIL_LABELS = {
    "action": "操作",
    "after": "变更后",
    "before": "变更前",
    "bulk": "批量",
    "changed": "修改项",
    "channel": "渠道",
    "count": "数量",
    "field": "字段",
    "filters": "筛选条件",
    "intact": "完整",
    "kind": "类型",
    "member": "职工",
    "member_ids": "职工编号",
    "name": "名称",
    "purpose": "用途",
    "reason": "原因",
    "roles": "角色",
    "rows": "条数",
    "source": "来源",
}


def audit_events_for(actor: User) -> QuerySet[AuditEvent]:
    """The events an audit administrator may read: everything for one at the root of the tree
    (system events and failed logins have no organisation), else their subtree's actors."""
    org = actor.organisation
    if org is None:
        return AuditEvent.objects.none()
    if org.parent_id is None:
        return AuditEvent.objects.all()
    return AuditEvent.objects.filter(subtree_q(org.path, "organisation_path"))


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def _page(
    qs: QuerySet[AuditEvent], after: int | None, before: int | None
) -> tuple[list[AuditEvent], int | None, int | None]:
    """Keyset by id, newest first: (rows, next cursor, previous cursor)."""
    page = keyset_page(qs, after=after, before=before, size=PAGE_SIZE)
    return page.rows, page.next_cursor, page.prev_cursor


def _describe(rows: list[AuditEvent]) -> list[dict[str, Any]]:
    """Display fields for a page of events; organisation names in one query."""
    org_ids = {r.organisation_id for r in rows if r.organisation_id is not None}
    names = dict(Union.objects.filter(pk__in=org_ids).values_list("pk", "name"))
    result = []
    for r in rows:
        detail = r.detail if isinstance(r.detail, dict) else {"detail": r.detail}
        roles = [ROLE_LABELS.get(code, code) for code in r.actor_role.split(",") if code]
        result.append(
            {
                "event": r,
                "label": EVENT_LABELS.get(r.event, r.event),
                "roles": "、".join(roles),
                "organisation": names.get(r.organisation_id or 0, ""),
                "outcome": OUTCOME_LABELS.get(r.outcome, r.outcome),
                "failed": r.outcome != "success",
                "detail": [(DETAIL_LABELS.get(k, k), v) for k, v in detail.items()],
            }
        )
    return result


@staff_required(Perm.AUDIT_VIEW)
def audit_log(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    event = request.GET.get("event", "")
    if event not in EVENT_LABELS:
        event = ""
    username = request.GET.get("user", "").strip()[:150]
    date_from = _date(request.GET.get("from", ""))
    date_to = _date(request.GET.get("to", ""))
    qs = audit_events_for(user)
    if event:
        qs = qs.filter(event=event)
    if username:
        qs = qs.filter(actor_username=username)
    tz = timezone.get_current_timezone()  # Asia/Shanghai: days as the users count them
    if date_from:
        qs = qs.filter(occurred_at__gte=datetime.combine(date_from, time.min, tzinfo=tz))
    if date_to:
        end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz)
        qs = qs.filter(occurred_at__lt=end)
    rows, next_cursor, prev_cursor = _page(
        qs, _int(request.GET.get("after", "")), _int(request.GET.get("before", ""))
    )
    filters = {
        k: v
        for k, v in (
            ("event", event),
            ("user", username),
            ("from", date_from.isoformat() if date_from else ""),
            ("to", date_to.isoformat() if date_to else ""),
        )
        if v
    }
    record_event(
        actor=user,
        event=Event.AUDIT_VIEWED,
        object_type="core.auditevent",
        detail={"filters": filters, "rows": len(rows)},
    )
    return render(
        request,
        "core/audit_log.html",
        {
            "rows": _describe(rows),
            "filters": filters,
            "event": event,
            "username": username,
            "date_from": date_from,
            "date_to": date_to,
            "event_choices": sorted(EVENT_LABELS.items(), key=lambda kv: kv[0]),
            "prev_url": "?" + urlencode({**filters, "before": prev_cursor})
            if prev_cursor
            else None,
            "next_url": "?" + urlencode({**filters, "after": next_cursor}) if next_cursor else None,
        },
    )


@require_POST
@staff_required(Perm.AUDIT_VIEW)
def audit_verify(request: HttpRequest) -> HttpResponse:
    """Recompute every hash chain (as ``huzhu verify-audit``) and show the first problem found."""
    user = staff_user(request)
    problem = first_problem()
    total = AuditEvent.objects.count()
    chains = AuditChain.objects.count()
    record_event(
        actor=user,
        event=Event.AUDIT_VIEWED,
        object_type="core.auditevent",
        outcome="success" if problem is None else "failure",
        detail={"action": "verify_chain", "intact": problem is None},
    )
    template = "core/_verify_result.html" if getattr(request, "htmx", False) else "core/verify.html"
    return render(request, template, {"problem": problem, "total": total, "chains": chains})
