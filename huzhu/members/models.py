"""Members (参保职工), family members, hardship status and consents (R1–R4, S10–S13).

ID numbers, phones and bank accounts are stored AES-256-GCM encrypted (``*_enc``), searched through
an HMAC blind index (``*_index``) and shown masked (``*_masked``) unless a permitted user states a
reason to see the plain value (audited).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from huzhu.core.crypto import EncryptedTextField
from huzhu.orgs.models import Union, Unit, User


class EmploymentType(models.TextChoices):
    ESTABLISHED = "established", "在编"
    CONTRACT = "contract", "合同"
    DISPATCHED = "dispatched", "劳务派遣"
    NEW_EMPLOYMENT = "new_employment", "新就业形态"


class RetirementCategoryChoice(models.TextChoices):
    MALE = "male", "男"
    FEMALE55 = "female55", "女55"
    FEMALE50 = "female50", "女50"


class SexChoice(models.TextChoices):
    MALE = "male", "男"
    FEMALE = "female", "女"


class Member(models.Model):
    name = models.CharField("姓名", max_length=50, db_index=True)
    id_number_enc = EncryptedTextField()
    id_number_index = models.CharField(max_length=32, unique=True)
    id_number_masked = models.CharField("身份证号码", max_length=18)
    birth_date = models.DateField("出生日期")
    sex = models.CharField("性别", max_length=8, choices=SexChoice.choices)
    phone_enc = EncryptedTextField(null=True, blank=True)
    phone_index = models.CharField(max_length=32, blank=True, db_index=True)
    phone_masked = models.CharField("手机号码", max_length=16, blank=True)
    bank_account_enc = EncryptedTextField(null=True, blank=True)
    bank_account_masked = models.CharField("银行账号", max_length=16, blank=True)
    bank_name = models.CharField("开户银行", max_length=60, blank=True)
    union = models.ForeignKey(Union, on_delete=models.PROTECT, related_name="members")
    union_path = models.CharField(max_length=255, editable=False)
    unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    employment_type = models.CharField(
        "用工形式", max_length=16, choices=EmploymentType.choices, default=EmploymentType.CONTRACT
    )
    retirement_category = models.CharField(
        "退休类别", max_length=10, choices=RetirementCategoryChoice.choices
    )
    retirement_date = models.DateField("法定退休日期")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "职工"
        constraints = [
            models.CheckConstraint(
                condition=Q(employment_type__in=EmploymentType.values),
                name="member_employment_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(retirement_category__in=RetirementCategoryChoice.values),
                name="member_retirement_category_valid",
            ),
            models.CheckConstraint(condition=Q(sex__in=SexChoice.values), name="member_sex_valid"),
        ]
        indexes = [
            models.Index(fields=["union_path", "id"], name="member_scope_idx"),
            models.Index(fields=["unit", "id"], name="member_unit_idx"),
            models.Index(fields=["employment_type", "id"], name="member_emptype_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class FamilyRelation(models.TextChoices):
    SPOUSE = "spouse", "配偶"
    CHILD = "child", "子女"
    PARENT = "parent", "父母"


class FamilyMember(models.Model):
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="family")
    name = models.CharField("姓名", max_length=50)
    relation = models.CharField("关系", max_length=8, choices=FamilyRelation.choices)
    id_number_enc = EncryptedTextField()
    id_number_index = models.CharField(max_length=32, unique=True)
    id_number_masked = models.CharField("身份证号码", max_length=18)
    birth_date = models.DateField("出生日期")
    sex = models.CharField("性别", max_length=8, choices=SexChoice.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "家庭成员"
        constraints = [
            models.CheckConstraint(
                condition=Q(relation__in=FamilyRelation.values), name="family_relation_valid"
            )
        ]


class HardshipSource(models.TextChoices):
    CIVIL_AFFAIRS = "civil_affairs", "民政困难群众名单"
    UNION_FILE = "union_file", "工会困难职工档案"


class HardshipRecord(models.Model):
    """A dated hardship status (R4); the engine takes the status as of the admission date."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="hardship_records")
    source = models.CharField("认定来源", max_length=16, choices=HardshipSource.choices)
    valid_from = models.DateField("起始日期")
    valid_to = models.DateField("截止日期", null=True, blank=True)
    evidence = models.CharField("认定依据", max_length=200, blank=True)
    recorded_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "困难职工认定"
        indexes = [models.Index(fields=["member", "valid_from"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="hardship_dates_ordered",
            ),
            models.CheckConstraint(
                condition=Q(source__in=HardshipSource.values), name="hardship_source_valid"
            ),
        ]


class ConsentPurpose(models.TextChoices):
    MEDICAL_DATA = "medical_data", "医保结算数据共享与一站式结算"


class ConsentChannel(models.TextChoices):
    PAPER_VIA_UNION = "paper_via_union", "纸质授权（工会代录）"
    PORTAL = "portal", "会员门户"
    APP = "app", "移动端"


CURRENT_NOTICE_VERSION = "2026-01"


class Consent(models.Model):
    """Consent as data (S12): purpose, notice version, channel, granted and withdrawn times."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField("用途", max_length=16, choices=ConsentPurpose.choices)
    notice_version = models.CharField("告知书版本", max_length=16)
    channel = models.CharField("渠道", max_length=16, choices=ConsentChannel.choices)
    granted_at = models.DateTimeField("授权时间")
    withdrawn_at = models.DateTimeField("撤回时间", null=True, blank=True)
    recorded_by = models.ForeignKey(User, null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = "授权"
        indexes = [models.Index(fields=["member", "purpose", "withdrawn_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(purpose__in=ConsentPurpose.values), name="consent_purpose_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=ConsentChannel.values), name="consent_channel_valid"
            ),
        ]

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None
