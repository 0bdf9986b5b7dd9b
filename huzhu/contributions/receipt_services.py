"""Writes for receipts: number ranges, issuing, voiding and reissuing (R11, S16).

Numbering is gapless and unique per range, also under concurrent issuing: the issuer's open ranges
for the year are locked with ``select_for_update`` while a number is taken, the receipt is inserted
and ``next_number`` advanced in the same transaction — a rolled-back issue gives its number back. On
SQLite the whole write transaction is serialised (``transaction_mode=IMMEDIATE``). The database's
unique constraint on (code, number) is the last line of defence.

``issue_receipt`` and ``void_receipt`` join the caller's transaction (the payments service issues a
receipt in the same transaction that confirms a payment); ``allocate_range`` is an outer service.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from typing import TypedDict

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from huzhu.contributions import receipt_signing, receipt_upload, receipt_xml
from huzhu.contributions.receipt_models import (
    RECEIPT_NUMBER_MAX,
    PayerKind,
    Receipt,
    ReceiptRange,
    ReceiptStatus,
)
from huzhu.core.audit import record_event, register_event_labels
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.ids import InvalidIdentifier, is_valid_id_number, mask_id_number, validate_uscc
from huzhu.members.models import Member
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import Union, UnionKind, Unit, User
from huzhu.orgs.roles import Perm


class ReceiptEvent(StrEnum):
    RANGE_ALLOCATED = "receipt.range_allocate"
    ISSUED = "receipt.issue"
    VOIDED = "receipt.void"
    REISSUED = "receipt.reissue"
    DOWNLOADED = "receipt.download"


RECEIPT_EVENT_LABELS: dict[str, str] = {
    ReceiptEvent.RANGE_ALLOCATED: "登记票据号段",
    ReceiptEvent.ISSUED: "开具电子票据",
    ReceiptEvent.VOIDED: "作废电子票据",
    ReceiptEvent.REISSUED: "换开电子票据",
    ReceiptEvent.DOWNLOADED: "下载电子票据",
}
register_event_labels(RECEIPT_EVENT_LABELS)

# Unions at county level and above are the issuing bodies of fiscal receipts; grassroots unions and
# federations collect through them.
ISSUER_KINDS = frozenset(
    {UnionKind.PROVINCIAL, UnionKind.CITY, UnionKind.COUNTY, UnionKind.INDUSTRY}
)
MAX_ITEMS = 6  # what the one-page layout copy holds (contributions have 1–4 items)
MAX_TOTAL_FEN = 10**12  # ten billion yuan: far above any real payment, below the capitals' limit
_CODE_RE = re.compile(r"[0-9]{8}")
_NUMBER_RE = re.compile(r"[0-9]{1,10}")


def _check_actor(acting_user: User | None, union: Union) -> None:
    """A person acting must hold ``receipt.issue`` and the union must be in their subtree; system
    callers (``acting_user=None``: batch jobs, the demo) are trusted."""
    if acting_user is None:
        return
    org = acting_user.organisation
    if (
        not acting_user.has_perm_code(Perm.RECEIPT_ISSUE)
        or org is None
        or not union.path.startswith(org.path)
    ):
        raise NotPermitted("无权为该组织开具或管理票据")


# --- number ranges (号段) ----------------------------------------------------------------------
def parse_receipt_number(text: str) -> int | None:
    """A 10-digit receipt number as typed (leading zeros optional); None when malformed."""
    value = (text or "").strip()
    if not _NUMBER_RE.fullmatch(value):
        return None
    number = int(value)
    return number if 1 <= number <= RECEIPT_NUMBER_MAX else None


def _lock_code(code: str) -> None:
    """Serialise range allocations of one receipt code (overlap check, then insert).

    PostgreSQL: a transaction-scoped advisory lock; SQLite serialises write transactions anyway.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x48555A48, int(code)])


