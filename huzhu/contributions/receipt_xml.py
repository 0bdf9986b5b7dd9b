"""The legal original of a receipt: canonical XML signed with Ed25519.

Document shape (no namespaces, no whitespace between elements)::

    <?xml version="1.0" encoding="UTF-8"?>
    <EReceipt>
      <Receipt version="1"> … receipt data … </Receipt>
      <Signature algorithm="Ed25519" keyId="…" canonicalization="…">lower-case hex</Signature>
    </EReceipt>

The signature covers the C14N 2.0 canonical form (``xml.etree.ElementTree.canonicalize``) of the
``<Receipt>`` element, so any change of its content, attributes or structure invalidates it; the
wrapper is checked strictly (exact tags and attributes), and the signature is lower-case hex (every
character significant, unlike base64's padding bits). Documents with a DTD are refused before
parsing (no entity expansion), and the XML declaration must be exactly ours: changing any one byte
of a document (other than whitespace after its end) makes it fail.
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from huzhu.contributions import receipt_signing
from huzhu.core.money import chinese_capital, format_fen

if TYPE_CHECKING:
    from huzhu.contributions.receipt_models import Receipt

RECEIPT_TITLE = "职工互助保障互助金电子票据"
FORMAT_VERSION = "1"
C14N2 = "http://www.w3.org/2010/xml-c14n2"
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{128}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text:
        element.text = text
    return element


def receipt_element(receipt: Receipt) -> ET.Element:
    """The ``<Receipt>`` element: everything printed on the receipt, nothing internal."""
    root = ET.Element("Receipt", {"version": FORMAT_VERSION})
    _sub(root, "Title", RECEIPT_TITLE)
    _sub(root, "ReceiptCode", receipt.code)
    _sub(root, "ReceiptNumber", receipt.number_text)
    _sub(root, "CheckCode", receipt.check_code)
    _sub(root, "IssueDate", receipt.issued_on.isoformat())
    issuer = _sub(root, "Issuer")
    _sub(issuer, "Name", receipt.issuer_name)
    _sub(issuer, "Code", receipt.issuer.code)
    payer = _sub(root, "Payer", kind=receipt.payer_kind)
    _sub(payer, "Name", receipt.payer_name)
    _sub(payer, "Reference", receipt.payer_reference)
    items = _sub(root, "Items")
    for item in receipt.items:
        row = _sub(items, "Item")
        _sub(row, "Name", str(item["name"]))
        _sub(row, "Amount", format_fen(int(item["amount_fen"])))
    _sub(root, "TotalAmount", format_fen(receipt.total_fen))
    _sub(root, "TotalAmountInWords", chinese_capital(receipt.total_fen))
    if receipt.reissue_of is not None:
        _sub(
            root,
            "Replaces",
            code=receipt.reissue_of.code,
            number=receipt.reissue_of.number_text,
        )
    return root


def canonical_bytes(element: ET.Element) -> bytes:
    """C14N 2.0 of one element alone (its tail, which belongs to the parent, left out)."""
    alone = copy.deepcopy(element)
    alone.tail = None
    return ET.canonicalize(ET.tostring(alone, encoding="unicode")).encode("utf-8")


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def signed_receipt_xml(receipt: Receipt) -> tuple[str, str]:
    """The signed document and the key id that signed it."""
    element = receipt_element(receipt)
    signature = receipt_signing.private_key().sign(canonical_bytes(element))
    kid = receipt_signing.key_id()
    document = ET.Element("EReceipt")
    document.append(element)
    _sub(
        document,
        "Signature",
        signature.hex(),
        algorithm="Ed25519",
        keyId=kid,
        canonicalization=C14N2,
    )
    body = ET.tostring(document, encoding="unicode")
    return XML_DECLARATION + "\n" + body + "\n", kid


@dataclass(frozen=True)
class XmlVerification:
    valid: bool
    message: str
    code: str = ""
    number: str = ""
    key_id: str = ""


def load_public_key_pem(data: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("公钥不是 Ed25519 公钥")
    return key


def check_receipt_xml(xml_bytes: bytes, key: Ed25519PublicKey | None = None) -> XmlVerification:
    """Verify a signed receipt document; ``key`` defaults to this deployment's public key."""
    public = key or receipt_signing.public_key()
    if not xml_bytes.startswith(XML_DECLARATION.encode()):
        return XmlVerification(False, "文件不是 UTF-8 编码的电子票据 XML（XML 声明不符）")
    if b"<!DOCTYPE" in xml_bytes or b"<!ENTITY" in xml_bytes:
        return XmlVerification(False, "文件含有文档类型定义（DTD），拒绝处理")
    try:
        root = ET.fromstring(xml_bytes)  # noqa: S314 - no DTD (checked above), so no entities
    except (ET.ParseError, LookupError, ValueError) as exc:  # LookupError: unknown encoding
        return XmlVerification(False, f"不是格式正确的 XML：{exc}")
    children = list(root)
    if (
        root.tag != "EReceipt"
        or root.attrib
        or (root.text or "").strip()
        or len(children) != 2
        or children[0].tag != "Receipt"
        or children[1].tag != "Signature"
    ):
        return XmlVerification(False, "文件结构不是电子票据（应为 EReceipt/Receipt + Signature）")
    receipt_el, signature_el = children
    code = receipt_el.findtext("ReceiptCode") or ""
    number = receipt_el.findtext("ReceiptNumber") or ""
    attrs = signature_el.attrib
    kid = attrs.get("keyId", "")
    if (
        set(attrs) != {"algorithm", "keyId", "canonicalization"}
        or attrs["algorithm"] != "Ed25519"
        or attrs["canonicalization"] != C14N2
        or not _KEY_ID.fullmatch(kid)
        or len(signature_el)
        or (signature_el.tail or "").strip()
        or (receipt_el.tail or "").strip()
    ):
        return XmlVerification(False, "签名元素格式不正确", code, number, kid)
    if kid != receipt_signing.key_id(public):
        return XmlVerification(False, "签名密钥编号与公钥不符", code, number, kid)
    value = signature_el.text or ""
    if not _HEX_SIGNATURE.fullmatch(value):
        return XmlVerification(False, "签名值格式不正确", code, number, kid)
    try:
        public.verify(bytes.fromhex(value), canonical_bytes(receipt_el))
    except InvalidSignature:
        return XmlVerification(
            False, "签名无效：票据内容已被修改或不是本平台签发", code, number, kid
        )
    return XmlVerification(True, "签名有效", code, number, kid)


def verify_receipt_xml(xml_bytes: bytes) -> bool:
    """True when the document is a receipt signed by this deployment's key and unchanged."""
    return check_receipt_xml(xml_bytes).valid
