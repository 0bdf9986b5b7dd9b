"""Claims (R12–R15): one-stop settlements from the medical-insurance side, manual claims, review,
appeal and payment.

Shape
- ``Partner``: a settlement partner (the medical-insurance agency or a hospital system) with its
  own key (HMAC, or an SM2 public key), scopes, IP allow-list and the organisation subtree whose
  members it may settle for (S14). ``PartnerNonce`` remembers nonces for the replay window.
- ``Settlement``: one settlement record exactly as received (2304 fields), unique per
  (partner, ``setl_id``) in the database (exactly-once, S14), with the canonical body's hash and the
  answer given, so a repeat answers the same and a different body answers 409. The body (ID number,
  diagnoses) is stored encrypted (S10).
- ``Claim``: a request for a benefit — from a settlement (one-stop) or filed manually — for one
  insured person, one product, one coverage year; its status follows the review workflow of R15.
- ``BenefitYear``: the engine's running state (``huzhu.rules.engine.YearState``) of one insured
  person, product and coverage year; settlements lock this row, so parallel settlements for one
  member never exceed the cap (S16).
- ``ClaimStep``: the claim's visible history (who did what, when, why) — the audit log holds the
  same steps tamper-evidently, but only the audit administrator reads that.
- ``ClaimAdjustment``: a change of an approved claim's amount (cancellation, re-pricing) with the
  ledger entry that posted it.
- ``ClaimDocument``: an uploaded document (invoice, discharge record, …) stored encrypted.
- ``PaymentBatch`` / ``PaymentLine``: benefits paid by bank transfer per union, with the bank's
  result per line; hospital clearing batches for amounts hospitals deducted at discharge.
- ``SettlementFile``: a batch feed file (declared count and total, checked before commit).
- ``ReviewPolicy``: the configurable limits of auto-approval, risk flags and second approval.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from huzhu.core.crypto import EncryptedTextField
from huzhu.enrollment.models import Enrollment
from huzhu.ledger.models import JournalEntry
from huzhu.members.models import FamilyMember, Member
from huzhu.orgs.models import Union, Unit, User
from huzhu.plans.models import PlanVersion


# --- partners -----------------------------------------------------------------------------------
class SignatureMethod(models.TextChoices):
    HMAC = "hmac", "HMAC-SHA256"
    SM2 = "sm2", "SM3withSM2"


class PartnerScope(models.TextChoices):
    SETTLE = "settle", "结算上传"
    CANCEL = "cancel", "结算撤销"
    BATCH = "batch", "批量文件"


class Partner(models.Model):
    partner_id = models.CharField("合作方编号", max_length=32, unique=True)
    name = models.CharField("名称", max_length=100)
    organisation = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="+")
    organisation_path = models.CharField(max_length=255)
    signature_method = models.CharField(
        "签名方式", max_length=8, choices=SignatureMethod.choices, default=SignatureMethod.HMAC
    )
    #: The HMAC key (hex), encrypted at rest (S10); empty for SM2 partners.
    key_enc = EncryptedTextField(null=True, blank=True)
    #: The partner's SM2 public key (hex, uncompressed point) for SM3withSM2 signatures.
    sm2_public_key = models.CharField("SM2 公钥", max_length=200, blank=True)
    scopes = models.JSONField("权限范围", default=list)
    #: IP addresses or CIDR networks, one per line; empty = any address.
    ip_allowlist = models.TextField("IP 白名单", blank=True)
    is_active = models.BooleanField("启用", default=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    key_rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "结算合作方"
        constraints = [
            models.CheckConstraint(
                condition=Q(signature_method__in=SignatureMethod.values),
                name="partner_signature_method_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name


class PartnerNonce(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "nonce"], name="partner_nonce_unique")
        ]


# --- settlements and claims ---------------------------------------------------------------------
class Channel(models.TextChoices):
    API = "api", "实时接口"
    FILE = "file", "批量文件"
    MANUAL = "manual", "手工申请"


class SettlementFile(models.Model):
    """A batch feed file: the declared count and total are checked before anything is committed;
    the same file (by SHA-256) sent again changes nothing."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="files")
    filename = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    file_format = models.CharField(max_length=8)  # csv | jsonl
    declared_count = models.PositiveIntegerField()
    declared_total_fen = models.BigIntegerField()
    record_count = models.PositiveIntegerField(default=0)
    total_fen = models.BigIntegerField(default=0)
    status = models.CharField(max_length=12, default="accepted")  # accepted | rejected
    problems = models.JSONField(default=list)
    received_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = "结算批量文件"
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "sha256"],
                condition=Q(status="accepted"),
                name="settlement_file_once",
            )
        ]