@transaction.atomic(durable=True)
def allocate_range(
    *,
    acting_user: User | None,
    issuer: Union,
    code: str,
    year: int,
    first_number: str,
    last_number: str,
    platform_reference: str = "",
    note: str = "",
) -> ReceiptRange:
    """Record a range that the finance department's platform allocated to ``issuer``."""
    _check_actor(acting_user, issuer)
    errors = ErrorCollector()
    code = (code or "").strip()
    if issuer.kind not in ISSUER_KINDS:
        errors.add(
            "issuer",
            f"{UnionKind(issuer.kind).label}不是财政票据的开具单位，号段只能分配给县级以上总工会"
            "或产业工会",
        )
    if not 2000 <= year <= 2099:
        errors.add("year", "年度应为2000至2099之间的四位年份")
    if not _CODE_RE.fullmatch(code):
        errors.add("code", "票据代码应为8位数字（地区2位＋分类2位＋种类2位＋年度2位）")
    else:
        if 2000 <= year <= 2099 and code[6:] != f"{year % 100:02d}":
            errors.add("code", f"票据代码末两位应为年度“{year % 100:02d}”")
        province = (issuer.region_code or "")[:2]
        if province and code[:2] != province:
            errors.add("code", f"票据代码前两位应为开票单位所在省份的行政区划代码“{province}”")
    first = parse_receipt_number(first_number)
    last = parse_receipt_number(last_number)
    if first is None:
        errors.add("first_number", "起始号码应为1至10位数字，且不为0")
    if last is None:
        errors.add("last_number", "终止号码应为1至10位数字，且不为0")
    if first is not None and last is not None and last < first:
        errors.add("last_number", "终止号码不能小于起始号码")
    if len(platform_reference.strip()) > 64:
        errors.add("platform_reference", "分配批次号不能超过64个字符")
    if len(note.strip()) > 200:
        errors.add("note", "备注不能超过200个字")
    errors.raise_if_any()
    assert first is not None and last is not None
    _lock_code(code)
    overlapping = (
        ReceiptRange.objects.filter(code=code, first_number__lte=last, last_number__gte=first)
        .order_by("first_number")
        .first()
    )
    if overlapping is not None:
        raise InvalidInput(
            [
                FieldError(
                    "first_number",
                    f"与已登记的号段 {overlapping.first_text}–{overlapping.last_text}"
                    f"（票据代码 {code}）重叠",
                    ErrorCode.CONFLICT,
                )
            ]
        )
    receipt_range = ReceiptRange.objects.create(
        issuer=issuer,
        issuer_path=issuer.path,
        code=code,
        year=year,
        first_number=first,
        last_number=last,
        next_number=first,
        platform_reference=platform_reference.strip(),
        note=note.strip(),
        allocated_by=acting_user,
    )
    record_event(
        actor=acting_user,
        event=ReceiptEvent.RANGE_ALLOCATED,
        obj=receipt_range,
        organisation_id=issuer.pk,
        detail={"code": code, "year": year, "first": first, "last": last},
    )
    return receipt_range


# --- issuing -------------------------------------------------------------------------------------
class ReceiptLine(TypedDict):
    name: str
    amount_fen: int


_FULL_ID_RE = re.compile(r"[0-9]{15}|[0-9]{17}[0-9Xx]")


def _clean_payer(
    errors: ErrorCollector,
    *,
    payer_name: str,
    payer_kind: str,
    payer_reference: str,
    payer: Member | Unit | Union | None,
) -> tuple[str, str]:
    name = (payer_name or "").strip()
    if not name:
        errors.add("payer_name", "交款人名称不能为空", ErrorCode.REQUIRED)
    elif len(name) > 100:
        errors.add("payer_name", "交款人名称不能超过100个字")
    reference = (payer_reference or "").strip().upper()
    if payer_kind == PayerKind.INDIVIDUAL:
        # Never store a full ID number on a receipt (S11): a valid one is masked here.
        if is_valid_id_number(reference):
            reference = mask_id_number(reference)
        elif _FULL_ID_RE.fullmatch(reference):
            errors.add("payer_reference", "个人交款人代码应为脱敏后的证件号码")
    elif payer_kind == PayerKind.UNIT:
        try:
            reference = validate_uscc(reference)
        except InvalidIdentifier as exc:
            errors.add("payer_reference", f"单位交款人：{exc}")
    elif payer_kind == PayerKind.UNION:
        if reference and not re.fullmatch(r"[0-9]{6}", reference):
            try:
                reference = validate_uscc(reference)
            except InvalidIdentifier:
                errors.add("payer_reference", "工会交款人代码应为统一社会信用代码或6位行政区划代码")
    else:
        errors.add("payer_kind", "交款人类型应为个人、单位或工会")
    if len(reference) > 32:
        errors.add("payer_reference", "交款人代码不能超过32个字符")
    if payer is not None:
        if isinstance(payer, Member):
            expected = PayerKind.INDIVIDUAL
        elif isinstance(payer, Unit):
            expected = PayerKind.UNIT
        else:
            expected = PayerKind.UNION
        if expected != payer_kind:
            errors.add("payer_kind", "交款人类型与所关联的交款人不一致")
    return name, reference


