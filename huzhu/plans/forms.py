"""Input forms of the plan screens: they only read and check the upload; the engine validates the
plan and the services store it."""

from __future__ import annotations

from typing import Any

from django import forms

from huzhu.plans.services import MAX_PLAN_TEXT_CHARS

#: S18 uploads checked by type and size: a plan file is a page of YAML.
MAX_UPLOAD_BYTES = 256 * 1024
ALLOWED_SUFFIXES = (".yaml", ".yml")


class PlanUploadForm(forms.Form):
    """A plan file, or its text pasted in (one of the two)."""

    file = forms.FileField(label="方案文件（.yaml）", required=False)
    text = forms.CharField(
        label="或粘贴方案文本",
        required=False,
        strip=False,
        max_length=MAX_PLAN_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "class": "font-monospace"}),
    )

    #: The name of a file already checked once, whose text is now in ``text`` (kept for the record).
    filename = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        text = data.get("text") or ""
        if upload and text.strip():
            raise forms.ValidationError("请上传文件或粘贴文本，二者选其一")
        if upload:
            name = str(upload.name or "")
            if not name.lower().endswith(ALLOWED_SUFFIXES):
                self.add_error("file", "只接受 .yaml 或 .yml 格式的方案文件")
                return data
            if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
                self.add_error("file", f"文件过大（超过 {MAX_UPLOAD_BYTES // 1024} KB）")
                return data
            raw = upload.read(MAX_UPLOAD_BYTES + 1)
            if len(raw) > MAX_UPLOAD_BYTES:
                self.add_error("file", f"文件过大（超过 {MAX_UPLOAD_BYTES // 1024} KB）")
                return data
            if b"\x00" in raw:
                self.add_error("file", "文件不是文本文件")
                return data
            try:
                data["yaml_text"] = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                self.add_error("file", "文件不是 UTF-8 编码（请用 UTF-8 保存后重新上传）")
                return data
            data["filename"] = name
        elif text.strip():
            data["yaml_text"] = text.replace("\r\n", "\n")
            name = str(data.get("filename") or "")
            data["filename"] = name if name.lower().endswith(ALLOWED_SUFFIXES) else ""
        else:
            raise forms.ValidationError("请选择方案文件或粘贴方案文本")
        return data


class PlanTextForm(forms.Form):
    """The YAML text of a new version (copy) or of a draft being corrected."""

    text = forms.CharField(
        label="方案文本（YAML）",
        strip=False,
        max_length=MAX_PLAN_TEXT_CHARS,
        widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "class": "font-monospace"}),
        error_messages={"required": "方案文本不能为空"},
    )

    def clean_text(self) -> str:
        return str(self.cleaned_data["text"]).replace("\r\n", "\n")


class CompareForm(forms.Form):
    a = forms.TypedChoiceField(label="版本甲", coerce=int)
    b = forms.TypedChoiceField(label="版本乙", coerce=int)

    def __init__(self, *args: Any, choices: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("a", "b"):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)
            field.choices = choices
            field.error_messages["invalid_choice"] = "请选择一个方案版本"
            field.error_messages["required"] = "请选择一个方案版本"
