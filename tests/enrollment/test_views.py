"""The staff pages: upload → preview with every bad row → error report → confirm (a background job
with a progress bar) → coverage on the member and unit pages; scoping (404 outside the subtree)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from huzhu.core.ids import mask_id_number
from huzhu.enrollment.models import BatchStatus, Enrollment, EnrollmentBatch
from huzhu.enrollment.services import activate_batch_coverage, coverage_start_for
from huzhu.jobs.models import Job
from tests import factories
from tests.enrollment.conftest import World, active_plan, person, row, xlsx
from tests.web.conftest import login_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(world: World) -> Client:
    return login_verified(Client(), world.clerk)


def _new_batch(client: Client, world: World) -> EnrollmentBatch:
    year = timezone.localdate().year
    response = client.post(
        "/enrollment/new/", {"union": world.tree.grassroots_1.pk, "plan_year": year}
    )
    batch = EnrollmentBatch.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/enrollment/batches/{batch.pk}/"
    )
    return batch


def test_full_flow(
    world: World,
    client: Client,
    pii_guard: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    assert client.get("/enrollment/").status_code == 200
    template = client.get("/enrollment/template.xlsx")
    assert template.status_code == 200
    assert load_workbook(io.BytesIO(template.content)).sheetnames == ["花名册", "填写说明"]
    batch = _new_batch(client, world)
    good, bad = person(), person(male=False)
    content = xlsx(
        [
            row(name="张伟", id_number=good, uscc=world.tree.unit_1.uscc, phone="13800138000"),
            row(name="李娜", id_number=bad, uscc=world.tree.unit_1.uscc),
        ]
    )
    pii_guard.allow(good, bad)  # the clerk's own rows come back in the error report only
    upload = SimpleUploadedFile("花名册.xlsx", content)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/enrollment/batches/{batch.pk}/upload/", {"file": upload})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.status, batch.valid_count, batch.error_count) == ("validated", 1, 1)
    page = client.get(f"/enrollment/batches/{batch.pk}/").content.decode()
    assert "女职工须填写退休类别（女50或女55），身份证号码无法区分" in page
    assert mask_id_number(bad) in page and bad not in page
    assert "跳过有错误的 1 行" in page
    report = client.get(f"/enrollment/batches/{batch.pk}/errors.xlsx")
    assert report.status_code == 200 and report["X-Huzhu-Reveal"] == "1"
    sheet = load_workbook(io.BytesIO(report.content)).active
    assert sheet is not None
    values = [[c.value for c in r] for r in sheet.iter_rows()]
    assert values[0][-1] == "错误原因" and values[1][0] == 3 and values[1][2] == bad
    # confirming without accepting the bad row is refused
    response = client.post(f"/enrollment/batches/{batch.pk}/confirm/", {}, follow=True)
    assert "请修改后重新上传，或确认只导入有效行" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/enrollment/batches/{batch.pk}/confirm/", {"accept_invalid_rows": "on"})
    batch.refresh_from_db()
    assert batch.status == BatchStatus.AWAITING_PAYMENT and batch.enrolled_count == 1
    job = Job.objects.filter(kind="enrollment.confirm").get()
    assert (job.status, job.done, job.total) == ("succeeded", 1, 1)
    progress = client.get(f"/enrollment/jobs/{job.pk}/progress/", headers={"HX-Request": "true"})
    assert progress.headers.get("HX-Refresh") == "true"
    fragment = client.get(f"/enrollment/jobs/{job.pk}/progress/").content.decode()
    assert 'value="100"' in fragment and "hx-trigger" not in fragment
    paid = timezone.localdate() - timedelta(days=1)
    activate_batch_coverage(acting_user=None, batch=batch, paid_on=paid)
    enrollment = Enrollment.objects.get()
    member_page = client.get(f"/enrollment/members/{enrollment.member_id}/").content.decode()
    start = coverage_start_for(batch.plan_year, paid)
    assert f"{start:%Y-%m-%d} 至 {batch.plan_year}-12-31" in member_page
    assert "保障中" in member_page
    unit_page = client.get(f"/enrollment/units/{world.tree.unit_1.pk}/").content.decode()
    assert "张伟" in unit_page and "保障中：1" in unit_page


def test_running_job_is_polled_with_a_progress_bar(world: World, client: Client) -> None:
    batch = _new_batch(client, world)
    job = Job.objects.create(
        kind="enrollment.confirm",
        label="确认参保",
        handler="huzhu.x",
        status="running",
        total=200,
        done=50,
        organisation=batch.union,
        organisation_path=batch.union_path,
        object_type="enrollment.enrollmentbatch",
        object_id=str(batch.pk),
    )
    page = client.get(f"/enrollment/batches/{batch.pk}/").content.decode()
    assert f'hx-get="/enrollment/jobs/{job.pk}/progress/"' in page
    assert (
        'hx-trigger="every 1s"' in page and '<progress class="w-100" max="100" value="25"' in page
    )
    assert "50 / 200（25%）" in page


def test_same_file_twice_points_to_the_first_batch(
    world: World, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    content = xlsx([row(id_number=person(), uscc=world.tree.unit_1.uscc)])
    first = _new_batch(client, world)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/enrollment/batches/{first.pk}/upload/",
            {"file": SimpleUploadedFile("a.xlsx", content)},
        )
    year = timezone.localdate().year
    client.post("/enrollment/new/", {"union": world.tree.grassroots_1.pk, "plan_year": year})
    second = EnrollmentBatch.objects.exclude(pk=first.pk).get()
    response = client.post(
        f"/enrollment/batches/{second.pk}/upload/",
        {"file": SimpleUploadedFile("b.xlsx", content)},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/enrollment/batches/{first.pk}/"
    assert "未重复导入" in response.content.decode()
    second.refresh_from_db()
    assert second.file_sha256 == ""


def test_upload_checks_type(world: World, client: Client) -> None:
    batch = _new_batch(client, world)
    response = client.post(
        f"/enrollment/batches/{batch.pk}/upload/",
        {"file": SimpleUploadedFile("a.exe", b"MZ")},
        follow=True,
    )
    assert "只能上传 .xlsx、.xls 或 .csv 文件" in response.content.decode()
    response = client.post(
        f"/enrollment/batches/{batch.pk}/upload/",
        {"file": SimpleUploadedFile("a.xlsx", b"name,id\n")},
        follow=True,
    )
    assert "文件内容不是 Excel 工作簿" in response.content.decode()
    batch.refresh_from_db()
    assert batch.file_sha256 == ""


def test_out_of_scope_is_404_and_readers_cannot_write(world: World, client: Client) -> None:
    batch = _new_batch(client, world)
    sibling = login_verified(Client(), factories.staff(world.tree.county_a2, "clerk"))
    for url in (f"/enrollment/batches/{batch.pk}/", f"/enrollment/batches/{batch.pk}/errors.xlsx"):
        assert sibling.get(url).status_code == 404
    assert sibling.post(f"/enrollment/batches/{batch.pk}/confirm/").status_code == 404
    reviewer = login_verified(Client(), factories.staff(world.tree.county_a1, "reviewer"))
    assert reviewer.get(f"/enrollment/batches/{batch.pk}/").status_code == 200
    assert reviewer.get("/enrollment/new/").status_code == 404
    assert reviewer.post(f"/enrollment/batches/{batch.pk}/upload/").status_code == 404
    admin = login_verified(Client(), factories.staff(world.tree.province, "sysadmin"))
    assert admin.get("/enrollment/").status_code == 404


def test_renew_page_reports_a_missing_plan_then_drafts(
    world: World, client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    year = timezone.localdate().year
    batch = _new_batch(client, world)
    from huzhu.enrollment import services

    services.attach_roster(
        acting_user=world.clerk,
        batch=batch,
        file_name="r.xlsx",
        content=xlsx([row(name="甲", id_number=person(), uscc=world.tree.unit_1.uscc)]),
    )
    services.validate_batch(batch=batch)
    services.confirm_batch(acting_user=world.clerk, batch=batch)
    activate_batch_coverage(
        acting_user=None, batch=batch, paid_on=timezone.localdate() - timedelta(days=1)
    )
    response = client.post("/enrollment/renew/", {"year": year + 1})
    assert f"没有已启用的{year + 1}年度保障方案" in response.content.decode()
    active_plan(year + 1)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/enrollment/renew/", {"year": year + 1})
    job = Job.objects.get(kind="enrollment.renewal")
    assert response["Location"] == f"/enrollment/jobs/{job.pk}/"
    page = client.get(f"/enrollment/jobs/{job.pk}/").content.decode()
    drafted = EnrollmentBatch.objects.get(plan_year=year + 1)
    assert f"续保批次 #{drafted.pk}" in page and "续保 1 人" in page
    detail = client.get(f"/enrollment/batches/{drafted.pk}/").content.decode()
    assert "确认参保" in detail


def test_member_left_unit_from_the_member_page(world: World, client: Client) -> None:
    from huzhu.enrollment import services

    batch = _new_batch(client, world)
    services.attach_roster(
        acting_user=world.clerk,
        batch=batch,
        file_name="r.xlsx",
        content=xlsx([row(name="甲", id_number=person(), uscc=world.tree.unit_1.uscc)]),
    )
    services.validate_batch(batch=batch)
    services.confirm_batch(acting_user=world.clerk, batch=batch)
    enrollment = Enrollment.objects.get()
    today = timezone.localdate()
    response = client.post(
        f"/enrollment/members/{enrollment.member_id}/left-unit/",
        {"left_on": today.isoformat()},
        follow=True,
    )
    assert "保障持续至12月31日" in response.content.decode()
    enrollment.refresh_from_db()
    assert enrollment.left_unit_on == today and enrollment.status == "pending"
