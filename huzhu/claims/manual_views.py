"""Staff pages of manual claims (R13): a clerk files a claim for a member of their subtree from the
member's page — product first, then the fields of that product with the documents — and sees the
priced amount with its explanation; staff who may view claims download the documents (audited).

Mounted at ``/claims/manual/`` (namespace ``manual``). After filing, the claim's page of the
review workflow (``claims:detail``) is shown when it exists, else this module's confirmation page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from huzhu.claims.access import access_claim
from huzhu.claims.manual import (
    AMOUNT_FIELDS,
    HOSPITAL_PRODUCTS,
    MED_TYPE_LABELS,
    REQUIRED_DOCUMENTS,
    DocumentUpload,
    FilingReason,
    ManualClaimInput,
    access_document,
    document_content,
    file_manual_claim,
    max_document_bytes,
)
from huzhu.claims.models import Claim, ClaimDocument, DocumentType, Product
from huzhu.core.errors import InvalidInput
from huzhu.core.money import format_fen
from huzhu.members.access import access_member
from huzhu.members.models import Member
from huzhu.orgs.roles import Perm
from huzhu.rules.lumpsum import MILD_DISEASES, SEVERE_DISEASES
from huzhu.web.auth import staff_required, staff_user, url_or_none
from huzhu.web.forms import StaffForm

DATE_ERRORS = {"required": "请填写日期", "invalid": "日期格式应为“年-月-日”，例如 2026-03-01"}

DISEASE_CHOICES = [(str(n), f"{n}. {name}") for n, name in SEVERE_DISEASES.items()]

#: What each product is for, on the product choice page.
PRODUCT_HELP: dict[str, str] = {
    Product.INPATIENT: "职工本人住院，未能在出院时一站式结算（如省外异地就医）",
    Product.SPECIAL_OUTPATIENT: "职工本人门诊慢特病治疗，未能一站式结算",
    Product.FAMILY_INPATIENT: "已参加家庭成员住院互助的家庭成员住院",
    Product.CRITICAL_ILLNESS: "首次确诊重大疾病（28种重疾或3种轻症），凭病理报告或诊断证明",
    Product.MATERNITY: "生育，凭出生医学证明",
}


# --- the form ----------------------------------------------------------------------------------
class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.Field):
    """Any number of files under one name (the service checks type, size and presence)."""

    widget = MultipleFileInput

    def to_python(self, data: Any) -> list[Any]:
        if not data:
            return []
        return list(data) if isinstance(data, list | tuple) else [data]


def _date(label: str) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        error_messages=DATE_ERRORS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class ManualClaimForm(StaffForm):
    """The fields of one product (parsing only; ``file_manual_claim`` validates in Chinese)."""

    service_field_map = {"documents": "__all__"}

    def __init__(self, *args: Any, member: Member, product: str, **kwargs: Any) -> None:
        self.member = member
        self.product = product
        super().__init__(*args, **kwargs)
        fields = self.fields
        if product == Product.FAMILY_INPATIENT:
            choices = [
                (str(f.pk), f"{f.name}（{f.get_relation_display()}，{f.id_number_masked}）")
                for f in member.family.defer("id_number_enc").order_by("pk")
            ]
            fields["family_member_id"] = forms.ChoiceField(
                label="家庭成员", choices=[("", "请选择"), *choices], required=False
            )
        if product in HOSPITAL_PRODUCTS:
            self._hospital_fields()
        elif product == Product.CRITICAL_ILLNESS:
            fields["diagnosis_date"] = _date("确诊日期")
            fields["disease"] = forms.ChoiceField(
                label="所患疾病",
                choices=[
                    ("", "请选择"),
                    *((str(n), f"{n}. {t}") for n, t in SEVERE_DISEASES.items()),
                ],
                required=False,
                help_text="按《重大疾病保险的疾病定义使用规范（2020年修订版）》；审核时确认",
            )
            fields["severity"] = forms.ChoiceField(
                label="严重程度",
                choices=[
                    ("", "请选择"),
                    ("severe", "重疾"),
                    ("mild", "轻症（仅 " + "、".join(MILD_DISEASES.values()) + "）"),
                ],
                required=False,
            )
            fields["diagnoses"] = forms.CharField(
                label="诊断编码（ICD-10，可选）",
                required=False,
                max_length=400,
                help_text="多个编码用分号分隔，如 C34.9",
            )
        else:
            fields["birth_date"] = _date("新生儿出生日期")
            fields["newborns"] = forms.IntegerField(
                label="新生儿人数",
                required=False,
                initial=1,
                error_messages={"invalid": "请填写整数"},
            )
        for doc_type in (*REQUIRED_DOCUMENTS[product], DocumentType.OTHER):
            required = doc_type != DocumentType.OTHER
            fields[doc_type] = MultipleFileField(
                label=DocumentType(doc_type).label + ("（必须上传）" if required else "（可选）"),
                required=False,
                widget=MultipleFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
                help_text="PDF、JPEG 或 PNG，每个文件不超过 "
                f"{max_document_bytes() // (1024 * 1024)} MB，可选择多个文件",
            )
        # Re-apply the widget classes for the fields added after StaffForm.__init__.
        for field in fields.values():
            widget = field.widget
            css = "form-select" if isinstance(widget, forms.Select) else "form-control"
            if css not in widget.attrs.get("class", "").split():
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def _hospital_fields(self) -> None:
        fields = self.fields
        fields["channel_reason"] = forms.ChoiceField(
            label="手工申请原因",
            choices=[("", "请选择"), *FilingReason.choices],
            required=False,
        )
        fields["channel_note"] = forms.CharField(
            label="情况说明", required=False, max_length=200, help_text="如：在北京协和医院住院"
        )
        outpatient = self.product == Product.SPECIAL_OUTPATIENT
        fields["med_type"] = forms.ChoiceField(
            label="医疗类别",
            choices=[("", "请选择"), *((c, f"{c} {t}") for c, t in MED_TYPE_LABELS.items())],
            required=False,
            initial="14" if outpatient else "21",
        )
        fields["adm_date"] = _date("就诊日期" if outpatient else "入院日期")
        if not outpatient:
            fields["dscg_date"] = _date("出院日期")
        fields["settle_date"] = _date("医保结算日期")
        fields["hospital_name"] = forms.CharField(
            label="医疗机构名称", required=False, max_length=100
        )
        fields["hospital_code"] = forms.CharField(
            label="医疗机构编码（可选）", required=False, max_length=40
        )
        for name, label, required in AMOUNT_FIELDS:
            fields[name] = forms.CharField(
                label=label + ("" if required else "（可不填，不填为 0）"),
                required=False,
                max_length=20,
                help_text="按医保结算单填写，单位：元"
                if name != "other_reimbursed"
                else "其他商业保险等已报销的金额，从补助基数中扣除",
                widget=forms.TextInput(attrs={"inputmode": "decimal"}),
            )
        fields["diagnoses"] = forms.CharField(
            label="诊断编码（ICD-10，可选）",
            required=False,
            max_length=400,
            help_text="多个编码用分号分隔，如 K35.9;I10",
        )

    # -- sections for the template --
    def section(self, names: list[str]) -> list[forms.BoundField]:
        return [self[n] for n in names if n in self.fields]

    @property
    def visit_fields(self) -> list[forms.BoundField]:
        return self.section(
            [
                "family_member_id",
                "channel_reason",
                "channel_note",
                "med_type",
                "adm_date",
                "dscg_date",
                "settle_date",
                "hospital_name",
                "hospital_code",
                "diagnosis_date",
                "disease",
                "severity",
                "birth_date",
                "newborns",
                "diagnoses",
            ]
        )

    @property
    def amount_fields(self) -> list[forms.BoundField]:
        return self.section([name for name, _label, _required in AMOUNT_FIELDS])

    @property
    def document_fields(self) -> list[forms.BoundField]:
        return self.section([*REQUIRED_DOCUMENTS[self.product], DocumentType.OTHER])

    # -- to the service --
    def to_input(self) -> ManualClaimInput:
        data = self.cleaned_data
        family = data.get("family_member_id") or ""
        disease = data.get("disease") or ""
        codes = str(data.get("diagnoses") or "").replace("，", ";").replace(",", ";")
        return ManualClaimInput(
            product=self.product,
            family_member_id=int(family) if str(family).isdigit() else None,
            channel_reason=data.get("channel_reason") or "",
            channel_note=data.get("channel_note") or "",
            med_type=data.get("med_type") or "",
            adm_date=data.get("adm_date"),
            dscg_date=data.get("dscg_date"),
            settle_date=data.get("settle_date"),
            hospital_name=data.get("hospital_name") or "",
            hospital_code=data.get("hospital_code") or "",
            figures={
                name: (data.get(name) or "").strip()
                for name, _label, _required in AMOUNT_FIELDS
                if name in self.fields
            },
            diagnoses=tuple(codes.replace("；", ";").split(";")),
            diagnosis_date=data.get("diagnosis_date"),
            disease=int(disease) if str(disease).isdigit() else None,
            severity=data.get("severity") or "",
            birth_date=data.get("birth_date"),
            newborns=data.get("newborns"),
        )

    def documents(self) -> list[DocumentUpload]:
        limit = max_document_bytes()
        return [
            # At most one byte more than the limit is read: the service refuses a larger file.
            DocumentUpload(doc_type, upload.name or "", upload.read(limit + 1))
            for doc_type in (*REQUIRED_DOCUMENTS[self.product], DocumentType.OTHER)
            for upload in self.cleaned_data.get(doc_type) or []
        ]


# --- views -------------------------------------------------------------------------------------
@staff_required(Perm.CLAIM_FILE)
def new(request: HttpRequest, member_id: int) -> HttpResponse:
    """GET without a product: the product choice; with ``?product=``: the form; POST: file."""
    user = staff_user(request)
    member = access_member(user, member_id, Perm.CLAIM_FILE)
    product = request.GET.get("product") or request.POST.get("product", "")
    has_family = member.family.exists()
    if product not in Product.values or (product == Product.FAMILY_INPATIENT and not has_family):
        products = [
            (value, label, PRODUCT_HELP[value])
            for value, label in Product.choices
            if value != Product.FAMILY_INPATIENT or has_family
        ]
        return render(
            request, "claims/manual/choose.html", {"member": member, "products": products}
        )
    form = ManualClaimForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        member=member,
        product=product,
    )
    if request.method == "POST" and form.is_valid():
        try:
            claim = file_manual_claim(
                acting_user=user, member=member, data=form.to_input(), documents=form.documents()
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"已提交手工理赔申请 {claim.number}")
            return redirect(claim_page(claim))
    status = 422 if form.errors else 200
    return render(
        request,
        "claims/manual/form.html",
        {
            "member": member,
            "form": form,
            "product": product,
            "product_label": Product(product).label,
        },
        status=status,
    )


@require_GET
@staff_required(Perm.CLAIM_VIEW)
def filed(request: HttpRequest, claim_id: int) -> HttpResponse:
    """The claim as filed: number, status, the priced amount and why, the documents."""
    user = staff_user(request)
    claim = access_claim(user, claim_id)
    documents = list(ClaimDocument.objects.defer("content_enc").filter(claim=claim).order_by("id"))
    response = render(
        request,
        "claims/manual/filed.html",
        {
            "claim": claim,
            "steps": list(claim.steps.all()),
            "documents": documents,
            "benefit": format_fen(claim.benefit_fen),
            "explanation": str((claim.explanation or {}).get("text", "")),
            "lump_sum_pending": claim.product not in HOSPITAL_PRODUCTS,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@staff_required(Perm.CLAIM_VIEW)
def document(request: HttpRequest, document_id: int) -> HttpResponse:
    """A claim document (audited view of a medical document, S8), as an attachment."""
    user = staff_user(request)
    found = access_document(user, document_id)
    content = document_content(user, found, purpose=request.GET.get("purpose", ""))
    return document_response(found, content)


def document_response(document: ClaimDocument, content: bytes) -> HttpResponse:
    """A medical document as an attachment that no cache keeps (S4, S8)."""
    response = HttpResponse(content, content_type=document.content_type)
    response["Content-Disposition"] = content_disposition_header(True, document.filename)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def claim_page(claim: Claim) -> str:
    """Where a claim is shown: the review workflow's page when it exists, else the confirmation."""
    return url_or_none("claims:detail", claim.pk) or reverse("manual:filed", args=[claim.pk])
