"""The layout copy (PDF) and the legal original (signed XML); the verify-xml command."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from huzhu.cli import main as huzhu_main
from huzhu.contributions import receipt_signing
from huzhu.contributions.receipt_models import Receipt
from huzhu.contributions.receipt_pdf import render_receipt_pdf, verification_url
from huzhu.contributions.receipt_services import reissue_receipt, void_receipt
from huzhu.contributions.receipt_xml import check_receipt_xml, verify_receipt_xml
from tests.receipts.conftest import ReceiptWorld

BASE = "https://huzhu.example.org.cn"


def _page_streams(pdf: bytes) -> bytes:
    """The decoded content streams of a reportlab PDF (ASCII85 then Flate); the text operators
    of Helvetica strings are plain there."""
    out = []
    for match in re.finditer(rb"(?<!end)stream\r?\n(.*?)endstream", pdf, re.S):
        raw = match.group(1).strip()
        try:
            body = raw.removeprefix(b"<~").removesuffix(b"~>")
            out.append(zlib.decompress(base64.a85decode(body)))
        except (ValueError, zlib.error):
            out.append(raw)
    return b"\n".join(out)


def _pdftotext(pdf: bytes, tmp_path: Path) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    path = tmp_path / "receipt.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
    )
    return result.stdout.decode("utf-8")


def test_pdf_renders_with_the_receipts_data(world: ReceiptWorld, tmp_path: Path) -> None:
    receipt = world.issue("pdf")
    url = verification_url(receipt, BASE)
    assert url == (
        f"{BASE}/receipts/verify/?code={receipt.code}&number=0000000001&check={receipt.check_code}"
    )
    pdf = render_receipt_pdf(receipt, verify_url=url)
    assert pdf.startswith(b"%PDF-")
    assert b"/BaseFont /STSong-Light" in pdf  # the built-in CJK CID font, not a font file
    content = _page_streams(pdf)
    for figure in (receipt.code, "0000000001", receipt.check_code, "120.00"):
        assert f"({figure}) Tj".encode() in content, figure
    text = _pdftotext(pdf, tmp_path)
    if text is None:
        pytest.skip("pdftotext (poppler-utils) not installed: Chinese text not extracted")
    flat = re.sub(r"\s+", "", text)
    for expected in (
        "职工互助保障互助金电子票据",
        "票据号码：0000000001",
        f"校验码：{receipt.check_code}",
        "交款人：芙蓉某公司",
        "单位承担互助金",
        "金额合计（大写）：壹佰贰拾元整",
        "开票单位（章）：长沙市总工会",
        "票据专用章",
    ):
        assert expected in flat, expected
    assert "已作废" not in flat


def test_voided_and_reissued_pdfs_say_so(world: ReceiptWorld, tmp_path: Path) -> None:
    old = world.issue("pdf-old")
    new = reissue_receipt(acting_user=world.finance, receipt=old, reason="名称错误")
    old.refresh_from_db()
    old_text = _pdftotext(render_receipt_pdf(old, verify_url=BASE), tmp_path)
    new_text = _pdftotext(render_receipt_pdf(new, verify_url=BASE), tmp_path)
    if old_text is None or new_text is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    voided_on = old.voided_at.astimezone().date() if old.voided_at else None
    assert f"本票据已于{voided_on}作废" in re.sub(r"\s+", "", old_text)
    assert f"换开原票据：{old.code}-{old.number_text}" in re.sub(r"\s+", "", new_text)


def test_pdf_page_renders_chinese_to_an_image(world: ReceiptWorld, tmp_path: Path) -> None:
    """The page as PNG (pdftoppm): the title's and the seal's red ink are there, so the CJK font
    produced glyphs (a missing font renders nothing or empty boxes in black)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    from PIL import Image

    receipt = world.issue("png")
    void_receipt(acting_user=world.finance, receipt=receipt, reason="测试作废印记")
    receipt.refresh_from_db()
    path = tmp_path / "receipt.pdf"
    path.write_bytes(render_receipt_pdf(receipt, verify_url=verification_url(receipt, BASE)))
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-singlefile", str(path), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    image = Image.open(tmp_path / "page.png").convert("RGB")
    width, height = image.size
    assert (width, height) == (497, 350)  # A5 landscape (210 × 148 mm) at 60 dpi
    raw = image.tobytes()
    pixels = list(zip(raw[0::3], raw[1::3], raw[2::3], strict=True))
    red = sum(1 for r, g, b in pixels if r > 150 and g < 110 and b < 110)
    dark = sum(1 for r, g, b in pixels if r < 90 and g < 90 and b < 90)
    assert red > 500  # title, seal ring, seal text, the 已作废 stamp
    assert dark > 2000  # QR code, table, text


