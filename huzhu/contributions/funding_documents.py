"""The invoice (缴费通知) as files: an .xlsx workbook with every person's line, and a PDF for the
payers with the totals per payer and the amounts in Chinese capitals.

S11: ID numbers appear masked only (the lines store nothing else); every text cell that a
spreadsheet would run as a formula (``= + - @``) is written as text. Amounts are written as yuan
with two decimals (exact, from integer fen). Chinese text in the PDF uses reportlab's built-in CID
font STSong-Light (no font file ships with the app).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from huzhu.contributions.funding_models import Invoice, InvoiceLine, InvoicePayer, SplitAgreement
from huzhu.core.money import chinese_capital, format_fen
from huzhu.enrollment.roster import escape_formula

CJK = "STSong-Light"
_registered = False


def _register_fonts() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK))
        _registered = True


def yuan(fen: int) -> Decimal:
    """Fen as an exact two-decimal yuan number for a spreadsheet cell."""
    return Decimal(format_fen(fen))


def _text(value: object) -> str:
    return escape_formula(str(value or ""))


def _row(sheet: WriteOnlyWorksheet, values: Sequence[object], *, bold: bool = False) -> None:
    cells: list[object] = []
    for value in values:
        cell_value = _text(value) if isinstance(value, str) else value
        if bold:
            cell = WriteOnlyCell(sheet, value=cell_value)
            cell.font = Font(bold=True)
            cells.append(cell)
        else:
            cells.append(cell_value)
    sheet.append(cells)


def invoice_xlsx(
    invoice: Invoice,
    payers: Sequence[InvoicePayer],
    lines: Iterable[InvoiceLine],
    agreements: dict[int, SplitAgreement],
) -> bytes:
    """Two sheets: 缴费通知 (the invoice and its payers) and 缴费明细 (one row per person)."""
    workbook = Workbook(write_only=True)
    summary = workbook.create_sheet("缴费通知")
    summary.column_dimensions["A"].width = 34
    for column in "BCDE":
        summary.column_dimensions[column].width = 16
    _row(summary, ["职工互助保障互助金缴费通知"], bold=True)
    _row(summary, ["通知编号", invoice.number])
    _row(summary, ["参保工会", invoice.union.name])
    _row(summary, ["保障方案", f"{invoice.plan_version.code}（{invoice.plan_year}年度）"])
    _row(summary, ["通知日期", invoice.issued_on.isoformat()])
    _row(summary, ["参保人数", invoice.person_count])
    _row(summary, ["每人互助金（元）", yuan(invoice.contribution_fen)])
    _row(summary, [])
    _row(summary, ["缴费方", "应缴（元）", "已缴（元）", "已退（元）", "未缴（元）"], bold=True)
    for p in payers:
        _row(
            summary,
            [
                p.name,
                yuan(p.owed_fen),
                yuan(p.paid_fen),
                yuan(p.refunded_fen),
                yuan(p.outstanding_fen),
            ],
        )
    owed = sum(p.owed_fen for p in payers)
    _row(
        summary,
        [
            "合计",
            yuan(owed),
            yuan(sum(p.paid_fen for p in payers)),
            yuan(sum(p.refunded_fen for p in payers)),
            yuan(sum(p.outstanding_fen for p in payers)),
        ],
        bold=True,
    )
    _row(summary, ["合计（大写）", chinese_capital(owed)])

    detail = workbook.create_sheet("缴费明细")
    for column, width in zip(
        "ABCDEFGHIJKL", (6, 12, 22, 26, 8, 8, 12, 12, 12, 12, 14, 30), strict=True
    ):
        detail.column_dimensions[column].width = width
    _row(
        detail,
        [
            "序号",
            "姓名",
            "身份证号码",
            "单位",
            "保障对象",
            "困难职工",
            "互助金（元）",
            "个人（元）",
            "单位（元）",
            "工会（元）",
            "困难减免（元）",
            "分担依据",
        ],
        bold=True,
    )
    totals = [0, 0, 0, 0, 0]
    for index, line in enumerate(lines, start=1):
        agreement = agreements.get(line.agreement_id) if line.agreement_id else None
        basis = (
            f"{agreement.describe()}（{agreement.valid_from:%Y-%m-%d}起）"
            if agreement is not None
            else ("家庭成员互助金由职工个人缴纳" if line.family else "未约定分担：个人全额缴纳")
        )
        if line.removed_on is not None:
            basis = f"已于{line.removed_on:%Y-%m-%d}退出参保，不再计缴"
        _row(
            detail,
            [
                index,
                line.person_name,
                line.id_number_masked,
                line.unit.name if line.unit_id and line.unit else "无单位",
                "家庭成员" if line.family else "职工本人",
                "是" if line.hardship else "否",
                yuan(line.contribution_fen),
                yuan(line.individual_fen),
                yuan(line.employer_fen),
                yuan(line.union_fen),
                yuan(line.waiver_fen),
                basis,
            ],
        )
        if line.removed_on is None:
            for i, fen in enumerate(
                (
                    line.contribution_fen,
                    line.individual_fen,
                    line.employer_fen,
                    line.union_fen,
                    line.waiver_fen,
                )
            ):
                totals[i] += fen
    _row(
        detail,
        ["合计", "", "", "", "", "", *[yuan(t) for t in totals], "不含已退出人员"],
        bold=True,
    )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def invoice_pdf(invoice: Invoice, payers: Sequence[InvoicePayer]) -> bytes:
    """One A4 page (more for many employers): the invoice, and per payer what it owes, has paid
    and still owes, with the amount owed in Chinese capitals."""
    _register_fonts()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=16 * mm,
        rightMargin=16 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"缴费通知 {invoice.number}",
        author=invoice.union.name,
    )
    title = ParagraphStyle("title", fontName=CJK, fontSize=16, leading=22, alignment=1)
    body = ParagraphStyle("body", fontName=CJK, fontSize=10, leading=15)
    cell = ParagraphStyle("cell", fontName=CJK, fontSize=9, leading=12)
    story: list[object] = [
        Paragraph("职工互助保障互助金缴费通知", title),
        Spacer(1, 6 * mm),
        Paragraph(
            f"通知编号：{invoice.number}　　通知日期：{invoice.issued_on:%Y年%m月%d日}", body
        ),
        Paragraph(f"参保工会：{invoice.union.name}", body),
        Paragraph(
            f"保障方案：{invoice.plan_version.code}（{invoice.plan_year}年度），"
            f"参保 {invoice.person_count} 人，每人互助金 {format_fen(invoice.contribution_fen)} 元",
            body,
        ),
        Spacer(1, 4 * mm),
    ]
    data: list[list[object]] = [
        [
            Paragraph(h, cell)
            for h in ("缴费方", "应缴（元）", "已缴（元）", "未缴（元）", "应缴金额（大写）")
        ]
    ]
    for p in payers:
        data.append(
            [
                Paragraph(p.name, cell),
                format_fen(p.owed_fen),
                format_fen(p.net_paid_fen),
                format_fen(p.outstanding_fen),
                Paragraph(chinese_capital(p.owed_fen), cell),
            ]
        )
    owed = sum(p.owed_fen for p in payers)
    data.append(
        [
            Paragraph("合计", cell),
            format_fen(owed),
            format_fen(sum(p.net_paid_fen for p in payers)),
            format_fen(sum(p.outstanding_fen for p in payers)),
            Paragraph(chinese_capital(owed), cell),
        ]
    )
    table = Table(data, colWidths=[58 * mm, 24 * mm, 24 * mm, 24 * mm, 48 * mm], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), "Helvetica"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.93, 0.93, 0.93)),
                ("BACKGROUND", (0, -1), (-1, -1), colors.Color(0.97, 0.97, 0.97)),
                ("ALIGN", (1, 1), (3, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story += [
        table,
        Spacer(1, 5 * mm),
        Paragraph(
            "说明：职工个人部分由参保工会代收后统一缴纳；困难职工减免部分由工会承担。"
            "各缴费方缴清后，参保人员自到账次日起享受保障（不早于保障年度1月1日），"
            "至当年12月31日止。每笔到账开具财政电子票据。转账时请注明通知编号。",
            body,
        ),
    ]
    doc.build(story)
    return buffer.getvalue()
