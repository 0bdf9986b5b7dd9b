"""Co-funding over the API (/contributions): invoices of enrollment batches, payments.

- ``GET /contributions/invoices`` — the caller's invoices (``batch_id`` gives a batch's invoice);
- ``POST /contributions/batches/{batch_id}/invoice`` — the invoice of a confirmed batch
  (idempotent: the existing invoice answers 200, a new one 201);
- ``GET /contributions/invoices/{invoice_id}`` — what each payer owes, paid and still owes;
- ``GET /contributions/invoices/{invoice_id}/lines`` — per person (masked ID numbers, S11);
- ``GET|POST /contributions/invoices/{invoice_id}/payments`` — payments; registering one needs
  the finance role (``funding.payment``).

Amounts are strings of yuan with two decimals ("120.00"), never floats. Everything is scoped to
the caller's subtree (S5): an invoice or batch outside it answers 404.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field, field_validator

from huzhu.api.auth import actor_of, staff
from huzhu.api.errors import reject_unknown_query
from huzhu.api.schemas import ERRORS_LIST, ERRORS_READ, ERRORS_WRITE
from huzhu.contributions import funding_selectors as selectors
from huzhu.contributions import funding_services as services
from huzhu.contributions.funding_access import access_batch_for_funding, access_invoice
from huzhu.contributions.funding_models import (
    Invoice,
    InvoiceLine,
    InvoicePayer,
    InvoiceStatus,
    Payment,
)
from huzhu.core.errors import FieldError, InvalidInput
from huzhu.core.money import chinese_capital, format_fen, parse_yuan
from huzhu.orgs.roles import Perm

router = Router(tags=["缴费与分担"])

MAX_LIST = 200
DEFAULT_LINES = 100
MAX_LINES = 1000


class PayerOut(Schema):
    id: int
    payer_type: str = Field(
        description="individual 职工个人（工会代收）| employer 用人单位 | union 工会"
        " | union_waiver 工会（困难职工减免）"
    )
    name: str
    unit_id: int | None
    invoiced: str = Field(description="通知金额（元）")
    owed: str = Field(description="应缴（元）：通知金额减去已退出人员的份额")
    paid: str
    refunded: str
    outstanding: str = Field(description="未缴（元）")
    owed_capital: str = Field(description="应缴金额（大写）")


class InvoiceOut(Schema):
    id: int
    number: str = Field(description="通知编号，转账时注明")
    batch_id: int
    union: dict[str, Any]
    plan_code: str
    plan_year: int
    issued_on: date
    status: str = Field(description="open 待缴费 | partial 部分缴费 | paid 已缴清 | closed 已撤销")
    person_count: int
    contribution: str = Field(description="每人互助金（元）")
    total: str = Field(description="通知合计（元）")
    owed: str
    paid: str
    outstanding: str
    paid_on: date | None = Field(description="缴清日期（最后一笔到账日期）")
    payers: list[PayerOut]


class LineOut(Schema):
    enrollment_id: int
    name: str
    id_number_masked: str
    unit_id: int | None
    family: bool
    hardship: bool
    contribution: str
    individual: str
    employer: str
    union: str
    waiver: str
    removed_on: date | None


class LinePage(Schema):
    items: list[LineOut]
    next: int | None = Field(description="下一页的 after 参数；没有更多时为空")


class PaymentOut(Schema):
    id: int
    payer_id: int
    payer_name: str
    amount: str
    refunded: str
    bank_reference: str
    paid_on: date
    receipt: dict[str, Any] | None = Field(description="电子票据（代码、号码）；全额退费后为空")
    ledger_entry: str | None
    registered_by: str | None
    registered_at: datetime


class PaymentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    payer_id: int = Field(description="缴费方（见缴费通知的 payers）")
    amount: str = Field(description="到账金额（元，最多两位小数）", max_length=16)
    bank_reference: str = Field(max_length=64, description="银行流水号")
    paid_on: date = Field(description="到账日期")

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str) -> str:
        parse_yuan(value.strip())  # ValueError → 422 with the Chinese message
        return value.strip()


def payer_out(p: InvoicePayer) -> dict[str, Any]:
    return {
        "id": p.pk,
        "payer_type": p.payer_type,
        "name": p.name,
        "unit_id": p.unit_id,
        "invoiced": format_fen(p.invoiced_fen),
        "owed": format_fen(p.owed_fen),
        "paid": format_fen(p.paid_fen),
        "refunded": format_fen(p.refunded_fen),
        "outstanding": format_fen(p.outstanding_fen),
        "owed_capital": chinese_capital(p.owed_fen),
    }


def invoice_out(invoice: Invoice) -> dict[str, Any]:
    payers = selectors.invoice_payers(invoice)
    return {
        "id": invoice.pk,
        "number": invoice.number,
        "batch_id": invoice.batch_id,
        "union": {"id": invoice.union.pk, "name": invoice.union.name, "code": invoice.union.code},
        "plan_code": invoice.plan_version.code,
        "plan_year": invoice.plan_year,
        "issued_on": invoice.issued_on,
        "status": invoice.status,
        "person_count": invoice.person_count,
        "contribution": format_fen(invoice.contribution_fen),
        "total": format_fen(invoice.total_fen),
        "owed": format_fen(sum(p.owed_fen for p in payers)),
        "paid": format_fen(sum(p.net_paid_fen for p in payers)),
        "outstanding": format_fen(sum(p.outstanding_fen for p in payers)),
        "paid_on": invoice.paid_on,
        "payers": [payer_out(p) for p in payers],
    }


def line_out(line: InvoiceLine) -> dict[str, Any]:
    return {
        "enrollment_id": line.enrollment_id,
        "name": line.person_name,
        "id_number_masked": line.id_number_masked,
        "unit_id": line.unit_id,
        "family": line.family,
        "hardship": line.hardship,
        "contribution": format_fen(line.contribution_fen),
        "individual": format_fen(line.individual_fen),
        "employer": format_fen(line.employer_fen),
        "union": format_fen(line.union_fen),
        "waiver": format_fen(line.waiver_fen),
        "removed_on": line.removed_on,
    }


def payment_out(p: Payment) -> dict[str, Any]:
    user = p.registered_by
    return {
        "id": p.pk,
        "payer_id": p.payer_id,
        "payer_name": p.payer.name,
        "amount": format_fen(p.amount_fen),
        "refunded": format_fen(p.refunded_fen),
        "bank_reference": p.bank_reference,
        "paid_on": p.paid_on,
        "receipt": {"id": p.receipt.pk, "code": p.receipt.code, "number": p.receipt.number_text}
        if p.receipt is not None
        else None,
        "ledger_entry": p.ledger_entry.display_number if p.ledger_entry is not None else None,
        "registered_by": (user.full_name or user.username) if user is not None else None,
        "registered_at": p.registered_at,
    }


@router.get(
    "/invoices",
    response={200: list[InvoiceOut], **ERRORS_LIST},
    url_name="funding-invoice-list",
    summary="缴费通知列表（本组织及下级，最新在前，最多200条）",
    **staff(Perm.FUNDING_VIEW, collection=True),
)
def list_invoices(
    request: HttpRequest,
    batch_id: int | None = Query(None, ge=1, description="参保批次：该批次的缴费通知"),
    status: InvoiceStatus | None = None,
    year: int | None = Query(None, ge=2000, le=2099),
) -> list[dict[str, Any]]:
    reject_unknown_query(request, {"batch_id", "status", "year"})
    actor = actor_of(request)
    qs = selectors.list_invoices(
        actor, status=status.value if status else "", year=year, batch_id=batch_id
    )
    return [invoice_out(i) for i in qs[:MAX_LIST]]


@router.post(
    "/batches/{int:batch_id}/invoice",
    response={200: InvoiceOut, 201: InvoiceOut, **ERRORS_WRITE},
    url_name="funding-invoice-create",
    summary="生成参保批次的缴费通知（已生成的答复 200 并返回原通知）",
    **staff(Perm.FUNDING_EDIT),
)
def create_invoice(request: HttpRequest, batch_id: int) -> Status:
    actor = actor_of(request)
    batch = access_batch_for_funding(actor, batch_id, Perm.FUNDING_EDIT)
    existed = Invoice.objects.filter(batch=batch).exists()
    invoice = services.create_invoice(acting_user=actor, batch=batch)
    return Status(200 if existed else 201, invoice_out(access_invoice(actor, invoice.pk)))


@router.get(
    "/invoices/{int:invoice_id}",
    response={200: InvoiceOut, **ERRORS_READ},
    url_name="funding-invoice-detail",
    summary="缴费通知：各缴费方应缴、已缴、未缴",
    **staff(Perm.FUNDING_VIEW),
)
def get_invoice(request: HttpRequest, invoice_id: int) -> dict[str, Any]:
    return invoice_out(access_invoice(actor_of(request), invoice_id))


@router.get(
    "/invoices/{int:invoice_id}/lines",
    response={200: LinePage, **ERRORS_READ},
    url_name="funding-invoice-lines",
    summary="缴费明细（每人一行，身份证号码脱敏）",
    **staff(Perm.FUNDING_VIEW),
)
def invoice_lines(
    request: HttpRequest,
    invoice_id: int,
    after: int | None = Query(None, ge=0, description="上一页答复中的 next"),
    limit: int = Query(DEFAULT_LINES, ge=1, le=MAX_LINES),
) -> dict[str, Any]:
    reject_unknown_query(request, {"after", "limit"})
    invoice = access_invoice(actor_of(request), invoice_id)
    qs = selectors.invoice_lines(invoice)
    if after:
        qs = qs.filter(pk__gt=after)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [line_out(r) for r in rows], "next": rows[-1].pk if more else None}


@router.get(
    "/invoices/{int:invoice_id}/payments",
    response={200: list[PaymentOut], **ERRORS_READ},
    url_name="funding-payments",
    summary="缴费通知的到账记录",
    **staff(Perm.FUNDING_VIEW),
)
def list_payments(request: HttpRequest, invoice_id: int) -> list[dict[str, Any]]:
    invoice = access_invoice(actor_of(request), invoice_id)
    return [payment_out(p) for p in selectors.invoice_payments(invoice)]


@router.post(
    "/invoices/{int:invoice_id}/payments",
    response={201: PaymentOut, **ERRORS_WRITE},
    url_name="funding-payments",
    summary="登记缴费到账（财务）：开具电子票据、记账；各方缴清后保障生效",
    **staff(Perm.PAYMENT_REGISTER),
)
def register_payment(request: HttpRequest, invoice_id: int, payload: PaymentIn) -> Status:
    actor = actor_of(request)
    invoice = access_invoice(actor, invoice_id, Perm.PAYMENT_REGISTER)
    payer = InvoicePayer.objects.filter(invoice=invoice, pk=payload.payer_id).first()
    if payer is None:
        raise InvalidInput([FieldError("payer_id", "该缴费方不属于这份缴费通知")])
    payment = services.register_payment(
        acting_user=actor,
        invoice=invoice,
        payer=payer,
        amount_fen=parse_yuan(payload.amount),
        bank_reference=payload.bank_reference,
        paid_on=payload.paid_on,
    )
    fresh = selectors.invoice_payments(invoice).get(pk=payment.pk)
    return Status(201, payment_out(fresh))
