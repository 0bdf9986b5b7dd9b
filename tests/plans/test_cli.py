"""``huzhu plan import FILE.yaml [--activate]``: exit statuses, output, audit (INTERFACES.md §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from huzhu.cli import main
from huzhu.core.audit import Event
from huzhu.core.models import AuditEvent
from huzhu.plans.models import PlanStatus, PlanVersion
from tests.plans.conftest import HUNAN, hunan_text, variant

pytestmark = pytest.mark.django_db


def test_import_prints_code_and_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "import", str(HUNAN)]) == 0
    version = PlanVersion.objects.get()
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "code=HUNAN-2026",
        f"hash={version.parameters_hash}",
        "status=draft",
    ]
    assert version.status == PlanStatus.DRAFT
    assert version.source_filename == "hunan-2026.yaml"
    event = AuditEvent.objects.get(event=Event.PLAN_IMPORTED)
    assert (event.actor_id, event.actor_username, event.channel) == (None, "命令行", "cli")


def test_import_and_activate_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "import", str(HUNAN), "--activate"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "status=active"
    assert main(["plan", "import", str(HUNAN), "--activate"]) == 0
    assert "已是启用状态" in capsys.readouterr().out
    version = PlanVersion.objects.get()
    assert version.status == PlanStatus.ACTIVE
    assert AuditEvent.objects.filter(event=Event.PLAN_IMPORTED).count() == 1
    event = AuditEvent.objects.get(event=Event.PLAN_ACTIVATED)
    assert event.actor_username == "命令行"


def test_invalid_plan_exits_2_with_every_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        variant(hunan_text(), {"contribution": "201.00", "min_age": "sixteen"}), encoding="utf-8"
    )
    assert main(["plan", "import", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "共 2 处错误" in captured.err
    assert "  contribution：互助金 201.00 元超过城乡居民医保个人缴费标准" in captured.err
    assert "  min_age：" in captured.err
    assert PlanVersion.objects.count() == 0


def test_unusable_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "import", str(tmp_path / "missing.yaml")]) == 2
    assert "不存在" in capsys.readouterr().err
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes(hunan_text().encode("gbk"))
    assert main(["plan", "import", str(gbk)]) == 2
    assert "不是 UTF-8 编码" in capsys.readouterr().err
    assert PlanVersion.objects.count() == 0


def test_same_code_other_parameters_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "import", str(HUNAN)]) == 0
    changed = tmp_path / "changed.yaml"
    changed.write_text(variant(hunan_text(), {"contribution": "100.00"}), encoding="utf-8")
    assert main(["plan", "import", str(changed)]) == 2
    assert "code：计划编码“HUNAN-2026”已被另一个参数不同的方案版本使用" in capsys.readouterr().err
    assert PlanVersion.objects.count() == 1
