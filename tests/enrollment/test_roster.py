"""The roster file: formats and encodings, the template, the error report (INTERFACES.md §2, S11),
and R2: no health question, waiting period or disease exclusion anywhere in the flow."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from huzhu.enrollment.roster import (
    COLUMNS,
    ReportError,
    RosterFileError,
    error_report,
    escape_formula,
    read_roster,
    template_workbook,
)
from tests.enrollment.conftest import HEADERS, csv_bytes, row, xlsx

NUMBER = "430102198503120011"
ROWS = [
    row(
        name="张伟",
        id_number=NUMBER,
        uscc="91430100MA00000011",
        category="男",
        hardship="是",
        consent="否",
        phone="13800138000",
    )
]


def _first(content: bytes) -> list[object]:
    roster = read_roster(content)
    return [roster.rows[0].row_number, *roster.rows[0].cells]


def test_xlsx_csv_utf8_bom_gbk_and_tabs_read_the_same() -> None:
    expected = _first(xlsx(ROWS))
    assert expected[:3] == [2, "张伟", NUMBER]
    assert _first(csv_bytes(ROWS)) == expected
    assert _first(b"\xef\xbb\xbf" + csv_bytes(ROWS)) == expected
    gbk = csv_bytes(ROWS, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")
    assert _first(gbk) == expected
    tabbed = csv_bytes(ROWS).decode().replace(",", "\t").encode("gbk")
    assert _first(tabbed) == expected


def test_headers_in_any_order_extra_columns_ignored_sheet_by_name() -> None:
    headers = ["备注", *reversed(HEADERS), "部门"]
    values = ["x", *reversed(ROWS[0]), "财务部"]
    from openpyxl import Workbook

    workbook = Workbook()
    first = workbook.active
    assert first is not None
    first.title = "封面"
    first.append(["这不是花名册"])
    sheet = workbook.create_sheet("花名册")
    sheet.append(headers)
    sheet.append(values)
    buffer = io.BytesIO()
    workbook.save(buffer)
    roster = read_roster(buffer.getvalue())
    assert roster.sheet == "花名册"
    assert roster.rows[0].cells == read_roster(xlsx(ROWS)).rows[0].cells
    # without a 「花名册」 sheet the first sheet is read
    assert read_roster(xlsx(ROWS, sheet="Sheet1")).sheet == "Sheet1"


@pytest.mark.parametrize("missing", ["姓名", "身份证号码", "用工形式", "单位统一社会信用代码"])
def test_missing_required_column(missing: str) -> None:
    headers = [h for h in HEADERS if h != missing]
    with pytest.raises(RosterFileError, match=f"缺少必需的列：{missing}"):
        read_roster(csv_bytes([], headers=headers))


def test_unusable_files() -> None:
    with pytest.raises(RosterFileError, match="文件为空"):
        read_roster(b"")
    with pytest.raises(RosterFileError, match="找不到表头行"):
        read_roster(b"a,b\n1,2\n")
    with pytest.raises(RosterFileError, match="无法读取该 Excel 文件"):
        read_roster(b"PK\x03\x04 broken zip")
    with pytest.raises(RosterFileError, match="无法识别文件编码"):
        read_roster(b"\x81\x30" * 3 + b"\xff\xfe\xfd")


def test_xls_is_read_by_calamine() -> None:
    fixture = Path(__file__).with_name("roster.xls")
    # roster.xls (BIFF8, written once with xlwt): a text ID, and an ID typed as a number
    roster = read_roster(fixture.read_bytes())
    assert roster.sheet == "花名册"
    assert [r.cells[:2] for r in roster.rows] == [
        ("张伟", "430102198503120011"),
        ("李娜", float(430102198506150023)),
    ]


def test_template() -> None:
    content = template_workbook()
    workbook = load_workbook(io.BytesIO(content))
    assert workbook.sheetnames == ["花名册", "填写说明"]
    sheet = workbook["花名册"]
    assert [c.value for c in sheet[1]] == list(COLUMNS.values())
    letters = {c.value: c.column_letter for c in sheet[1]}
    for header in ("身份证号码", "手机号码", "银行账号", "单位统一社会信用代码"):
        assert sheet[f"{letters[header]}2"].number_format == "@"
        assert sheet[f"{letters[header]}500"].number_format == "@"
    assert sheet[f"{letters['姓名']}2"].number_format == "General"
    lists = {str(dv.sqref)[0]: dv.formula1 for dv in sheet.data_validations.dataValidation}
    assert lists == {
        letters["用工形式"]: '"在编,合同,劳务派遣,新就业形态"',
        letters["退休类别"]: '"男,女50,女55"',
        letters["困难职工"]: '"是,否"',
        letters["医保数据授权"]: '"是,否"',
    }
    notes = " ".join(str(c.value) for r in workbook["填写说明"].iter_rows() for c in r if c.value)
    for header in COLUMNS.values():
        assert header in notes
    # the template reads back as an empty roster
    assert read_roster(content).rows == []


# R2 (湘政办发〔2025〕58号（一）): no waiting period, no medical exam, no disease exclusion.
_HEALTH_WORDS = re.compile(
    r"健康告知|既往病史|既往症状|病史|体检结果|等待期为|观察期|疾病史|免责|告知事项|身体状况"
)


def test_r2_template_and_flow_ask_nothing_about_health() -> None:
    workbook = load_workbook(io.BytesIO(template_workbook()))
    texts = [str(c.value) for ws in workbook for r in ws.iter_rows() for c in r if c.value]
    headers = [c.value for c in workbook["花名册"][1]]
    assert headers == list(COLUMNS.values())  # the ten columns of the contract, nothing else
    assert not [t for t in texts if _HEALTH_WORDS.search(t)]
    # and the notes say so
    assert any("不设等待期" in t and "不排除任何疾病" in t for t in texts)
    # no code path of the enrollment app asks about health or applies a waiting period
    app = Path(__file__).resolve().parents[2] / "huzhu/enrollment"
    for path in app.rglob("*"):
        if path.suffix in {".py", ".html"}:
            text = path.read_text(encoding="utf-8")
            assert not _HEALTH_WORDS.search(text), path
            assert "waiting_period" not in text and "health_question" not in text, path
    from huzhu.enrollment.models import Enrollment, EnrollmentBatch

    fields = {f.name for m in (Enrollment, EnrollmentBatch) for f in m._meta.get_fields()}
    assert not {f for f in fields if "health" in f or "wait" in f or "exclu" in f or "exam" in f}


def test_error_report_escapes_formulas_and_lists_reasons() -> None:
    rows = [
        row(name='=HYPERLINK("x")', id_number="+123", uscc="-1", bank="@evil"),
        row(name="好人", id_number=NUMBER),
    ]
    roster = read_roster(csv_bytes(rows))
    report = error_report(
        roster,
        [
            ReportError(2, "身份证号码", "身份证号码应为18位，实际为4位"),
            ReportError(2, "姓名", "x"),
        ],
    )
    workbook = load_workbook(io.BytesIO(report))
    sheet = workbook["花名册"]
    assert [c.value for c in sheet[1]] == ["原行号", *HEADERS, "错误原因"]
    values = [c.value for c in sheet[2]]
    assert values[0] == 2
    assert values[1:3] == ['\'=HYPERLINK("x")', "'+123"]
    assert values[-1] == "身份证号码：身份证号码应为18位，实际为4位；姓名：x"
    assert sheet.max_row == 2  # only the bad row
    with zipfile.ZipFile(io.BytesIO(report)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml  # no formula anywhere
    assert escape_formula("=1+1") == "'=1+1" and escape_formula("张") == "张"
