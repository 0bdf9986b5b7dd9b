"""The batch settlement feed (issue #5 item 2): CSV and JSON lines files checked before anything is
committed, processed exactly as the API would, each ``setl_id`` exactly once, the same file twice
changing nothing, and large files in committed chunks that resume after an interruption."""

from __future__ import annotations

from typing import Any

import pytest

from huzhu.claims import feed
from huzhu.claims.feed import FileStatus, file_lines, file_summary, import_settlement_file
from huzhu.claims.models import (
    BenefitYear,
    Channel,
    Claim,
    ClaimStatus,
    Settlement,
    SettlementFile,
    SettlementFileImport,
    SettlementFileLine,
)
from huzhu.claims.services import receive_settlement
from huzhu.core.models import AuditEvent
from huzhu.jobs.models import Job
from huzhu.ledger.models import JournalEntry
from tests import factories
from tests.claims.conftest import cover, covered_person, ledger_clean, settle_body
from tests.claims.test_feed_support import csv_bytes, jsonl_bytes, total_of

pytestmark = pytest.mark.django_db


def _import(partner: Any, rows: list[Any], *, fmt: str = "csv", **kwargs: Any) -> feed.FileOutcome:
    content = csv_bytes(rows) if fmt == "csv" else jsonl_bytes(rows)
    options: dict[str, Any] = {
        "declared_count": len(rows),
        "declared_total": total_of(rows),
        **kwargs,
    }
    return import_settlement_file(
        acting_user=None,
        partner=partner,
        filename=f"settlements.{fmt}",
        content=content,
        **options,
    )


def _state() -> dict[str, int]:
    """Everything an import could write besides the file row itself."""
    return {
        "settlements": Settlement.objects.count(),
        "claims": Claim.objects.count(),
        "years": BenefitYear.objects.count(),
        "entries": JournalEntry.objects.count(),
        "lines": SettlementFileLine.objects.count(),
        "imports": SettlementFileImport.objects.count(),
    }


EMPTY = {"settlements": 0, "claims": 0, "years": 0, "entries": 0, "lines": 0, "imports": 0}


def _mixed_rows(tree: Any, plan: Any, person: Any) -> list[Any]:
    waiting = covered_person(tree, plan, consent=False, name="李四")
    return [
        settle_body(person.certno, "S1"),
        settle_body(person.certno, "S2", base="3000.00", setl_time="2026-03-11 10:00:00"),
        settle_body(waiting.certno, "S3"),
        settle_body(factories.id_number(), "S4"),
        settle_body(person.certno, "S5", diagnoses=("C34.9",), setl_time="2026-03-12 08:00:00"),
        ("S1", "2026-03-12 09:00:00"),
    ]


EXPECTED_LINES = [
    ("S1", "settle", "approved", None, "6200.00"),
    ("S2", "settle", "approved", None, "2100.00"),
    ("S3", "settle", "quarantined", "NO_CONSENT", "0.00"),
    ("S4", "settle", "rejected", "NOT_FOUND", "0.00"),
    ("S5", "settle", "pending_review", None, "8400.00"),
    ("S1", "cancel", "cancelled", None, "-8400.00"),
]


