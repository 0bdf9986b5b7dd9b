"""Manual claims (R13, R5): a hospitalization that is not in the settlement feed, a critical
illness, a maternity, or a family member's hospitalization, filed by a unit clerk with the
documents (invoice, settlement sheet, discharge record, pathology report, birth certificate).

Filing (``file_manual_claim``)
- Hospital products (inpatient, special_outpatient, family_inpatient): the 2304 amounts are
  entered from the settlement sheet (yuan strings, ``parse_yuan``), checked as RULES.md §3
  (``amount_errors``), plus ``other_reimbursed`` (what other insurance already paid; it lowers
  the base). The record is priced at once in the insured person's locked year
  (``huzhu.claims.services.price_claim(manual=True)``): status SUBMITTED for review, or REJECTED
  with the engine's reason. Its engine key is ``"M" + claim number``.
- Lump sums (critical_illness, maternity): the claim is filed SUBMITTED with benefit 0 and the
  claimed facts in ``Claim.lump_sum`` (``diagnosis_date``/``disease_claimed``/
  ``severity_claimed``, or ``birth_date``/``newborns``); a reviewer confirms them and prices the
  claim with ``price_lump_sum`` at approval.
- Refused (Chinese ``InvalidInput`` naming the field, nothing written): a filing after the plan's
  ``claim_deadline`` (the plan of the admission, diagnosis or birth year); a hospitalization
  (person + admission date + med_type) that already has a claim that is not cancelled — one-stop
  or manual; a rejected claim is answered by its appeal (R15), and an engine-rejected record may
  still count in the year (deductible), so it blocks too; a second live critical-illness claim of
  the same disease and severity in a year, or a second live maternity claim of one birth event;
  missing required documents (``REQUIRED_DOCUMENTS``); a document of the wrong type or size.
- Why the claim is manual (``FilingReason``) is kept in ``Claim.lump_sum["filing"]`` and in the
  first step of the claim's history.

Documents (``add_document``, ``document_content``)
- PDF, JPEG or PNG only, recognised by their first bytes (magic numbers) and consistent with the
  file name's extension; at most ``HUZHU_CLAIM_DOCUMENT_MAX_BYTES`` (10 MiB) each; stored
  AES-256-GCM encrypted (``ClaimDocument.content_enc`` holds the base64 of the bytes) with their
  SHA-256; added only while the claim is submitted, in review or appealed.
- Reading a document's content is a view of unmasked personal data (S8): audited with the stated
  purpose, and the SHA-256 is verified.

Lump sums at approval — the contract for the review workflow
    ``price_lump_sum(claim, acting_user, *, disease=None, severity=None) -> LumpSum``
- ``claim``: a critical_illness or maternity claim in SUBMITTED, IN_REVIEW, SECOND_REVIEW or
  APPEALED, not priced yet (``"priced" not in claim.lump_sum``; else ``ConflictError``).
- ``acting_user``: the reviewer (needs ``Perm.CLAIM_REVIEW``; else ``NotPermitted``).
- ``disease`` (1–28, ``SEVERE_DISEASES``) and ``severity`` (``"severe"``/``"mild"``; mild only
  for diseases 1–3, ``MILD_DISEASES``) are REQUIRED for critical illness — the reviewer's
  confirmation, which may differ from what was claimed; ignored for maternity (newborns and the
  birth date are the filed ones). Invalid values raise ``InvalidInput`` (fields ``disease``,
  ``severity``).
- Runs in the caller's transaction when there is one (else its own): reads the person's
  coverage as of now (``find_insured``: a share confirmed paid after the filing counts), locks
  the person's ``BenefitYear`` row of the product and year (state
  ``CriticalIllnessState.to_json()``, or ``{"events": [...], "paid_total": fen}`` for maternity;
  a birth event's key is made of the ID blind index, never the ID number), computes with
  ``huzhu.rules.lumpsum`` under the plan of the diagnosis/birth date, stores the new state, and
  sets on the claim: ``benefit_fen`` (the amount), ``reason`` (the engine's code when the amount
  is 0: ``DUPLICATE``, ``NOT_COVERED``, ``CAP_REACHED``), ``explanation`` (with ``"text"``), the
  plan version, and ``lump_sum`` ``disease``/``severity`` confirmed plus ``"priced"`` (what was
  added to the year). Writes a claim step and the audit event ``claims.lump_sum_priced``.
- It does NOT change the status and posts nothing to the ledger: the caller approves (or rejects
  an amount of 0) and posts ``claim.benefit_fen`` as for any other claim.
- ``release_lump_sum(claim, *, acting_user, cause) -> int`` takes a priced lump sum back out of
  the year state (a rejection after pricing, a second approver's refusal, a cancellation) and
  returns the amount released; the caller reverses any ledger posting (``post_change``) and sets
  the status. Later claims of the year are not re-priced (RULES.md §5 has no re-pricing of lump
  sums).
- On the instance passed in, the priced fields are updated too (``benefit_fen``, ``reason``,
  ``explanation``, ``lump_sum``…), so the caller reads the amount from ``claim.benefit_fen``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from huzhu.claims.access import access_claim
from huzhu.claims.intake import SettleRecord, canonical_hash
from huzhu.claims.models import (
    BenefitYear,
    Claim,
    ClaimDocument,
    ClaimKind,
    ClaimStatus,
    DocumentType,
    Product,
)
from huzhu.claims.pricing import (
    Insured,
    add_step,
    engine_plans,
    find_insured,
    member_info,
    new_claim_number,
    plan_versions_for,
    record_plan_use,
    version_by_code,
)
from huzhu.claims.services import price_claim
from huzhu.core.audit import record_event, register_event_labels
from huzhu.core.errors import ConflictError, ErrorCode, ErrorCollector, FieldError, InvalidInput
from huzhu.core.money import format_fen, parse_yuan
from huzhu.members.models import FamilyMember, Member
from huzhu.orgs.access import NotPermitted, require
from huzhu.orgs.models import User
from huzhu.orgs.roles import Perm
from huzhu.rules.engine import Amounts, amount_errors
from huzhu.rules.lumpsum import (
    MILD_DISEASES,
    SEVERE_DISEASES,
    CriticalIllnessState,
    LumpSum,
    MaternityState,
    Severity,
    birth_event_key,
    critical_illness,
    maternity,
)
from huzhu.rules.plan import Plan, PlanVersions

EVENT_MANUAL_FILED = "claims.manual_filed"
EVENT_DOCUMENT_ADDED = "claims.document_added"
EVENT_DOCUMENT_VIEWED = "claims.document_viewed"
EVENT_LUMP_SUM_PRICED = "claims.lump_sum_priced"
EVENT_LUMP_SUM_RELEASED = "claims.lump_sum_released"
register_event_labels(
    {
        EVENT_MANUAL_FILED: "提交手工理赔申请",
        EVENT_DOCUMENT_ADDED: "上传理赔材料",
        EVENT_DOCUMENT_VIEWED: "查阅理赔材料（医疗文书明文）",
        EVENT_LUMP_SUM_PRICED: "核定一次性补助金额（重大疾病/生育）",
        EVENT_LUMP_SUM_RELEASED: "撤回已核定的一次性补助",
    }
)


class FilingReason(models.TextChoices):
    """Why a hospitalization is claimed manually instead of through the settlement feed."""

    OUT_OF_PROVINCE = "out_of_province", "异地就医（省外就医，未能一站式结算）"
    NOT_IN_FEED = "not_in_feed", "医保结算数据未传送（本地就医未能一站式结算）"
    OTHER = "other", "其他原因"


#: The band-priced products a manual claim can be filed for (RULES.md §4).
HOSPITAL_PRODUCTS: tuple[str, ...] = (
    Product.INPATIENT,
    Product.SPECIAL_OUTPATIENT,
    Product.FAMILY_INPATIENT,
)
#: Lump sums (RULES.md §5): priced by a reviewer at approval (``price_lump_sum``).
LUMP_SUM_PRODUCTS: tuple[str, ...] = (Product.CRITICAL_ILLNESS, Product.MATERNITY)

#: Documents a filing must carry, per product.
REQUIRED_DOCUMENTS: Mapping[str, tuple[str, ...]] = {
    Product.INPATIENT: (
        DocumentType.INVOICE,
        DocumentType.SETTLEMENT_SHEET,
        DocumentType.DISCHARGE_RECORD,
    ),
    Product.FAMILY_INPATIENT: (
        DocumentType.INVOICE,
        DocumentType.SETTLEMENT_SHEET,
        DocumentType.DISCHARGE_RECORD,
    ),
    # An outpatient treatment has no discharge record.
    Product.SPECIAL_OUTPATIENT: (DocumentType.INVOICE, DocumentType.SETTLEMENT_SHEET),
    Product.CRITICAL_ILLNESS: (DocumentType.PATHOLOGY_REPORT,),
    Product.MATERNITY: (DocumentType.BIRTH_CERTIFICATE,),
}

#: Claim statuses in which documents may still be added.
DOCUMENT_OPEN_STATUSES: tuple[str, ...] = (
    ClaimStatus.SUBMITTED,
    ClaimStatus.IN_REVIEW,
    ClaimStatus.APPEALED,
)
#: Statuses in which a lump sum may be priced (before the decision).
LUMP_SUM_PRICEABLE: tuple[str, ...] = (
    ClaimStatus.SUBMITTED,
    ClaimStatus.IN_REVIEW,
    ClaimStatus.SECOND_REVIEW,
    ClaimStatus.APPEALED,
)

#: National med_type codes a manual filing may name (``reference/settlement-fields.md``).
MED_TYPE_LABELS: Mapping[str, str] = {
    "21": "普通住院",
    "52": "生育住院",
    "14": "门诊慢特病",
    "11": "普通门诊",
}

#: The 2304 amounts entered from the settlement sheet, plus ``other_reimbursed``:
#: (field, Chinese label, required). An optional amount left empty is 0.
AMOUNT_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("medfee_sumamt", "医疗费总额", True),
    ("inscp_scp_amt", "符合政策范围金额", True),
    ("fund_pay_sumamt", "基金支付总额", True),
    ("hosp_part_amt", "医院负担金额", False),
    ("fulamt_ownpay_amt", "全自费金额", False),
    ("overlmt_selfpay", "超限价自费费用", False),
    ("preselfpay_amt", "先行自付金额", False),
    ("psn_part_amt", "个人负担总金额", False),
    ("other_reimbursed", "其他已报销金额", False),
)

MAX_DOCUMENTS_PER_CLAIM = 30
MAX_DIAGNOSES = 30
MAX_NEWBORNS = 10
DEFAULT_MAX_DOCUMENT_BYTES = 10 * 1024 * 1024

_DIAG_RE = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?(?:[+*][0-9A-Z.]{0,8})?")
_HOSPITAL_CODE_RE = re.compile(r"[0-9A-Za-z_\-]{1,40}")


def today() -> date:
    """The filing day (China Standard Time); tests move it to check the deadline."""
    return timezone.localdate()


def max_document_bytes() -> int:
    return int(getattr(settings, "HUZHU_CLAIM_DOCUMENT_MAX_BYTES", DEFAULT_MAX_DOCUMENT_BYTES))


# --- input -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DocumentUpload:
    """One uploaded file: its declared type, the client's file name, and its bytes.

    Callers may pass the first ``max_document_bytes() + 1`` bytes of a larger upload: the size
    check then refuses it without reading the rest.
    """

    doc_type: str
    filename: str
    content: bytes


@dataclass(frozen=True)
class ManualClaimInput:
    """A manual filing as entered (form or API); ``file_manual_claim`` validates all of it.

    Field names are the error keys (and the form's and the API's field names).
    """

    product: str
    family_member_id: int | None = None
    # hospital products
    channel_reason: str = ""
    channel_note: str = ""
    med_type: str = ""
    adm_date: date | None = None
    dscg_date: date | None = None
    settle_date: date | None = None
    hospital_name: str = ""
    hospital_code: str = ""
    #: Yuan strings keyed by the names of ``AMOUNT_FIELDS``.
    figures: Mapping[str, str] = field(default_factory=dict)
    diagnoses: tuple[str, ...] = ()
    # critical illness
    diagnosis_date: date | None = None
    disease: int | None = None
    severity: str = ""
    # maternity
    birth_date: date | None = None
    newborns: int | None = None


@dataclass(frozen=True)
class _Checked:
    """What validation produced for the transaction."""

    event_date: date
    date_field: str
    amounts: Amounts | None
    diagnoses: tuple[str, ...]
    documents: list[tuple[DocumentUpload, str]]
    family: FamilyMember | None


# --- documents -------------------------------------------------------------------------------
#: (content type, first bytes, file name extensions, label)
_SIGNATURES: tuple[tuple[str, bytes, tuple[str, ...], str], ...] = (
    ("application/pdf", b"%PDF-", (".pdf",), "PDF"),
    ("image/jpeg", b"\xff\xd8\xff", (".jpg", ".jpeg"), "JPEG"),
    ("image/png", b"\x89PNG\r\n\x1a\n", (".png",), "PNG"),
)
ALLOWED_EXTENSIONS = tuple(ext for _, _, exts, _ in _SIGNATURES for ext in exts)


def clean_filename(name: str) -> str:
    """The base name without path parts or control characters, at most 200 characters (the
    extension kept)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else base[:200]
    return base


