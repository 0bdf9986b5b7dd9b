"""Forms of the member portal and its staff pages (parse only; the services validate meaning).

The ID number and secrets are never rendered back into a page (``render_value=False`` and no
initial value): a failed login shows an empty form, so a shared screen keeps nothing.
"""

from __future__ import annotations

from django import forms

from huzhu.portal.models import CorrectionField, CorrectionStatus
from huzhu.web.forms import StaffForm


class _NoEchoText(forms.TextInput):
    """A text input that never renders the submitted value back (ID numbers, codes)."""

    def format_value(self, value: object) -> None:
        return None


class MemberLoginForm(StaffForm):
    id_number = forms.CharField(
        label="身份证号码",
        max_length=18,
        widget=_NoEchoText(attrs={"autocomplete": "username", "inputmode": "text"}),
    )
    password = forms.CharField(
        label="密码",
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ActivationForm(StaffForm):
    id_number = forms.CharField(
        label="身份证号码", max_length=18, widget=_NoEchoText(attrs={"autocomplete": "username"})
    )
    code = forms.CharField(
        label="激活码",
        max_length=32,
        help_text="见工会发给您的《职工互助保障会员服务激活通知书》，字母不区分大小写",
        widget=_NoEchoText(attrs={"autocomplete": "one-time-code", "autocapitalize": "characters"}),
    )
    password = forms.CharField(
        label="设置密码",
        max_length=128,
        strip=False,
        help_text="至少10位，包含大写字母、小写字母、数字、符号中的至少两类，不能包含身份证号码",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="再次输入密码",
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password") and data.get("password2") != data.get("password"):
            self.add_error("password2", "两次输入的密码不一致")
        return data


class CorrectionForm(StaffForm):
    field = forms.ChoiceField(
        label="更正项目", choices=[("", "请选择"), *CorrectionField.choices], required=False
    )
    value = forms.CharField(
        label="正确的内容",
        max_length=200,
        required=False,
        help_text="手机号码、银行账号提交后加密保存，工作人员处理时才可查看",
    )
    reason = forms.CharField(
        label="更正理由",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="例如：姓名有错别字；手机号码已更换；工资卡已更换",
    )


class HandleCorrectionForm(StaffForm):
    status = forms.ChoiceField(
        label="处理结果",
        choices=[
            (CorrectionStatus.DONE.value, "已更正（已在职工信息中修改）"),
            (CorrectionStatus.REJECTED.value, "未予更正"),
        ],
        widget=forms.RadioSelect,
        required=False,
    )
    note = forms.CharField(
        label="处理说明",
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="职工会在会员服务中看到该说明；未予更正时必须填写原因",
    )


class RevealReasonForm(StaffForm):
    reason = forms.CharField(label="查看原因", max_length=200, required=False)