class SettlementStatus(models.TextChoices):
    """What the partner was told (INTERFACES.md §3)."""

    APPROVED = "approved", "已核准（医院垫付）"
    PENDING_REVIEW = "pending_review", "待审核"
    REJECTED = "rejected", "不予给付"
    QUARANTINED = "quarantined", "待授权（已隔离）"
    CANCELLED = "cancelled", "已撤销"


class Settlement(models.Model):
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="settlements")
    setl_id = models.CharField(max_length=30)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.API)
    file = models.ForeignKey(
        SettlementFile, null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    #: SHA-256 of the canonical JSON of the body (sorted keys, no spaces): exactly-once compares it.
    body_hash = models.CharField(max_length=64)
    #: The body as received (canonical JSON), encrypted: it holds the ID number and diagnoses.
    body_enc = EncryptedTextField()
    person_index = models.CharField(max_length=32, db_index=True)
    certno_masked = models.CharField(max_length=18)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="settlements"
    )
    union_path = models.CharField(max_length=255, blank=True)
    med_type = models.CharField(max_length=6)
    adm_date = models.DateField()
    setl_time = models.DateTimeField()
    medfee_sumamt = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=SettlementStatus.choices)
    reason = models.CharField(max_length=24, blank=True)
    benefit_fen = models.BigIntegerField(default=0)
    #: The JSON answered (replayed verbatim for a repeat of the same body).
    response = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now)
    cancel_time = models.DateTimeField(null=True, blank=True)
    cancel_body_hash = models.CharField(max_length=64, blank=True)
    cancel_response = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "医保结算记录"
        constraints = [
            models.UniqueConstraint(fields=["partner", "setl_id"], name="settlement_once"),
            models.CheckConstraint(
                condition=Q(status__in=SettlementStatus.values), name="settlement_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "received_at"], name="settlement_partner_day_idx"),
            models.Index(fields=["status", "id"], name="settlement_status_idx"),
        ]


class Product(models.TextChoices):
    INPATIENT = "inpatient", "住院互助保障"
    SPECIAL_OUTPATIENT = "special_outpatient", "门诊慢特病"
    FAMILY_INPATIENT = "family_inpatient", "家庭成员住院互助"
    CRITICAL_ILLNESS = "critical_illness", "重大疾病关爱"
    MATERNITY = "maternity", "生育补助"


class ClaimKind(models.TextChoices):
    ONE_STOP = "one_stop", "一站式结算"
    MANUAL = "manual", "手工申请"


class ClaimStatus(models.TextChoices):
    QUARANTINED = "quarantined", "待授权"
    SUBMITTED = "submitted", "已提交"
    IN_REVIEW = "in_review", "审核中"
    SECOND_REVIEW = "second_review", "待复核"
    APPROVED = "approved", "已核准"
    REJECTED = "rejected", "不予给付"
    APPEALED = "appealed", "申诉中"
    PAID = "paid", "已支付"
    CANCELLED = "cancelled", "已撤销"


#: Statuses whose priced amount is held in the member's year (counts toward the cap).
HELD_STATUSES = (
    ClaimStatus.SUBMITTED,
    ClaimStatus.IN_REVIEW,
    ClaimStatus.SECOND_REVIEW,
    ClaimStatus.APPROVED,
    ClaimStatus.APPEALED,
    ClaimStatus.PAID,
)


class Claim(models.Model):
    number = models.CharField("申请编号", max_length=24, unique=True)
    kind = models.CharField("来源", max_length=10, choices=ClaimKind.choices)
    status = models.CharField("状态", max_length=16, choices=ClaimStatus.choices)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="claims")
    family_member = models.ForeignKey(
        FamilyMember, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    #: The insured person's ID blind index (the member's or the family member's): the key of the
    #: running year state.
    person_index = models.CharField(max_length=32)
    union = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="+")
    union_path = models.CharField(max_length=255)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    enrollment = models.ForeignKey(
        Enrollment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    settlement = models.OneToOneField(
        Settlement, null=True, blank=True, on_delete=models.PROTECT, related_name="claim"
    )
    product = models.CharField("保障项目", max_length=20, choices=Product.choices, blank=True)
    year = models.PositiveSmallIntegerField("保障年度")
    plan_version = models.ForeignKey(
        PlanVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    plan_code = models.CharField(max_length=40, blank=True)
    parameters_hash = models.CharField(max_length=64, blank=True)
    #: The engine's record key in the year state (the settlement's setl_id, or ``M<number>`` for a
    #: manual claim).
    record_key = models.CharField(max_length=40)
    med_type = models.CharField("医疗类别", max_length=6, blank=True)
    adm_date = models.DateField("入院日期", null=True, blank=True)
    dscg_date = models.DateField("出院日期", null=True, blank=True)
    setl_time = models.DateTimeField("结算时间", null=True, blank=True)
    hospital_code = models.CharField("医疗机构", max_length=40, blank=True)
    hospital_name = models.CharField("医疗机构名称", max_length=100, blank=True)
    medfee_sumamt = models.BigIntegerField("医疗费总额", default=0)
    inscp_scp_amt = models.BigIntegerField("政策范围内金额", default=0)
    fund_pay_sumamt = models.BigIntegerField("基金支付总额", default=0)
    hosp_part_amt = models.BigIntegerField("医院负担", default=0)
    other_reimbursed = models.BigIntegerField("其他已报销", default=0)
    fulamt_ownpay_amt = models.BigIntegerField(default=0)
    overlmt_selfpay = models.BigIntegerField(default=0)
    preselfpay_amt = models.BigIntegerField(default=0)
    psn_part_amt = models.BigIntegerField(default=0)
    #: Diagnosis codes (ICD-10), encrypted (S10); lists never show them (S7).
    diagnoses_enc = EncryptedTextField(null=True, blank=True)
    #: Lump sums: the disease number and severity (critical illness), newborns and birth date
    #: (maternity), as the reviewer confirmed them.
    lump_sum = models.JSONField(default=dict, blank=True)
    base_fen = models.BigIntegerField("补助基数", default=0)
    #: The current priced amount (changes with re-pricing); what the member is entitled to.
    benefit_fen = models.BigIntegerField("补助金额", default=0)
    #: What has been posted to the ledger for this claim (approvals + adjustments).
    posted_fen = models.BigIntegerField(default=0)
    paid_fen = models.BigIntegerField(default=0)
    reason = models.CharField("原因代码", max_length=24, blank=True)
    explanation = models.JSONField(default=dict)
    flags = models.JSONField("风险提示", default=list)
    #: One-stop: the hospital deducted the benefit at discharge (owed to the hospital, 2242).
    deducted_at_discharge = models.BooleanField(default=False)
    rejection_code = models.CharField(max_length=32, blank=True)
    rejection_note = models.CharField(max_length=500, blank=True)
    appeal_reason = models.CharField(max_length=500, blank=True)
    appealed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_approved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paid_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "理赔申请"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ClaimStatus.values), name="claim_status_valid"
            ),
            models.CheckConstraint(condition=Q(kind__in=ClaimKind.values), name="claim_kind_valid"),
            models.CheckConstraint(
                condition=Q(product="") | Q(product__in=Product.values), name="claim_product_valid"
            ),
            models.CheckConstraint(
                condition=Q(benefit_fen__gte=0) & Q(base_fen__gte=0) & Q(paid_fen__gte=0),
                name="claim_amounts_non_negative",
            ),
            # One claim per record of a person's year: a manual claim cannot duplicate a settlement.
            models.UniqueConstraint(
                fields=["person_index", "record_key"], name="claim_record_once"
            ),
        ]
        indexes = [
            models.Index(fields=["union_path", "status", "id"], name="claim_queue_idx"),
            models.Index(fields=["member", "year"], name="claim_member_idx"),
            models.Index(fields=["person_index", "year", "product"], name="claim_person_idx"),
        ]

    def __str__(self) -> str:
        return self.number


