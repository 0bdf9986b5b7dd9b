"""``huzhu adjudicate`` (INTERFACES.md §2): the public golden set byte for byte, every bad-input
rule, exit statuses and the file-format details."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huzhu.rules import adjudicate
from huzhu.rules.adjudicate import (
    MEMBER_COLUMNS,
    SETTLEMENT_COLUMNS,
    adjudicate_files,
    prepare,
    run,
)
from huzhu.rules.cli import cmd_adjudicate, cmd_plan_validate, main
from tests.rules.conftest import PLANS, REPO, TESTDATA

PUBLIC = TESTDATA / "adjudicate"
PLAN = str(PUBLIC / "plan.yaml")

# Valid GB 11643 numbers (checksums verified by the member validation itself in these tests).
ID_A = "430102198503120018"
ID_B = "43010319900708002X"
ID_C = "430104199211210043"


def _args(out: Path, **overrides: str) -> argparse.Namespace:
    values = {
        "plan": PLAN,
        "members": str(PUBLIC / "members.csv"),
        "settlements": str(PUBLIC / "settlements.csv"),
        "out": str(out),
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def test_public_set_reproduces_expected_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.csv"
    status = cmd_adjudicate(_args(out))
    assert status == 3  # the public set has invalid rows on purpose
    assert out.read_bytes() == (PUBLIC / "expected.csv").read_bytes()
    err = capsys.readouterr().err
    # Every invalid row named with file, line and field (the header is line 1).
    for line, field in [
        (15, "certno"),  # members.csv: bad check character
        (43, "hosp_part_amt"),
        (44, "inscp_scp_amt"),
        (45, "fund_pay_sumamt"),
        (46, "inscp_scp_amt"),
        (48, "setl_id"),  # cancel with another certno
        (49, "setl_id"),  # cancel of an unknown setl_id
    ]:
        assert any(f":{line}: {field}" in row for row in err.splitlines()), (line, field, err)
    assert "/5 [" not in err  # no progress bar when standard error is not a terminal


def test_public_set_through_the_sequential_path_too() -> None:
    plan, members, settlements = prepare(
        PLAN, str(PUBLIC / "members.csv"), str(PUBLIC / "settlements.csv")
    )
    fast = run(plan, members, settlements, force="batch")
    slow = run(plan, members, settlements, force="sequential")
    assert fast.results.equals(slow.results)
    assert fast.errors == slow.errors


def test_public_set_through_the_huzhu_command(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "huzhu",
            "adjudicate",
            "--plan",
            PLAN,
            "--members",
            str(PUBLIC / "members.csv"),
            "--settlements",
            str(PUBLIC / "settlements.csv"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 3, completed.stderr
    assert out.read_bytes() == (PUBLIC / "expected.csv").read_bytes()
    assert "settlements.csv:44: inscp_scp_amt" in completed.stderr


# ----- helpers for small files -----


def _csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]], **options: str) -> Path:
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(row.get(column, "") for column in columns))
    text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def _member(certno: str = ID_A, **fields: str) -> dict[str, str]:
    row = {
        "certno": certno,
        "name": "测试",
        "member_type": "self",
        "coverage_start": "2026-01-01",
        "coverage_end": "2026-12-31",
        "hardship_start": "",
        "hardship_end": "",
    }
    row.update(fields)
    return row


def _settle(
    setl_id: str = "S1", certno: str = ID_A, base: str = "12000.00", **fields: str
) -> dict[str, str]:
    row = {
        "setl_id": setl_id,
        "certno": certno,
        "record_type": "settle",
        "med_type": "21",
        "adm_date": "2026-02-03",
        "dscg_date": "2026-02-12",
        "setl_time": "2026-02-12 10:00:00",
        "medfee_sumamt": base,
        "inscp_scp_amt": base,
        "fund_pay_sumamt": "0.00",
        "hosp_part_amt": "0.00",
        "fulamt_ownpay_amt": "0.00",
        "overlmt_selfpay": "0.00",
        "preselfpay_amt": "0.00",
        "psn_part_amt": base,
        "other_reimbursed": "",
        "diag_codes": "",
    }
    row.update(fields)
    return row


def _cancel(
    setl_id: str = "S1", certno: str = ID_A, time: str = "2026-03-01 10:00:00"
) -> dict[str, str]:
    return {"setl_id": setl_id, "certno": certno, "record_type": "cancel", "setl_time": time}


def _run(
    tmp_path: Path,
    members: list[dict[str, str]],
    settlements: list[dict[str, str]],
    plan: str = PLAN,
) -> tuple[int, list[list[str]], str]:
    members_path = _csv(tmp_path / "members.csv", MEMBER_COLUMNS, members)
    settlements_path = _csv(tmp_path / "settlements.csv", SETTLEMENT_COLUMNS, settlements)
    return _run_files(tmp_path, members_path, settlements_path, plan)


def _run_files(
    tmp_path: Path, members_path: Path, settlements_path: Path, plan: str = PLAN
) -> tuple[int, list[list[str]], str]:
    out = tmp_path / "out.csv"
    if out.exists():
        out.unlink()
    err = io.StringIO()
    status = adjudicate_files(plan, str(members_path), str(settlements_path), str(out), stderr=err)
    rows = []
    if out.exists():
        rows = [line.split(",") for line in out.read_text(encoding="utf-8").splitlines()[1:]]
    return status, rows, err.getvalue()


# ----- exit statuses and unusable input -----


def test_all_valid_exits_0(tmp_path: Path) -> None:
    status, rows, err = _run(tmp_path, [_member()], [_settle()])
    assert (status, err) == (0, "")
    assert rows == [["S1", ID_A, "settle", "inpatient", "12000.00", "6200.00", "6200.00", ""]]


@pytest.mark.parametrize("missing", ["plan", "members", "settlements"])
def test_missing_file_exits_2_without_output(tmp_path: Path, missing: str) -> None:
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    settlements = _csv(tmp_path / "s.csv", SETTLEMENT_COLUMNS, [_settle()])
    paths = {"plan": PLAN, "members": str(members), "settlements": str(settlements)}
    paths[missing] = str(tmp_path / "nothing.csv")
    out = tmp_path / "out.csv"
    err = io.StringIO()
    status = adjudicate_files(
        paths["plan"], paths["members"], paths["settlements"], str(out), stderr=err
    )
    assert status == 2
    assert not out.exists()
    assert "nothing.csv" in err.getvalue()


@pytest.mark.parametrize("column", ["certno", "member_type", "hardship_end"])
def test_missing_member_column_exits_2(tmp_path: Path, column: str) -> None:
    columns = tuple(c for c in MEMBER_COLUMNS if c != column)
    members = _csv(tmp_path / "m.csv", columns, [_member()])
    settlements = _csv(tmp_path / "s.csv", SETTLEMENT_COLUMNS, [_settle()])
    status, rows, err = _run_files(tmp_path, members, settlements)
    assert (status, rows) == (2, [])
    assert column in err and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("column", ["setl_time", "other_reimbursed", "diag_codes"])
def test_missing_settlement_column_exits_2(tmp_path: Path, column: str) -> None:
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    columns = tuple(c for c in SETTLEMENT_COLUMNS if c != column)
    settlements = _csv(tmp_path / "s.csv", columns, [_settle()])
    status, _, err = _run_files(tmp_path, members, settlements)
    assert status == 2 and column in err


def test_invalid_plan_exits_2(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        Path(PLAN)
        .read_text(encoding="utf-8")
        .replace('contribution: "120.00"', 'contribution: "250.00"'),
        encoding="utf-8",
    )
    status, rows, err = _run(tmp_path, [_member()], [_settle()], plan=str(plan))
    assert (status, rows) == (2, [])
    assert "湘政办发〔2025〕58号（五）" in err


def test_empty_and_non_utf8_files_exit_2(tmp_path: Path) -> None:
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    empty = tmp_path / "s.csv"
    empty.write_bytes(b"")
    assert _run_files(tmp_path, members, empty)[0] == 2
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes((",".join(SETTLEMENT_COLUMNS) + "\nS1,张伟\n").encode("gbk"))
    status, _, err = _run_files(tmp_path, members, gbk)
    assert status == 2 and "UTF-8" in err


def test_header_only_gives_an_empty_result(tmp_path: Path) -> None:
    status, rows, _ = _run(tmp_path, [_member()], [])
    assert (status, rows) == (0, [])
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == ",".join(
        adjudicate.RESULT_COLUMNS
    ) + "\n"


# ----- member rows -----


@pytest.mark.parametrize(
    ("member", "field"),
    [
        (_member(""), "certno"),
        (_member("430102198503120019"), "certno"),  # check character
        (_member("411728199802290058"), "certno"),  # 1998-02-29 does not exist
        (_member("430102850312001"), "certno"),  # 15-digit IDs are invalid here
        (_member("43010219850312001８"), "certno"),  # full-width digit
        (_member(member_type="Self"), "member_type"),
        (_member(member_type=""), "member_type"),
        (_member(coverage_start="2026/01/01"), "coverage_start"),
        (_member(coverage_end="2026-02-30"), "coverage_end"),
        (_member(coverage_start=""), "coverage_start"),
        (_member(coverage_start="2026-07-01", coverage_end="2026-06-30"), "coverage_start"),
        (_member(hardship_start="2026-13-01"), "hardship_start"),
        (_member(hardship_start="2026-08-01", hardship_end="2026-07-01"), "hardship_start"),
    ],
)
def test_invalid_member_rows_are_reported_and_skipped(
    tmp_path: Path, member: dict[str, str], field: str
) -> None:
    status, rows, err = _run(tmp_path, [member], [_settle(certno=member["certno"] or ID_A)])
    assert status == 3
    assert f"members.csv:2: {field}" in err
    assert rows[0][7] == "NOT_FOUND"


def test_a_repeated_member_row_is_invalid_the_first_one_counts(tmp_path: Path) -> None:
    members = [
        _member(member_type="bad"),  # invalid: does not take the ID number
        _member(hardship_start="2026-01-01"),  # accepted (hardship from Jan 1, open end)
        _member(member_type="family"),  # repeats the accepted row: invalid
    ]
    status, rows, err = _run(tmp_path, members, [_settle()])
    assert status == 3
    assert "members.csv:2: member_type" in err
    assert "members.csv:4: certno" in err and "重复" in err
    assert "members.csv:3" not in err
    assert rows[0][3:6] == ["inpatient", "12000.00", "7300.00"]  # hardship, self


def test_lower_case_x_is_read_and_written_as_upper_case(tmp_path: Path) -> None:
    lower = ID_B.lower()
    status, rows, _ = _run(
        tmp_path,
        [_member(lower)],
        [
            _settle(certno=lower),
            _settle(
                "S2",
                certno=ID_B,
                adm_date="2026-04-01",
                setl_time="2026-04-01 10:00:00",
                base="3000.00",
            ),
        ],
    )
    assert status == 0
    assert [row[1] for row in rows] == [ID_B, ID_B]
    assert [row[5] for row in rows] == ["6200.00", "2100.00"]


def test_one_empty_hardship_date_leaves_that_side_open(tmp_path: Path) -> None:
    members = [
        _member(ID_A, hardship_end="2026-06-30"),
        _member(ID_B, hardship_start="2026-03-01"),
    ]
    settlements = [
        _settle("A1", ID_A, adm_date="2026-02-01"),
        _settle("B1", ID_B, adm_date="2026-02-28"),
    ]
    status, rows, _ = _run(tmp_path, members, settlements)
    assert status == 0
    assert {row[0]: row[5] for row in rows} == {"A1": "7300.00", "B1": "6200.00"}


# ----- settlement rows -----


@pytest.mark.parametrize(
    ("settlement", "field"),
    [
        (_settle(setl_id=""), "setl_id"),
        (_settle(certno=""), "certno"),
        (_settle(record_type="Settle"), "record_type"),
        (_settle(record_type="refund"), "record_type"),
        (_settle(setl_time="2026-02-12T10:00:00"), "setl_time"),
        (_settle(setl_time="2026-02-12 24:00:00"), "setl_time"),
        (_settle(setl_time="2026-02-30 10:00:00"), "setl_time"),
        (_settle(setl_time="2026-02-12 10:00"), "setl_time"),
        (_settle(med_type=""), "med_type"),
        (_settle(adm_date="2026-2-3"), "adm_date"),
        (_settle(adm_date="2026-02-29"), "adm_date"),
        (_settle(adm_date=""), "adm_date"),
        (_settle(medfee_sumamt=""), "medfee_sumamt"),
        (_settle(hosp_part_amt="-0.00"), "hosp_part_amt"),
        (_settle(fund_pay_sumamt=".5"), "fund_pay_sumamt"),
        (_settle(fund_pay_sumamt="+5"), "fund_pay_sumamt"),
        (_settle(fulamt_ownpay_amt="1e3"), "fulamt_ownpay_amt"),
        (_settle(overlmt_selfpay="1.000"), "overlmt_selfpay"),
        (_settle(preselfpay_amt="0.5.0"), "preselfpay_amt"),
        (_settle(psn_part_amt="１"), "psn_part_amt"),
        (_settle(other_reimbursed="-1"), "other_reimbursed"),
        (_settle(fund_pay_sumamt="12000.00", hosp_part_amt="0.01"), "fund_pay_sumamt"),
        (_settle(inscp_scp_amt="12000.01"), "inscp_scp_amt"),
    ],
)
def test_invalid_settlement_rows(tmp_path: Path, settlement: dict[str, str], field: str) -> None:
    status, rows, err = _run(tmp_path, [_member()], [settlement])
    assert status == 3
    assert f"settlements.csv:2: {field}" in err, err
    assert rows == [
        [
            settlement["setl_id"],
            settlement["certno"],
            settlement["record_type"],
            "",
            "0.00",
            "0.00",
            "0.00",
            "INVALID",
        ]
    ]


def test_money_with_a_thousands_separator_is_invalid(tmp_path: Path) -> None:
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    row = _settle(medfee_sumamt='"1,000"')
    settlements = _csv(tmp_path / "s.csv", SETTLEMENT_COLUMNS, [row])
    status, rows, err = _run_files(tmp_path, members, settlements)
    assert status == 3 and "medfee_sumamt" in err
    assert rows[0][-1] == "INVALID"


@pytest.mark.parametrize("text", ["5", "5.5", "5.50", "0"])
def test_money_forms_that_are_valid(tmp_path: Path, text: str) -> None:
    status, rows, _ = _run(
        tmp_path, [_member()], [_settle(fund_pay_sumamt=text, other_reimbursed=text)]
    )
    assert status == 0
    assert rows[0][-1] in ("", "DEDUCTIBLE")


def test_cancel_rows_are_checked_for_their_own_fields_only(tmp_path: Path) -> None:
    cancel = _cancel() | {"medfee_sumamt": "garbage", "adm_date": "never", "med_type": ""}
    status, rows, err = _run(tmp_path, [_member()], [_settle(), cancel])
    assert (status, err) == (0, "")
    assert rows[1] == [
        "S1",
        ID_A,
        "cancel",
        "inpatient",
        "12000.00",
        "-6200.00",
        "0.00",
        "CANCELLED",
    ]


def test_cancels_without_an_earlier_settle_of_the_same_member_are_invalid(tmp_path: Path) -> None:
    settlements = [
        _cancel("S1", ID_A, "2026-01-01 00:00:00"),  # before its settle row
        _settle("S1", ID_A),
        _cancel("S1", ID_B),  # another certno
        _cancel("S9", ID_A),  # unknown setl_id
        _settle("S2", ID_A, base="-1", setl_time="2026-02-13 00:00:00"),  # invalid settle
        _cancel("S2", ID_A, "2026-03-02 00:00:00"),  # its original registered nothing
    ]
    status, rows, err = _run(tmp_path, [_member(), _member(ID_B)], settlements)
    assert status == 3
    assert [row[7] for row in rows] == ["INVALID", "", "INVALID", "INVALID", "INVALID", "INVALID"]
    assert sum("撤销" in line for line in err.splitlines()) == 4


def test_duplicates(tmp_path: Path) -> None:
    settlements = [
        _settle("S1"),
        _settle("S1", setl_time="2026-02-13 10:00:00"),  # same setl_id again
        _cancel("S1", time="2026-03-01 10:00:00"),
        _cancel("S1", time="2026-03-02 10:00:00"),  # already cancelled
        _settle("S1", setl_time="2026-03-03 10:00:00"),  # even after the cancel
    ]
    status, rows, _ = _run(tmp_path, [_member()], settlements)
    assert status == 0
    assert [(row[5], row[6], row[7]) for row in rows] == [
        ("6200.00", "6200.00", ""),
        ("0.00", "6200.00", "DUPLICATE"),
        ("-6200.00", "0.00", "CANCELLED"),
        ("0.00", "0.00", "DUPLICATE"),
        ("0.00", "0.00", "DUPLICATE"),
    ]


def test_processing_order_is_time_then_id_then_file_order(tmp_path: Path) -> None:
    settlements = [
        _settle("B", setl_time="2026-02-12 10:00:00", base="3000.00"),
        _settle("A", setl_time="2026-02-12 10:00:00", base="12000.00", adm_date="2026-02-01"),
        _settle("0", setl_time="2026-01-31 10:00:00", base="100.00", adm_date="2026-01-30"),
    ]
    status, rows, _ = _run(tmp_path, [_member()], settlements)
    assert status == 0
    assert [row[0] for row in rows] == ["0", "A", "B"]


def test_bom_blank_lines_crlf_trimming_extra_columns_and_column_order(tmp_path: Path) -> None:
    columns = ("extra", *reversed(SETTLEMENT_COLUMNS))
    settle = _settle() | {"extra": "x"}
    bad = _settle("S2", medfee_sumamt="1.000", setl_time="2026-02-13 10:00:00") | {"extra": "y"}
    header = ",".join(columns)
    body = [
        ",".join(f"  {settle.get(c, '')} " for c in columns),
        "",
        "   ",
        ",".join(bad.get(c, "") for c in columns),
    ]
    text = "\r\n".join(["", header, *body]) + "\r\n"
    settlements = tmp_path / "s.csv"
    settlements.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    status, rows, err = _run_files(tmp_path, members, settlements)
    assert status == 3
    # Line 1 blank, header on line 2, the row on line 3, blank lines 4-5, the bad row on line 6.
    assert "s.csv:6: medfee_sumamt" in err
    assert rows[0] == ["S1", ID_A, "settle", "inpatient", "12000.00", "6200.00", "6200.00", ""]
    output = (tmp_path / "out.csv").read_bytes()
    assert not output.startswith(b"\xef\xbb\xbf") and b"\r" not in output


def test_a_line_of_empty_cells_is_a_row_not_a_blank_line(tmp_path: Path) -> None:
    settlements = tmp_path / "s.csv"
    settlements.write_text(
        ",".join(SETTLEMENT_COLUMNS) + "\n" + "," * (len(SETTLEMENT_COLUMNS) - 1) + "\n",
        encoding="utf-8",
    )
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    status, rows, err = _run_files(tmp_path, members, settlements)
    assert status == 3 and "s.csv:2: setl_id" in err
    assert rows == [["", "", "", "", "0.00", "0.00", "0.00", "INVALID"]]


def test_quoted_cells_spanning_lines_keep_line_numbers(tmp_path: Path) -> None:
    columns = SETTLEMENT_COLUMNS
    first = _settle() | {"diag_codes": '"I63.900;\nI10.x00"'}
    second = _settle("S2", medfee_sumamt="x", setl_time="2026-02-13 10:00:00")
    settlements = _csv(tmp_path / "s.csv", columns, [first, second])
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    status, rows, err = _run_files(tmp_path, members, settlements)
    assert status == 3
    assert "s.csv:4: medfee_sumamt" in err  # the first row spans lines 2-3
    assert rows[0][5] == "6200.00"


def test_output_quotes_only_where_needed_and_never_writes_negative_zero(tmp_path: Path) -> None:
    settlements = [
        _settle("A,1", base="500.00"),  # below the deductible
        _cancel("A,1"),
    ]
    members = _csv(tmp_path / "m.csv", MEMBER_COLUMNS, [_member()])
    path = _csv(
        tmp_path / "s.csv",
        SETTLEMENT_COLUMNS,
        [{k: (f'"{v}"' if k == "setl_id" else v) for k, v in row.items()} for row in settlements],
    )
    status, _, _ = _run_files(tmp_path, members, path)
    assert status == 0
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert text.splitlines()[1:] == [
        f'"A,1",{ID_A},settle,inpatient,500.00,0.00,0.00,DEDUCTIBLE',
        f'"A,1",{ID_A},cancel,inpatient,500.00,0.00,0.00,CANCELLED',
    ]
    assert "-0.00" not in text


def test_huge_amounts_are_priced_exactly_by_the_sequential_path(tmp_path: Path) -> None:
    huge = "123456789012345678.00"
    status, rows, _ = _run(tmp_path, [_member()], [_settle(base=huge)])
    assert status == 0
    assert rows[0][3:] == ["inpatient", huge, "80000.00", "80000.00", ""]


# ----- plan validate -----


def test_plan_validate_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cmd_plan_validate(argparse.Namespace(file=str(PLANS / "hunan-2026.yaml"))) == 0
    out = capsys.readouterr().out
    assert "200.00" in out and "sha256:" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("code: X\n", encoding="utf-8")
    assert main(["plan", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "缺少必填的键" in err and "products" in err


def test_no_django_in_the_engine() -> None:
    code = (
        "import sys, huzhu.rules.adjudicate, huzhu.rules.cli, huzhu.rules.lumpsum, "
        "huzhu.rules.batch, huzhu.rules.explain; "
        "print(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, check=True
    )
    assert completed.stdout.strip() == "False"


# ----- processing order -----


_TIMES = st.one_of(
    st.sampled_from(
        [
            "2026-02-12 10:00:00",
            "2026-02-12 10:00:01",
            "2026-02-30 10:00:00",  # well-formed, not a date: ordered by text
            "2026-02-12 24:00:00",
            "2026-2-12 10:00:00",
            "",
            "x",
            "2026-02-12 10:00:00 ",
            "1969-12-31 23:59:59",
            "9999-12-31 23:59:59",
        ]
    ),
    st.builds(
        "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}".format,
        st.integers(1, 9999),
        st.integers(1, 12),
        st.integers(1, 28),
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_TIMES, st.sampled_from(["A", "B", "B2", "a", "", "S10", "S9"])), max_size=40
    )
)
def test_processing_order_is_a_text_sort_on_time_then_id_then_file_order(
    rows: list[tuple[str, str]],
) -> None:
    frame = pl.DataFrame(
        {"setl_time": [t for t, _ in rows], "setl_id": [i for _, i in rows]},
        schema={"setl_time": pl.String, "setl_id": pl.String},
    )
    expected = sorted(range(len(rows)), key=lambda k: (rows[k][0], rows[k][1], k))
    assert adjudicate.processing_order(frame).tolist() == expected


# ----- the file path, batch against sequential, on random files -----


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


_GARBAGE = st.sampled_from(["", "-1.00", "1.000", ".5", "1e3", "5", "5.5", "007.10"])


@st.composite
def _amounts(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """Mostly consistent amounts (so that rows are priced), sometimes a broken field."""
    scope = draw(st.integers(0, 3_000_000))
    fund = draw(st.integers(0, scope))
    other = draw(st.sampled_from([0, 0, draw(st.integers(0, 300_000))]))
    total = scope + draw(st.sampled_from([0, draw(st.integers(0, 50_000))]))
    texts = [_yuan(total), _yuan(scope), _yuan(fund), _yuan(other) if other else ""]
    if draw(st.integers(0, 5)) == 0:
        texts[draw(st.integers(0, 3))] = draw(_GARBAGE)
    return texts[0], texts[1], texts[2], texts[3]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["S1", "S2", "S3", "S4", "S5", "S6"]),
            st.sampled_from([ID_A, ID_B, ID_C, ID_B.lower()]),
            st.sampled_from(["settle", "settle", "settle", "cancel", "bad"]),
            st.sampled_from(["21", "14", "52", "11", ""]),
            st.sampled_from(["2026-02-01", "2026-07-15", "2025-12-31", "2026-02-30"]),
            st.sampled_from(["2026-03-01 10:00:00", "2026-08-01 09:00:00", "2027-04-01 00:00:00"]),
            _amounts(),
        ),
        max_size=25,
    )
)
def test_files_priced_by_batch_and_sequential_paths_alike(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str, str, str, str, str, str, tuple[str, str, str, str]]],
) -> None:
    folder = tmp_path_factory.mktemp("random")
    members = [
        _member(ID_A),
        _member(ID_B, hardship_start="2026-07-01"),
        _member(ID_C, member_type="family"),
    ]
    settlements = []
    for setl_id, certno, kind, med, adm, when, (total, scope, fund, other) in rows:
        row = _settle(
            setl_id,
            certno,
            record_type=kind,
            med_type=med,
            adm_date=adm,
            setl_time=when,
            medfee_sumamt=total,
            inscp_scp_amt=scope,
            fund_pay_sumamt=fund,
            other_reimbursed=other,
        )
        settlements.append(row)
    members_path = _csv(folder / "m.csv", MEMBER_COLUMNS, members)
    settlements_path = _csv(folder / "s.csv", SETTLEMENT_COLUMNS, settlements)
    plan, read_members_, read_settlements_ = prepare(PLAN, str(members_path), str(settlements_path))
    fast = run(plan, read_members_, read_settlements_, force="batch")
    slow = run(plan, read_members_, read_settlements_, force="sequential")
    assert fast.results.to_dicts() == slow.results.to_dicts()
    assert fast.errors == slow.errors


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(10**15), 10**15), max_size=50))
def test_vectorized_yuan_format_is_format_fen(values: list[int]) -> None:
    from huzhu.core.money import format_fen

    frame = pl.DataFrame({"x": values}, schema={"x": pl.Int64})
    texts = frame.select(adjudicate._format_fen("x")).to_series().to_list()
    assert texts == [format_fen(value) for value in values]


def test_a_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    command = [
        sys.executable,
        "-m",
        "huzhu.rules.cli",
        "adjudicate",
        "--plan",
        PLAN,
        "--members",
        str(PUBLIC / "members.csv"),
        "--settlements",
        str(PUBLIC / "settlements.csv"),
        "--out",
        str(tmp_path / "tty.csv"),
    ]
    leader, follower = pty.openpty()
    # A terminal of 100 columns (a bare pseudo-terminal has no size, and tqdm draws nothing).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        completed = subprocess.run(
            command, cwd=REPO, stderr=follower, stdout=subprocess.DEVNULL, timeout=120, check=False
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert completed.returncode == 3
    assert "/5 [" in terminal and "步/s" in terminal  # tqdm drew its bar
    assert (tmp_path / "tty.csv").read_bytes() == (PUBLIC / "expected.csv").read_bytes()
