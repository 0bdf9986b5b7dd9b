"""Forms of the claim review screens (parsing only: ``huzhu.claims.review`` validates)."""

from __future__ import annotations

from typing import Any

from django import forms

from huzhu.claims.pricing import Policy
from huzhu.claims.review import NOTE_MAX, POLICY_FIELDS, RejectionCode
from huzhu.core.money import format_fen, parse_yuan
from huzhu.rules.lumpsum import MILD_DISEASES, SEVERE_DISEASES, Severity
from huzhu.web.forms import StaffForm


def _note_field(label: str, *, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=NOTE_MAX,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class NoteForm(StaffForm):
    note = _note_field("审核意见", help_text="选填，将记入审核记录")


class ApproveForm(StaffForm):
    """The first approval; for a critical illness the reviewer confirms the disease and how
    severe it is (the diagnosis documents decide, RULES.md §5)."""

    note = _note_field("审核意见", help_text="选填，将记入审核记录")
    disease = forms.TypedChoiceField(
        label="确认病种",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[
            ("", "请选择"),
            *[(n, f"{n}. {name}") for n, name in SEVERE_DISEASES.items()],
        ],
        help_text="按《重大疾病保险的疾病定义使用规范（2020年修订版）》；轻度疾病选择对应的病种编号",
    )
    severity = forms.ChoiceField(
        label="疾病程度",
        required=False,
        choices=[("", "请选择"), (Severity.SEVERE.value, "重度"), (Severity.MILD.value, "轻度")],
        help_text="轻度仅适用于：" + "、".join(MILD_DISEASES.values()),
    )

    def __init__(self, *args: Any, lump_sum: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not lump_sum:
            del self.fields["disease"]
            del self.fields["severity"]


class SendBackForm(StaffForm):
    note = _note_field("退回原因", help_text="必填，说明需要初审人补充或更正的内容")


class RejectForm(StaffForm):
    code = forms.ChoiceField(
        label="不予给付原因",
        required=False,
        choices=[("", "请选择"), *RejectionCode.choices],
    )
    note = _note_field("说明", help_text="原因为“其他”时必填；职工可见")


class AppealForm(StaffForm):
    reason = _note_field("申诉理由", help_text="代职工登记申诉（每项申请仅可申诉一次）")


class RevealForm(StaffForm):
    reason = forms.CharField(
        label="查看原因",
        max_length=200,
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": "例如：核对出院诊断与病种", "autocomplete": "off"}
        ),
    )


class PolicyForm(StaffForm):
    """The review policy; amounts entered in yuan, the rest as whole numbers."""

    def __init__(self, *args: Any, policy: Policy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label, money, _low, _high in POLICY_FIELDS:
            current = getattr(policy, name)
            field: forms.Field
            if money:
                field = forms.CharField(
                    label=f"{label}（元）",
                    required=False,
                    initial=format_fen(current),
                    widget=forms.TextInput(attrs={"inputmode": "decimal"}),
                )
            else:
                field = forms.CharField(
                    label=label,
                    required=False,
                    initial=str(current),
                    widget=forms.TextInput(attrs={"inputmode": "numeric"}),
                )
            field.widget.attrs["class"] = "form-control"
            self.fields[name] = field
        self.fields[
            "auto_approve_limit_fen"
        ].help_text = "一站式结算补助金额不超过此数且无风险提示的，自动核准"
        self.fields[
            "second_approval_limit_fen"
        ].help_text = "核准金额超过此数的，须由市（州）总工会审核人员复核"
        self.fields["large_amount_fen"].help_text = "补助金额达到此数的，提示“大额补助”并转人工审核"
        self.fields[
            "many_claims_count"
        ].help_text = "同一职工年度内理赔达到此次数的，提示并转人工审核"
        self.fields["new_enrollment_days"].help_text = "参保后此天数内入院的，提示并转人工审核"

    def limits(self) -> dict[str, int] | None:
        """The values in fen / whole numbers, or None after adding errors to the fields."""
        values: dict[str, int] = {}
        for name, label, money, _low, _high in POLICY_FIELDS:
            raw = str(self.cleaned_data.get(name) or "").strip()
            if not raw:
                self.add_error(name, f"请填写{label}")
                continue
            if money:
                try:
                    values[name] = parse_yuan(raw)
                except ValueError as exc:
                    self.add_error(name, str(exc))
            elif raw.isascii() and raw.isdigit() and len(raw) < 10:
                values[name] = int(raw)
            else:
                self.add_error(name, f"{label}应为整数")
        return None if self.errors else values