def _size_text(size: int) -> str:
    mib = 1024 * 1024
    return f"{size // mib} MB" if size % mib == 0 else f"{size} 字节"


def document_errors(upload: DocumentUpload) -> tuple[str, list[str]]:
    """The content type recognised from the file's first bytes, and the Chinese problems
    (empty when the file is acceptable). The extension must agree with the content."""
    problems: list[str] = []
    name = clean_filename(upload.filename)
    label = f"文件“{name or '（无文件名）'}”"
    size = len(upload.content)
    limit = max_document_bytes()
    if size == 0:
        problems.append(f"{label}为空文件")
        return "", problems
    if size > limit:
        problems.append(f"{label}过大：每个文件不能超过 {_size_text(limit)}")
        return "", problems
    detected = next((s for s in _SIGNATURES if upload.content.startswith(s[1])), None)
    extension = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    expected = next((s for s in _SIGNATURES if extension in s[2]), None)
    if expected is None:
        problems.append(f"{label}：只接受 PDF、JPEG、PNG 文件（扩展名 .pdf、.jpg、.jpeg、.png）")
    elif detected is None:
        problems.append(f"{label}：文件内容不是有效的 PDF、JPEG 或 PNG")
    elif detected is not expected:
        problems.append(
            f"{label}：文件内容（{detected[3]}）与扩展名（{expected[3]}）不符，请上传原始文件"
        )
    return (detected[0] if detected else ""), problems


