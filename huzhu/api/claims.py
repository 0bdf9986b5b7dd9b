"""Claims for staff (/claims): the scoped list, a claim's detail with the engine's explanation,
its history and documents, manual filing with the documents, and the documents themselves.

- ``GET /claims`` — claims in the caller's subtree, newest first (keyset: ``after`` = the
  ``next`` of the previous page); filters ``status``, ``product``, ``year``, ``member_id``.
  Lists never carry diagnoses (S7).
- ``GET /claims/{claim_id}`` — the detail: amounts, the explanation in Chinese, the steps, the
  documents' metadata; ICD diagnoses only for reviewers (``claim.review``) who state why
  (``?diagnoses_reason=``, audited like the review screen's reveal, S8), and the disease of a
  critical-illness claim only for reviewers.
- ``POST /claims`` — file a manual claim (multipart/form-data): the claim's fields as form
  fields, the documents as files under their type's name (``invoice``, ``settlement_sheet``,
  ``discharge_record``, ``pathology_report``, ``birth_certificate``, ``other``; each may repeat).
  Required documents depend on the product; everything is validated and stored in one
  transaction (422 names every bad field in Chinese).
- ``POST /claims/{claim_id}/documents`` — add a document while the claim is submitted, in review
  or appealed.
- ``GET /claims/{claim_id}/documents/{document_id}`` — the file itself (audited view of medical
  documents, S8), as an attachment, never cached.

Amounts are strings of yuan with two decimals. Everything is scoped to the caller's subtree (S5):
a claim or document outside it answers 404; a ``member_id`` outside it answers 422.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import ConfigDict, Field

from huzhu.api.auth import actor_of, staff
from huzhu.api.errors import QueryInvalid, error_item, reject_unknown_query, translate
from huzhu.api.schemas import ERRORS_LIST, ERRORS_READ, ERRORS_WRITE
from huzhu.claims import selectors
from huzhu.claims.access import access_claim
from huzhu.claims.manual import (
    AMOUNT_FIELDS,
    DocumentUpload,
    FilingReason,
    ManualClaimInput,
    access_document,
    add_document,
    document_content,
    file_manual_claim,
    max_document_bytes,
)
from huzhu.claims.manual_views import document_response
from huzhu.claims.models import (
    Claim,
    ClaimDocument,
    ClaimStatus,
    DocumentType,
    Product,
)
from huzhu.claims.pricing import FLAG_LABELS
from huzhu.core.errors import ErrorCode, FieldError, InvalidInput
from huzhu.core.money import format_fen
from huzhu.members.selectors import members_for
from huzhu.orgs.access import NotPermitted
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.rules.reasons import Reason

router = Router(tags=["理赔"])

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
OUT_OF_SCOPE_MEMBER = "该职工不存在或不在您的管辖范围内"


# --- schemas -----------------------------------------------------------------------------------
class Ref(Schema):
    id: int
    name: str


class ClaimOut(Schema):
    id: int
    number: str = Field(description="申请编号")
    kind: str = Field(description="one_stop 一站式结算 | manual 手工申请")
    status: str = Field(
        description="quarantined 待授权 | submitted 已提交 | in_review 审核中"
        " | second_review 待复核 | approved 已核准 | rejected 不予给付 | appealed 申诉中"
        " | paid 已支付 | cancelled 已撤销"
    )
    status_label: str
    product: str = Field(description="保障项目代码；未能确定项目时为空")
    product_label: str
    year: int = Field(description="保障年度")
    member: Ref
    family_member: Ref | None = Field(description="为家庭成员申请时的家庭成员")
    union: Ref
    adm_date: date | None = Field(description="入院（就诊）日期；一次性补助为空")
    benefit: str = Field(description="补助金额（元）")
    created_at: datetime


class ClaimPage(Schema):
    items: list[ClaimOut]
    next: int | None = Field(..., description="下一页的 after 参数；null 表示没有更多")


class FlagOut(Schema):
    code: str
    label: str


class FilingOut(Schema):
    reason: str
    reason_label: str
    note: str


class StepOut(Schema):
    action: str
    from_status: str
    to_status: str
    actor: str
    amount: str | None
    note: str
    at: datetime


class DocumentOut(Schema):
    id: int
    doc_type: str
    doc_type_label: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime
    uploaded_by: str | None
    url: str = Field(description="下载地址（查阅会记入审计日志）")


class ClaimDetailOut(ClaimOut):
    med_type: str
    dscg_date: date | None
    settle_date: date | None
    hospital_code: str
    hospital_name: str
    amounts: dict[str, str] = Field(description="结算单金额（元）：2304 字段及 other_reimbursed")
    base: str = Field(description="补助基数（元）")
    reason: str | None = Field(description="金额为 0 的原因代码（RULES.md §4）")
    reason_text: str
    explanation_text: str = Field(description="计算说明（中文）")
    flags: list[FlagOut] = Field(description="风险提示（转人工审核的原因）")
    filing: FilingOut | None = Field(description="手工申请的原因")
    lump_sum: dict[str, Any] | None = Field(
        description="一次性补助的申请事实（生育：出生日期、新生儿人数）；重大疾病的疾病与"
        "严重程度仅审核人员可见"
    )
    diagnoses: list[str] | None = Field(
        description="诊断编码（ICD-10）：仅审核人员在 diagnoses_reason 中说明原因时返回（记入审计"
        "日志），否则为 null"
    )
    rejection_code: str
    rejection_note: str
    appeal_reason: str
    decided_at: datetime | None
    paid_at: datetime | None
    steps: list[StepOut]
    documents: list[DocumentOut]


class ClaimFilingIn(Schema):
    """A manual claim as form fields (the documents are files of the same request)."""

    model_config = ConfigDict(extra="forbid")

    member_id: int = Field(description="职工")
    product: str = Field(
        max_length=20,
        description="inpatient 住院 | special_outpatient 门诊慢特病 | family_inpatient 家庭成员住院"
        " | critical_illness 重大疾病关爱 | maternity 生育补助",
    )
    family_member_id: int | None = Field(None, description="家庭成员（仅 family_inpatient）")
    channel_reason: str = Field(
        "",
        max_length=20,
        description="住院类：手工申请原因 out_of_province 异地就医 | not_in_feed 结算数据未传送"
        " | other 其他",
    )
    channel_note: str = Field("", max_length=200, description="原因说明")
    med_type: str = Field(
        "", max_length=6, description="医疗类别：21 普通住院、52 生育住院、14 门诊慢特病"
    )
    adm_date: date | None = Field(None, description="入院（就诊）日期")
    dscg_date: date | None = Field(None, description="出院日期（门诊慢特病可省略）")
    settle_date: date | None = Field(None, description="医保结算日期")
    hospital_name: str = Field("", max_length=100)
    hospital_code: str = Field("", max_length=40, description="医疗机构编码（可选）")
    medfee_sumamt: str = Field("", max_length=20, description="医疗费总额（元）")
    inscp_scp_amt: str = Field("", max_length=20, description="符合政策范围金额（元）")
    fund_pay_sumamt: str = Field("", max_length=20, description="基金支付总额（元）")
    hosp_part_amt: str = Field("", max_length=20, description="医院负担金额（元），空为 0")
    fulamt_ownpay_amt: str = Field("", max_length=20, description="全自费金额（元），空为 0")
    overlmt_selfpay: str = Field("", max_length=20, description="超限价自费费用（元），空为 0")
    preselfpay_amt: str = Field("", max_length=20, description="先行自付金额（元），空为 0")
    psn_part_amt: str = Field("", max_length=20, description="个人负担总金额（元），空为 0")
    other_reimbursed: str = Field(
        "", max_length=20, description="其他保险已报销金额（元），空为 0；从补助基数中扣除"
    )
    diagnoses: str = Field("", max_length=400, description="诊断编码（ICD-10），以分号或逗号分隔")
    diagnosis_date: date | None = Field(None, description="重大疾病：确诊日期")
    disease: int | None = Field(None, ge=1, le=99, description="重大疾病：疾病编号 1–28")
    severity: str = Field("", max_length=10, description="重大疾病：severe 重疾 | mild 轻症")
    birth_date: date | None = Field(None, description="生育：出生日期")
    newborns: int | None = Field(None, ge=0, le=99, description="生育：新生儿人数")


# --- output ------------------------------------------------------------------------------------
def _ref(obj: Any) -> dict[str, Any] | None:
    return {"id": obj.pk, "name": obj.name} if obj is not None else None


def claim_out(claim: Claim) -> dict[str, Any]:
    return {
        "id": claim.pk,
        "number": claim.number,
        "kind": claim.kind,
        "status": claim.status,
        "status_label": claim.get_status_display(),
        "product": claim.product,
        "product_label": claim.get_product_display() if claim.product else "",
        "year": claim.year,
        "member": _ref(claim.member),
        "family_member": _ref(claim.family_member),
        "union": _ref(claim.union),
        "adm_date": claim.adm_date,
        "benefit": format_fen(claim.benefit_fen),
        "created_at": claim.created_at,
    }


def document_out(document: ClaimDocument) -> dict[str, Any]:
    user = document.uploaded_by
    return {
        "id": document.pk,
        "doc_type": document.doc_type,
        "doc_type_label": document.get_doc_type_display(),
        "filename": document.filename,
        "content_type": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
        "uploaded_at": document.uploaded_at,
        "uploaded_by": user.username if user is not None else None,
        "url": reverse("api:claim-document", args=[document.claim_id, document.pk]),
    }


def _lump_sum_out(claim: Claim, reviewer: bool) -> dict[str, Any] | None:
    facts = {k: v for k, v in (claim.lump_sum or {}).items() if k not in ("filing", "priced")}
    if not facts:
        return None
    if claim.product == Product.CRITICAL_ILLNESS and not reviewer:
        return None  # the disease is a diagnosis (S7)
    return facts


def claim_detail(actor: User, claim: Claim) -> dict[str, Any]:
    reviewer = actor.has_perm_code(Perm.CLAIM_REVIEW)
    data = claim_out(claim)
    filing = (claim.lump_sum or {}).get("filing")
    reason = claim.reason or None
    data.update(
        {
            "med_type": claim.med_type,
            "dscg_date": claim.dscg_date,
            "settle_date": claim.setl_time.date() if claim.setl_time else None,
            "hospital_code": claim.hospital_code,
            "hospital_name": claim.hospital_name,
            "amounts": {
                name: format_fen(getattr(claim, name)) for name, _label, _required in AMOUNT_FIELDS
            },
            "base": format_fen(claim.base_fen),
            "reason": reason,
            "reason_text": Reason(reason).text if reason and reason in Reason.__members__ else "",
            "explanation_text": str((claim.explanation or {}).get("text", "")),
            "flags": [{"code": f, "label": FLAG_LABELS.get(f, f)} for f in claim.flags or []],
            "filing": {
                "reason": filing.get("reason", ""),
                "reason_label": FilingReason(filing["reason"]).label
                if filing.get("reason") in FilingReason.values
                else "",
                "note": filing.get("note", ""),
            }
            if isinstance(filing, dict)
            else None,
            "lump_sum": _lump_sum_out(claim, reviewer),
            "diagnoses": None,
            "rejection_code": claim.rejection_code,
            "rejection_note": claim.rejection_note,
            "appeal_reason": claim.appeal_reason,
            "decided_at": claim.decided_at,
            "paid_at": claim.paid_at,
            "steps": [
                {
                    "action": s.action,
                    "from_status": s.from_status,
                    "to_status": s.to_status,
                    "actor": s.actor_label,
                    "amount": format_fen(s.amount_fen) if s.amount_fen is not None else None,
                    "note": s.note,
                    "at": s.at,
                }
                for s in claim.steps.all()
            ],
            "documents": [
                document_out(d)
                for d in claim.documents.defer("content_enc")
                .select_related("uploaded_by")
                .order_by("id")
            ],
        }
    )
    return data


# --- routes ------------------------------------------------------------------------------------
@router.get(
    "",
    response={200: ClaimPage, **ERRORS_LIST},
    url_name="claim-list",
    summary="理赔申请列表（本组织及下级，最新在前；不含诊断）",
    **staff(Perm.CLAIM_VIEW, collection=True),
)
def list_claims(
    request: HttpRequest,
    status: ClaimStatus | None = None,
    product: Product | None = None,
    year: int | None = Query(None, ge=2000, le=2099),
    member_id: int | None = Query(None, ge=1, description="职工"),
    after: int | None = Query(None, ge=1, description="上一页答复中的 next"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    reject_unknown_query(request, {"status", "product", "year", "member_id", "after", "limit"})
    qs = selectors.claim_list(actor_of(request))
    if status is not None:
        qs = qs.filter(status=status.value)
    if product is not None:
        qs = qs.filter(product=product.value)
    if year is not None:
        qs = qs.filter(year=year)
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    if after is not None:
        qs = qs.filter(pk__lt=after)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [claim_out(c) for c in rows], "next": rows[-1].pk if more else None}


@router.get(
    "/{int:claim_id}",
    response={200: ClaimDetailOut, **ERRORS_READ},
    url_name="claim-detail",
    summary="理赔申请详情：金额、计算说明、办理过程、材料清单",
    **staff(Perm.CLAIM_VIEW),
)
def get_claim(
    request: HttpRequest,
    claim_id: int,
    diagnoses_reason: str = Query(
        "",
        max_length=200,
        description="审核人员查看诊断编码的原因（至少4个字，记入审计日志）；不填则不返回诊断",
    ),
) -> dict[str, Any]:
    reject_unknown_query(request, {"diagnoses_reason"})
    actor = actor_of(request)
    claim = access_claim(actor, claim_id)
    data = claim_detail(actor, claim)
    if diagnoses_reason and actor.has_perm_code(Perm.CLAIM_REVIEW):
        # A view of diagnoses is a view of unmasked personal data: stated and audited (S8).
        from huzhu.claims.review import reveal_diagnoses

        try:
            data["diagnoses"] = reveal_diagnoses(
                acting_user=actor, claim=claim, reason=diagnoses_reason
            )
        except InvalidInput as exc:
            raise QueryInvalid(
                [
                    error_item(["query", "diagnoses_reason"], e.message, str(e.code))
                    for e in exc.errors
                ]
            ) from None
    return data


_UPLOAD_FIELDS = (
    DocumentType.INVOICE,
    DocumentType.SETTLEMENT_SHEET,
    DocumentType.DISCHARGE_RECORD,
    DocumentType.PATHOLOGY_REPORT,
    DocumentType.BIRTH_CERTIFICATE,
    DocumentType.OTHER,
)


def read_upload(doc_type: str, upload: UploadedFile) -> DocumentUpload:
    """At most one byte more than the limit is read: the service refuses a larger file."""
    return DocumentUpload(doc_type, upload.name or "", upload.read(max_document_bytes() + 1))


def _split_codes(text: str) -> tuple[str, ...]:
    return tuple(c for c in text.replace("，", ",").replace("；", ";").replace(",", ";").split(";"))


def filing_input(payload: ClaimFilingIn) -> ManualClaimInput:
    return ManualClaimInput(
        product=payload.product,
        family_member_id=payload.family_member_id,
        channel_reason=payload.channel_reason,
        channel_note=payload.channel_note,
        med_type=payload.med_type.strip(),
        adm_date=payload.adm_date,
        dscg_date=payload.dscg_date,
        settle_date=payload.settle_date,
        hospital_name=payload.hospital_name,
        hospital_code=payload.hospital_code,
        figures={name: getattr(payload, name) for name, _label, _required in AMOUNT_FIELDS},
        diagnoses=_split_codes(payload.diagnoses),
        diagnosis_date=payload.diagnosis_date,
        disease=payload.disease,
        severity=payload.severity.strip(),
        birth_date=payload.birth_date,
        newborns=payload.newborns,
    )


def reject_unknown_form(request: HttpRequest, allowed: set[str]) -> None:
    """Inputs accept only declared fields (S7): django-ninja passes a form's declared fields on
    and drops the rest, so an unknown form field or file is refused here."""
    unknown = sorted((set(request.POST.keys()) | set(request.FILES.keys())) - allowed)
    if unknown:
        raise QueryInvalid(
            [
                error_item(["form", name], translate("extra_forbidden"), "extra_forbidden")
                for name in unknown
            ]
        )


_FILES = File(None, description="材料文件（PDF、JPEG、PNG，每个不超过 10 MB；可多个）")


@router.post(
    "",
    response={201: ClaimDetailOut, **ERRORS_WRITE},
    url_name="claim-list",
    summary="提交手工理赔申请（multipart/form-data：申请字段 + 按材料类型命名的文件）",
    **staff(Perm.CLAIM_FILE, collection=True),
)
def file_claim(
    request: HttpRequest,
    payload: Form[ClaimFilingIn],
    invoice: list[UploadedFile] | None = _FILES,
    settlement_sheet: list[UploadedFile] | None = _FILES,
    discharge_record: list[UploadedFile] | None = _FILES,
    pathology_report: list[UploadedFile] | None = _FILES,
    birth_certificate: list[UploadedFile] | None = _FILES,
    other: list[UploadedFile] | None = _FILES,
) -> Status:
    reject_unknown_form(request, {*ClaimFilingIn.model_fields, *_UPLOAD_FIELDS})
    actor = actor_of(request)
    member = members_for(actor).select_related("union").filter(pk=payload.member_id).first()
    if member is None:
        raise InvalidInput([FieldError("member_id", OUT_OF_SCOPE_MEMBER, ErrorCode.NOT_FOUND)])
    given = {
        DocumentType.INVOICE: invoice,
        DocumentType.SETTLEMENT_SHEET: settlement_sheet,
        DocumentType.DISCHARGE_RECORD: discharge_record,
        DocumentType.PATHOLOGY_REPORT: pathology_report,
        DocumentType.BIRTH_CERTIFICATE: birth_certificate,
        DocumentType.OTHER: other,
    }
    documents = [
        read_upload(doc_type, upload)
        for doc_type in _UPLOAD_FIELDS
        for upload in given[doc_type] or []
    ]
    claim = file_manual_claim(
        acting_user=actor, member=member, data=filing_input(payload), documents=documents
    )
    return Status(201, claim_detail(actor, access_claim(actor, claim.pk)))


class DocumentIn(Schema):
    model_config = ConfigDict(extra="forbid")

    doc_type: str = Field(
        max_length=20,
        description="invoice 发票 | settlement_sheet 结算单 | discharge_record 出院记录"
        " | pathology_report 病理报告/诊断证明 | birth_certificate 出生医学证明 | other 其他",
    )


@router.post(
    "/{int:claim_id}/documents",
    response={201: DocumentOut, **ERRORS_WRITE},
    url_name="claim-documents",
    summary="补充理赔材料（已提交、审核中、申诉中的申请；multipart：doc_type + file）",
    **staff(Perm.CLAIM_FILE),
)
def upload_document(
    request: HttpRequest,
    claim_id: int,
    payload: Form[DocumentIn],
    file: UploadedFile = File(..., description="PDF、JPEG 或 PNG，不超过 10 MB"),  # noqa: B008
) -> Status:
    actor = actor_of(request)
    claim = access_claim(actor, claim_id, Perm.CLAIM_FILE)
    reject_unknown_form(request, {"doc_type", "file"})
    upload = read_upload(payload.doc_type, file)
    document = add_document(
        acting_user=actor,
        claim=claim,
        doc_type=upload.doc_type,
        filename=upload.filename,
        content=upload.content,
    )
    return Status(201, document_out(document))


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_DOWNLOAD = staff(Perm.CLAIM_VIEW)
_DOWNLOAD["openapi_extra"] = {
    **_DOWNLOAD["openapi_extra"],
    "responses": {
        "200": {
            "description": "材料文件",
            "content": dict.fromkeys(("application/pdf", "image/jpeg", "image/png"), _BINARY),
        }
    },
}


@router.get(
    "/{int:claim_id}/documents/{int:document_id}",
    response={**ERRORS_READ},
    url_name="claim-document",
    summary="下载理赔材料（查阅医疗文书，记入审计日志）",
    **_DOWNLOAD,
)
def download_document(
    request: HttpRequest,
    claim_id: int,
    document_id: int,
    purpose: str = Query("", max_length=200, description="查阅目的（记入审计日志）"),
) -> HttpResponse:
    reject_unknown_query(request, {"purpose"})
    actor = actor_of(request)
    document = access_document(actor, document_id)
    if document.claim_id != claim_id:
        raise NotPermitted("材料不存在")
    return document_response(document, document_content(actor, document, purpose=purpose))
