"""``huzhu settlement import`` and ``huzhu settlement reconcile``: exit 0 / 2 / 3 (and 1 for a
report with differences), every problem on standard error with its line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from huzhu.claims.models import ReconciliationReport, Settlement, SettlementFile
from huzhu.cli import main
from tests.claims.conftest import settle_body
from tests.claims.test_feed_support import csv_bytes, jsonl_bytes, total_of

pytestmark = pytest.mark.django_db


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def _import(capsys: Any, path: str, partner: Any, count: Any, total: str) -> Any:
    return _run(
        capsys,
        "settlement",
        "import",
        path,
        "--partner",
        partner.partner_id,
        "--count",
        str(count),
        "--total",
        total,
    )


def test_import_exit_0_and_the_same_file_again_changes_nothing(partner, person, tmp_path, capsys):
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2", base="3000.00")]
    path = _write(tmp_path, "s.csv", csv_bytes(rows))
    code, out, err = _import(capsys, path, partner, 2, total_of(rows))
    assert code == 0, err
    settlement_file = SettlementFile.objects.get()
    assert out.strip() == (
        f"file={settlement_file.pk} status=accepted records=2 total=60000.00 approved=2"
    )
    code, out2, err2 = _import(capsys, path, partner, 2, total_of(rows))
    assert code == 0 and out2 == out
    assert f"该文件已于此前接收（文件 #{settlement_file.pk}），未重复导入" in err2
    assert SettlementFile.objects.count() == 1 and Settlement.objects.count() == 2


def test_import_invalid_rows_exit_3_with_every_row_on_stderr(partner, person, tmp_path, capsys):
    rows = [
        settle_body(person.certno, "S1", medfee_sumamt="abc"),
        settle_body(person.certno, "S2"),
        settle_body(person.certno, "S3", setl_time="2026-03-10"),
    ]
    path = _write(tmp_path, "s.jsonl", jsonl_bytes(rows))
    code, out, err = _import(capsys, path, partner, 3, "60000.00")
    assert code == 3
    assert out == ""
    assert err.splitlines() == [
        "s.jsonl 第1行 [setlinfo.medfee_sumamt] 金额应为不小于 0 的数，"
        "最多两位小数（数字或字符串）",
        "s.jsonl 第3行 [setlinfo.setl_time] 时间格式应为 YYYY-MM-DD HH:MM:SS",
        "文件已拒收，未导入任何记录（共 2 个问题）",
    ]
    assert Settlement.objects.count() == 0


@pytest.mark.parametrize(
    ("count", "total", "expected"),
    [
        (3, "60000.00", "s.csv [declared_count] 声明记录数 3 与文件中的记录数 2 不符"),
        (
            2,
            "1.00",
            "s.csv [declared_total] 声明金额合计 1.00 元与文件中医疗费总额（medfee_sumamt）合计 "
            "60000.00 元不符",
        ),
    ],
)
def test_import_declaration_mismatch_exit_2(
    partner, person, tmp_path, capsys, count, total, expected
):
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2")]
    path = _write(tmp_path, "s.csv", csv_bytes(rows))
    code, _, err = _import(capsys, path, partner, count, total)
    assert code == 2
    assert err.splitlines()[0] == expected
    assert Settlement.objects.count() == 0


def test_import_unusable_input_exit_2(partner, person, tmp_path, capsys):
    rows = [settle_body(person.certno, "S1")]
    path = _write(tmp_path, "s.csv", csv_bytes(rows))
    code, _, err = _import(capsys, str(tmp_path / "missing.csv"), partner, 1, "30000.00")
    assert code == 2 and "文件不存在" in err
    code, _, err = _run(
        capsys, "settlement", "import", path, "--partner", "P999", "--count", "1", "--total", "1"
    )
    assert code == 2 and "找不到合作方编号为 P999 的结算合作方" in err
    header = _write(tmp_path, "h.csv", csv_bytes(rows).replace(b"certno", b"idcard", 1))
    code, _, err = _import(capsys, header, partner, 1, "30000.00")
    assert code == 2
    assert (
        err.splitlines()[0]
        == "h.csv 第1行 [idcard] 不接受的列“idcard”（须使用国家医保平台字段代码）"
    )
    assert Settlement.objects.count() == 0


def test_reconcile_prints_the_differences(partner, person, tmp_path, capsys):
    rows = [settle_body(person.certno, "S1")]
    path = _write(tmp_path, "s.csv", csv_bytes(rows))
    assert _import(capsys, path, partner, 1, "30000.00")[0] == 0
    args = ["settlement", "reconcile", "--partner", partner.partner_id, "--date", "2026-03-10"]
    code, out, _ = _run(capsys, *args, "--count", "1", "--medfee", "30000.00", "--benefit", "0")
    assert code == 0
    report = ReconciliationReport.objects.get()
    assert out.splitlines() == [
        f"对账报告 #{report.pk}：长沙市医疗保障事务中心（{partner.partner_id}）2026-03-10",
        "对方：1 笔，医疗费 30000.00 元，补助 0.00 元",
        "我方：1 笔，医疗费 30000.00 元，补助 0.00 元",
        "核对一致，没有差异",
    ]
    listing = _write(tmp_path, "list.csv", b"setl_id,medfee_sumamt\nS1,29000.00\nS7,100.00\n")
    code, out, _ = _run(
        capsys,
        *args,
        "--count",
        "2",
        "--medfee",
        "29100.00",
        "--benefit",
        "0",
        "--records",
        listing,
    )
    assert code == 1
    assert out.splitlines()[3:] == [
        "差异 4 项：",
        "  [笔数不符] 对方 2 笔，我方 1 笔（不含已撤销）",
        "  [医疗费总额合计不符] 医疗费总额合计：对方 29100.00 元，我方 30000.00 元，"
        "相差 -900.00 元",
        "  [我方未收到] 对方有结算 S7（已结算），我方没有收到",
        "  [医疗费金额不同] 结算 S1 医疗费总额：对方 29000.00 元，我方 30000.00 元",
    ]


def test_reconcile_unusable_input_exit_2(partner, capsys):
    base = ["settlement", "reconcile", "--partner", partner.partner_id]
    code, _, err = _run(
        capsys, *base, "--date", "2026-3-1", "--count", "1", "--medfee", "1", "--benefit", "1"
    )
    assert code == 2 and "日期“2026-3-1”格式不正确" in err
    code, _, err = _run(
        capsys, *base, "--date", "2026-03-01", "--count", "x", "--medfee", "1", "--benefit", "1"
    )
    assert code == 2 and err.strip() == "[count] 笔数应为不小于 0 的整数"
    assert ReconciliationReport.objects.count() == 0