def _store_document(
    claim: Claim, upload: DocumentUpload, content_type: str, acting_user: User | None
) -> ClaimDocument:
    return ClaimDocument.objects.create(
        claim=claim,
        doc_type=upload.doc_type,
        filename=clean_filename(upload.filename) or "document",
        content_type=content_type,
        size=len(upload.content),
        sha256=hashlib.sha256(upload.content).hexdigest(),
        content_enc=base64.b64encode(upload.content).decode("ascii"),
        uploaded_by=acting_user,
    )


def add_document(
    *, acting_user: User, claim: Claim, doc_type: str, filename: str, content: bytes
) -> ClaimDocument:
    """Add one document to a claim that is still submitted, in review or appealed (audited)."""
    upload = DocumentUpload(doc_type, filename, content)
    content_type, problems = document_errors(upload)
    errors = ErrorCollector()
    if doc_type not in DocumentType.values:
        errors.add(
            "doc_type", "材料类型无效", ErrorCode.REQUIRED if not doc_type else ErrorCode.INVALID
        )
    for problem in problems:
        errors.add("file", problem)
    errors.raise_if_any()
    with transaction.atomic(durable=True):
        locked = Claim.objects.select_for_update().get(pk=claim.pk)
        if locked.status not in DOCUMENT_OPEN_STATUSES:
            raise InvalidInput(
                [
                    FieldError(
                        "file",
                        f"该申请当前状态为“{locked.get_status_display()}”，不能再补充材料"
                        "（仅已提交、审核中、申诉中的申请可以补充）",
                        ErrorCode.STATE,
                    )
                ]
            )
        if locked.documents.count() >= MAX_DOCUMENTS_PER_CLAIM:
            raise InvalidInput(
                [FieldError("file", f"每件申请最多 {MAX_DOCUMENTS_PER_CLAIM} 份材料")]
            )
        document = _store_document(locked, upload, content_type, acting_user)
        record_event(
            actor=acting_user,
            event=EVENT_DOCUMENT_ADDED,
            obj=document,
            organisation_id=locked.union_id,
            detail={
                "claim": locked.number,
                "doc_type": document.doc_type,
                "size": document.size,
            },
        )
    return document


def access_document(actor: User, document_id: int, perm: Perm = Perm.CLAIM_VIEW) -> ClaimDocument:
    """A document of a claim in the actor's subtree (else ``NotPermitted``: 404); without its
    content (read it with ``document_content``)."""
    require(actor, perm)
    document = (
        ClaimDocument.objects.defer("content_enc")
        .select_related("claim")
        .filter(pk=document_id)
        .first()
    )
    if document is None:
        raise NotPermitted("材料不存在")
    access_claim(actor, document.claim_id, perm)
    return document


class DocumentIntegrityError(Exception):
    """A stored document no longer matches its SHA-256."""


