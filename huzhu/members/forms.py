"""Forms for members and their records (parsing only; the services validate, in Chinese)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse

from huzhu.members.models import (
    ConsentChannel,
    EmploymentType,
    FamilyRelation,
    HardshipSource,
    Member,
    RetirementCategoryChoice,
)
from huzhu.members.services import MemberInput, stored_member_input
from huzhu.orgs.models import Union, Unit, User
from huzhu.orgs.selectors import enrolling_unions_for, units_within
from huzhu.web.forms import ScopedUnionMixin, StaffForm

UNIT_SELECT_LIMIT = 500
DATE_ERRORS = {"required": "请填写日期", "invalid": "日期格式应为“年-月-日”，例如 2026-01-31"}


def _date_widget() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class MemberForm(ScopedUnionMixin):
    """Create (``member`` None: union + unit chosen) or edit (union fixed, unit within it).

    On edit the ID number, phone and bank account fields start empty and keep the stored value
    when left empty: the form never shows a plain value (S11).
    """

    name = forms.CharField(label="姓名", max_length=50, required=False)
    id_number = forms.CharField(label="身份证号码", max_length=18, required=False)
    employment_type = forms.ChoiceField(
        label="用工形式",
        choices=[("", "请选择"), *EmploymentType.choices],
        required=False,
    )
    retirement_category = forms.ChoiceField(
        label="退休类别",
        choices=[("", "按身份证号码确定（男职工）"), *RetirementCategoryChoice.choices],
        required=False,
        help_text="女职工须选择“女50”或“女55”；男职工可不选",
    )
    phone = forms.CharField(label="手机号码", max_length=20, required=False)
    bank_account = forms.CharField(label="银行账号", max_length=40, required=False)
    bank_name = forms.CharField(label="开户银行", max_length=60, required=False)
    unit = forms.CharField(label="所在单位", required=False)

    def __init__(
        self,
        *args: Any,
        user: User,
        member: Member | None = None,
        union: Union | None = None,
        unit: Unit | None = None,
        **kwargs: Any,
    ) -> None:
        self.user = user
        self.member = member
        if member is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": member.name,
                    "employment_type": member.employment_type,
                    "retirement_category": member.retirement_category,
                    "bank_name": member.bank_name,
                    "unit": str(member.unit_id or ""),
                },
            )
        else:
            initial = {"employment_type": EmploymentType.CONTRACT.value}
            if unit is not None:
                initial["unit"] = str(unit.pk)
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        if member is None:
            self.setup_union_field(
                enrolling_unions_for(user),
                label="参保工会（基层工会或工会联合会）",
                initial=unit.union if unit is not None else union,
            )
            union_field = self.fields[self.union_field_name]
            # Choosing the union reloads the unit field with that union's units (htmx).
            union_field.widget.attrs.update(
                {
                    "hx-get": reverse("members:unit_field"),
                    "hx-trigger": "change",
                    "hx-target": "#unit-field",
                    "hx-swap": "innerHTML",
                    "hx-include": "this",
                }
            )
            self.order_fields(["union", "union_code", "name", "id_number"])
        else:
            for name, masked in (
                ("id_number", member.id_number_masked),
                ("phone", member.phone_masked),
                ("bank_account", member.bank_account_masked),
            ):
                field = self.fields[name]
                field.widget.attrs["placeholder"] = masked or "（未填写）"
                field.help_text = "不修改请留空" if masked else ""
        self.configure_unit_field(self.current_union())

    # --- the unit field depends on the union --------------------------------------------------
    def current_union(self) -> Union | None:
        if self.member is not None:
            return self.member.union
        name = self.union_field_name
        raw = str(self[name].value() or "").strip()
        if not raw:
            return None
        qs = enrolling_unions_for(self.user)
        if name == "union":
            return qs.filter(pk=int(raw)).first() if raw.isdigit() else None
        return qs.filter(code=raw.upper()).first()

    def configure_unit_field(self, union: Union | None) -> None:
        """A select of the union's units, or a USCC text field when there are too many."""
        field = self.fields["unit"]
        self.unit_mode = "select"
        if union is None:
            field.widget = forms.Select(
                choices=[("", "请先选择参保工会")], attrs={"class": "form-select"}
            )
            return
        rows = list(
            units_within(self.user, union)
            .order_by("name", "pk")
            .values_list("pk", "name")[: UNIT_SELECT_LIMIT + 1]
        )
        empty = "（无单位：新就业形态劳动者）" if union.kind == "federation" else "请选择"
        if len(rows) > UNIT_SELECT_LIMIT:
            self.unit_mode = "uscc"
            field.widget = forms.TextInput(
                attrs={"class": "form-control", "placeholder": "单位的统一社会信用代码"}
            )
            field.help_text = "该工会下单位较多，请输入单位的统一社会信用代码"
            if self.member is not None and self.member.unit is not None and not self.is_bound:
                self.initial["unit"] = self.member.unit.uscc
            return
        field.widget = forms.Select(
            choices=[("", empty), *((str(pk), name) for pk, name in rows)],
            attrs={"class": "form-select"},
        )

    def clean_unit(self) -> Unit | None:
        raw = str(self.cleaned_data.get("unit") or "").strip()
        if not raw:
            return None
        union = self.current_union()
        qs = units_within(self.user, union) if union is not None else Unit.objects.none()
        if self.unit_mode == "select":
            unit = qs.filter(pk=int(raw)).first() if raw.isdigit() else None
        else:
            unit = qs.filter(uscc=raw.upper()).first()
        if unit is None:
            raise forms.ValidationError("所选单位不存在或不属于该工会")
        return unit

    def clean(self) -> dict[str, Any]:
        if self.member is not None:
            # Edit: the union is fixed; skip the union field of the mixin.
            return forms.Form.clean(self) or {}
        return super().clean()

    def to_input(self) -> MemberInput:
        data = self.cleaned_data
        unit: Unit | None = data.get("unit")
        stored = stored_member_input(self.member) if self.member is not None else None

        def keep(name: str) -> str:
            value = str(data.get(name) or "").strip()
            if not value and stored is not None:
                return str(getattr(stored, name))
            return value

        return MemberInput(
            name=data.get("name") or "",
            id_number=keep("id_number"),
            employment_type=data.get("employment_type") or "",
            retirement_category=data.get("retirement_category") or "",
            phone=keep("phone"),
            bank_account=keep("bank_account"),
            bank_name=data.get("bank_name") or "",
            unit_id=unit.pk if unit is not None else None,
        )


