"""``huzhu import-roster`` and ``huzhu renew`` (INTERFACES.md §2): exit 0 / 2 / 3, every invalid
row on standard error, the same file twice changes nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from huzhu.cli import main
from huzhu.enrollment.models import Enrollment, EnrollmentBatch
from huzhu.enrollment.services import activate_batch_coverage
from huzhu.members.models import Member
from tests.enrollment.conftest import World, active_plan, csv_bytes, person, row, xlsx

pytestmark = pytest.mark.django_db


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_all_valid_exit_0(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "花名册.xlsx"
    path.write_bytes(
        xlsx(
            [
                row(
                    name=f"职工{i}",
                    id_number=person(date(1980, 1, 1 + i)),
                    uscc=world.tree.unit_1.uscc,
                )
                for i in range(5)
            ]
        )
    )
    code, out, err = _run(
        capsys,
        "import-roster",
        str(path),
        "--union",
        world.tree.grassroots_1.code,
        "--plan",
        "HUNAN-2026",
    )
    assert code == 0, err
    batch = EnrollmentBatch.objects.get()
    assert out.strip() == (
        f"batch={batch.pk} status=awaiting_payment enrolled=5 invalid_rows=0 "
        "members_created=5 members_updated=0"
    )
    assert Enrollment.objects.filter(status="pending").count() == 5
    # the same file again: nothing new, the same answer
    code, out2, _ = _run(
        capsys,
        "import-roster",
        str(path),
        "--union",
        world.tree.grassroots_1.code,
        "--plan",
        "HUNAN-2026",
    )
    assert code == 0 and out2 == out
    assert EnrollmentBatch.objects.count() == 1 and Enrollment.objects.count() == 5


def test_import_some_invalid_exit_3_with_every_bad_row(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uscc = world.tree.unit_1.uscc
    path = tmp_path / "r.csv"
    path.write_bytes(
        csv_bytes(
            [
                row(id_number=person(), uscc=uscc),
                row(name="坏一", id_number="430102", uscc=uscc),
                row(name="好二", id_number=person(), uscc=uscc),
                row(name="坏二", id_number=person(male=False), uscc=uscc, phone="123"),
            ],
            encoding="gbk",
        )
    )
    code, out, err = _run(
        capsys,
        "import-roster",
        str(path),
        "--union",
        world.tree.grassroots_1.code,
        "--plan",
        "HUNAN-2026",
    )
    assert code == 3
    lines = [line for line in err.splitlines() if line.startswith("r.csv")]
    assert lines == [
        "r.csv 第3行 [身份证号码] 身份证号码应为18位，实际为6位",
        "r.csv 第5行 [手机号码] 手机号码应为11位，以1开头",
        "r.csv 第5行 [退休类别] 女职工须填写退休类别（女50或女55），身份证号码无法区分",
    ]
    assert "enrolled=2 invalid_rows=2" in out
    assert Member.objects.count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--union", "NOPE", "--plan", "HUNAN-2026"], "找不到组织代码为 NOPE 的工会"),
        (["--union", "{g1}", "--plan", "NOPE"], "找不到计划编码为 NOPE 的保障方案"),
        (["--union", "430102", "--plan", "HUNAN-2026"], "只有基层工会或工会联合会可以组织参保"),
    ],
)
def test_unusable_input_exit_2(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(xlsx([row(id_number=person(), uscc=world.tree.unit_1.uscc)]))
    args = [a.replace("{g1}", world.tree.grassroots_1.code) for a in args]
    if "430102" in args:
        args[1] = world.tree.county_a1.code
    code, _, err = _run(capsys, "import-roster", str(path), *args)
    assert code == 2 and message in err
    assert not EnrollmentBatch.objects.exists()


def test_missing_file_or_column_exit_2(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        capsys,
        "import-roster",
        str(tmp_path / "none.xlsx"),
        "--union",
        world.tree.grassroots_1.code,
        "--plan",
        "HUNAN-2026",
    )
    assert code == 2 and "文件不存在" in err
    path = tmp_path / "r.csv"
    path.write_bytes(csv_bytes([], headers=["姓名", "身份证号码", "单位统一社会信用代码"]))
    code, _, err = _run(
        capsys,
        "import-roster",
        str(path),
        "--union",
        world.tree.grassroots_1.code,
        "--plan",
        "HUNAN-2026",
    )
    assert code == 2 and "缺少必需的列：用工形式" in err
    assert not EnrollmentBatch.objects.exists()


def test_renew(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(xlsx([row(name="甲", id_number=person(), uscc=world.tree.unit_1.uscc)]))
    assert (
        _run(
            capsys,
            "import-roster",
            str(path),
            "--union",
            world.tree.grassroots_1.code,
            "--plan",
            "HUNAN-2026",
        )[0]
        == 0
    )
    activate_batch_coverage(
        acting_user=None, batch=EnrollmentBatch.objects.get(), paid_on=date(2026, 11, 1)
    )
    code, _, err = _run(capsys, "renew", "--year", "2027")
    assert code == 2
    assert "芙蓉区某公司工会所在统筹地区没有已启用的2027年度保障方案，无法续保" in err
    active_plan(2027)
    code, out, _ = _run(capsys, "renew", "--year", "2027")
    assert code == 0
    batch = EnrollmentBatch.objects.get(plan_year=2027)
    assert f"续保批次 #{batch.pk} 已生成草稿，续保 1 人，未纳入 0 人" in out
    code, out, _ = _run(capsys, "renew", "--year", "2027")
    assert code == 0 and "已存在，未重复生成" in out
    assert EnrollmentBatch.objects.filter(plan_year=2027).count() == 1