def test_signed_xml_verifies(world: ReceiptWorld) -> None:
    receipt = world.issue("xml")
    data = receipt.signed_xml.encode("utf-8")
    result = check_receipt_xml(data)
    assert result.valid and result.message == "签名有效"
    assert (result.code, result.number) == (receipt.code, "0000000001")
    assert result.key_id == receipt.signing_key_id == receipt_signing.key_id()
    assert verify_receipt_xml(data)
    assert '<Payer kind="unit"><Name>芙蓉某公司</Name>' in receipt.signed_xml
    assert f"<CheckCode>{receipt.check_code}</CheckCode>" in receipt.signed_xml


def _tampered(byte: int) -> int:
    char = chr(byte)
    if char.isdigit():
        return ord("7" if char != "7" else "3")
    if byte < 128 and char.isalpha():
        return ord("q" if char != "q" else "z")
    return ord("x") if byte != ord("x") else ord("y")


def test_changing_any_one_byte_breaks_the_signature(world: ReceiptWorld) -> None:
    receipt = world.issue("tamper", amount_fen=12345)
    data = receipt.signed_xml.encode("utf-8")
    assert data.endswith(b"</EReceipt>\n")
    survivors = []
    for index in range(len(data)):
        copy = bytearray(data)
        copy[index] = _tampered(data[index])
        if verify_receipt_xml(bytes(copy)):
            survivors.append(index)
    assert survivors == []
    # The obvious forgery, spelled out: another amount.
    forged = data.replace(b"<TotalAmount>123.45<", b"<TotalAmount>923.45<")
    assert forged != data
    assert check_receipt_xml(forged).message == "签名无效：票据内容已被修改或不是本平台签发"


def test_reformatting_or_wrapping_is_not_accepted(world: ReceiptWorld) -> None:
    data = world.issue("wrap").signed_xml.encode("utf-8")
    assert not verify_receipt_xml(data.replace(b"<Receipt ", b'<Receipt  extra="1" '))
    assert not verify_receipt_xml(data.replace(b"<Items>", b"<Items>\n  "))
    doctype = data.replace(b"<EReceipt>", b'<!DOCTYPE x [<!ENTITY a "b">]><EReceipt>')
    assert check_receipt_xml(doctype).message == "文件含有文档类型定义（DTD），拒绝处理"
    assert not verify_receipt_xml(b"")
    assert not verify_receipt_xml(b"\xff\xfe<?xml")


def test_another_key_does_not_verify(world: ReceiptWorld) -> None:
    data = world.issue("other-key").signed_xml.encode("utf-8")
    other = Ed25519PrivateKey.generate().public_key()
    assert check_receipt_xml(data, other).message == "签名密钥编号与公钥不符"


def test_public_key_endpoint_serves_the_signing_key(world: ReceiptWorld, client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/receipts/public-key")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pem-file"
    assert response["X-Key-Id"] == receipt_signing.key_id()
    key = load_pem_public_key(response.content)
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw == receipt_signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    data = world.issue("pem").signed_xml.encode("utf-8")
    assert check_receipt_xml(data, key).valid  # type: ignore[arg-type]


def test_cli_verify_xml(world: ReceiptWorld, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    receipt = world.issue("cli")
    good = tmp_path / "good.xml"
    good.write_bytes(receipt.signed_xml.encode("utf-8"))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(receipt.signed_xml.replace("芙蓉某公司", "芙蓉某某司").encode("utf-8"))
    assert huzhu_main(["receipt", "verify-xml", str(good)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"票据 {receipt.code}-0000000001：签名有效（密钥编号 {receipt.signing_key_id}）\n"
    )
    assert huzhu_main(["receipt", "verify-xml", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err == f"票据 {receipt.code}-0000000001：签名无效：票据内容已被修改或不是本平台签发\n"
    assert huzhu_main(["receipt", "verify-xml", str(tmp_path / "missing.xml")]) == 2
    assert "无法读取文件" in capsys.readouterr().err
    pem = tmp_path / "key.pem"
    assert huzhu_main(["receipt", "public-key"]) == 0
    pem.write_text(capsys.readouterr().out)
    assert huzhu_main(["receipt", "verify-xml", str(good), "--public-key", str(pem)]) == 0


def test_stored_original_is_what_was_signed(world: ReceiptWorld) -> None:
    receipt = world.issue("stored")
    reloaded = Receipt.objects.get(pk=receipt.pk)
    assert reloaded.signed_xml == receipt.signed_xml
    assert verify_receipt_xml(reloaded.signed_xml.encode("utf-8"))