def document_content(actor: User, document: ClaimDocument, *, purpose: str = "") -> bytes:
    """The document's bytes for ``actor`` (scope checked again), audited as a view of unmasked
    personal data (S8) with its purpose; the SHA-256 is verified."""
    claim = access_claim(actor, document.claim_id, Perm.CLAIM_VIEW)
    stated = (purpose or "").strip()[:200] or f"理赔材料查阅（申请 {claim.number}）"
    with transaction.atomic():
        record_event(
            actor=actor,
            event=EVENT_DOCUMENT_VIEWED,
            obj=document,
            organisation_id=claim.union_id,
            detail={"claim": claim.number, "doc_type": document.doc_type, "reason": stated},
        )
    stored = ClaimDocument.objects.only("content_enc", "sha256").get(pk=document.pk)
    content = base64.b64decode(str(stored.content_enc))
    if hashlib.sha256(content).hexdigest() != stored.sha256:
        raise DocumentIntegrityError(f"材料 {document.pk} 的内容与其校验值不符")
    return content


# --- filing ----------------------------------------------------------------------------------
def _plans_for(member: Member, year: int) -> Plan | PlanVersions | None:
    versions = plan_versions_for(member.union, year)
    return engine_plans(versions) if versions else None


def _select(plans: Plan | PlanVersions, day: date) -> Plan:
    return plans.select(day) if isinstance(plans, PlanVersions) else plans


def _parse_figures(figures: Mapping[str, str], errors: ErrorCollector) -> dict[str, int]:
    fen: dict[str, int] = {}
    known = {name for name, _, _ in AMOUNT_FIELDS}
    for name in figures:
        if name not in known:
            errors.add(name, f"不接受的金额字段“{name}”")
    for name, label, required in AMOUNT_FIELDS:
        text = (figures.get(name) or "").strip()
        if not text:
            if required:
                errors.add(name, f"请填写{label}（元，最多两位小数）", ErrorCode.REQUIRED)
            else:
                fen[name] = 0
            continue
        try:
            fen[name] = parse_yuan(text)
        except ValueError:
            errors.add(name, f"{label}格式不正确：应为不小于 0 的数，最多两位小数（如 1234.50）")
    return fen


def _check_hospital(
    data: ManualClaimInput, now: date, errors: ErrorCollector
) -> tuple[Amounts | None, tuple[str, ...]]:
    if data.channel_reason not in FilingReason.values:
        errors.add("channel_reason", "请选择手工申请的原因", ErrorCode.REQUIRED)
    elif data.channel_reason == FilingReason.OTHER and len(data.channel_note.strip()) < 2:
        errors.add("channel_note", "原因为“其他原因”时请说明具体情况", ErrorCode.REQUIRED)
    if len(data.channel_note) > 200:
        errors.add("channel_note", "说明不能超过 200 个字")
    if not data.med_type:
        errors.add("med_type", "请选择医疗类别", ErrorCode.REQUIRED)
    elif data.med_type not in MED_TYPE_LABELS:
        errors.add("med_type", "医疗类别无效")
    adm, dscg, settle = data.adm_date, data.dscg_date, data.settle_date
    if adm is None:
        errors.add("adm_date", "请填写入院（就诊）日期", ErrorCode.REQUIRED)
    elif adm > now:
        errors.add("adm_date", "入院（就诊）日期不能晚于今天")
    if dscg is None and data.product != Product.SPECIAL_OUTPATIENT:
        errors.add("dscg_date", "请填写出院日期", ErrorCode.REQUIRED)
    elif dscg is not None and adm is not None and dscg < adm:
        errors.add("dscg_date", "出院日期不能早于入院日期")
    elif dscg is not None and dscg > now:
        errors.add("dscg_date", "出院日期不能晚于今天")
    if settle is None:
        errors.add("settle_date", "请填写医保结算日期（结算单上的日期）", ErrorCode.REQUIRED)
    elif adm is not None and settle < adm:
        errors.add("settle_date", "结算日期不能早于入院（就诊）日期")
    elif settle > now:
        errors.add("settle_date", "结算日期不能晚于今天")
    if not data.hospital_name.strip():
        errors.add("hospital_name", "请填写医疗机构名称", ErrorCode.REQUIRED)
    elif len(data.hospital_name.strip()) > 100:
        errors.add("hospital_name", "医疗机构名称不能超过 100 个字")
    code = data.hospital_code.strip()
    if code and _HOSPITAL_CODE_RE.fullmatch(code) is None:
        errors.add("hospital_code", "医疗机构编码只能包含字母、数字、下划线和连字符，最长 40 位")
    diagnoses = _check_diagnoses(data.diagnoses, errors)
    before = len(errors.errors)
    fen = _parse_figures(data.figures, errors)
    if len(errors.errors) > before:
        return None, diagnoses
    amounts = Amounts(
        medfee_sumamt=fen["medfee_sumamt"],
        inscp_scp_amt=fen["inscp_scp_amt"],
        fund_pay_sumamt=fen["fund_pay_sumamt"],
        hosp_part_amt=fen["hosp_part_amt"],
        other_reimbursed=fen["other_reimbursed"],
        fulamt_ownpay_amt=fen["fulamt_ownpay_amt"],
        overlmt_selfpay=fen["overlmt_selfpay"],
        preselfpay_amt=fen["preselfpay_amt"],
        psn_part_amt=fen["psn_part_amt"],
    )
    problems = amount_errors(amounts)
    for name, message in problems:
        errors.add(name, message)
    return (None if problems else amounts), diagnoses


def _check_diagnoses(codes: Sequence[str], errors: ErrorCollector) -> tuple[str, ...]:
    cleaned = [c.strip().upper() for c in codes if c and c.strip()]
    if len(cleaned) > MAX_DIAGNOSES:
        errors.add("diagnoses", f"诊断编码不能超过 {MAX_DIAGNOSES} 个")
        return ()
    bad = [c for c in cleaned if _DIAG_RE.fullmatch(c) is None]
    if bad:
        errors.add("diagnoses", "诊断编码应为 ICD-10 编码（如 C34.9），多个编码用分号或逗号分隔")
        return ()
    return tuple(dict.fromkeys(cleaned))


