"""Co-funding of contributions (RULES.md §6; R4, R8, R11): split agreements, invoices per
enrollment batch with their payers and per-person lines, payments and refunds.

- ``SplitAgreement``: a unit's agreed split of the per-person contribution (or a federation's, for
  its workers without a unit), dated: the agreement in force on the invoice date applies.
- ``Invoice``: one per enrollment batch (缴费通知), with ``InvoicePayer`` rows (the workers'
  individual total — collected by the enrolling union on their behalf —, each employer, the
  union, and the union's hardship waivers) and one ``InvoiceLine`` per person.
- ``Payment``: a confirmed bank payment of one payer, with its e-receipt and ledger entry.
  Partial payments accumulate; the database refuses a payer paid beyond what it owes.
- ``Refund``: money paid for a person withdrawn before coverage started, per payer.

Amounts are integer fen. The money columns of a payer change only under the invoice's row lock
(``select_for_update``, see ``funding_services``); the check constraints are the backstop.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from huzhu.contributions import funding_split
from huzhu.contributions.receipt_models import Receipt
from huzhu.core.money import format_fen
from huzhu.enrollment.models import Enrollment, EnrollmentBatch
from huzhu.ledger.models import JournalEntry
from huzhu.members.models import Member
from huzhu.orgs.models import Union, Unit, User
from huzhu.plans.models import PlanVersion


class SplitMode(models.TextChoices):
    AMOUNT = funding_split.MODE_AMOUNT, "按金额"
    PERCENT = funding_split.MODE_PERCENT, "按比例"


class SplitAgreement(models.Model):
    """A unit's (or, with ``unit`` empty, a federation's) split of the per-person contribution."""

    union = models.ForeignKey(
        Union, on_delete=models.PROTECT, related_name="+", verbose_name="工会"
    )
    union_path = models.CharField(max_length=255, editable=False)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    valid_from = models.DateField("生效日期")
    mode = models.CharField("约定方式", max_length=8, choices=SplitMode.choices)
    individual_fen = models.BigIntegerField("个人（分）", default=0)
    employer_fen = models.BigIntegerField("单位（分）", default=0)
    union_fen = models.BigIntegerField("工会（分）", default=0)
    #: Amount mode: the plan contribution the amounts were agreed for (they must add up to it).
    basis_fen = models.BigIntegerField("互助金标准（分）", default=0)
    individual_bp = models.PositiveIntegerField("个人比例（万分之一）", default=0)
    union_bp = models.PositiveIntegerField("工会比例（万分之一）", default=0)
    note = models.CharField("备注", max_length=200, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "分担协议"
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=SplitMode.values), name="split_mode_valid"),
            models.CheckConstraint(
                condition=Q(individual_fen__gte=0, employer_fen__gte=0, union_fen__gte=0),
                name="split_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(
                    individual_bp__lte=funding_split.BASIS_POINTS - F("union_bp"),
                ),
                name="split_percent_at_most_100",
            ),
            models.CheckConstraint(
                condition=~Q(mode=funding_split.MODE_AMOUNT)
                | (
                    Q(basis_fen__gt=0)
                    & Q(basis_fen=F("individual_fen") + F("employer_fen") + F("union_fen"))
                ),
                name="split_amounts_add_up",
            ),
            models.CheckConstraint(
                condition=Q(unit__isnull=False)
                | (
                    Q(employer_fen=0)
                    & (
                        Q(mode=funding_split.MODE_AMOUNT)
                        | Q(individual_bp=funding_split.BASIS_POINTS - F("union_bp"))
                    )
                ),
                name="split_federation_no_employer",
            ),
            models.UniqueConstraint(
                fields=["unit", "valid_from"],
                condition=Q(unit__isnull=False),
                name="split_one_per_unit_and_day",
            ),
            models.UniqueConstraint(
                fields=["union", "valid_from"],
                condition=Q(unit__isnull=True),
                name="split_one_per_union_and_day",
            ),
        ]
        indexes = [
            models.Index(fields=["unit", "valid_from"], name="split_unit_idx"),
            models.Index(fields=["union", "valid_from"], name="split_union_idx"),
            models.Index(fields=["union_path", "id"], name="split_scope_idx"),
        ]

    def __str__(self) -> str:
        return f"分担协议 #{self.pk}（{self.valid_from:%Y-%m-%d}起）"

    @property
    def rule(self) -> funding_split.SplitRule:
        return funding_split.SplitRule(
            mode=self.mode,
            individual_fen=self.individual_fen,
            employer_fen=self.employer_fen,
            union_fen=self.union_fen,
            individual_bp=self.individual_bp,
            union_bp=self.union_bp,
        )

    @property
    def employer_bp(self) -> int:
        return funding_split.BASIS_POINTS - self.individual_bp - self.union_bp

    def describe(self) -> str:
        """The agreement in words, as screens and invoices show it."""
        if self.mode == SplitMode.AMOUNT:
            parts = [f"个人 {format_fen(self.individual_fen)} 元"]
            if self.unit_id is not None:
                parts.append(f"单位 {format_fen(self.employer_fen)} 元")
            parts.append(f"工会 {format_fen(self.union_fen)} 元")
            return "，".join(parts)
        parts = [f"个人 {funding_split.format_bp(self.individual_bp)}%"]
        if self.unit_id is not None:
            parts.append(f"单位 {funding_split.format_bp(self.employer_bp)}%（取余数）")
        parts.append(f"工会 {funding_split.format_bp(self.union_bp)}%")
        return "，".join(parts)


class InvoiceStatus(models.TextChoices):
    OPEN = "open", "待缴费"
    PARTIAL = "partial", "部分缴费"
    PAID = "paid", "已缴清"
    CLOSED = "closed", "已撤销"  # every person of the batch withdrew before paying


class Invoice(models.Model):
    """The invoice (缴费通知) of one enrollment batch: what each payer owes (RULES.md §6)."""

    batch = models.OneToOneField(
        EnrollmentBatch, on_delete=models.PROTECT, related_name="invoice", verbose_name="参保批次"
    )
    union = models.ForeignKey(
        Union, on_delete=models.PROTECT, related_name="+", verbose_name="参保工会"
    )
    union_path = models.CharField(max_length=255, editable=False)
    plan_version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="+")
    plan_year = models.PositiveSmallIntegerField("保障年度")
    issued_on = models.DateField("通知日期")
    person_count = models.PositiveIntegerField("人数")
    total_fen = models.BigIntegerField("应缴合计（分）")
    contribution_fen = models.BigIntegerField("每人互助金（分）")
    family_contribution_fen = models.BigIntegerField("家庭成员互助金（分）", null=True, blank=True)
    status = models.CharField(
        "状态", max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.OPEN
    )
    paid_on = models.DateField("缴清日期", null=True, blank=True)
    ledger_entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "缴费通知"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"
            ),
            models.CheckConstraint(condition=Q(total_fen__gt=0), name="invoice_total_positive"),
        ]
        indexes = [
            models.Index(fields=["union_path", "id"], name="invoice_scope_idx"),
            models.Index(fields=["status", "id"], name="invoice_status_idx"),
        ]

    def __str__(self) -> str:
        return f"缴费通知 {self.number}"

    @property
    def number(self) -> str:
        """JF + plan year + six digits: the reference payers write on their bank transfer."""
        return f"JF{self.plan_year}{self.pk:06d}"


class PayerType(models.TextChoices):
    INDIVIDUAL = funding_split.INDIVIDUAL, "职工个人（工会代收）"
    EMPLOYER = funding_split.EMPLOYER, "用人单位"
    UNION = funding_split.UNION, "工会"
    UNION_WAIVER = funding_split.UNION_WAIVER, "工会（困难职工减免）"


class InvoicePayer(models.Model):
    """One payer of an invoice. ``owed_fen`` is what it owes now (``invoiced_fen`` less the shares
    of persons withdrawn since); ``paid_fen`` what it paid; ``refunded_fen`` what was paid back."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payers")
    payer_type = models.CharField("缴费方类型", max_length=16, choices=PayerType.choices)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    name = models.CharField("缴费方", max_length=100)
    invoiced_fen = models.BigIntegerField("通知金额（分）")
    owed_fen = models.BigIntegerField("应缴（分）")
    paid_fen = models.BigIntegerField("已缴（分）", default=0)
    refunded_fen = models.BigIntegerField("已退（分）", default=0)

    class Meta:
        verbose_name = "缴费方"
        ordering = ["invoice", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(payer_type__in=PayerType.values), name="invoice_payer_type_valid"
            ),
            models.CheckConstraint(
                condition=(Q(payer_type=funding_split.EMPLOYER) & Q(unit__isnull=False))
                | (~Q(payer_type=funding_split.EMPLOYER) & Q(unit__isnull=True)),
                name="invoice_payer_unit_iff_employer",
            ),
            models.CheckConstraint(
                condition=Q(owed_fen__gte=0, refunded_fen__gte=0)
                & Q(owed_fen__lte=F("invoiced_fen"))
                & Q(paid_fen__gte=F("refunded_fen")),
                name="invoice_payer_amounts_valid",
            ),
            # Never paid beyond what is owed (S15 backstop of the invoice lock).
            models.CheckConstraint(
                condition=Q(paid_fen__lte=F("owed_fen") + F("refunded_fen")),
                name="invoice_payer_not_overpaid",
            ),
            models.UniqueConstraint(
                fields=["invoice", "payer_type"],
                condition=Q(unit__isnull=True),
                name="invoice_payer_one_per_type",
            ),
            models.UniqueConstraint(
                fields=["invoice", "unit"],
                condition=Q(unit__isnull=False),
                name="invoice_payer_one_per_unit",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def net_paid_fen(self) -> int:
        return self.paid_fen - self.refunded_fen

    @property
    def outstanding_fen(self) -> int:
        return self.owed_fen - self.net_paid_fen

    @property
    def is_settled(self) -> bool:
        return self.outstanding_fen == 0


class InvoiceLine(models.Model):
    """One person's contribution by payer. Removed (``removed_on``) when the person withdraws
    before coverage starts; the line itself is kept as the record of what was invoiced."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    enrollment = models.OneToOneField(
        Enrollment, on_delete=models.PROTECT, related_name="invoice_line"
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    person_name = models.CharField("姓名", max_length=50)
    id_number_masked = models.CharField("身份证号码", max_length=18)
    family = models.BooleanField("家庭成员", default=False)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    hardship = models.BooleanField("困难职工", default=False)
    agreement = models.ForeignKey(
        SplitAgreement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    contribution_fen = models.BigIntegerField("互助金（分）")
    individual_fen = models.BigIntegerField("个人（分）")
    employer_fen = models.BigIntegerField("单位（分）")
    union_fen = models.BigIntegerField("工会（分）")
    waiver_fen = models.BigIntegerField("困难减免（分）")
    removed_on = models.DateField("退出日期", null=True, blank=True)
    removal_entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "缴费明细"
        constraints = [
            models.CheckConstraint(
                condition=Q(contribution_fen__gt=0)
                & Q(individual_fen__gte=0, employer_fen__gte=0, union_fen__gte=0, waiver_fen__gte=0)
                & Q(
                    contribution_fen=F("individual_fen")
                    + F("employer_fen")
                    + F("union_fen")
                    + F("waiver_fen")
                ),
                name="invoice_line_adds_up",
            ),
        ]
        indexes = [models.Index(fields=["invoice", "id"], name="invoice_line_idx")]

    @property
    def parts(self) -> funding_split.Parts:
        return funding_split.Parts(
            self.individual_fen, self.employer_fen, self.union_fen, self.waiver_fen
        )


class Payment(models.Model):
    """A confirmed bank payment (缴费到账) of one payer of an invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    payer = models.ForeignKey(InvoicePayer, on_delete=models.PROTECT, related_name="payments")
    amount_fen = models.BigIntegerField("金额（分）")
    bank_reference = models.CharField("银行流水号", max_length=64)
    paid_on = models.DateField("到账日期")
    #: How much of this payment was paid back (refunds of persons withdrawn before coverage).
    refunded_fen = models.BigIntegerField("已退（分）", default=0)
    #: The payment's valid e-receipt (after a refund: the one reissued for the reduced amount;
    #: empty once the whole payment was refunded).
    receipt = models.ForeignKey(
        Receipt, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ledger_entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registered_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    registered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "缴费记录"
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=F("amount_fen")),
                name="payment_refund_within_amount",
            ),
            models.UniqueConstraint(
                fields=["payer", "bank_reference"], name="payment_bank_reference_unique"
            ),
        ]
        indexes = [models.Index(fields=["invoice", "id"], name="payment_invoice_idx")]

    def __str__(self) -> str:
        return f"缴费 #{self.pk}"

    @property
    def net_fen(self) -> int:
        return self.amount_fen - self.refunded_fen


