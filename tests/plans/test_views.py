"""The plan screens: list, readable view, upload with its validation report, download, compare,
copy, draft correction, activation and retirement (permissions and audit)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from huzhu.core.audit import Event
from huzhu.core.models import AuditEvent
from huzhu.plans import services
from huzhu.plans.models import PlanStatus, PlanVersion
from tests.plans.conftest import PINGDINGSHAN, People, hunan_text, login, variant

pytestmark = pytest.mark.django_db

CHECK_TEXT = "互助金 120.00 元 ≤ 城乡居民医保个人缴费标准 400.00 元 × 50% = 200.00 元 ✓"


def _text(response: object) -> str:
    body = response.content.decode()  # type: ignore[attr-defined]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def _hunan(people: People, *, active: bool = False) -> PlanVersion:
    version = services.import_plan(
        acting_user=people.province_manager, yaml_text=hunan_text(), filename="hunan-2026.yaml"
    )
    if active:
        services.activate_plan(acting_user=people.province_manager, plan_version=version)
        version.refresh_from_db()
    return version


def _city_plans(people: People) -> tuple[PlanVersion, PlanVersion]:
    changsha = services.import_plan(
        acting_user=None,
        yaml_text=variant(
            hunan_text(), {"code": "CHANGSHA-2026", "name": "长沙市方案", "region": "430100"}
        ),
        filename="",
    )
    zhuzhou = services.import_plan(
        acting_user=None,
        yaml_text=variant(
            hunan_text(), {"code": "ZHUZHOU-2026", "name": "株洲市方案", "region": "430200"}
        ),
        filename="",
    )
    return changsha, zhuzhou


# --- list and scope ------------------------------------------------------------------------


def test_list_shows_versions_with_status_use_and_hash(people: People) -> None:
    version = _hunan(people, active=True)
    services.mark_used(version)
    response = login(people.province_manager).get(reverse("plans:list"))
    assert response.status_code == 200
    text = _text(response)
    assert "HUNAN-2026" in text
    assert "湖南省在职职工互助保障计划（2026年度）" in text
    assert "430000" in text and "湖南省总工会" in text
    assert "已启用" in text
    assert version.parameters_hash[:12] in text
    assert "全年" in text  # no effective_from
    assert reverse("plans:upload") in response.content.decode()


def test_list_is_scoped_to_the_users_areas(people: People) -> None:
    _hunan(people)
    _city_plans(people)
    seen = {
        "province_manager": {"HUNAN-2026", "CHANGSHA-2026", "ZHUZHOU-2026"},
        "city_clerk": {"HUNAN-2026", "CHANGSHA-2026"},
        "county_clerk": {"HUNAN-2026", "CHANGSHA-2026"},
        "city_b_clerk": {"HUNAN-2026", "ZHUZHOU-2026"},
    }
    for who, codes in seen.items():
        body = login(getattr(people, who)).get(reverse("plans:list")).content.decode()
        shown = {code for code in ("HUNAN-2026", "CHANGSHA-2026", "ZHUZHOU-2026") if code in body}
        assert shown == codes, who
        # A clerk sees plans but gets no upload button.
        assert (reverse("plans:upload") in body) == (who == "province_manager"), who


def test_list_requires_login_and_permission(people: People) -> None:
    _hunan(people)
    response = Client().get(reverse("plans:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))
    assert login(people.secadmin).get(reverse("plans:list")).status_code == 404


def test_detail_out_of_scope_is_404(people: People) -> None:
    _changsha, zhuzhou = _city_plans(people)
    client = login(people.city_clerk)
    assert client.get(reverse("plans:detail", args=[zhuzhou.pk])).status_code == 404
    assert client.get(reverse("plans:download", args=[zhuzhou.pk])).status_code == 404
    assert client.get(reverse("plans:detail", args=[99999])).status_code == 404


# --- readable view -------------------------------------------------------------------------


def test_readable_view(people: People) -> None:
    version = _hunan(people)
    response = login(people.province_manager).get(reverse("plans:detail", args=[version.pk]))
    assert response.status_code == 200
    text = _text(response)
    assert CHECK_TEXT in text
    assert (
        "家庭成员住院互助项目互助金 60.00 元 ≤ 城乡居民医保个人缴费标准 400.00 元 × 50% = "
        "200.00 元 ✓" in text
    )
    assert "风险储备金提取比例 8% 在 5%–10% 之间 ✓" in text
    # inpatient bands as percentages, with the hardship rates beside them
    assert "第 1 段 0.00 – 5000.00 元 50% 60%" in text
    assert "第 2 段 5000.00 – 10000.00 元 60% 70%" in text
    assert "第 3 段 10000.00 元以上 70% 80%" in text
    assert "1000.00 元（从补助基数中扣除）" in text
    assert "按年度：每个保障年度只扣除一次" in text
    assert "无起付线" in text  # special outpatient: no deductible, so no scope to explain
    assert "单次补助基数低于 1000.00 元的不予补助" in text
    assert "80000.00 元 × 1.2 = 96000.00 元" in text
    assert "各段补助比例上浮 10 个百分点" in text
    assert "重疾（28 种）首次确诊：10000.00 元" in text
    assert "每名新生儿 1000.00 元" in text
    assert "2027-03-31" in text
    assert "参保时年满 16 周岁" in text
    assert "21 普通住院、52 生育住院" in text
    # the citations of the file
    assert "湘政办发〔2025〕58号（八）省总工会按照年度缴费总额的5%—10%" in text
    # the province plan manager sees the actions
    body = response.content.decode()
    assert reverse("plans:activate", args=[version.pk]) in body
    assert reverse("plans:copy", args=[version.pk]) in body
    assert reverse("plans:edit", args=[version.pk]) in body


def test_readable_view_without_buttons_for_a_clerk(people: People) -> None:
    version = _hunan(people)
    body = login(people.city_clerk).get(reverse("plans:detail", args=[version.pk])).content
    text = body.decode()
    assert CHECK_TEXT in _text_of(text)
    for name in ("activate", "retire", "copy", "edit"):
        assert reverse(f"plans:{name}", args=[version.pk]) not in text, name
    assert reverse("plans:download", args=[version.pk]) in text


def _text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_used_version_offers_a_copy_not_an_edit(people: People) -> None:
    version = _hunan(people, active=True)
    services.mark_used(version)
    response = login(people.province_manager).get(reverse("plans:detail", args=[version.pk]))
    body = response.content.decode()
    assert "已用于计算补助，不可修改" in body
    assert reverse("plans:copy", args=[version.pk]) in body
    assert reverse("plans:edit", args=[version.pk]) not in body
    assert reverse("plans:retire", args=[version.pk]) in body


def test_list_query_count_does_not_grow_with_versions(people: People) -> None:
    client = login(people.province_manager)
    _hunan(people)
    client.get(reverse("plans:list"))  # warm the session and caches
    with CaptureQueriesContext(connection) as one:
        assert client.get(reverse("plans:list")).status_code == 200
    for n in range(5):
        services.import_plan(
            acting_user=None,
            yaml_text=variant(hunan_text(), {"code": f"HUNAN-2026-{n}"}),
            filename="",
        )
    with CaptureQueriesContext(connection) as six:
        body = client.get(reverse("plans:list")).content.decode()
    assert "HUNAN-2026-4" in body
    assert len(six) == len(one)


def test_download_returns_the_uploaded_text(people: People) -> None:
    version = _hunan(people)
    response = login(people.city_clerk).get(reverse("plans:download", args=[version.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="HUNAN-2026.yaml"'
    assert response.content.decode() == hunan_text()


# --- upload --------------------------------------------------------------------------------


def test_upload_invalid_file_shows_every_error_and_stores_nothing(people: People) -> None:
    bad = variant(
        hunan_text(),
        {"contribution": "250.00", "products.inpatient.bands[0].rate": "1.20"},
    )
    client = login(people.province_manager)
    response = client.post(
        reverse("plans:upload"),
        {"file": SimpleUploadedFile("bad.yaml", bad.encode()), "action": "import"},
    )
    assert response.status_code == 422
    text = _text(response)
    assert "发现 2 处错误，未保存任何内容" in text
    assert "contribution" in text and "products.inpatient.bands[0].rate" in text
    assert "互助金 250.00 元超过城乡居民医保个人缴费标准 400.00 元的 50%" in text
    assert "保障项目 · 住院互助保障 · 分段比例 第1段 · 比例" in text
    assert PlanVersion.objects.count() == 0
    assert not AuditEvent.objects.filter(event=Event.PLAN_IMPORTED).exists()


def test_upload_validate_only_stores_nothing_then_import(people: People) -> None:
    client = login(people.province_manager)
    response = client.post(
        reverse("plans:upload"),
        {
            "file": SimpleUploadedFile("hunan-2026.yaml", hunan_text().encode()),
            "action": "validate",
        },
    )
    assert response.status_code == 200
    text = _text(response)
    assert "校验通过" in text and CHECK_TEXT in text
    assert PlanVersion.objects.count() == 0
    body = response.content.decode()
    assert '<input type="hidden" name="filename" value="hunan-2026.yaml">' in body
    assert "code: HUNAN-2026" in body  # the checked text is handed back for import

    # Importing the checked text (the file input is empty on the second submit).
    response = client.post(
        reverse("plans:upload"),
        {"text": hunan_text(), "filename": "hunan-2026.yaml", "action": "import"},
    )
    version = PlanVersion.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("plans:detail", args=[version.pk])
    assert version.source_filename == "hunan-2026.yaml"
    assert version.source_yaml == hunan_text()
    assert version.imported_by == people.province_manager


def test_upload_a_file_and_import_at_once(people: People) -> None:
    response = login(people.province_manager).post(
        reverse("plans:upload"),
        {"file": SimpleUploadedFile("plan.yml", hunan_text().encode()), "action": "import"},
    )
    assert response.status_code == 302
    assert PlanVersion.objects.get().source_filename == "plan.yml"


def test_upload_needs_a_file_or_a_text(people: People) -> None:
    client = login(people.province_manager)
    response = client.post(reverse("plans:upload"), {"action": "import"})
    assert response.status_code == 422
    assert "请选择方案文件或粘贴方案文本" in response.content.decode()
    response = client.post(
        reverse("plans:upload"),
        {
            "file": SimpleUploadedFile("a.yaml", hunan_text().encode()),
            "text": hunan_text(),
            "action": "import",
        },
    )
    assert response.status_code == 422
    assert "二者选其一" in response.content.decode()
    assert PlanVersion.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("plan.txt", b"code: X\n", "只接受 .yaml 或 .yml 格式的方案文件"),
        ("plan.yaml", "code: 湖南".encode("gbk"), "文件不是 UTF-8 编码"),
        ("plan.yaml", b"\x00\x01", "文件不是文本文件"),
    ],
)
def test_upload_rejects_bad_files(people: People, name: str, content: bytes, message: str) -> None:
    response = login(people.province_manager).post(
        reverse("plans:upload"), {"file": SimpleUploadedFile(name, content), "action": "import"}
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert PlanVersion.objects.count() == 0


def test_upload_is_for_plan_managers_only(people: People) -> None:
    client = login(people.city_clerk)
    assert client.get(reverse("plans:upload")).status_code == 404
    response = client.post(reverse("plans:upload"), {"text": hunan_text(), "action": "import"})
    assert response.status_code == 404
    assert PlanVersion.objects.count() == 0


# --- compare -------------------------------------------------------------------------------


def test_compare_highlights_differences(people: People) -> None:
    left = _hunan(people)
    right = services.copy_plan_version(
        acting_user=people.province_manager,
        source=left,
        yaml_text=variant(
            hunan_text(),
            {
                "code": "HUNAN-2026-07",
                "effective_from": "2026-07-01",
                "products.inpatient.bands[1].rate": "0.65",
            },
        ),
    )
    response = login(people.city_clerk).get(reverse("plans:compare"), {"a": left.pk, "b": right.pk})
    assert response.status_code == 200
    body = response.content.decode()
    rows = re.findall(r"<tr class=\"table-warning plan-diff\">(.*?)</tr>", body, re.S)
    labels = sorted(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).split()[0] for row in rows)
    assert len(rows) == 3  # code, effective_from, one band rate
    assert labels == sorted(["计划编码", "生效日期", "保障项目"])
    text = _text(response)
    assert "3 项参数不同" in text
    assert "products.inpatient.bands[1].rate 60% 65%" in text
    assert "products.inpatient.deductible 1000.00 元 1000.00 元" in text
    only = login(people.city_clerk).get(
        reverse("plans:compare"), {"a": left.pk, "b": right.pk, "diff": "1"}
    )
    assert "products.inpatient.deductible" not in only.content.decode()


def test_compare_out_of_scope_version_is_refused(people: People) -> None:
    _changsha, zhuzhou = _city_plans(people)
    hunan = _hunan(people)
    response = login(people.city_clerk).get(
        reverse("plans:compare"), {"a": hunan.pk, "b": zhuzhou.pk}
    )
    assert response.status_code == 200
    assert "ZHUZHOU" not in response.content.decode()
    assert "请选择一个方案版本" in response.content.decode()


# --- activation and retirement -------------------------------------------------------------


def test_activate_with_confirmation_is_audited(people: People) -> None:
    version = _hunan(people)
    client = login(people.province_manager)
    url = reverse("plans:activate", args=[version.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "确认启用" in confirm.content.decode()
    assert PlanVersion.objects.get(pk=version.pk).status == PlanStatus.DRAFT

    response = client.post(url)
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.status == PlanStatus.ACTIVE
    event = AuditEvent.objects.get(event=Event.PLAN_ACTIVATED)
    assert (event.actor_username, event.channel, event.object_id) == (
        "prov_plan",
        "web",
        str(version.pk),
    )
    page = client.get(reverse("plans:detail", args=[version.pk])).content.decode()
    assert "方案 HUNAN-2026 已启用" in page
    assert reverse("plans:retire", args=[version.pk]) in page
    assert reverse("plans:activate", args=[version.pk]) not in page


def test_confirmation_names_the_version_it_replaces(people: People) -> None:
    _hunan(people, active=True)
    second = services.import_plan(
        acting_user=None, yaml_text=variant(hunan_text(), {"code": "HUNAN-2026-B"}), filename=""
    )
    page = login(people.province_manager).get(reverse("plans:activate", args=[second.pk]))
    assert "现行版本 HUNAN-2026 将同时停用" in _text(page)


@pytest.mark.parametrize("who", ["city_clerk", "city_manager", "province_clerk"])
def test_activation_by_others_is_404_and_changes_nothing(people: People, who: str) -> None:
    version = _hunan(people)
    client = login(getattr(people, who))
    url = reverse("plans:activate", args=[version.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert PlanVersion.objects.get(pk=version.pk).status == PlanStatus.DRAFT
    assert not AuditEvent.objects.filter(event=Event.PLAN_ACTIVATED).exists()


def test_activating_an_active_version_shows_the_reason(people: People) -> None:
    version = _hunan(people, active=True)
    response = login(people.province_manager).post(reverse("plans:activate", args=[version.pk]))
    assert response.status_code == 422
    assert "该方案版本已经启用" in response.content.decode()


def test_retire_through_the_ui(people: People) -> None:
    version = _hunan(people, active=True)
    services.mark_used(version)
    client = login(people.province_manager)
    response = client.post(reverse("plans:retire", args=[version.pk]))
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.status == PlanStatus.RETIRED
    assert AuditEvent.objects.filter(event=Event.PLAN_RETIRED, object_id=str(version.pk)).exists()


# --- copy and draft correction -------------------------------------------------------------


def test_copy_through_the_ui(people: People) -> None:
    source = _hunan(people, active=True)
    services.mark_used(source)
    client = login(people.province_manager)
    url = reverse("plans:copy", args=[source.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "code: HUNAN-2026" in page.content.decode()

    same_code = client.post(url, {"text": variant(hunan_text(), {"effective_from": "2026-07-01"})})
    assert same_code.status_code == 422
    assert "新版本必须使用新的计划编码" in same_code.content.decode()

    text = variant(hunan_text(), {"code": "HUNAN-2026-07", "effective_from": "2026-07-01"})
    response = client.post(url, {"text": text})
    copy = PlanVersion.objects.get(code="HUNAN-2026-07")
    assert response.status_code == 302
    assert response["Location"] == reverse("plans:detail", args=[copy.pk])
    assert copy.previous == source
    source.refresh_from_db()
    assert source.source_yaml == hunan_text()  # the used source is untouched


def test_edit_only_unused_drafts(people: People) -> None:
    draft = _hunan(people)
    client = login(people.province_manager)
    url = reverse("plans:edit", args=[draft.pk])
    corrected = variant(hunan_text(), {"min_age": 18})
    assert client.post(url, {"text": corrected}).status_code == 302
    draft.refresh_from_db()
    assert draft.source_yaml == corrected

    services.activate_plan(acting_user=people.province_manager, plan_version=draft)
    response = client.post(url, {"text": hunan_text()})
    assert response.status_code == 302
    assert response["Location"] == reverse("plans:detail", args=[draft.pk])
    assert PlanVersion.objects.get(pk=draft.pk).source_yaml == corrected


def test_other_province_plan_is_invisible(people: People) -> None:
    henan = services.import_plan(
        acting_user=None, yaml_text=PINGDINGSHAN.read_text(encoding="utf-8"), filename=""
    )
    client = login(people.province_manager)
    assert client.get(reverse("plans:detail", args=[henan.pk])).status_code == 404
    assert client.post(reverse("plans:activate", args=[henan.pk])).status_code == 404
