"""Forms of the ledger screens: they parse (dates, yuan amounts, choices); the services validate
the meaning and every error is shown beside its field at once (``huzhu.web.forms``)."""

from __future__ import annotations

from typing import Any

from django import forms

from huzhu.core.money import parse_yuan
from huzhu.orgs.models import User
from huzhu.orgs.selectors import unions_for
from huzhu.web.forms import ScopedUnionMixin, StaffForm

SPENDING_KINDS = [
    ("operating_cost", "运营成本（5101）"),
    ("health_spending", "健康服务支出（5201）"),
]
_DATE_ERRORS = {"invalid": "日期格式不正确，应为“年-月-日”，如 2026-03-31"}


def _amount(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return parse_yuan(text)
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


class ReverseForm(StaffForm):
    reason = forms.CharField(
        label="冲销原因",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": 100}),
        help_text="将写入冲销凭证的摘要，不超过100个字",
    )
    date = forms.DateField(
        label="冲销日期",
        required=False,
        error_messages=_DATE_ERRORS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="须在未结账的会计期间，且不早于原凭证日期",
    )


class SpendingForm(ScopedUnionMixin):
    kind = forms.ChoiceField(
        label="支出类别",
        required=False,
        choices=[("", "请选择"), *SPENDING_KINDS],
    )
    date = forms.DateField(
        label="记账日期",
        required=False,
        error_messages=_DATE_ERRORS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    amount = forms.CharField(
        label="金额（元）",
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        help_text="不带符号的数字，最多两位小数，如 1234.50",
    )
    memo = forms.CharField(
        label="摘要",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="写明用途、收款方与审批依据，不超过200个字",
    )
    request_id = forms.CharField(required=False, widget=forms.HiddenInput)

    service_field_map = {"organisation": "union"}

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_union_field(unions_for(user), label="发生组织", initial=user.organisation)
        self.service_field_map = {**self.service_field_map, "organisation": self.union_field_name}

    def clean_kind(self) -> str:
        kind = self.cleaned_data.get("kind") or ""
        if not kind:
            raise forms.ValidationError("请选择支出类别")
        return str(kind)

    def clean_amount(self) -> int | None:
        return _amount(self.cleaned_data.get("amount"))


class ReserveForm(StaffForm):
    amount = forms.CharField(
        label="计提金额（元）",
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    date = forms.DateField(
        label="记账日期",
        required=False,
        error_messages=_DATE_ERRORS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    memo = forms.CharField(
        label="摘要", required=False, help_text="可不填，默认“计提某年度风险储备金”"
    )
    request_id = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_amount(self) -> int | None:
        amount = _amount(self.cleaned_data.get("amount"))
        if amount is None:
            raise forms.ValidationError("请填写计提金额")
        return amount