class BenefitYear(models.Model):
    """The engine state of one insured person, product and coverage year (locked per settlement)."""

    person_index = models.CharField(max_length=32)
    product = models.CharField(max_length=20, choices=Product.choices)
    year = models.PositiveSmallIntegerField()
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    state = models.JSONField(default=dict)
    total_fen = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["person_index", "product", "year"], name="benefit_year_unique"
            ),
            models.CheckConstraint(condition=Q(total_fen__gte=0), name="benefit_year_non_negative"),
        ]


class ClaimStep(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="steps")
    action = models.CharField(max_length=24)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True)
    amount_fen = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["claim", "at"], name="claim_step_idx")]


class ClaimAdjustment(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="adjustments")
    change_fen = models.BigIntegerField()
    cause = models.CharField(max_length=200)
    entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)


class DocumentType(models.TextChoices):
    INVOICE = "invoice", "医疗费用发票"
    DISCHARGE_RECORD = "discharge_record", "出院记录"
    SETTLEMENT_SHEET = "settlement_sheet", "医保结算单"
    PATHOLOGY_REPORT = "pathology_report", "病理报告/诊断证明"
    BIRTH_CERTIFICATE = "birth_certificate", "出生医学证明"
    OTHER = "other", "其他材料"


class ClaimDocument(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="documents")
    doc_type = models.CharField("材料类型", max_length=20, choices=DocumentType.choices)
    filename = models.CharField("文件名", max_length=200)
    content_type = models.CharField(max_length=60)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    #: The file, AES-256-GCM encrypted (S10), base64 inside the encrypted envelope.
    content_enc = EncryptedTextField()
    uploaded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(doc_type__in=DocumentType.values), name="claim_document_type_valid"
            )
        ]


