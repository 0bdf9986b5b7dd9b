"""Forms of the co-funding pages: they parse input only; the services validate its meaning."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from huzhu.contributions.funding_models import InvoicePayer, InvoiceStatus, SplitMode
from huzhu.core.money import format_fen, parse_yuan
from huzhu.web.forms import StaffForm


class InvoiceFilterForm(StaffForm):
    status = forms.ChoiceField(
        label="状态", required=False, choices=[("", "全部"), *InvoiceStatus.choices]
    )
    year = forms.IntegerField(label="保障年度", required=False, min_value=2000, max_value=2099)


class SplitForm(StaffForm):
    valid_from = forms.DateField(
        label="生效日期",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="自该日起生成的缴费通知按本协议分担，直到下一份协议生效",
    )
    mode = forms.ChoiceField(
        label="约定方式",
        required=False,
        choices=SplitMode.choices,
        initial=SplitMode.PERCENT,
    )
    individual = forms.CharField(
        label="职工个人",
        required=False,
        max_length=12,
        help_text="按金额：元，如 40.00；按比例：百分数，如 30",
    )
    employer = forms.CharField(
        label="用人单位",
        required=False,
        max_length=12,
        help_text="按比例约定时不填：单位承担个人和工会之外的其余部分",
    )
    union = forms.CharField(label="工会", required=False, max_length=12)
    note = forms.CharField(
        label="备注",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "如：经职代会通过，2026年1月起执行"}),
    )

    def __init__(self, *args: Any, with_employer: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_employer:
            del self.fields["employer"]
            self.fields[
                "individual"
            ].help_text = (
                "按金额：元；按比例：百分数。工会联合会没有用人单位分担，个人与工会合计应为全额"
            )


class PaymentForm(StaffForm):
    payer = forms.ChoiceField(label="缴费方", required=False)
    amount = forms.CharField(
        label="到账金额（元）",
        required=False,
        max_length=16,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "如 3600.00"}),
    )
    bank_reference = forms.CharField(
        label="银行流水号",
        required=False,
        max_length=64,
        help_text="银行回单上的交易流水号或凭证号；同一缴费方的流水号不能重复登记",
    )
    paid_on = forms.DateField(
        label="到账日期",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    service_field_map = {"amount_fen": "amount"}

    def __init__(self, *args: Any, payers: Sequence[InvoicePayer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        open_payers = [p for p in payers if p.outstanding_fen > 0]
        payer_field = self.fields["payer"]
        assert isinstance(payer_field, forms.ChoiceField)
        payer_field.choices = [
            ("", "请选择"),
            *[
                (str(p.pk), f"{p.name}（未缴 {format_fen(p.outstanding_fen)} 元）")
                for p in open_payers
            ],
        ]
        self._payers = {str(p.pk): p for p in payers}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        payer = self._payers.get(data.get("payer") or "")
        if payer is None:
            self.add_error("payer", "请选择缴费方")
        data["payer_obj"] = payer
        text = (data.get("amount") or "").strip()
        data["amount_fen"] = 0
        if not text:
            self.add_error("amount", "请填写到账金额")
        else:
            try:
                data["amount_fen"] = parse_yuan(text)
            except ValueError as exc:
                self.add_error("amount", str(exc))
        if data.get("paid_on") is None and not self.has_error("paid_on"):
            self.add_error("paid_on", "请填写到账日期")
        return data
