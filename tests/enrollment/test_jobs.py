"""Background jobs (huzhu.jobs): progress in the database, failures as Chinese text without a
stack trace, stalled detection, scoping, the queue entry point, and ``huzhu worker``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from huzhu.cli import build_parser
from huzhu.jobs.access import access_job
from huzhu.jobs.models import Job
from huzhu.jobs.services import JobFailed, Progress, create_job, run_job
from huzhu.jobs.tasks import run_job_task
from huzhu.orgs.access import NotPermitted
from tests import factories

pytestmark = pytest.mark.django_db


def counting_handler(job: Job, progress: Progress) -> dict[str, Any]:
    progress.begin(3, "开始")
    for done in range(1, 4):
        progress.update(done, f"第{done}步", force=True)
    return {"answer": 42}


def failing_handler(job: Job, progress: Progress) -> dict[str, Any]:
    raise JobFailed("花名册无法使用：缺少必需的列：姓名")


def crashing_handler(job: Job, progress: Progress) -> dict[str, Any]:
    raise RuntimeError("secret detail 430102198503120011")


def _job(handler: str, organisation: Any = None) -> Job:
    # create_job accepts huzhu handlers only; the test handlers live here, so the row is written
    # directly (run_job is what is under test).
    return Job.objects.create(
        kind="test",
        label="测试任务",
        handler=f"tests.enrollment.test_jobs.{handler}",
        organisation=organisation,
        organisation_path=organisation.path if organisation is not None else "",
    )


def test_create_job_refuses_handlers_outside_huzhu() -> None:
    with pytest.raises(ValueError, match="huzhu package"):
        create_job(acting_user=None, kind="x", label="x", handler="os.system")


def test_progress_is_stored_and_listened() -> None:
    job = Job.objects.create(kind="test", label="测试", handler="huzhu.x")
    calls: list[tuple[int, int, str]] = []
    progress = Progress(job, lambda d, t, m: calls.append((d, t, m)), min_interval=3600)
    progress.begin(10, "开始")
    progress.update(4)  # throttled: not written, but heard
    job.refresh_from_db()
    assert (job.total, job.done, job.message) == (10, 0, "开始")
    progress.update(5, "一半", force=True)
    job.refresh_from_db()
    assert (job.done, job.message, job.percent) == (5, "一半", 50)
    assert calls == [(0, 10, "开始"), (4, 10, "开始"), (5, 10, "一半")]


def test_run_job_success_failure_and_crash(caplog: pytest.LogCaptureFixture) -> None:
    ok = run_job(_job("counting_handler").pk)
    assert (ok.status, ok.done, ok.total, ok.result, ok.percent) == (
        "succeeded",
        3,
        3,
        {"answer": 42},
        100,
    )
    assert ok.finished_at is not None and ok.finished
    failed = run_job(_job("failing_handler").pk)
    assert (failed.status, failed.error) == ("failed", "花名册无法使用：缺少必需的列：姓名")
    crashed = run_job(_job("crashing_handler").pk)
    assert crashed.status == "failed"
    assert crashed.error == "任务执行出错（详细信息已记入系统日志），请稍后重试或联系系统管理员"
    assert "secret" not in crashed.error
    # a finished job is not run again
    assert run_job(ok.pk).result == {"answer": 42}


def test_the_task_entry_point_runs_the_job() -> None:
    job = _job("counting_handler")
    result = run_job_task.enqueue(job.pk)  # the immediate backend in tests
    assert result.return_value == "succeeded"
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_stalled_and_scoped(tree: factories.Tree) -> None:
    job = _job("counting_handler", organisation=tree.grassroots_1)
    Job.objects.filter(pk=job.pk).update(
        status="running", updated_at=timezone.now() - timedelta(minutes=5)
    )
    job.refresh_from_db()
    assert job.stalled
    own = factories.staff(tree.county_a1, "clerk")
    assert access_job(own, job.pk) == job
    with pytest.raises(NotPermitted):
        access_job(factories.staff(tree.county_a2, "clerk"), job.pk)


def test_worker_command_runs_db_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    called: dict[str, Any] = {}

    def fake_call_command(name: str, **options: Any) -> None:
        called.update(name=name, **options)

    monkeypatch.setattr("django.core.management.call_command", fake_call_command)
    args = build_parser().parse_args(["worker", "--batch", "--interval", "2"])
    assert args.func(args) == 0
    assert called == {"name": "db_worker", "interval": 2.0, "batch": True}