# --- payment ------------------------------------------------------------------------------------
class PaymentBatchKind(models.TextChoices):
    MEMBER = "member", "补助金支付（职工）"
    HOSPITAL = "hospital", "一站式结算清算（医疗机构）"


class PaymentBatchStatus(models.TextChoices):
    DRAFT = "draft", "草稿"
    EXPORTED = "exported", "已导出银行文件"
    COMPLETED = "completed", "已完成"
    CANCELLED = "cancelled", "已作废"


class PaymentBatch(models.Model):
    number = models.CharField("批次号", max_length=24, unique=True)
    kind = models.CharField(max_length=10, choices=PaymentBatchKind.choices)
    union = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="+")
    union_path = models.CharField(max_length=255)
    status = models.CharField(
        max_length=10, choices=PaymentBatchStatus.choices, default=PaymentBatchStatus.DRAFT
    )
    total_fen = models.BigIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    exported_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "支付批次"
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PaymentBatchStatus.values), name="payment_batch_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=PaymentBatchKind.values), name="payment_batch_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["union_path", "id"], name="payment_batch_scope_idx")]


class PaymentLineResult(models.TextChoices):
    PENDING = "pending", "待银行回执"
    SUCCEEDED = "succeeded", "支付成功"
    FAILED = "failed", "支付失败"


class PaymentLine(models.Model):
    batch = models.ForeignKey(PaymentBatch, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="payment_lines")
    amount_fen = models.BigIntegerField()
    payee_name = models.CharField(max_length=100)
    result = models.CharField(
        max_length=10, choices=PaymentLineResult.choices, default=PaymentLineResult.PENDING
    )
    bank_reference = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "line_no"], name="payment_line_no_unique"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="payment_line_positive"),
            # A claim is in at most one batch line that is not failed.
            models.UniqueConstraint(
                fields=["claim"],
                condition=~Q(result="failed"),
                name="payment_line_claim_once",
            ),
        ]