class HardshipForm(StaffForm):
    source = forms.ChoiceField(
        label="认定来源", choices=[("", "请选择"), *HardshipSource.choices], required=False
    )
    valid_from = forms.DateField(
        label="起始日期", widget=_date_widget(), error_messages=DATE_ERRORS
    )
    valid_to = forms.DateField(
        label="截止日期",
        widget=_date_widget(),
        required=False,
        error_messages=DATE_ERRORS,
        help_text="长期有效可不填",
    )
    evidence = forms.CharField(
        label="认定依据", max_length=200, required=False, help_text="如民政部门名单批次、档案编号"
    )

    def clean_source(self) -> str:
        source = str(self.cleaned_data.get("source") or "")
        if not source:
            raise forms.ValidationError("请选择认定来源")
        return source


class FamilyForm(StaffForm):
    name = forms.CharField(label="姓名", max_length=50, required=False)
    relation = forms.ChoiceField(
        label="关系", choices=[("", "请选择"), *FamilyRelation.choices], required=False
    )
    id_number = forms.CharField(label="身份证号码", max_length=18, required=False)


class ConsentForm(StaffForm):
    channel = forms.ChoiceField(
        label="授权渠道",
        choices=ConsentChannel.choices,
        initial=ConsentChannel.PAPER_VIA_UNION,
    )


class RevealForm(StaffForm):
    reason = forms.CharField(
        label="查看原因",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "如：核对理赔申请人身份", "autofocus": True}),
    )