def _clean_items(
    errors: ErrorCollector, items: Sequence[tuple[str, int]], total_fen: int
) -> list[ReceiptLine]:
    cleaned: list[ReceiptLine] = []
    if not items:
        errors.add("items", "票据至少要有一个收费项目", ErrorCode.REQUIRED)
    elif len(items) > MAX_ITEMS:
        errors.add("items", f"一张票据最多{MAX_ITEMS}个项目")
    for index, item in enumerate(items[:MAX_ITEMS], start=1):
        try:
            raw_name, amount = item
        except (TypeError, ValueError):
            errors.add("items", f"第{index}个项目格式不正确（应为名称和金额）")
            continue
        name = str(raw_name or "").strip()
        if not name:
            errors.add("items", f"第{index}个项目名称不能为空")
        elif len(name) > 40:
            errors.add("items", f"第{index}个项目名称不能超过40个字")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            errors.add("items", f"第{index}个项目金额应为大于0的整数分")
            continue
        cleaned.append({"name": name, "amount_fen": amount})
    if not isinstance(total_fen, int) or isinstance(total_fen, bool) or total_fen <= 0:
        errors.add("total_fen", "合计金额应为大于0的整数分")
    elif total_fen >= MAX_TOTAL_FEN:
        errors.add("total_fen", "合计金额过大")
    elif len(cleaned) == len(items) and cleaned:
        summed = sum(i["amount_fen"] for i in cleaned)
        if summed != total_fen:
            errors.add("total_fen", f"合计金额与各项目金额之和不符（项目合计 {summed} 分）")
    return cleaned


def _clean_source(errors: ErrorCollector, source_type: str, source_id: str) -> tuple[str, str]:
    kind = (source_type or "").strip()
    ident = str(source_id or "").strip()
    if not kind:
        errors.add("source_type", "缺少票据来源类型", ErrorCode.REQUIRED)
    elif len(kind) > 32:
        errors.add("source_type", "来源类型不能超过32个字符")
    if not ident:
        errors.add("source_id", "缺少票据来源编号", ErrorCode.REQUIRED)
    elif len(ident) > 64:
        errors.add("source_id", "来源编号不能超过64个字符")
    return kind, ident


def _clean_date(errors: ErrorCollector, issued_on: date) -> None:
    if not isinstance(issued_on, date):
        errors.add("issued_on", "开票日期无效", ErrorCode.REQUIRED)
    elif issued_on > timezone.localdate():
        errors.add("issued_on", "开票日期不能晚于今天")
    elif not 2000 <= issued_on.year <= 2099:
        errors.add("issued_on", "开票日期的年份应在2000至2099之间")


def _payer_org_path(payer: Member | Unit | Union | None) -> str:
    if payer is None:
        return ""
    if isinstance(payer, Union):
        return payer.path
    return str(payer.union_path)


def _open_ranges(issuer_id: int, year: int) -> list[ReceiptRange]:
    """The issuer's ranges for the year that still have numbers, oldest first, LOCKED.

    Every concurrent issue for the issuer and year waits here until the holder commits or rolls
    back; PostgreSQL then re-reads the locked rows (a range used up meanwhile drops out).
    """
    return list(
        ReceiptRange.objects.select_for_update()
        .filter(issuer_id=issuer_id, year=year, next_number__lte=F("last_number"))
        .order_by("id")
    )