# --- policy -------------------------------------------------------------------------------------
class ReviewPolicy(models.Model):
    """Limits of auto-approval, risk flags and second approval (R14, R15), per organisation; the
    nearest ancestor's policy applies, the built-in defaults when none is set."""

    organisation = models.OneToOneField(Union, on_delete=models.PROTECT, related_name="+")
    auto_approve_limit_fen = models.BigIntegerField("自动核准上限", default=2_000_000)
    large_amount_fen = models.BigIntegerField("大额提示金额", default=3_000_000)
    many_claims_count = models.PositiveSmallIntegerField("年度多次理赔次数", default=4)
    new_enrollment_days = models.PositiveSmallIntegerField("参保后短期天数", default=30)
    hospital_share_percent = models.PositiveSmallIntegerField("医疗机构异常占比(%)", default=30)
    hospital_share_min_claims = models.PositiveIntegerField("占比计算最少件数", default=50)
    second_approval_limit_fen = models.BigIntegerField("需复核金额", default=2_000_000)
    updated_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)


class HospitalShare(models.Model):
    """A medical institution's share of one city's claims in a year (R14 "a hospital with an
    unusual share"): recomputed set-based by ``refresh_hospital_shares``; settlements read it."""

    year = models.PositiveSmallIntegerField()
    area_path = models.CharField(max_length=255)
    hospital_code = models.CharField(max_length=40)
    hospital_name = models.CharField(max_length=100, blank=True)
    claims = models.PositiveIntegerField()
    area_claims = models.PositiveIntegerField()
    share_percent = models.PositiveSmallIntegerField()
    flagged = models.BooleanField(default=False)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["year", "area_path", "hospital_code"], name="hospital_share_unique"
            )
        ]


# --- feed ---------------------------------------------------------------------------------------
class FeedOutcome(models.TextChoices):
    """What became of one record of a batch feed file (``huzhu.claims.feed``)."""

    APPROVED = "approved", "已核准"
    PENDING_REVIEW = "pending_review", "待审核"
    REJECTED = "rejected", "不予给付"
    QUARANTINED = "quarantined", "待授权（已隔离）"
    CANCELLED = "cancelled", "已撤销"
    DUPLICATE = "duplicate", "重复（此前已接收，未变更）"
    OUT_OF_SCOPE = "out_of_scope", "拒收（不在服务范围）"
    NOT_FOUND = "not_found", "拒收（撤销的结算不存在）"


class SettlementFileImport(models.Model):
    """The processing of an accepted feed file: how far it got (committed with each chunk, so a
    killed import resumes where it stopped) and the outcome counts. The file's bytes are kept,
    encrypted, only while a background import still needs them."""

    file = models.OneToOneField(
        SettlementFile, on_delete=models.CASCADE, related_name="feed_import"
    )
    content_enc = EncryptedTextField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    outcomes = models.JSONField(default=dict)
    benefit_fen = models.BigIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)


class SettlementFileLine(models.Model):
    """One record of an accepted feed file and its outcome (no personal data: the settlement holds
    the body, encrypted)."""

    file = models.ForeignKey(SettlementFile, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()  # 1-based record number in the file
    line = models.PositiveIntegerField()  # physical line in the file (CSV header = line 1)
    setl_id = models.CharField(max_length=30)
    record_type = models.CharField(max_length=8)  # settle | cancel
    outcome = models.CharField(max_length=16, choices=FeedOutcome.choices)
    reason = models.CharField(max_length=24, blank=True)
    benefit_fen = models.BigIntegerField(default=0)
    settlement = models.ForeignKey(
        Settlement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["file", "position"], name="settlement_file_line_once"),
            models.CheckConstraint(
                condition=Q(outcome__in=FeedOutcome.values), name="settlement_file_line_outcome"
            ),
        ]


class ReconciliationReport(models.Model):
    """A partner's declared totals of one day against what was received (``huzhu.claims.feed``):
    every difference listed, kept so the history stays visible."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="+")
    day = models.DateField("对账日期")
    their_count = models.PositiveIntegerField()
    their_medfee_fen = models.BigIntegerField()
    their_benefit_fen = models.BigIntegerField()
    #: The partner's per-record list when given ({setl_id, status, medfee_sumamt, benefit}).
    their_records = models.JSONField(null=True, blank=True)
    our_count = models.PositiveIntegerField()
    our_medfee_fen = models.BigIntegerField()
    our_benefit_fen = models.BigIntegerField()
    differences = models.JSONField(default=list)
    difference_count = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=8)  # api | web | cli
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by_label = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "结算对账报告"
        indexes = [models.Index(fields=["partner", "day"], name="reconciliation_day_idx")]


# --- end feed -----------------------------------------------------------------------------------
