"""The layout copy (版式文件) of a receipt as PDF, drawn with reportlab.

Chinese text uses reportlab's built-in CID font STSong-Light (Adobe-GB1; the reader supplies the
glyphs, so no font file ships with the app); figures use Helvetica. The QR code (segno) is drawn
as vector squares and links to the public verification page with the code, number and check code
filled in. The seal is the issuer's name drawn as a seal, for the reader's eye only: the legal
original is the signed XML.
"""

from __future__ import annotations

import io
import math
from urllib.parse import urlencode

import segno
from django.urls import reverse
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A5, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from huzhu.contributions.receipt_models import PayerKind, Receipt
from huzhu.contributions.receipt_xml import RECEIPT_TITLE
from huzhu.core.money import chinese_capital, format_fen

CJK = "STSong-Light"
LATIN = "Helvetica"
SEAL_RED = colors.Color(0.82, 0.09, 0.09)
_registered = False


def _register_fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK))
        _registered = True


def verification_query(receipt: Receipt) -> str:
    return urlencode(
        {"code": receipt.code, "number": receipt.number_text, "check": receipt.check_code}
    )


def verification_url(receipt: Receipt, base_url: str) -> str:
    """The public verification URL with the fields filled in; ``base_url`` is scheme + host."""
    path = reverse("contributions:verify")
    return f"{base_url.rstrip('/')}{path}?{verification_query(receipt)}"


def _draw_qr(canvas: Canvas, data: str, x: float, y: float, size: float) -> None:
    qr = segno.make(data, error="m")
    matrix = qr.matrix
    modules = len(matrix)
    cell = size / modules
    canvas.setFillColor(colors.black)
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 1) * cell
        for col_index, dark in enumerate(row):
            if dark:
                canvas.rect(x + col_index * cell, top, cell, cell, stroke=0, fill=1)


def _draw_seal(canvas: Canvas, issuer_name: str, cx: float, cy: float, radius: float) -> None:
    canvas.saveState()
    canvas.setStrokeColor(SEAL_RED)
    canvas.setFillColor(SEAL_RED)
    canvas.setLineWidth(1.6)
    canvas.circle(cx, cy, radius, stroke=1, fill=0)
    # The issuer's name along the upper arc, read left to right (clockwise).
    name = issuer_name[:16]
    size = 8.5 if len(name) <= 10 else 7
    spread = min(250.0, 22.0 * len(name))
    step = spread / max(1, len(name) - 1)
    for index, char in enumerate(name):
        angle = 90 + spread / 2 - index * step
        canvas.saveState()
        canvas.translate(cx, cy)
        canvas.rotate(angle - 90)
        canvas.setFont(CJK, size)
        canvas.drawCentredString(0, radius - size - 2.2, char)
        canvas.restoreState()
    # A five-pointed star in the middle and the seal's purpose below it.
    points = []
    for k in range(10):
        r = radius * (0.26 if k % 2 == 0 else 0.105)
        theta = math.radians(90 + k * 36)
        points.append((cx + r * math.cos(theta), cy + r * math.sin(theta)))
    path = canvas.beginPath()
    path.moveTo(*points[0])
    for point in points[1:]:
        path.lineTo(*point)
    path.close()
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.setFont(CJK, 7.5)
    canvas.drawCentredString(cx, cy - radius * 0.55, "票据专用章")
    canvas.restoreState()


def _text(canvas: Canvas, x: float, y: float, label: str, value: str, *, latin: bool) -> None:
    canvas.setFont(CJK, 9)
    canvas.drawString(x, y, label)
    canvas.setFont(LATIN if latin else CJK, 9.5)
    canvas.drawString(x + pdfmetrics.stringWidth(label, CJK, 9) + 1.5 * mm, y, value)


