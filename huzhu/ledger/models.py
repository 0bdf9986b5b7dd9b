"""The mutual-aid fund's double-entry ledger (RULES.md §7, R9, R10, S15, S16).

Shape
- ``Account``: the chart of RULES.md §7, seeded by migration 0002 (never edited by the app).
- ``Fund``: one pooling area (省级统筹: the provincial federation). Entries are numbered per fund
  and year. A fund is opened for the root of the union tree by its first posting.
- ``JournalEntry`` / ``JournalLine``: one balanced entry per money movement (debits = credits,
  each line > 0 on exactly one side, at least two lines). Entries and lines are append-only:
  corrections are reversing entries (``reverses``, at most one reversal per entry).
- ``ClosedPeriod``: a closed accounting period (YYYY-MM) of a fund refuses postings.
- ``EntrySequence``: the per-(fund, year) counter row that numbers entries without gaps or
  duplicates (locked with ``select_for_update``, S16).
- ``AccountBalance``: the running balance of each (fund, account), changed only by ``F()``
  updates in the posting transaction; accounts that must not go negative (the bank account 1001
  and the risk reserve 3101, S15) carry a database check. ``verify-ledger`` recomputes them.

Scoping (S5, R16, R17): the fund belongs to the provincial federation, but every entry carries
the organisation that originated the movement (the enrolling union of an invoice, the member's
union for a benefit, the finance office that booked a cost) with its path, so a city's finance
staff see the entries of their subtree and the province sees all. Because every entry balances,
any subtree's trial balance balances too.

Database invariants (migration 0003): on PostgreSQL a DEFERRABLE INITIALLY DEFERRED constraint
trigger checks at commit that every entry has ≥ 2 lines and debits = credits = ``total_fen``;
on both databases triggers refuse UPDATE and DELETE of entries, lines and closed periods, and
refuse an entry dated in a closed period. The check constraints below hold on both.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from huzhu.orgs.models import Union, User


class AccountKind(models.TextChoices):
    ASSET = "asset", "资产"
    LIABILITY = "liability", "负债"
    EQUITY = "equity", "净资产"
    INCOME = "income", "收入"
    EXPENSE = "expense", "支出"


class Side(models.TextChoices):
    DEBIT = "debit", "借"
    CREDIT = "credit", "贷"


class PartyType(models.TextChoices):
    """Sub-ledger parties (辅助核算对象) of receivables and payables."""

    UNIT = "unit", "用人单位"
    UNION = "union", "工会"
    MEMBER = "member", "职工"
    HOSPITAL = "hospital", "医疗机构"


class SourceType(models.TextChoices):
    """The business object a posting comes from; with ``source_id`` and ``purpose`` it makes a
    posting idempotent (a retried call returns the entry already posted)."""

    CONTRIBUTION_INVOICE = "contribution_invoice", "缴费通知"
    CONTRIBUTION_PAYMENT = "contribution_payment", "缴费到账"
    RESERVE_ALLOCATION = "reserve_allocation", "计提风险储备金"
    BENEFIT = "benefit", "补助金核定"
    BENEFIT_PAYMENT = "benefit_payment", "补助金支付"
    OPERATING_COST = "operating_cost", "运营成本"
    HEALTH_SPENDING = "health_spending", "健康服务支出"
    REVERSAL = "reversal", "冲销"


class Account(models.Model):
    code = models.CharField("科目编码", max_length=8, unique=True)
    name = models.CharField("科目名称", max_length=60)
    kind = models.CharField("类别", max_length=16, choices=AccountKind.choices)
    normal_side = models.CharField("余额方向", max_length=8, choices=Side.choices)
    #: Comma-separated ``PartyType`` values a line of this account must name (empty: no party).
    party_types = models.CharField("辅助核算对象", max_length=60, blank=True)
    #: False for the bank account and the risk reserve: their balance may never go below zero.
    may_be_negative = models.BooleanField("允许负余额", default=True)

    class Meta:
        verbose_name = "会计科目"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=AccountKind.values), name="ledger_account_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(normal_side__in=Side.values), name="ledger_account_side_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def allowed_party_types(self) -> frozenset[str]:
        return frozenset(p for p in self.party_types.split(",") if p)

    def signed(self, debit_fen: int, credit_fen: int) -> int:
        """A movement as a change of this account's balance on its normal side."""
        if self.normal_side == Side.DEBIT:
            return debit_fen - credit_fen
        return credit_fen - debit_fen


class Fund(models.Model):
    """A pooling area's mutual-aid fund (互助基金), owned by the federation that pools it."""

    organisation = models.OneToOneField(Union, on_delete=models.PROTECT, related_name="fund")
    organisation_path = models.CharField(max_length=255, unique=True, editable=False)
    name = models.CharField("基金名称", max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "互助基金"
        ordering = ["organisation_path"]

    def __str__(self) -> str:
        return self.name


class EntrySequence(models.Model):
    """The last number given to an entry of (fund, year): incremented under a row lock."""

    fund = models.ForeignKey(Fund, on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["fund", "year"], name="ledger_sequence_unique"),
        ]