class Refund(models.Model):
    """Money one payer had paid for a person withdrawn before coverage started, paid back."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="refunds")
    payer = models.ForeignKey(InvoicePayer, on_delete=models.PROTECT, related_name="refunds")
    line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="refunds")
    amount_fen = models.BigIntegerField("金额（分）")
    refunded_on = models.DateField("退费日期")
    ledger_entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    #: Who withdrew the person (the responsible decision, R15) and who processed the refund
    #: (empty: processed automatically right after the withdrawal).
    requested_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    processed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "退费记录"
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_positive"),
            models.UniqueConstraint(fields=["line", "payer"], name="refund_one_per_line_payer"),
        ]
        indexes = [models.Index(fields=["invoice", "id"], name="refund_invoice_idx")]


def _on_enrollment_withdrawn(sender: type[Enrollment], **kwargs: object) -> None:
    from huzhu.contributions.funding_services import on_enrollment_withdrawn

    on_enrollment_withdrawn(sender, **kwargs)


def _connect_withdrawal_receiver() -> None:
    """A withdrawal (``huzhu.enrollment.services.withdraw_enrollment``) is settled right after it
    commits: the person's shares leave the invoice and what was already paid for them is refunded
    (``funding_services.on_enrollment_withdrawn``). Connected here because this module is loaded
    with the app's models, before any service can run."""
    from huzhu.enrollment.services import enrollment_withdrawn

    enrollment_withdrawn.connect(
        _on_enrollment_withdrawn, sender=Enrollment, dispatch_uid="funding_withdrawal_settlement"
    )


_connect_withdrawal_receiver()
