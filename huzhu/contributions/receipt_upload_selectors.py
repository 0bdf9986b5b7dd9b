"""Reads of the finance-platform upload outbox, scoped to the issuer's subtree (S5).

Uploads are the issuing side's business: finance staff of the issuer (or above) see and retry them;
the payer's union sees the receipt, not its upload rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from huzhu.contributions.receipt_models import (
    Receipt,
    ReceiptRange,
    ReceiptUpload,
    UploadKind,
    UploadStatus,
)
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User, subtree_q
from huzhu.orgs.roles import Perm
from huzhu.orgs.selectors import scope_path

# Bootstrap badge colours per status.
STATUS_CSS: dict[str, str] = {
    UploadStatus.PENDING: "text-bg-secondary",
    UploadStatus.SENT: "text-bg-info",
    UploadStatus.ACCEPTED: "text-bg-success",
    UploadStatus.REJECTED: "text-bg-danger",
    UploadStatus.FAILED: "text-bg-warning",
}
# The list's default: everything not yet accepted.
OPEN_STATUSES = (
    UploadStatus.PENDING,
    UploadStatus.SENT,
    UploadStatus.FAILED,
    UploadStatus.REJECTED,
)
STATUS_FILTERS: dict[str, str] = {
    "": "未完成（待上传、上传中、失败、被拒收）",
    **{s.value: s.label for s in UploadStatus},
    "all": "全部",
}


def uploads_for(actor: User) -> QuerySet[ReceiptUpload]:
    path = scope_path(actor)
    if path is None:
        return ReceiptUpload.objects.none()
    return ReceiptUpload.objects.filter(subtree_q(path, "issuer_path"))


def search_uploads(actor: User, status: str) -> QuerySet[ReceiptUpload]:
    qs = uploads_for(actor)
    if status in UploadStatus.values:
        qs = qs.filter(status=status)
    elif status != "all":
        qs = qs.filter(status__in=OPEN_STATUSES)
    return qs.select_related("receipt").defer("receipt__signed_xml")


def status_counts(actor: User) -> dict[str, int]:
    found = dict(
        uploads_for(actor)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {s.value: int(found.get(s.value, 0)) for s in UploadStatus}


def access_upload(actor: User, upload_id: int) -> ReceiptUpload:
    require(actor, Perm.RECEIPT_ISSUE)
    upload = uploads_for(actor).select_related("receipt").filter(pk=upload_id).first()
    if upload is None:
        raise NotPermitted("上传任务不存在")
    return upload


@dataclass(frozen=True)
class UploadBadge:
    kind: str
    kind_label: str
    status: str
    label: str
    css: str


def _badge(kind: str, status: str) -> UploadBadge:
    return UploadBadge(
        kind=kind,
        kind_label=UploadKind(kind).label,
        status=status,
        label=UploadStatus(status).label,
        css=STATUS_CSS[status],
    )


def attach_upload_badges(receipts: Sequence[Receipt]) -> None:
    """Set ``receipt.upload_badges`` (issue first, then void) for a page of receipts: one query."""
    if not receipts:
        return
    found: dict[int, list[UploadBadge]] = defaultdict(list)
    rows = (
        ReceiptUpload.objects.filter(receipt_id__in=[r.pk for r in receipts])
        .order_by("receipt_id", "id")
        .values_list("receipt_id", "kind", "status")
    )
    for receipt_id, kind, status in rows:
        found[receipt_id].append(_badge(kind, status))
    for receipt in receipts:
        receipt.upload_badges = found.get(receipt.pk, [])  # type: ignore[attr-defined]


def uploads_of(receipt: Receipt) -> list[ReceiptUpload]:
    return list(ReceiptUpload.objects.filter(receipt=receipt).order_by("id"))


def attach_range_upload_counts(ranges: Iterable[ReceiptRange]) -> None:
    """Set ``range.upload_counts``: [(label, count, css)] of the non-zero statuses of the uploads
    of each range's receipts (one grouped query)."""
    ranges = list(ranges)
    if not ranges:
        return
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        ReceiptUpload.objects.filter(receipt__receipt_range_id__in=[r.pk for r in ranges])
        .order_by()
        .values_list("receipt__receipt_range_id", "status")
        .annotate(n=Count("id"))
        .values_list("receipt__receipt_range_id", "status", "n")
    )
    for range_id, status, n in rows:
        counts[range_id][status] = int(n)
    for receipt_range in ranges:
        per = counts.get(receipt_range.pk, {})
        receipt_range.upload_counts = [  # type: ignore[attr-defined]
            (s.label, per[s.value], STATUS_CSS[s.value]) for s in UploadStatus if per.get(s.value)
        ]