def _source_chain_head(source_type: str, source_id: str) -> Receipt | None:
    """The newest receipt issued for a source (the original, or its latest reissue).

    An id-only probe first: on the usual path (a new payment) nothing is found and nothing more is
    read."""
    newest = (
        Receipt.objects.filter(source_type=source_type, source_id=source_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if newest is None:
        return None
    return Receipt.objects.select_related("issuer").get(pk=newest)


def _same_issue(
    existing: Receipt, *, issuer: Union, items: list[ReceiptLine], total_fen: int
) -> Receipt:
    if (
        existing.issuer_id != issuer.pk
        or existing.total_fen != total_fen
        or existing.items != items
    ):
        raise ConflictError(
            f"该来源（{existing.source_type} {existing.source_id}）已开具票据 "
            f"{existing.code}-{existing.number_text}，开票单位或金额与本次不一致"
        )
    return existing


def _issue_locked(
    *,
    acting_user: User | None,
    issuer: Union,
    payer_name: str,
    payer_kind: str,
    payer_reference: str,
    payer: Member | Unit | Union | None,
    payer_org_path: str,
    items: list[ReceiptLine],
    total_fen: int,
    issued_on: date,
    source_type: str,
    source_id: str,
    reissue_of: Receipt | None,
) -> Receipt:
    ranges = _open_ranges(issuer.pk, issued_on.year)
    if reissue_of is None:
        # A concurrent issue for the same source may have committed while we waited for the lock.
        existing = _source_chain_head(source_type, source_id)
        if existing is not None:
            return _same_issue(existing, issuer=issuer, items=items, total_fen=total_fen)
    if not ranges:
        raise InvalidInput(
            [
                FieldError(
                    "issuer",
                    f"{issuer.name}{issued_on.year}年度没有可用的票据号段（号段未登记或已用完），"
                    "请先登记财政部门分配的号段",
                    ErrorCode.STATE,
                )
            ]
        )
    receipt_range = ranges[0]
    number = receipt_range.next_number
    ReceiptRange.objects.filter(pk=receipt_range.pk).update(next_number=F("next_number") + 1)
    receipt = Receipt(
        issuer=issuer,
        issuer_path=issuer.path,
        payer_org_path=payer_org_path,
        issuer_name=issuer.name,
        receipt_range=receipt_range,
        code=receipt_range.code,
        number=number,
        year=issued_on.year,
        check_code=receipt_signing.check_code(
            code=receipt_range.code, number=number, total_fen=total_fen, issued_on=issued_on
        ),
        payer_kind=payer_kind,
        payer_name=payer_name,
        payer_reference=payer_reference,
        payer_member=payer if isinstance(payer, Member) else None,
        payer_unit=payer if isinstance(payer, Unit) else None,
        payer_union=payer if isinstance(payer, Union) else None,
        items=items,
        total_fen=total_fen,
        issued_on=issued_on,
        issued_by=acting_user,
        source_type=source_type,
        source_id=source_id,
        reissue_of=reissue_of,
    )
    receipt.signed_xml, receipt.signing_key_id = receipt_xml.signed_receipt_xml(receipt)
    receipt.save(force_insert=True)
    # The finance platform's outbox row, in this transaction (RULES.md §6; receipt_upload).
    receipt_upload.queue_issue(receipt)
    record_event(
        actor=acting_user,
        event=ReceiptEvent.ISSUED,
        obj=receipt,
        organisation_id=issuer.pk,
        detail={
            "code": receipt.code,
            "number": receipt.number_text,
            "total_fen": total_fen,
            "source_type": source_type,
            "source_id": source_id,
            "reissue_of": reissue_of.pk if reissue_of is not None else None,
        },
    )
    return receipt


def issue_receipt(
    *,
    acting_user: User | None,
    issuer: Union,
    payer_name: str,
    payer_kind: str,
    payer_reference: str,
    items: Sequence[tuple[str, int]],
    total_fen: int,
    issued_on: date,
    source_type: str,
    source_id: str,
    payer: Member | Unit | Union | None = None,
) -> Receipt:
    """Issue the next receipt of ``issuer`` for one confirmed payment (``source_type``,
    ``source_id``).

    Idempotent per source: a retried call returns the receipt already issued for it (its latest
    reissue if it was reissued); a retry with another issuer or amount raises ``ConflictError``.
    ``payer`` (a member, unit or union) links the receipt to its payer for the member portal and
    lets the staff of the payer's union see it. Joins the caller's transaction.
    """
    with transaction.atomic():
        _check_actor(acting_user, issuer)
        errors = ErrorCollector()
        if issuer.kind not in ISSUER_KINDS:
            errors.add("issuer", f"{issuer.name}不是财政票据的开具单位")
        name, reference = _clean_payer(
            errors,
            payer_name=payer_name,
            payer_kind=payer_kind,
            payer_reference=payer_reference,
            payer=payer,
        )
        cleaned = _clean_items(errors, items, total_fen)
        kind, ident = _clean_source(errors, source_type, source_id)
        _clean_date(errors, issued_on)
        errors.raise_if_any()
        # The idempotency check runs under the range lock (in _issue_locked), so that a concurrent
        # issue for the same payment is seen once it commits.
        return _issue_locked(
            acting_user=acting_user,
            issuer=issuer,
            payer_name=name,
            payer_kind=payer_kind,
            payer_reference=reference,
            payer=payer,
            payer_org_path=_payer_org_path(payer),
            items=cleaned,
            total_fen=total_fen,
            issued_on=issued_on,
            source_type=kind,
            source_id=ident,
            reissue_of=None,
        )


# --- voiding and reissuing ------------------------------------------------------------------------
def _clean_reason(errors: ErrorCollector, reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        errors.add("reason", "请填写作废原因", ErrorCode.REQUIRED)
    elif len(text) > 200:
        errors.add("reason", "作废原因不能超过200个字")
    return text


def _void_locked(locked: Receipt, *, acting_user: User | None, reason: str) -> Receipt:
    locked.status = ReceiptStatus.VOIDED
    locked.voided_at = timezone.now()
    locked.voided_by = acting_user
    locked.void_reason = reason
    locked.save(update_fields=["status", "voided_at", "voided_by", "void_reason"])
    receipt_upload.queue_void(locked)
    # The reason is free text typed by staff: it stays on the receipt, not in the audit detail.
    record_event(
        actor=acting_user,
        event=ReceiptEvent.VOIDED,
        obj=locked,
        organisation_id=locked.issuer_id,
        detail={"code": locked.code, "number": locked.number_text, "total_fen": locked.total_fen},
    )
    return locked


def void_receipt(*, acting_user: User | None, receipt: Receipt, reason: str) -> Receipt:
    """Void an issued receipt (the number stays used; verification then answers 已作废)."""
    with transaction.atomic():
        _check_actor(acting_user, receipt.issuer)
        errors = ErrorCollector()
        text = _clean_reason(errors, reason)
        locked = (
            Receipt.objects.select_for_update(of=("self",))
            .select_related("issuer")
            .get(pk=receipt.pk)
        )
        if locked.status == ReceiptStatus.VOIDED:
            errors.add("receipt", "该票据已作废", ErrorCode.STATE)
        errors.raise_if_any()
        return _void_locked(locked, acting_user=acting_user, reason=text)


def reissue_receipt(
    *,
    acting_user: User | None,
    receipt: Receipt,
    reason: str,
    payer_name: str | None = None,
    payer_reference: str | None = None,
    issued_on: date | None = None,
) -> Receipt:
    """Void ``receipt`` (unless already voided) and issue a new number for the same payment.

    The new receipt references the voided one (``reissue_of``) and keeps its items and amount; the
    payer's name and reference may be corrected (the usual reason for 换开).
    """
    with transaction.atomic():
        _check_actor(acting_user, receipt.issuer)
        errors = ErrorCollector()
        text = _clean_reason(errors, reason)
        locked = (
            Receipt.objects.select_for_update(of=("self",))
            .select_related("issuer", "payer_member", "payer_unit", "payer_union")
            .get(pk=receipt.pk)
        )
        successor = Receipt.objects.filter(reissue_of=locked).first()
        if successor is not None:
            errors.add(
                "receipt",
                f"该票据已换开为 {successor.code}-{successor.number_text}",
                ErrorCode.STATE,
            )
        payer = locked.payer_member or locked.payer_unit or locked.payer_union
        name, reference = _clean_payer(
            errors,
            payer_name=locked.payer_name if payer_name is None else payer_name,
            payer_kind=locked.payer_kind,
            payer_reference=locked.payer_reference if payer_reference is None else payer_reference,
            payer=payer,
        )
        day = issued_on or timezone.localdate()
        _clean_date(errors, day)
        errors.raise_if_any()
        if locked.status == ReceiptStatus.ISSUED:
            _void_locked(locked, acting_user=acting_user, reason=f"换开：{text}")
        new = _issue_locked(
            acting_user=acting_user,
            issuer=locked.issuer,
            payer_name=name,
            payer_kind=locked.payer_kind,
            payer_reference=reference,
            payer=payer,
            payer_org_path=locked.payer_org_path,
            items=list(locked.items),
            total_fen=locked.total_fen,
            issued_on=day,
            source_type=locked.source_type,
            source_id=locked.source_id,
            reissue_of=locked,
        )
        record_event(
            actor=acting_user,
            event=ReceiptEvent.REISSUED,
            obj=new,
            organisation_id=locked.issuer_id,
            detail={
                "old": f"{locked.code}-{locked.number_text}",
                "new": f"{new.code}-{new.number_text}",
            },
        )
        return new


def record_receipt_download(*, acting_user: User, receipt: Receipt, file_format: str) -> None:
    """Audit a staff download of a receipt file (it carries the payer's name)."""
    with transaction.atomic():
        record_event(
            actor=acting_user,
            event=ReceiptEvent.DOWNLOADED,
            obj=receipt,
            organisation_id=receipt.issuer_id,
            detail={"number": f"{receipt.code}-{receipt.number_text}", "format": file_format},
        )