def _check_lump_sum(data: ManualClaimInput, now: date, errors: ErrorCollector) -> date | None:
    if data.product == Product.CRITICAL_ILLNESS:
        day = data.diagnosis_date
        if day is None:
            errors.add("diagnosis_date", "请填写确诊日期", ErrorCode.REQUIRED)
        elif day > now:
            errors.add("diagnosis_date", "确诊日期不能晚于今天")
        severity_ok = data.severity in (Severity.SEVERE.value, Severity.MILD.value)
        if data.disease is None:
            errors.add("disease", "请选择所患疾病", ErrorCode.REQUIRED)
        elif data.disease not in SEVERE_DISEASES:
            errors.add("disease", "疾病编号应为 1–28（《重大疾病保险的疾病定义使用规范》2020版）")
        if not data.severity:
            errors.add("severity", "请选择重疾或轻症", ErrorCode.REQUIRED)
        elif not severity_ok:
            errors.add("severity", "严重程度应为 severe（重疾）或 mild（轻症）")
        elif data.severity == Severity.MILD and data.disease not in MILD_DISEASES:
            name = SEVERE_DISEASES.get(data.disease or 0)
            if name is not None:
                errors.add("severity", f"“{name}”没有轻症形式")
        return day
    day = data.birth_date
    if day is None:
        errors.add("birth_date", "请填写新生儿出生日期", ErrorCode.REQUIRED)
    elif day > now:
        errors.add("birth_date", "出生日期不能晚于今天")
    if data.newborns is None:
        errors.add("newborns", "请填写新生儿人数", ErrorCode.REQUIRED)
    elif not 1 <= data.newborns <= MAX_NEWBORNS:
        errors.add("newborns", f"新生儿人数应为 1–{MAX_NEWBORNS}")
    return day


def _check_documents(
    product: str, documents: Sequence[DocumentUpload], errors: ErrorCollector
) -> list[tuple[DocumentUpload, str]]:
    accepted: list[tuple[DocumentUpload, str]] = []
    if len(documents) > MAX_DOCUMENTS_PER_CLAIM:
        errors.add("documents", f"每件申请最多 {MAX_DOCUMENTS_PER_CLAIM} 份材料")
    for upload in documents:
        where = upload.doc_type
        if upload.doc_type not in DocumentType.values:
            where = "documents"
            errors.add(where, f"材料类型“{upload.doc_type}”无效")
        content_type, problems = document_errors(upload)
        for problem in problems:
            errors.add(where, problem)
        if not problems and where != "documents":
            accepted.append((upload, content_type))
    present = {upload.doc_type for upload in documents}
    for doc_type in REQUIRED_DOCUMENTS.get(product, ()):
        if doc_type not in present:
            errors.add(doc_type, f"请上传{DocumentType(doc_type).label}", ErrorCode.REQUIRED)
    return accepted


def _validate(
    member: Member, data: ManualClaimInput, documents: Sequence[DocumentUpload]
) -> _Checked:
    errors = ErrorCollector()
    now = today()
    if data.product not in Product.values:
        errors.add("product", "请选择保障项目", ErrorCode.REQUIRED)
        errors.raise_if_any()
    family: FamilyMember | None = None
    if data.product == Product.FAMILY_INPATIENT:
        if data.family_member_id is None:
            errors.add("family_member_id", "请选择家庭成员", ErrorCode.REQUIRED)
        else:
            family = (
                FamilyMember.objects.defer("id_number_enc")
                .filter(member=member, pk=data.family_member_id)
                .first()
            )
            if family is None:
                errors.add("family_member_id", "该家庭成员不属于此职工")
    elif data.family_member_id is not None:
        errors.add("family_member_id", "只有“家庭成员住院互助”可以为家庭成员申请")
    amounts: Amounts | None = None
    diagnoses: tuple[str, ...] = ()
    if data.product in HOSPITAL_PRODUCTS:
        amounts, diagnoses = _check_hospital(data, now, errors)
        event_date, date_field = data.adm_date, "adm_date"
    else:
        event_date = _check_lump_sum(data, now, errors)
        if data.product == Product.CRITICAL_ILLNESS:
            diagnoses = _check_diagnoses(data.diagnoses, errors)
        date_field = "diagnosis_date" if data.product == Product.CRITICAL_ILLNESS else "birth_date"
    accepted = _check_documents(data.product, documents, errors)
    errors.raise_if_any()
    assert event_date is not None

    # The plan of the event's year: filing deadline and the products it offers.
    plans = _plans_for(member, event_date.year)
    if plans is None:
        raise InvalidInput(
            [
                FieldError(
                    date_field,
                    f"{event_date.year} 年度没有适用于该职工所在工会的互助保障方案，不能申请",
                )
            ]
        )
    plan = _select(plans, event_date)
    if now > plan.claim_deadline:
        raise InvalidInput(
            [
                FieldError(
                    date_field,
                    f"{plan.year} 年度的理赔申请截止日期为 {plan.claim_deadline.isoformat()}，"
                    f"今天（{now.isoformat()}）已超过申请期限，不能再提交",
                    ErrorCode.STATE,
                )
            ]
        )
    label = Product(data.product).label
    if data.product in HOSPITAL_PRODUCTS:
        product = plan.schedule_products().get(data.product)
        if product is None:
            errors.add("product", f"{plan.name}不含“{label}”")
        elif data.med_type not in product.med_types:
            allowed = "、".join(
                f"{c} {MED_TYPE_LABELS.get(c, '')}".strip() for c in product.med_types
            )
            errors.add("med_type", f"“{label}”只保障以下医疗类别：{allowed}")
    else:
        terms = (
            plan.critical_illness if data.product == Product.CRITICAL_ILLNESS else plan.maternity
        )
        if terms is None:
            errors.add("product", f"{plan.name}不含“{label}”")
    errors.raise_if_any()
    return _Checked(event_date, date_field, amounts, diagnoses, accepted, family)