def _line_tuples(settlement_file: SettlementFile) -> list[tuple[Any, ...]]:
    return [
        (x["setl_id"], x["record_type"], x["outcome"], x["reason"], x["benefit"])
        for x in file_lines(settlement_file)
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_valid_file_is_processed_in_order_like_the_api(tree, plan, partner, person, fmt):
    rows = _mixed_rows(tree, plan, person)
    outcome = _import(partner, rows, fmt=fmt)
    assert not outcome.duplicate and outcome.job is None
    settlement_file = outcome.file
    assert settlement_file.status == FileStatus.ACCEPTED and settlement_file.problems == []
    assert (settlement_file.record_count, settlement_file.total_fen) == (6, 15000000)
    assert settlement_file.file_format == fmt
    assert _line_tuples(settlement_file) == EXPECTED_LINES
    assert [x["line"] for x in file_lines(settlement_file)] == (
        [2, 3, 4, 5, 6, 7] if fmt == "csv" else [1, 2, 3, 4, 5, 6]
    )
    summary = file_summary(settlement_file)
    assert summary["outcomes"] == {
        "approved": 2,
        "cancelled": 1,
        "pending_review": 1,
        "quarantined": 1,
        "rejected": 1,
    }
    assert summary["processed"] == 6
    stored = Settlement.objects.order_by("setl_id")
    assert [(s.setl_id, s.channel, s.file_id) for s in stored] == [
        (f"S{i}", Channel.FILE, settlement_file.pk) for i in range(1, 6)
    ]
    assert Settlement.objects.get(setl_id="S1").status == "cancelled"
    claims = {c.record_key: c for c in Claim.objects.all()}
    assert claims["S1"].status == ClaimStatus.CANCELLED
    assert claims["S3"].status == ClaimStatus.QUARANTINED
    assert claims["S5"].status == ClaimStatus.IN_REVIEW
    # Received after discharge: an approved benefit is owed to the member, not deducted.
    assert claims["S2"].status == ClaimStatus.APPROVED
    assert claims["S2"].deducted_at_discharge is False
    assert AuditEvent.objects.filter(event=feed.EVENT_FILE_ACCEPTED).count() == 1
    # The bytes are not kept once the import is done.
    assert SettlementFileImport.objects.get().content_enc is None
    assert ledger_clean()


def test_csv_accepts_a_byte_order_mark_and_blank_lines(partner, person):
    rows = [settle_body(person.certno, "S1")]
    content = b"\xef\xbb\xbf" + csv_bytes(rows) + b"\n\n"
    outcome = import_settlement_file(
        acting_user=None,
        partner=partner,
        filename="x.csv",
        content=content,
        declared_count=1,
        declared_total="30000.00",
    )
    assert outcome.file.status == FileStatus.ACCEPTED
    assert _line_tuples(outcome.file) == [("S1", "settle", "approved", None, "6200.00")]


def test_wrong_count_rejects_the_file_and_commits_nothing_else(partner, person):
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2")]
    outcome = _import(partner, rows, declared_count=3)
    assert outcome.file.status == FileStatus.REJECTED
    assert outcome.file.problems == [
        {"line": None, "field": "declared_count", "message": "声明记录数 3 与文件中的记录数 2 不符"}
    ]
    assert _state() == EMPTY
    assert SettlementFile.objects.count() == 1
    assert AuditEvent.objects.filter(event=feed.EVENT_FILE_REJECTED).count() == 1


def test_wrong_total_rejects_the_file(partner, person):
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2")]
    outcome = _import(partner, rows, fmt="jsonl", declared_total="60000.01")
    assert outcome.file.problems == [
        {
            "line": None,
            "field": "declared_total",
            "message": "声明金额合计 60000.01 元与文件中医疗费总额（medfee_sumamt）合计 "
            "60000.00 元不符",
        }
    ]
    assert _state() == EMPTY


def test_unreadable_declaration_is_a_problem(partner, person):
    rows = [settle_body(person.certno, "S1")]
    outcome = _import(partner, rows, declared_count=-1, declared_total="1,000")
    assert [p["field"] for p in outcome.file.problems] == ["declared_count", "declared_total"]
    assert _state() == EMPTY


def test_every_bad_row_is_named_by_line_and_field_and_nothing_is_committed(partner, person):
    rows = [
        settle_body(person.certno, "S1"),
        settle_body(person.certno, "S2", medfee_sumamt="12.345"),
        settle_body(person.certno, "S3"),
        settle_body("430102198503120158", "S4", diagnoses=("XYZ",)),
    ]
    content = csv_bytes(rows)
    outcome = import_settlement_file(
        acting_user=None,
        partner=partner,
        filename="bad.csv",
        content=content,
        declared_count=4,
        declared_total="120000.00",
    )
    assert outcome.file.status == FileStatus.REJECTED
    assert outcome.file.problems == [
        {
            "line": 3,
            "field": "medfee_sumamt",
            "message": "金额应为不小于 0 的数，最多两位小数（数字或字符串）",
        },
        {
            "line": 5,
            "field": "certno",
            "message": "身份证号码无效（18 位，校验码与出生日期须正确）",
        },
        {"line": 5, "field": "diag_codes", "message": "诊断编码应为 ICD-10 编码（如 C34.9）"},
    ]
    assert _state() == EMPTY
    # The same problems as the API would name, with the API's field paths in JSON lines.
    outcome = import_settlement_file(
        acting_user=None,
        partner=partner,
        filename="bad.jsonl",
        content=jsonl_bytes(rows),
        declared_count=4,
        declared_total="120000.00",
    )
    assert [(p["line"], p["field"]) for p in outcome.file.problems] == [
        (2, "setlinfo.medfee_sumamt"),
        (4, "setlinfo.certno"),
        (4, "diseinfo[0].diag_code"),
    ]
    assert _state() == EMPTY


def test_unknown_and_missing_columns_are_reported_at_the_header(partner, person):
    rows = [settle_body(person.certno, "S1")]
    content = csv_bytes(rows).replace(b"med_type", b"medtype", 1)
    outcome = import_settlement_file(
        acting_user=None,
        partner=partner,
        filename="x.csv",
        content=content,
        declared_count=1,
        declared_total="30000.00",
    )
    assert outcome.file.problems == [
        {
            "line": 1,
            "field": "medtype",
            "message": "不接受的列“medtype”（须使用国家医保平台字段代码）",
        }
    ]


def test_unreadable_files_are_rejected(partner):
    for content, message in (
        (b"", "文件为空"),
        ("setl_id\n结算".encode("gbk"), "文件不是 UTF-8 编码的文本（请以 UTF-8 保存）"),
    ):
        outcome = import_settlement_file(
            acting_user=None,
            partner=partner,
            filename="x.csv",
            content=content,
            declared_count=0,
            declared_total="0",
        )
        assert outcome.file.problems == [{"line": None, "field": "file", "message": message}]
    broken = b'{"setlinfo": {"setl_id": "S1"}\n'
    outcome = import_settlement_file(
        acting_user=None,
        partner=partner,
        filename="x.jsonl",
        content=broken,
        declared_count=1,
        declared_total="0",
    )
    assert [(p["line"], p["field"]) for p in outcome.file.problems] == [(1, "json")]
    assert _state() == EMPTY


def test_the_same_file_twice_changes_nothing(partner, person):
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2", base="3000.00")]
    first = _import(partner, rows)
    before = (_state(), AuditEvent.objects.count(), SettlementFile.objects.count())
    again = _import(partner, rows)
    assert again.duplicate and again.file.pk == first.file.pk
    assert (_state(), AuditEvent.objects.count(), SettlementFile.objects.count()) == before
    assert file_summary(again.file) == file_summary(first.file)


def test_a_rejected_file_sent_again_is_checked_again(partner, person):
    rows = [settle_body(person.certno, "S1")]
    _import(partner, rows, declared_count=2)
    second = _import(partner, rows, declared_count=2)
    assert not second.duplicate
    assert SettlementFile.objects.filter(status=FileStatus.REJECTED).count() == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_records_received_through_the_api_are_replays(partner, person, fmt):
    api_body = settle_body(person.certno, "S1")
    receive_settlement(partner=partner, body=api_body)
    before = Settlement.objects.values().get(setl_id="S1")
    rows = [api_body, settle_body(person.certno, "S2", base="3000.00")]
    outcome = _import(partner, rows, fmt=fmt)
    assert outcome.file.status == FileStatus.ACCEPTED
    lines = _line_tuples(outcome.file)
    assert lines == [
        ("S1", "settle", "duplicate", None, "0.00"),
        ("S2", "settle", "approved", None, "2100.00"),
    ]
    assert Settlement.objects.values().get(setl_id="S1") == before  # untouched: channel api
    assert Claim.objects.count() == 2 and ledger_clean()
    line = SettlementFileLine.objects.get(setl_id="S1")
    assert line.settlement_id == before["id"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_setl_id_received_with_other_content_rejects_the_whole_file(partner, person, fmt):
    receive_settlement(partner=partner, body=settle_body(person.certno, "S1"))
    before = _state()
    rows = [
        settle_body(person.certno, "S2", base="3000.00"),
        settle_body(person.certno, "S1", base="11000.00"),
    ]
    outcome = _import(partner, rows, fmt=fmt)
    assert outcome.file.status == FileStatus.REJECTED
    assert [(p["line"], p["field"]) for p in outcome.file.problems] == [
        (3 if fmt == "csv" else 2, "setl_id")
    ]
    assert "已于" in outcome.file.problems[0]["message"]
    assert "通过实时接口接收，内容与本行不同" in outcome.file.problems[0]["message"]
    assert _state() == before
    assert not Settlement.objects.filter(setl_id="S2").exists()


def test_a_setl_id_twice_in_one_file_with_other_content_is_a_problem(partner, person):
    rows = [
        settle_body(person.certno, "S1"),
        settle_body(person.certno, "S1", base="100.00"),
    ]
    outcome = _import(partner, rows)
    assert outcome.file.problems == [
        {
            "line": 3,
            "field": "setl_id",
            "message": "结算ID S1 与第2行相同但内容不同；同一结算ID只能接收一次",
        }
    ]
    assert _state() == EMPTY


def test_the_same_record_twice_in_one_file_is_received_once(partner, person):
    body = settle_body(person.certno, "S1")
    outcome = _import(partner, [body, body])
    assert [x[2] for x in _line_tuples(outcome.file)] == ["approved", "duplicate"]
    assert Settlement.objects.count() == 1 and Claim.objects.count() == 1


def test_cancel_lines_reverse_settlements_received_earlier(partner, person):
    receive_settlement(partner=partner, body=settle_body(person.certno, "S1"))
    outcome = _import(partner, [("S1", "2026-03-12 09:00:00")], fmt="jsonl", declared_total="0")
    assert _line_tuples(outcome.file) == [("S1", "cancel", "cancelled", None, "-6200.00")]
    assert Claim.objects.get().status == ClaimStatus.CANCELLED
    assert Settlement.objects.get().status == "cancelled"
    assert ledger_clean()
    # The same cancel in another file is a replay; another cancel time is a conflict.
    again = import_settlement_file(
        acting_user=None,
        partner=partner,
        filename="again.csv",
        content=csv_bytes(
            [("S1", "2026-03-12 09:00:00")], columns=["setl_id", "record_type", "cancel_time"]
        ),
        declared_count=1,
        declared_total="0",
    )
    assert _line_tuples(again.file) == [("S1", "cancel", "duplicate", None, "0.00")]
    other = _import(partner, [("S1", "2026-03-13 09:00:00")], declared_total="0")
    assert other.file.status == FileStatus.REJECTED
    assert [(p["line"], p["field"]) for p in other.file.problems] == [(2, "cancel_time")]


def test_cancel_of_an_unknown_setl_id_rejects_the_file(partner, person):
    rows = [settle_body(person.certno, "S1"), ("S9", "2026-03-12 09:00:00")]
    outcome = _import(partner, rows)
    assert outcome.file.problems == [
        {
            "line": 3,
            "field": "setl_id",
            "message": "要撤销的结算ID S9 不存在（本文件此前各行与已接收的结算中均没有）",
        }
    ]
    assert _state() == EMPTY


def test_a_member_outside_the_partners_scope_is_refused_per_record(tree, plan, partner, person):
    far_number = factories.id_number()
    far_union = factories.union(tree.city_b, "株洲某公司工会", "grassroots")
    far = factories.member(far_union, factories.unit(far_union, "株洲某公司"), number=far_number)
    cover(far, plan)
    rows = [
        settle_body(person.certno, "S1"),
        settle_body(far_number, "S2"),
        ("S2", "2026-03-12 09:00:00"),
    ]
    outcome = _import(partner, rows)
    assert _line_tuples(outcome.file) == [
        ("S1", "settle", "approved", None, "6200.00"),
        ("S2", "settle", "out_of_scope", "OUT_OF_SCOPE", "0.00"),
        ("S2", "cancel", "not_found", "NOT_FOUND", "0.00"),
    ]
    assert list(Settlement.objects.values_list("setl_id", flat=True)) == ["S1"]


def test_nothing_is_committed_when_a_conflict_appears_during_processing(
    partner, person, monkeypatch
):
    """The API receives S2 with other content after the file was checked (the check is made to
    miss it) but before its records are written: the whole file rolls back and is stored
    rejected, naming that line."""
    rows = [settle_body(person.certno, "S1"), settle_body(person.certno, "S2", base="3000.00")]
    monkeypatch.setattr(feed, "check_against_received", lambda partner, parsed: [])
    receive_settlement(partner=partner, body=settle_body(person.certno, "S2", base="10.00"))
    outcome = _import(partner, rows)
    assert outcome.file.status == FileStatus.REJECTED
    assert [(p["line"], p["field"]) for p in outcome.file.problems] == [(3, "setl_id")]
    # Only the API's record stands: S1 of the file was rolled back with the rest.
    assert list(Settlement.objects.values_list("setl_id", "channel")) == [("S2", "api")]
    assert SettlementFileLine.objects.count() == 0 and Claim.objects.count() == 1


# --- large files: a background job in committed chunks -----------------------------------------
def _many(person: Any, count: int) -> list[Any]:
    return [
        settle_body(
            person.certno,
            f"L{i:03d}",
            base="100.00",
            setl_time=f"2026-03-10 10:{i // 60:02d}:{i % 60:02d}",
        )
        for i in range(count)
    ]


def test_a_large_file_runs_as_a_job_in_chunks(partner, person, monkeypatch):
    monkeypatch.setattr(feed, "BACKGROUND_THRESHOLD", 3)
    rows = _many(person, 7)
    seen: list[tuple[int, int]] = []
    outcome = _import(
        partner,
        rows,
        run_inline=True,
        chunk_size=2,
        listener=lambda done, total, message: seen.append((done, total)),
    )
    assert outcome.job is not None and outcome.job.status == "succeeded"
    assert outcome.file.status == FileStatus.ACCEPTED
    assert [d for d, _ in seen if d] == [2, 4, 6, 7]
    assert outcome.job.result["outcomes"] == file_summary(outcome.file)["outcomes"]
    assert sum(outcome.job.result["outcomes"].values()) == 7
    assert Settlement.objects.count() == 7 and SettlementFileLine.objects.count() == 7
    assert SettlementFileImport.objects.get().content_enc is None
    assert ledger_clean()


def test_a_large_upload_is_queued_for_the_worker(
    partner, person, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(feed, "BACKGROUND_THRESHOLD", 3)
    rows = _many(person, 4)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = _import(partner, rows)
    assert outcome.file.status == FileStatus.IMPORTING  # as answered, before the worker ran
    job = Job.objects.get(kind=feed.KIND_IMPORT)
    assert job.status == "succeeded" and job.object_id == str(outcome.file.pk)
    outcome.file.refresh_from_db()
    assert outcome.file.status == FileStatus.ACCEPTED
    assert Settlement.objects.count() == 4


def test_an_interrupted_import_resumes_and_every_record_lands_once(partner, person, monkeypatch):
    monkeypatch.setattr(feed, "BACKGROUND_THRESHOLD", 3)
    rows = _many(person, 7)
    original = feed.receive_settlement
    calls = {"n": 0}

    def crashing(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("worker killed")
        return original(**kwargs)

    monkeypatch.setattr(feed, "receive_settlement", crashing)
    first = _import(partner, rows, run_inline=True, chunk_size=2)
    assert first.job is not None and first.job.status == "failed"
    assert first.file.status == FileStatus.IMPORTING
    # Two chunks committed; the third rolled back with its progress.
    assert SettlementFileImport.objects.get().position == 4
    assert Settlement.objects.count() == 4 and SettlementFileLine.objects.count() == 4
    monkeypatch.setattr(feed, "receive_settlement", original)
    again = _import(partner, rows, run_inline=True, chunk_size=2)
    assert again.file.pk == first.file.pk and again.file.status == FileStatus.ACCEPTED
    assert sorted(Settlement.objects.values_list("setl_id", flat=True)) == [
        f"L{i:03d}" for i in range(7)
    ]
    assert list(
        SettlementFileLine.objects.order_by("position").values_list("position", flat=True)
    ) == [1, 2, 3, 4, 5, 6, 7]
    assert sum(file_summary(again.file)["outcomes"].values()) == 7
    assert "duplicate" not in file_summary(again.file)["outcomes"]
    # And once more: the accepted file is a duplicate.
    assert _import(partner, rows, run_inline=True).duplicate
    assert ledger_clean()


def test_a_huge_declared_count_is_a_problem_not_a_crash(partner, person):
    rows = [settle_body(person.certno, "S1")]
    outcome = _import(partner, rows, declared_count=10**12)
    assert outcome.file.problems == [
        {
            "line": None,
            "field": "declared_count",
            "message": f"声明记录数 {10**12} 与文件中的记录数 1 不符",
        }
    ]
    assert outcome.file.declared_count == 2_147_483_647


def test_the_file_row_keeps_a_bounded_list_and_the_check_reports_every_problem(
    partner, person, monkeypatch
):
    monkeypatch.setattr(feed, "MAX_PROBLEMS", 2)
    rows = [settle_body(person.certno, f"S{i}", med_type="") for i in range(3)]
    outcome = _import(partner, rows)
    assert [(p.line, p.field) for p in outcome.problems] == [
        (2, "med_type"),
        (3, "med_type"),
        (4, "med_type"),
    ]
    assert outcome.file.problems == [
        {"line": 2, "field": "med_type", "message": "必填"},
        {"line": 3, "field": "med_type", "message": "必填"},
        {
            "line": None,
            "field": "file",
            "message": "另有 1 个问题未列出：请先改正以上问题后重新检查",
        },
    ]