class AccountBalance(models.Model):
    """Running balance of (fund, account) on the account's normal side, in fen."""

    fund = models.ForeignKey(Fund, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    balance_fen = models.BigIntegerField(default=0)
    may_be_negative = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["fund", "account"], name="ledger_balance_unique"),
            models.CheckConstraint(
                condition=Q(may_be_negative=True) | Q(balance_fen__gte=0),
                name="ledger_balance_not_negative",
            ),
        ]


class JournalEntry(models.Model):
    """A posted voucher (记账凭证). Never updated or deleted (database triggers)."""

    fund = models.ForeignKey(Fund, on_delete=models.PROTECT, related_name="entries")
    organisation = models.ForeignKey(
        Union, on_delete=models.PROTECT, related_name="+", verbose_name="发生组织"
    )
    organisation_path = models.CharField(max_length=255, editable=False)
    year = models.PositiveSmallIntegerField("年度")
    number = models.PositiveIntegerField("凭证号")
    date = models.DateField("记账日期")
    period = models.CharField("会计期间", max_length=7)
    memo = models.CharField("摘要", max_length=200)
    source_type = models.CharField("业务类型", max_length=32, choices=SourceType.choices)
    source_id = models.CharField("业务编号", max_length=64)
    purpose = models.CharField("用途", max_length=32, blank=True)
    reverses = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversal",
        verbose_name="冲销的凭证",
    )
    total_fen = models.BigIntegerField("金额（分）")
    posted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    posted_at = models.DateTimeField("记账时间", default=timezone.now)

    class Meta:
        verbose_name = "记账凭证"
        constraints = [
            models.UniqueConstraint(
                fields=["fund", "year", "number"], name="ledger_entry_number_unique"
            ),
            models.UniqueConstraint(
                fields=["source_type", "source_id", "purpose"], name="ledger_entry_idempotent"
            ),
            models.CheckConstraint(
                condition=Q(source_type__in=SourceType.values),
                name="ledger_entry_source_type_valid",
            ),
            models.CheckConstraint(condition=Q(number__gt=0), name="ledger_entry_number_positive"),
            models.CheckConstraint(
                condition=Q(total_fen__gt=0), name="ledger_entry_total_positive"
            ),
            models.CheckConstraint(
                condition=(
                    Q(reverses__isnull=True) & ~Q(source_type=SourceType.REVERSAL)
                    | Q(reverses__isnull=False, source_type=SourceType.REVERSAL)
                ),
                name="ledger_entry_reversal_linked",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation_path", "id"], name="ledger_entry_scope_idx"),
            models.Index(fields=["fund", "period"], name="ledger_entry_period_idx"),
            models.Index(fields=["fund", "date"], name="ledger_entry_date_idx"),
        ]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"{self.year}-{self.number:06d}"


class JournalLine(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lines")
    debit_fen = models.BigIntegerField("借方（分）", default=0)
    credit_fen = models.BigIntegerField("贷方（分）", default=0)
    party_type = models.CharField("往来对象类型", max_length=16, blank=True)
    party_id = models.CharField("往来对象编号", max_length=64, blank=True)
    #: The party's name when posted (a voucher records its counterparty as it was).
    party_name = models.CharField("往来对象", max_length=100, blank=True)

    class Meta:
        verbose_name = "凭证分录"
        constraints = [
            models.CheckConstraint(
                condition=Q(debit_fen__gt=0, credit_fen=0) | Q(credit_fen__gt=0, debit_fen=0),
                name="ledger_line_one_side_positive",
            ),
            models.CheckConstraint(
                condition=Q(party_type="", party_id="")
                | (Q(party_type__in=PartyType.values) & ~Q(party_id="")),
                name="ledger_line_party_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "entry"], name="ledger_line_account_idx"),
            models.Index(fields=["party_type", "party_id"], name="ledger_line_party_idx"),
        ]

    @property
    def amount_fen(self) -> int:
        return self.debit_fen or self.credit_fen


class ClosedPeriod(models.Model):
    """A closed accounting period (结账) of a fund: no entry may be dated in it any more."""

    fund = models.ForeignKey(Fund, on_delete=models.PROTECT, related_name="closed_periods")
    period = models.CharField("会计期间", max_length=7)
    closed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField("结账时间", default=timezone.now)

    class Meta:
        verbose_name = "已结账期间"
        constraints = [
            models.UniqueConstraint(fields=["fund", "period"], name="ledger_period_closed_once"),
        ]