_DEAD = (ClaimStatus.CANCELLED,)
_DECIDED_AGAINST = (ClaimStatus.CANCELLED, ClaimStatus.REJECTED)


def _duplicate_error(
    data: ManualClaimInput, person_index: str, checked: _Checked
) -> FieldError | None:
    """The filing repeats a claim that is still alive (see the module docstring)."""
    claims = Claim.objects.filter(person_index=person_index)
    if data.product in HOSPITAL_PRODUCTS:
        earlier = (
            claims.filter(adm_date=checked.event_date, med_type=data.med_type)
            .exclude(status__in=_DEAD)
            .order_by("id")
            .first()
        )
        if earlier is None:
            return None
        source = "一站式结算" if earlier.kind == ClaimKind.ONE_STOP else "手工申请"
        return FieldError(
            "adm_date",
            f"该次就医（入院日期 {checked.event_date.isoformat()}，医疗类别 {data.med_type}）"
            f"已有{source}理赔 {earlier.number}（{earlier.get_status_display()}），不能重复申请；"
            "对结果有异议的，请对原申请提出申诉",
            ErrorCode.DUPLICATE,
        )
    live = claims.filter(product=data.product, year=checked.event_date.year).exclude(
        status__in=_DECIDED_AGAINST
    )
    for earlier in live.only("number", "status", "lump_sum"):
        facts = earlier.lump_sum or {}
        if data.product == Product.CRITICAL_ILLNESS:
            disease = facts.get("disease", facts.get("disease_claimed"))
            severity = facts.get("severity", facts.get("severity_claimed"))
            if disease == data.disease and severity in (data.severity, Severity.SEVERE.value):
                return FieldError(
                    "disease",
                    f"该疾病已有重大疾病关爱申请 {earlier.number}"
                    f"（{earlier.get_status_display()}），不能重复申请（轻症后确诊为重疾的，可按重疾申请）",
                    ErrorCode.DUPLICATE,
                )
        elif facts.get("birth_date") == checked.event_date.isoformat():
            return FieldError(
                "birth_date",
                f"该次生育（出生日期 {checked.event_date.isoformat()}）已有生育补助申请 "
                f"{earlier.number}（{earlier.get_status_display()}），每次生育只能申请一次",
                ErrorCode.DUPLICATE,
            )
    return None


def file_manual_claim(
    *,
    acting_user: User,
    member: Member,
    data: ManualClaimInput,
    documents: Sequence[DocumentUpload] = (),
) -> Claim:
    """File a manual claim for ``member`` (or one of their family members) with its documents,
    in one durable transaction (audited). Raises ``InvalidInput`` naming every bad field."""
    checked = _validate(member, data, documents)
    family = checked.family
    person_index = family.id_number_index if family is not None else member.id_number_index
    year = checked.event_date.year
    with transaction.atomic(durable=True):
        # One filing of a member at a time: the duplicate check below cannot race another.
        Member.objects.select_for_update().filter(pk=member.pk).values_list("pk").get()
        problem = _duplicate_error(data, person_index, checked)
        if problem is not None:
            raise InvalidInput([problem])
        insured = find_insured(person_index, year)
        if insured is None or insured.member.pk != member.pk:
            insured = Insured(member, family, person_index, None)
        number = new_claim_number("SG")
        claim = Claim(
            number=number,
            kind=ClaimKind.MANUAL,
            status=ClaimStatus.SUBMITTED,
            member=member,
            family_member=family,
            person_index=person_index,
            union_id=member.union_id,
            union_path=member.union_path,
            unit_id=member.unit_id,
            enrollment=insured.enrollment,
            product=data.product,
            year=year,
            record_key=f"M{number}",
            created_by=acting_user,
            lump_sum=_filing_facts(data, checked),
        )
        if checked.amounts is not None:
            _fill_hospital(claim, data, checked)
        elif checked.diagnoses:
            claim.diagnoses_enc = ";".join(checked.diagnoses)
        claim.save()
        for upload, content_type in checked.documents:
            _store_document(claim, upload, content_type, acting_user)
        add_step(
            claim,
            action="file",
            from_status="",
            acting_user=acting_user,
            note=_filing_note(data, len(checked.documents)),
        )
        if checked.amounts is not None:
            price_claim(
                claim,
                insured,
                _settle_record(claim, data, checked),
                acting_user=acting_user,
                one_stop_answer=False,
                manual=True,
            )
        else:
            add_step(
                claim,
                action="submit",
                from_status="",
                acting_user=acting_user,
                amount_fen=0,
                note="手工申请已提交，待审核确认后核定补助金额",
            )
        record_event(
            actor=acting_user,
            event=EVENT_MANUAL_FILED,
            obj=claim,
            organisation_id=member.union_id,
            detail={
                "number": claim.number,
                "product": claim.product,
                "filing_reason": data.channel_reason,
                "family": family is not None,
                "documents": len(checked.documents),
                "status": claim.status,
                "benefit_fen": claim.benefit_fen,
            },
        )
    return claim


def _filing_facts(data: ManualClaimInput, checked: _Checked) -> dict[str, Any]:
    if data.product in HOSPITAL_PRODUCTS:
        return {"filing": {"reason": data.channel_reason, "note": data.channel_note.strip()}}
    if data.product == Product.CRITICAL_ILLNESS:
        return {
            "diagnosis_date": checked.event_date.isoformat(),
            "disease_claimed": data.disease,
            "severity_claimed": data.severity,
        }
    return {"birth_date": checked.event_date.isoformat(), "newborns": data.newborns}


