"""Forms for organisations and units (parsing only; the services validate, in Chinese)."""

from __future__ import annotations

from typing import Any

from django import forms

from huzhu.orgs.models import Union, Unit, User
from huzhu.orgs.selectors import enrolling_unions_for
from huzhu.orgs.services import allowed_child_kinds
from huzhu.web.forms import ScopedUnionMixin, StaffForm


class UnionForm(StaffForm):
    """A child organisation under ``parent``: only the kinds allowed there are offered."""

    name = forms.CharField(label="名称", max_length=100, required=False)
    kind = forms.ChoiceField(label="组织类型", required=False)
    region_code = forms.CharField(
        label="行政区划代码",
        max_length=6,
        required=False,
        help_text="6位数字（GB/T 2260）；各级总工会、产业工会、工会联合会填写",
    )
    uscc = forms.CharField(
        label="统一社会信用代码",
        max_length=18,
        required=False,
        help_text="基层工会必填（以“81”开头）",
    )
    address = forms.CharField(label="地址", max_length=200, required=False)
    contact_name = forms.CharField(label="联系人", max_length=50, required=False)

    def __init__(self, *args: Any, parent: Union, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kinds = allowed_child_kinds(parent)
        kind_field = self.fields["kind"]
        assert isinstance(kind_field, forms.ChoiceField)
        kind_field.choices = [("", "请选择"), *((k.value, k.label) for k in kinds)]

    def clean_kind(self) -> str:
        kind = str(self.cleaned_data.get("kind") or "")
        if not kind:
            raise forms.ValidationError("请选择组织类型")
        return kind


class UnitForm(ScopedUnionMixin):
    """A unit (employer); its union is one of the enrolling unions in the user's scope."""

    name = forms.CharField(label="单位名称", max_length=100, required=False)
    uscc = forms.CharField(label="统一社会信用代码", max_length=18, required=False)
    address = forms.CharField(label="地址", max_length=200, required=False)
    contact_name = forms.CharField(label="联系人", max_length=50, required=False)
    industry = forms.CharField(label="行业", max_length=50, required=False)

    def __init__(
        self,
        *args: Any,
        user: User,
        union: Union | None = None,
        unit: Unit | None = None,
        **kwargs: Any,
    ) -> None:
        if unit is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": unit.name,
                    "uscc": unit.uscc,
                    "address": unit.address,
                    "contact_name": unit.contact_name,
                    "industry": unit.industry,
                },
            )
        super().__init__(*args, **kwargs)
        self.setup_union_field(
            enrolling_unions_for(user),
            label="所属工会（基层工会或工会联合会）",
            initial=unit.union if unit is not None else union,
        )
        # The union first, as on paper forms.
        self.order_fields(["union", "union_code", "name", "uscc"])
