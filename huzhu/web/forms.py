"""Forms of the staff UI.

Forms only parse input (types, dates, choices); the services validate the meaning and raise
``InvalidInput`` with every field error at once, which ``StaffForm.add_service_errors`` puts beside
the fields. Text fields are therefore not ``required`` here: the service's Chinese message
("姓名不能为空") is shown together with all other errors instead of Django's generic one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from huzhu.core.errors import InvalidInput
from huzhu.orgs.models import Union, subtree_q

_INPUT_CLASS: dict[type[forms.Widget], str] = {
    forms.Select: "form-select",
    forms.SelectMultiple: "form-select",
    forms.CheckboxInput: "form-check-input",
    forms.RadioSelect: "form-check-input",
}


class StaffForm(forms.Form):
    """Bootstrap classes on every widget, ``is-invalid`` on fields with errors, service errors
    mapped onto fields (``service_field_map``: service field name → form field name)."""

    service_field_map: dict[str, str] = {}
    template_name = "web/form_fields.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            css = _INPUT_CLASS.get(type(widget), "form-control")
            existing = widget.attrs.get("class", "")
            if css not in existing.split():
                widget.attrs["class"] = f"{existing} {css}".strip()

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                classes = widget.attrs.get("class", "").split()
                if "is-invalid" not in classes:
                    widget.attrs["class"] = " ".join([*classes, "is-invalid"])

    def add_service_errors(self, exc: InvalidInput) -> None:
        """Show every error of the service beside its field (unknown fields above the form)."""
        for error in exc.errors:
            name = self.service_field_map.get(error.field, error.field)
            self.add_error(name if name in self.fields else None, error.message)


def union_choices(queryset: QuerySet[Union], limit: int) -> list[tuple[str, str]] | None:
    """(id, label) choices for a union select, or None when the scope holds more than ``limit``
    unions (the form then asks for the union's code instead of rendering a huge select)."""
    rows = list(queryset.order_by("path").values_list("pk", "name", "code")[: limit + 1])
    if len(rows) > limit:
        return None
    return [(str(pk), f"{name}（{code}）") for pk, name, code in rows]


class ScopedUnionMixin(StaffForm):
    """A union chosen within the user's scope: a select when the scope is small, otherwise a
    text field for the union's code (统一社会信用代码或行政区划代码). ``clean`` puts the union in
    ``cleaned_data["union_obj"]``."""

    union_limit = 300

    def setup_union_field(
        self, queryset: QuerySet[Union], *, label: str, initial: Union | None = None
    ) -> None:
        self._union_queryset = queryset
        choices = union_choices(queryset, self.union_limit)
        if choices is not None:
            # A CharField rendered as a select: the scope check below gives the one message.
            field: forms.Field = forms.CharField(
                label=label,
                widget=forms.Select(choices=[("", "请选择"), *choices]),
                required=False,
            )
            if initial is not None:
                field.initial = str(initial.pk)
            elif len(choices) == 1:
                field.initial = choices[0][0]
            self.fields["union"] = field
        else:
            field = forms.CharField(
                label=label + "代码",
                required=False,
                help_text="您的管辖范围内工会较多，请输入工会的统一社会信用代码或行政区划代码",
            )
            if initial is not None:
                field.initial = initial.code
            self.fields["union_code"] = field
        # Re-apply the widget classes for the field added after __init__.
        widget = field.widget
        is_select = isinstance(widget, forms.Select)
        widget.attrs["class"] = "form-select" if is_select else "form-control"
        self.service_field_map = {**self.service_field_map, "union": self.union_field_name}

    @property
    def union_field_name(self) -> str:
        return "union" if "union" in self.fields else "union_code"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        name = self.union_field_name
        raw = (data.get(name) or "").strip()
        union: Union | None = None
        if not raw:
            self.add_error(name, "请选择工会组织")
        else:
            qs = self._union_queryset
            if name == "union":
                union = qs.filter(pk=int(raw)).first() if raw.isdigit() else None
            else:
                union = qs.filter(code=raw.upper()).first()
            if union is None:
                self.add_error(name, "该工会组织不存在或不在您的管辖范围内")
        data["union_obj"] = union
        return data


def within(union: Union, field: str = "union_path") -> Any:
    """Rows in ``union``'s subtree (a filter for an already scoped queryset)."""
    return subtree_q(union.path, field)


# --- login ---------------------------------------------------------------------------------------
class LoginForm(StaffForm):
    username = forms.CharField(
        label="用户名",
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label="密码",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("username", "").strip():
            self.add_error("username", "请输入用户名")
        if not data.get("password"):
            self.add_error("password", "请输入密码")
        return data


class OtpForm(StaffForm):
    token = forms.CharField(
        label="动态口令",
        required=False,
        max_length=8,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9]*",
                "autofocus": True,
            }
        ),
        help_text="打开手机上的身份验证器应用，输入当前显示的6位数字",
    )

    def clean_token(self) -> str:
        token = str(self.cleaned_data.get("token") or "").strip().replace(" ", "")
        if not token.isdigit() or len(token) != 6:
            raise forms.ValidationError("请输入6位数字动态口令")
        return token


class PasswordChangeForm(StaffForm):
    old_password = forms.CharField(
        label="原密码",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password1 = forms.CharField(
        label="新密码",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="至少12位，包含大写字母、小写字母、数字、符号中的至少三类；不能包含用户名或"
        "所在组织名称；不能与最近5次使用过的密码相同",
    )
    new_password2 = forms.CharField(
        label="确认新密码",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    service_field_map = {"password": "new_password1"}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("old_password"):
            self.add_error("old_password", "请输入原密码")
        if not data.get("new_password1"):
            self.add_error("new_password1", "请输入新密码")
        elif data.get("new_password1") != data.get("new_password2"):
            self.add_error("new_password2", "两次输入的新密码不一致")
        return data