def _filing_note(data: ManualClaimInput, documents: int) -> str:
    if data.product in HOSPITAL_PRODUCTS:
        why = FilingReason(data.channel_reason).label
        note = data.channel_note.strip()
        return f"手工申请（原因：{why}{('；' + note) if note else ''}），上传材料 {documents} 份"
    return f"手工申请{Product(data.product).label}，上传材料 {documents} 份"


def _fill_hospital(claim: Claim, data: ManualClaimInput, checked: _Checked) -> None:
    amounts = checked.amounts
    assert amounts is not None and data.settle_date is not None
    claim.med_type = data.med_type
    claim.adm_date = data.adm_date
    claim.dscg_date = data.dscg_date
    claim.setl_time = timezone.make_aware(datetime.combine(data.settle_date, time()))
    claim.hospital_code = data.hospital_code.strip()
    claim.hospital_name = data.hospital_name.strip()
    claim.medfee_sumamt = amounts.medfee_sumamt
    claim.inscp_scp_amt = amounts.inscp_scp_amt
    claim.fund_pay_sumamt = amounts.fund_pay_sumamt
    claim.hosp_part_amt = amounts.hosp_part_amt
    claim.other_reimbursed = amounts.other_reimbursed
    claim.fulamt_ownpay_amt = amounts.fulamt_ownpay_amt
    claim.overlmt_selfpay = amounts.overlmt_selfpay
    claim.preselfpay_amt = amounts.preselfpay_amt
    claim.psn_part_amt = amounts.psn_part_amt
    claim.diagnoses_enc = ";".join(checked.diagnoses) if checked.diagnoses else None


def _settle_record(claim: Claim, data: ManualClaimInput, checked: _Checked) -> SettleRecord:
    """The engine's record of the sheet, as the feed would have sent it (no ID number: the
    insured person is already known)."""
    amounts = checked.amounts
    assert amounts is not None and data.adm_date is not None and data.settle_date is not None
    normalized: dict[str, Any] = {
        "manual": {
            "record_key": claim.record_key,
            "med_type": data.med_type,
            "adm_date": data.adm_date.isoformat(),
            "dscg_date": data.dscg_date.isoformat() if data.dscg_date else None,
            "settle_date": data.settle_date.isoformat(),
            **{name: format_fen(getattr(amounts, name)) for name, _, _ in AMOUNT_FIELDS},
        }
    }
    return SettleRecord(
        setl_id=claim.record_key,
        certno="",
        med_type=data.med_type,
        adm_date=data.adm_date,
        dscg_date=data.dscg_date,
        setl_time=datetime.combine(data.settle_date, time()),
        amounts=amounts,
        diagnoses=checked.diagnoses,
        normalized=normalized,
        body_hash=canonical_hash(normalized),
    )


# --- lump sums at approval -------------------------------------------------------------------
def _maternity_state(data: Mapping[str, Any]) -> tuple[MaternityState, int]:
    return MaternityState(frozenset(str(e) for e in data.get("events", []))), int(
        data.get("paid_total", 0)
    )


def _maternity_json(state: MaternityState, paid_total: int) -> dict[str, Any]:
    return {"events": sorted(state.events), "paid_total": paid_total}


def _lock_lump_year(claim: Claim) -> BenefitYear:
    """The (person, product, year) lump-sum state row, created empty if missing, locked."""
    if claim.product == Product.CRITICAL_ILLNESS:
        empty = CriticalIllnessState(year=claim.year).to_json()
    else:
        empty = _maternity_json(MaternityState(), 0)
    BenefitYear.objects.bulk_create(
        [
            BenefitYear(
                person_index=claim.person_index,
                product=claim.product,
                year=claim.year,
                member_id=claim.member_id,
                state=empty,
            )
        ],
        ignore_conflicts=True,
    )
    return BenefitYear.objects.select_for_update().get(
        person_index=claim.person_index, product=claim.product, year=claim.year
    )


def _save_lump_year(row: BenefitYear, state: dict[str, Any], total: int) -> None:
    BenefitYear.objects.filter(pk=row.pk).update(
        state=state, total_fen=total, updated_at=timezone.now()
    )