def render_receipt_pdf(receipt: Receipt, *, verify_url: str) -> bytes:
    """One A5 landscape page. A voided receipt carries a red 已作废 stamp across the page."""
    _register_fonts()
    buffer = io.BytesIO()
    width, height = landscape(A5)
    canvas = Canvas(buffer, pagesize=(width, height), invariant=1)
    canvas.setTitle(f"{RECEIPT_TITLE} {receipt.code}-{receipt.number_text}")
    canvas.setAuthor(receipt.issuer_name)
    canvas.setSubject(f"票据代码 {receipt.code} 票据号码 {receipt.number_text}")
    canvas.setCreator("职工互助保障平台")
    margin = 12 * mm

    # Title and the double rule under it, as on fiscal receipts.
    title_y = height - 15 * mm
    canvas.setFont(CJK, 17)
    canvas.setFillColor(colors.Color(0.55, 0.1, 0.1))
    canvas.drawCentredString(width / 2, title_y, RECEIPT_TITLE)
    canvas.setStrokeColor(colors.Color(0.55, 0.1, 0.1))
    title_width = pdfmetrics.stringWidth(RECEIPT_TITLE, CJK, 17)
    for offset in (2.5 * mm, 3.3 * mm):
        line_y = title_y - offset
        canvas.line(width / 2 - title_width / 2, line_y, width / 2 + title_width / 2, line_y)
    canvas.setFillColor(colors.black)
    canvas.setStrokeColor(colors.black)

    # QR code on the left under the title; identification on the right.
    qr_size = 24 * mm
    qr_top = height - 22 * mm
    _draw_qr(canvas, verify_url, margin, qr_top - qr_size, qr_size)
    canvas.setFont(CJK, 6.5)
    canvas.drawCentredString(margin + qr_size / 2, qr_top - qr_size - 3 * mm, "扫码查验")
    right_x = width - margin - 60 * mm
    top = qr_top - 5 * mm
    _text(canvas, right_x, top, "票据代码：", receipt.code, latin=True)
    _text(canvas, right_x, top - 5.5 * mm, "票据号码：", receipt.number_text, latin=True)
    _text(canvas, right_x, top - 11 * mm, "校 验 码：", receipt.check_code, latin=True)
    _text(canvas, right_x, top - 16.5 * mm, "开票日期：", receipt.issued_on.isoformat(), latin=True)

    # Payer: name and kind, the reference beside it or, for a long name, on the next line.
    y = qr_top - qr_size - 10 * mm
    kind = PayerKind(receipt.payer_kind).label
    payer_text = f"{receipt.payer_name}（{kind}）"
    label_width = pdfmetrics.stringWidth("交款人：", CJK, 9) + 1.5 * mm
    # A very long name (up to 100 characters) is set smaller so that it stays on the page.
    name_size = min(
        9.5, (width - 2 * margin - label_width) / pdfmetrics.stringWidth(payer_text, CJK, 1)
    )
    canvas.setFont(CJK, 9)
    canvas.drawString(margin, y, "交款人：")
    canvas.setFont(CJK, name_size)
    canvas.drawString(margin + label_width, y, payer_text)
    name_end = margin + label_width + pdfmetrics.stringWidth(payer_text, CJK, name_size)
    if receipt.payer_reference:
        label = "证件号码：" if receipt.payer_kind == PayerKind.INDIVIDUAL else "统一社会信用代码："
        if name_end + 4 * mm > width / 2:
            y -= 5.5 * mm
            _text(canvas, margin, y, label, receipt.payer_reference, latin=True)
        else:
            _text(canvas, width / 2, y, label, receipt.payer_reference, latin=True)

    # Items table.
    table_top = y - 4 * mm
    row_h = 6.5 * mm
    col_name = margin
    col_amount = width - margin - 70 * mm
    col_note = width - margin - 35 * mm
    rows = [(str(i["name"]), format_fen(int(i["amount_fen"]))) for i in receipt.items]
    table_rows = max(3, len(rows))
    table_bottom = table_top - row_h * (table_rows + 2)
    canvas.setLineWidth(0.6)
    canvas.rect(margin, table_bottom, width - 2 * margin, table_top - table_bottom)
    for i in range(1, table_rows + 2):
        line_y = table_top - i * row_h
        canvas.line(margin, line_y, width - margin, line_y)
    canvas.line(col_amount, table_top, col_amount, table_bottom + row_h)
    canvas.line(col_note, table_top, col_note, table_bottom + row_h)
    canvas.setFont(CJK, 9)
    header_y = table_top - row_h + 2.2 * mm
    canvas.drawCentredString((col_name + col_amount) / 2, header_y, "项目名称")
    canvas.drawCentredString((col_amount + col_note) / 2, header_y, "金额（元）")
    canvas.drawCentredString((col_note + width - margin) / 2, header_y, "备注")
    for index, (name, amount) in enumerate(rows):
        row_y = table_top - (index + 2) * row_h + 2.2 * mm
        canvas.setFont(CJK, 9)
        canvas.drawString(col_name + 2 * mm, row_y, name)
        canvas.setFont(LATIN, 9.5)
        canvas.drawRightString(col_note - 2 * mm, row_y, amount)
    total_y = table_bottom + 2.2 * mm
    canvas.setFont(CJK, 9)
    canvas.drawString(
        margin + 2 * mm, total_y, "金额合计（大写）：" + chinese_capital(receipt.total_fen)
    )
    canvas.drawString(col_amount + 2 * mm, total_y, "（小写）")
    canvas.setFont(LATIN, 10)
    canvas.drawRightString(
        width - margin - 2 * mm, total_y, "\u00a5" + format_fen(receipt.total_fen)
    )

    # Notes, issuer and the seal.
    y = table_bottom - 6 * mm
    canvas.setFont(CJK, 8.5)
    if receipt.reissue_of is not None:
        canvas.drawString(
            margin,
            y,
            f"换开原票据：{receipt.reissue_of.code}-{receipt.reissue_of.number_text}（原票据已作废）",
        )
        y -= 5 * mm
    issuer_line_y = 17 * mm
    canvas.setFont(CJK, 9.5)
    canvas.drawString(margin, issuer_line_y, "开票单位（章）：" + receipt.issuer_name)
    cashier = ""
    if receipt.issued_by is not None:
        cashier = receipt.issued_by.full_name or receipt.issued_by.username
    if cashier:
        canvas.drawString(width / 2 + 10 * mm, issuer_line_y, "收款人：" + cashier)
    seal_x = margin + 46 * mm
    _draw_seal(canvas, receipt.issuer_name, seal_x, issuer_line_y + 3 * mm, 14 * mm)

    canvas.setFont(CJK, 6.5)
    canvas.setFillColor(colors.Color(0.35, 0.35, 0.35))
    canvas.drawString(
        margin,
        7 * mm,
        "本文件为电子票据的版式文件，法定原件为带电子签名的 XML 数据文件。"
        "扫描二维码或登录平台“电子票据查验”页面可核验真伪。",
    )
    canvas.setFillColor(colors.black)

    if receipt.is_voided:
        canvas.saveState()
        canvas.setFillColor(colors.Color(0.85, 0.1, 0.1, alpha=0.35))
        canvas.setFont(CJK, 64)
        canvas.translate(width / 2, height / 2)
        canvas.rotate(24)
        canvas.drawCentredString(0, -20, "已作废")
        canvas.restoreState()
        canvas.setFont(CJK, 8.5)
        canvas.setFillColor(SEAL_RED)
        voided = timezone.localdate(receipt.voided_at) if receipt.voided_at else None
        canvas.drawRightString(
            width - margin,
            y if receipt.reissue_of is None else y + 5 * mm,
            f"本票据已于 {voided.isoformat() if voided else ''} 作废",
        )
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
