"""Claim documents (R13, S10, S8, S18): type by magic bytes, size limit, stored encrypted with
their SHA-256, added only while the claim is open, read only in scope and audited."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.db import connection

from huzhu.claims.manual import (
    DocumentIntegrityError,
    DocumentUpload,
    access_document,
    add_document,
    clean_filename,
    document_content,
    file_manual_claim,
)
from huzhu.claims.models import Claim, ClaimDocument, ClaimStatus
from huzhu.core.errors import InvalidInput
from huzhu.core.models import AuditEvent
from huzhu.orgs.access import NotPermitted
from tests import factories
from tests.claims.manual_support import JPEG, PDF, PNG, documents_for, hospital, pdf

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@pytest.fixture
def clerk(tree):
    return factories.staff(tree.county_a1, "clerk", username="doc_clerk")


@pytest.fixture
def claim(clerk, person) -> Claim:
    return file_manual_claim(
        acting_user=clerk,
        member=person.member,
        data=hospital(),
        documents=documents_for("inpatient"),
    )


def add(clerk, claim, name: str, content: bytes, doc_type: str = "other") -> ClaimDocument:
    return add_document(
        acting_user=clerk, claim=claim, doc_type=doc_type, filename=name, content=content
    )


def refused(clerk, claim, name: str, content: bytes, doc_type: str = "other") -> list[str]:
    count, audit = ClaimDocument.objects.count(), AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        add(clerk, claim, name, content, doc_type)
    assert (ClaimDocument.objects.count(), AuditEvent.objects.count()) == (count, audit)
    return [f"{e.field}: {e.message}" for e in caught.value.errors]


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("发票.pdf", PDF, "application/pdf"),
        ("照片.JPG", JPEG, "image/jpeg"),
        ("照片.jpeg", JPEG, "image/jpeg"),
        ("截图.png", PNG, "image/png"),
    ],
)
def test_pdf_jpeg_and_png_are_accepted_by_their_content(clerk, claim, name, content, content_type):
    document = add(clerk, claim, name, content)
    assert (document.content_type, document.size, document.filename) == (
        content_type,
        len(content),
        name,
    )
    assert document.sha256 == hashlib.sha256(content).hexdigest()
    event = AuditEvent.objects.filter(event="claims.document_added").get()
    assert event.detail == {"claim": claim.number, "doc_type": "other", "size": len(content)}


def test_a_fake_pdf_with_png_magic_is_refused(clerk, claim):
    assert refused(clerk, claim, "发票.pdf", PNG) == [
        "file: 文件“发票.pdf”：文件内容（PNG）与扩展名（PDF）不符，请上传原始文件"
    ]


def test_content_that_is_none_of_the_types_is_refused(clerk, claim):
    assert refused(clerk, claim, "发票.pdf", b"<html>not a pdf</html>") == [
        "file: 文件“发票.pdf”：文件内容不是有效的 PDF、JPEG 或 PNG"
    ]


def test_other_extensions_are_refused_even_with_good_content(clerk, claim):
    assert refused(clerk, claim, "发票.exe", PDF) == [
        "file: 文件“发票.exe”：只接受 PDF、JPEG、PNG 文件（扩展名 .pdf、.jpg、.jpeg、.png）"
    ]
    assert refused(clerk, claim, "无扩展名", PDF)[0].startswith("file: 文件“无扩展名”：只接受")


def test_empty_file_and_unknown_type_are_refused(clerk, claim):
    assert refused(clerk, claim, "a.pdf", b"") == ["file: 文件“a.pdf”为空文件"]
    assert refused(clerk, claim, "a.pdf", PDF, doc_type="x-ray") == ["doc_type: 材料类型无效"]


def test_ten_mib_is_accepted_and_one_byte_more_refused(clerk, claim):
    exact = PDF + b"0" * (10 * MIB - len(PDF))
    document = add(clerk, claim, "大文件.pdf", exact)
    assert document.size == 10 * MIB
    assert refused(clerk, claim, "超大.pdf", exact + b"0") == [
        "file: 文件“超大.pdf”过大：每个文件不能超过 10 MB"
    ]


def test_the_limit_is_a_setting(clerk, claim, settings):
    settings.HUZHU_CLAIM_DOCUMENT_MAX_BYTES = 100
    add(clerk, claim, "a.pdf", PDF[:100].ljust(100, b" "))
    assert refused(clerk, claim, "b.pdf", PDF.ljust(101, b" ")) == [
        "file: 文件“b.pdf”过大：每个文件不能超过 100 字节"
    ]


def test_documents_are_stored_encrypted(clerk, claim):
    secret = PDF + "出院记录：患者张伟，急性阑尾炎术后".encode()
    document = add(clerk, claim, "出院记录.pdf", secret, doc_type="discharge_record")
    with connection.cursor() as cursor:
        cursor.execute("SELECT content_enc FROM claims_claimdocument WHERE id = %s", [document.pk])
        raw = bytes(cursor.fetchone()[0])
    assert secret not in raw
    assert base64.b64encode(secret) not in raw
    assert "张伟".encode() not in raw
    assert raw[0] == 1  # the encrypted envelope (huzhu.core.crypto), not a plain value
    stored = ClaimDocument.objects.get(pk=document.pk)
    assert base64.b64decode(str(stored.content_enc)) == secret


def test_filing_stores_every_document_with_its_claim(clerk, person):
    uploads = [*documents_for("inpatient"), DocumentUpload("other", "补充.png", PNG)]
    claim = file_manual_claim(
        acting_user=clerk, member=person.member, data=hospital(), documents=uploads
    )
    stored = {d.doc_type: d for d in claim.documents.all()}
    assert set(stored) == {"invoice", "settlement_sheet", "discharge_record", "other"}
    assert stored["other"].content_type == "image/png"
    assert all(d.uploaded_by == clerk for d in stored.values())


def test_filing_with_a_bad_document_names_its_field_and_writes_nothing(clerk, person):
    uploads = [
        pdf("invoice"),
        pdf("discharge_record"),
        DocumentUpload("settlement_sheet", "结算单.pdf", PNG),
    ]
    audit = AuditEvent.objects.count()
    with pytest.raises(InvalidInput) as caught:
        file_manual_claim(
            acting_user=clerk, member=person.member, data=hospital(), documents=uploads
        )
    assert caught.value.by_field() == {
        "settlement_sheet": ["文件“结算单.pdf”：文件内容（PNG）与扩展名（PDF）不符，请上传原始文件"]
    }
    assert not Claim.objects.exists() and not ClaimDocument.objects.exists()
    assert AuditEvent.objects.count() == audit


def test_documents_can_be_added_only_while_the_claim_is_open(clerk, claim):
    for status in (ClaimStatus.IN_REVIEW, ClaimStatus.APPEALED):
        Claim.objects.filter(pk=claim.pk).update(status=status)
        add(clerk, claim, f"{status}.pdf", PDF)
    for status in (ClaimStatus.APPROVED, ClaimStatus.REJECTED, ClaimStatus.PAID):
        Claim.objects.filter(pk=claim.pk).update(status=status)
        [message] = refused(clerk, claim, "late.pdf", PDF)
        assert message.startswith("file: 该申请当前状态为")
        assert "不能再补充材料" in message


def test_reading_a_document_is_audited_with_its_purpose(clerk, tree, claim):
    reviewer = factories.staff(tree.city_a, "reviewer", username="doc_reviewer")
    document = claim.documents.get(doc_type="invoice")
    content = document_content(
        reviewer, access_document(reviewer, document.pk), purpose="审核住院发票"
    )
    assert content == PDF + b"invoice"
    event = AuditEvent.objects.get(event="claims.document_viewed")
    assert event.actor_username == "doc_reviewer"
    assert event.object_id == str(document.pk)
    assert event.detail == {"claim": claim.number, "doc_type": "invoice", "reason": "审核住院发票"}
    document_content(reviewer, document)
    latest = AuditEvent.objects.filter(event="claims.document_viewed").order_by("-id").first()
    assert latest.detail["reason"] == f"理赔材料查阅（申请 {claim.number}）"


def test_documents_outside_the_scope_do_not_exist(tree, claim):
    sibling = factories.staff(tree.county_a2, "reviewer", username="sibling_reviewer")
    no_role = factories.staff(tree.county_a1, "plan_manager", username="doc_planner")
    document = claim.documents.first()
    audit = AuditEvent.objects.count()
    for actor in (sibling, no_role):
        with pytest.raises(NotPermitted):
            access_document(actor, document.pk)
        with pytest.raises(NotPermitted):
            document_content(actor, document)
    assert AuditEvent.objects.count() == audit


def test_a_tampered_document_fails_its_checksum(clerk, claim):
    document = claim.documents.first()
    ClaimDocument.objects.filter(pk=document.pk).update(
        content_enc=base64.b64encode(PDF + b"changed").decode()
    )
    with pytest.raises(DocumentIntegrityError):
        document_content(clerk, document)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("C:\\Users\\张伟\\发票.pdf", "发票.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("a\x00b\n.pdf", "ab.pdf"),
        ("长" * 250 + ".pdf", "长" * 196 + ".pdf"),
    ],
)
def test_file_names_lose_paths_and_control_characters(given, kept):
    assert clean_filename(given) == kept