def price_lump_sum(
    claim: Claim,
    acting_user: User,
    *,
    disease: int | None = None,
    severity: str | None = None,
) -> LumpSum:
    """Price a critical-illness or maternity claim at approval (contract: module docstring)."""
    require(acting_user, Perm.CLAIM_REVIEW)
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        # The lock takes the claim row alone (FOR UPDATE cannot reach the nullable side of the
        # outer joins a select_related of family_member/enrollment would add).
        locked = Claim.objects.select_for_update().get(pk=claim.pk)
        if locked.product not in LUMP_SUM_PRODUCTS:
            raise InvalidInput([FieldError("product", "该申请不是重大疾病关爱或生育补助申请")])
        if locked.status not in LUMP_SUM_PRICEABLE:
            raise ConflictError(
                f"申请 {locked.number} 当前状态为“{locked.get_status_display()}”，不能核定金额"
            )
        if "priced" in (locked.lump_sum or {}):
            raise ConflictError(f"申请 {locked.number} 已核定金额，如需重新核定请先撤回")
        facts = dict(locked.lump_sum or {})
        # Coverage as of now: the share may have been confirmed paid after the filing.
        insured = find_insured(locked.person_index, locked.year)
        if insured is None or insured.member.pk != locked.member_id:
            insured = Insured(
                locked.member, locked.family_member, locked.person_index, locked.enrollment
            )
        locked.enrollment = insured.enrollment
        info = member_info(insured)
        if locked.product == Product.CRITICAL_ILLNESS:
            errors = ErrorCollector()
            if disease is None or disease not in SEVERE_DISEASES:
                errors.add("disease", "请确认疾病编号（1–28）", ErrorCode.REQUIRED)
            if severity not in (Severity.SEVERE.value, Severity.MILD.value):
                errors.add("severity", "请确认重疾（severe）或轻症（mild）", ErrorCode.REQUIRED)
            elif severity == Severity.MILD and disease is not None and disease not in MILD_DISEASES:
                errors.add("severity", f"“{SEVERE_DISEASES.get(disease, '')}”没有轻症形式")
            errors.raise_if_any()
            assert disease is not None and severity is not None
            day = date.fromisoformat(str(facts["diagnosis_date"]))
        else:
            day = date.fromisoformat(str(facts["birth_date"]))
        versions = plan_versions_for(locked.member.union, locked.year)
        if not versions:
            raise InvalidInput(
                [FieldError("product", f"{locked.year} 年度没有适用于该职工的互助保障方案")]
            )
        plan = _select(engine_plans(versions), day)
        row = _lock_lump_year(locked)
        if locked.product == Product.CRITICAL_ILLNESS:
            assert disease is not None and severity is not None
            before = CriticalIllnessState.from_json(row.state)
            previous = dict(before.paid).get(disease)
            result, after = critical_illness(
                plan, before, info, disease=disease, severity=Severity(severity), diagnosis_date=day
            )
            if after is not before:
                _save_lump_year(row, after.to_json(), after.paid_total)
            facts.update(disease=disease, severity=severity)
            facts["priced"] = {
                "amount": result.amount,
                "changed": after is not before,
                "disease": disease,
                "severity": severity,
                "previous_severity": previous.value if previous is not None else None,
            }
        else:
            m_before, paid_total = _maternity_state(row.state)
            key = birth_event_key(locked.person_index, day)
            result, m_after = maternity(
                plan,
                m_before,
                info,
                event_key=key,
                newborns=int(facts["newborns"]),
                birth_date=day,
            )
            changed = m_after is not m_before
            if changed:
                _save_lump_year(
                    row,
                    _maternity_json(m_after, paid_total + result.amount),
                    paid_total + result.amount,
                )
            facts["priced"] = {"amount": result.amount, "changed": changed, "event_key": key}
        version = version_by_code(versions, plan.code)
        if result.amount > 0:
            record_plan_use(version)
        if version is not None:
            locked.plan_version = version
            locked.parameters_hash = version.parameters_hash
        locked.plan_code = plan.code
        locked.lump_sum = facts
        locked.benefit_fen = result.amount
        locked.base_fen = 0
        locked.reason = result.reason.value if result.reason else ""
        locked.explanation = dict(result.explanation)
        locked.reviewed_by = acting_user
        locked.updated_at = timezone.now()
        locked.save(
            update_fields=[
                "enrollment",
                "plan_version",
                "parameters_hash",
                "plan_code",
                "lump_sum",
                "benefit_fen",
                "base_fen",
                "reason",
                "explanation",
                "reviewed_by",
                "updated_at",
            ]
        )
        add_step(
            locked,
            action="price_lump_sum",
            from_status=locked.status,
            acting_user=acting_user,
            amount_fen=result.amount,
            note=f"审核确认后核定{Product(locked.product).label}金额 {format_fen(result.amount)} 元"
            + (f"（{result.reason.label}）" if result.reason else ""),
        )
        record_event(
            actor=acting_user,
            event=EVENT_LUMP_SUM_PRICED,
            obj=locked,
            organisation_id=locked.union_id,
            detail={
                "number": locked.number,
                "product": locked.product,
                "amount_fen": result.amount,
                "reason": locked.reason,
            },
        )
        _copy_priced(claim, locked)
    return result


def release_lump_sum(claim: Claim, *, acting_user: User | None, cause: str) -> int:
    """Take a priced lump sum back out of its year state (contract: module docstring); returns
    the amount released (0 when the claim was not priced)."""
    with transaction.atomic(durable=not transaction.get_connection().in_atomic_block):
        locked = Claim.objects.select_for_update().get(pk=claim.pk)
        facts = dict(locked.lump_sum or {})
        priced = facts.pop("priced", None)
        if not isinstance(priced, dict):
            return 0
        amount = int(priced.get("amount", 0))
        if priced.get("changed"):
            row = _lock_lump_year(locked)
            if locked.product == Product.CRITICAL_ILLNESS:
                state = CriticalIllnessState.from_json(row.state)
                disease = int(priced["disease"])
                previous = priced.get("previous_severity")
                paid = [(d, s) for d, s in state.paid if d != disease]
                if previous:
                    paid.append((disease, Severity(previous)))
                restored = CriticalIllnessState(
                    year=state.year, paid_total=state.paid_total - amount, paid=tuple(paid)
                )
                _save_lump_year(row, restored.to_json(), restored.paid_total)
            else:
                m_state, paid_total = _maternity_state(row.state)
                events = m_state.events - {str(priced["event_key"])}
                _save_lump_year(
                    row,
                    _maternity_json(MaternityState(events), paid_total - amount),
                    paid_total - amount,
                )
        locked.lump_sum = facts
        locked.benefit_fen = 0
        locked.updated_at = timezone.now()
        locked.save(update_fields=["lump_sum", "benefit_fen", "updated_at"])
        add_step(
            locked,
            action="release_lump_sum",
            from_status=locked.status,
            acting_user=acting_user,
            amount_fen=-amount,
            note=f"{cause}：撤回已核定的补助 {format_fen(amount)} 元",
        )
        record_event(
            actor=acting_user,
            event=EVENT_LUMP_SUM_RELEASED,
            obj=locked,
            organisation_id=locked.union_id,
            detail={"number": locked.number, "product": locked.product, "amount_fen": amount},
        )
        _copy_priced(claim, locked)
    return amount


def _copy_priced(target: Claim, source: Claim) -> None:
    """Keep the caller's instance in step with the saved row."""
    for name in (
        "enrollment_id",
        "plan_version_id",
        "parameters_hash",
        "plan_code",
        "lump_sum",
        "benefit_fen",
        "base_fen",
        "reason",
        "explanation",
        "reviewed_by_id",
        "updated_at",
    ):
        setattr(target, name, getattr(source, name))
