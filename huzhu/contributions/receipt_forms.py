"""Forms of the receipt pages: they parse input only; the services validate its meaning."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from huzhu.contributions.receipt_models import ReceiptStatus
from huzhu.orgs.models import Union
from huzhu.web.forms import ScopedUnionMixin, StaffForm


class ReceiptFilterForm(StaffForm):
    payer = forms.CharField(
        label="交款人",
        required=False,
        max_length=100,
        help_text="名称开头的字词，或完整的统一社会信用代码",
    )
    number = forms.CharField(label="票据号码", required=False, max_length=10)
    date_from = forms.DateField(
        label="开票日期自", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="至", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    status = forms.ChoiceField(
        label="状态", required=False, choices=[("", "全部"), *ReceiptStatus.choices]
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "结束日期不能早于开始日期")
        number = (data.get("number") or "").strip()
        if number and not number.isdigit():
            self.add_error("number", "票据号码只能是数字")
        return data


class RangeForm(ScopedUnionMixin):
    """Record a range allocated by the finance department's platform (号段登记)."""

    code = forms.CharField(
        label="票据代码",
        required=False,
        max_length=8,
        help_text="8位：地区2位＋分类2位＋种类2位＋年度2位，按财政票据平台的分配通知填写",
    )
    year = forms.IntegerField(label="年度", required=False, min_value=2000, max_value=2099)
    first_number = forms.CharField(label="起始号码", required=False, max_length=10)
    last_number = forms.CharField(label="终止号码", required=False, max_length=10)
    platform_reference = forms.CharField(label="财政平台分配批次号", required=False, max_length=64)
    note = forms.CharField(label="备注", required=False, max_length=200)

    field_order = ["code", "year", "first_number", "last_number", "platform_reference", "note"]
    service_field_map = {"issuer": "union"}

    def __init__(self, *args: Any, issuers: QuerySet[Union], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_union_field(issuers, label="开票单位")
        self.service_field_map = {**self.service_field_map, "issuer": self.union_field_name}
        self.order_fields([self.union_field_name, *self.field_order])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("year") is None and not self.has_error("year"):
            self.add_error("year", "请填写年度")
        return data


class VoidForm(StaffForm):
    reason = forms.CharField(
        label="作废原因",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "如：交款人名称填写错误"}),
    )


class ReissueForm(StaffForm):
    reason = forms.CharField(label="换开原因", required=False, max_length=200)
    payer_name = forms.CharField(
        label="交款人（更正后）", required=False, max_length=100, help_text="留空则沿用原票据"
    )
    payer_reference = forms.CharField(
        label="交款人代码（更正后）", required=False, max_length=32, help_text="留空则沿用原票据"
    )


class VerifyForm(forms.Form):
    """The public verification form (no login): code, number, check code."""

    code = forms.CharField(
        label="票据代码",
        max_length=8,
        min_length=8,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "class": "form-control"}),
        error_messages={
            "required": "请填写票据代码",
            "min_length": "票据代码为8位数字",
            "max_length": "票据代码为8位数字",
        },
    )
    number = forms.CharField(
        label="票据号码",
        max_length=10,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "class": "form-control"}),
        error_messages={"required": "请填写票据号码", "max_length": "票据号码最多10位数字"},
    )
    check = forms.CharField(
        label="校验码",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "class": "form-control"}),
        error_messages={
            "required": "请填写校验码",
            "min_length": "校验码为6位",
            "max_length": "校验码为6位",
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean_code(self) -> str:
        value = str(self.cleaned_data["code"]).strip()
        if not value.isdigit():
            raise forms.ValidationError("票据代码为8位数字")
        return value

    def clean_number(self) -> int:
        value = str(self.cleaned_data["number"]).strip()
        if not value.isdigit() or int(value) == 0:
            raise forms.ValidationError("票据号码为10位数字")
        return int(value)

    def clean_check(self) -> str:
        return str(self.cleaned_data["check"]).strip().upper()
