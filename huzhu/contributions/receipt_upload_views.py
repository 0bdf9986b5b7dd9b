"""「上传财政平台」: the upload outbox for finance (thin views: parse, call, render).

Mounted with the receipt pages: ``/receipts/uploads/`` lists the uploads not yet accepted (scoped to
the issuer's subtree) and says plainly when no platform is configured; ``…/<id>/retry/`` queues a
failed or rejected upload again (audited).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from huzhu.contributions.receipt_models import UploadStatus
from huzhu.contributions.receipt_upload import (
    configuration_problems,
    platform_config,
    retry_upload,
)
from huzhu.contributions.receipt_upload_selectors import (
    STATUS_CSS,
    STATUS_FILTERS,
    access_upload,
    search_uploads,
    status_counts,
)
from huzhu.core.errors import InvalidInput
from huzhu.core.paging import keyset_page
from huzhu.orgs.roles import Perm
from huzhu.web.auth import staff_required, staff_user

PAGE_SIZE = 50


def _int_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


@staff_required(Perm.RECEIPT_ISSUE)
def upload_list(request: HttpRequest) -> HttpResponse:
    user = staff_user(request)
    status = request.GET.get("status", "")
    if status not in STATUS_FILTERS:
        status = ""
    page = keyset_page(
        search_uploads(user, status),
        after=_int_param(request, "after"),
        before=_int_param(request, "before"),
        size=PAGE_SIZE,
    )
    keep = {"status": status} if status else {}
    counts = status_counts(user)
    config = platform_config()
    return render(
        request,
        "contributions/receipts/uploads.html",
        {
            "rows": page.rows,
            "status": status,
            "filters": list(STATUS_FILTERS.items()),
            "counts": [
                (s.value, s.label, counts[s.value], STATUS_CSS[s.value]) for s in UploadStatus
            ],
            "problems": configuration_problems(config),
            "max_attempts": config.max_attempts,
            "prev_url": "?" + urlencode({**keep, "before": page.prev_cursor})
            if page.prev_cursor is not None
            else None,
            "next_url": "?" + urlencode({**keep, "after": page.next_cursor})
            if page.next_cursor is not None
            else None,
        },
    )


@staff_required(Perm.RECEIPT_ISSUE)
@require_POST
def upload_retry(request: HttpRequest, upload_id: int) -> HttpResponse:
    user = staff_user(request)
    upload = access_upload(user, upload_id)
    receipt = upload.receipt
    name = f"票据 {receipt.code}-{receipt.number_text}（{upload.get_kind_display()}）"
    try:
        retry_upload(acting_user=user, upload=upload)
    except InvalidInput as exc:
        for error in exc.errors:
            messages.error(request, f"{name}：{error.message}")
    else:
        problems = configuration_problems()
        if problems:
            messages.warning(request, f"{name}已重新排队；{problems[0]}，暂不能上传")
        else:
            messages.success(request, f"{name}已重新排队上传财政平台")
    status = request.POST.get("status", "")
    target = "contributions:upload_list"
    if status in STATUS_FILTERS and status:
        response = redirect(target)
        response["Location"] += "?" + urlencode({"status": status})
        return response
    return redirect(target)
