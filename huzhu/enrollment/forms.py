"""Forms of the enrollment pages (inputs accept only declared fields, S7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from django import forms
from django.core.files.uploadedfile import UploadedFile

from huzhu.enrollment.roster import MAX_FILE_BYTES, file_kind

ALLOWED_SUFFIXES = {".xlsx": "xlsx", ".xls": "xls", ".csv": "csv"}


class NewBatchForm(forms.Form):
    union = forms.TypedChoiceField(label="参保工会", coerce=int)
    plan_year = forms.TypedChoiceField(label="保障年度", coerce=int)

    def __init__(
        self, *args: Any, unions: list[tuple[int, str]], years: list[int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["union"]).choices = unions
        cast(forms.ChoiceField, self.fields["plan_year"]).choices = [(y, f"{y}年度") for y in years]
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select"


class UploadForm(forms.Form):
    file = forms.FileField(
        label="花名册文件", help_text=".xlsx、.xls 或 CSV（UTF-8 / GBK），不超过 30 MB"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].widget.attrs.update(
            {"class": "form-control", "accept": ".xlsx,.xls,.csv"}
        )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        suffix = Path(upload.name or "").suffix.lower()
        if suffix not in ALLOWED_SUFFIXES:
            raise forms.ValidationError("只能上传 .xlsx、.xls 或 .csv 文件")
        if (upload.size or 0) > MAX_FILE_BYTES:
            raise forms.ValidationError(f"文件过大（不能超过 {MAX_FILE_BYTES // 1024 // 1024} MB）")
        head = upload.read(4096)
        upload.seek(0)
        kind = file_kind(head)
        expected = ALLOWED_SUFFIXES[suffix]
        if expected == "csv" and (kind != "csv" or b"\x00" in head):
            raise forms.ValidationError("文件内容不是 CSV 文本，请检查文件类型")
        if expected in ("xlsx", "xls") and kind == "csv":
            raise forms.ValidationError("文件内容不是 Excel 工作簿，请检查文件类型")
        return upload


class ConfirmForm(forms.Form):
    accept_invalid_rows = forms.BooleanField(label="跳过有错误的行，只导入有效行", required=False)
    include_family = forms.BooleanField(
        label="同时为这些职工已登记的家庭成员参加家庭成员住院互助", required=False
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label="原因", max_length=200, min_length=2)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].widget.attrs["class"] = "form-control"


class RenewForm(forms.Form):
    year = forms.TypedChoiceField(label="续保年度", coerce=int)

    def __init__(self, *args: Any, years: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["year"]).choices = [
            (y, f"{y}年度（由{y - 1}年度续保）") for y in years
        ]
        self.fields["year"].widget.attrs["class"] = "form-select"


class LeftUnitForm(forms.Form):
    left_on = forms.DateField(label="离开单位日期", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["left_on"].widget.attrs["class"] = "form-control"
