"""Every roster validation rule, with its exact row number, column and Chinese reason
(INTERFACES.md §2, RULES.md §2). The enrollment date is fixed: confirmation on 2026-03-01 → the
age rule is checked on 2026-03-02."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from huzhu.core.ids import make_id_number, mask_id_number
from huzhu.enrollment import services
from huzhu.enrollment.models import Enrollment, EnrollmentBatch, RosterRowError
from huzhu.enrollment.roster import read_roster
from huzhu.enrollment.validation import AgeRule
from huzhu.orgs.models import Union
from tests import factories
from tests.enrollment.conftest import World, active_plan, csv_bytes, person, row, xlsx

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 1)


def preview(
    world: World, rows: list[list[Any]], union: Union | None = None, content: bytes | None = None
) -> tuple[EnrollmentBatch, list[tuple[int, str, str]]]:
    batch = services.create_batch(
        acting_user=world.clerk,
        union=union or world.tree.grassroots_1,
        plan_year=2026,
        today=TODAY,
    )
    services.attach_roster(
        acting_user=world.clerk, batch=batch, file_name="r.xlsx", content=content or xlsx(rows)
    )
    services.validate_batch(batch=batch, today=TODAY)
    batch.refresh_from_db()
    errors = [
        (e.row_number, e.column, e.message)
        for e in RosterRowError.objects.filter(batch=batch).order_by("row_number", "pk")
    ]
    return batch, errors


def test_valid_rows_pass(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    batch, errors = preview(
        world,
        [
            row(
                id_number=person(),
                uscc=uscc,
                phone="13800138000",
                account="6217002870012345678",
                bank="中国工商银行",
                hardship="是",
                consent="是",
            ),
            row(
                name="李娜",
                id_number=person(male=False),
                uscc=uscc,
                category="女55",
                employment="在编",
            ),
        ],
    )
    assert errors == []
    assert (batch.row_count, batch.valid_count, batch.error_count, batch.status) == (
        2,
        2,
        0,
        "validated",
    )


def test_id_checksum_and_date_and_length(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    good = person()
    bad_check = good[:17] + ("0" if good[17] != "0" else "1")
    _, errors = preview(
        world,
        [
            row(id_number=bad_check, uscc=uscc),
            row(id_number="411728199802290058", uscc=uscc),
            row(id_number="43010219850312", uscc=uscc),
            row(id_number="", uscc=uscc),
        ],
    )
    assert errors == [
        (2, "身份证号码", "身份证号码校验位不正确"),
        (3, "身份证号码", "身份证号码中的出生日期不存在"),
        (4, "身份证号码", "身份证号码应为18位，实际为14位"),
        (5, "身份证号码", "身份证号码不能为空"),
    ]


def test_id_stored_as_a_number_is_reported_never_guessed(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    number = person()
    _, errors = preview(
        world,
        [
            row(id_number=int(number[:17] + "0") if number[17] == "X" else int(number), uscc=uscc),
            row(id_number=4.30102e17, uscc=uscc),
        ],
    )
    assert [(r, c) for r, c, _ in errors] == [(2, "身份证号码"), (3, "身份证号码")]
    assert all("被存为数字" in m and "不会猜测" in m for _, _, m in errors)
    # a CSV written by Excel carries the scientific notation as text
    _, errors = preview(world, [], content=csv_bytes([row(id_number="4.30102E+17", uscc=uscc)]))
    assert errors == [
        (
            2,
            "身份证号码",
            "身份证号码显示为科学计数法（如4.30102E+17），原号码已丢失；"
            "请将该列设为文本格式后重新填写（系统不会猜测）",
        )
    ]
    assert Enrollment.objects.count() == 0


def test_duplicate_in_file(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    number = person()
    _, errors = preview(
        world,
        [
            row(id_number=number, uscc=uscc),
            row(name="另一人", id_number=person(), uscc=uscc),
            row(name="张伟", id_number=number.lower(), uscc=uscc),
        ],
    )
    assert errors == [(4, "身份证号码", "与第2行的身份证号码重复（同一人在文件中只能出现一次）")]


def test_already_enrolled_elsewhere_this_year(world: World) -> None:
    """One share per person per plan year, whatever union enrolled them (RULES.md §2)."""
    t = world.tree
    number = person()
    first, errors = preview(world, [row(id_number=number, uscc=t.unit_1.uscc)])
    services.confirm_batch(acting_user=world.clerk, batch=first, today=TODAY)
    other_clerk = factories.staff(t.county_a2, "clerk")
    world2 = World(t, world.plan, other_clerk)
    _, errors = preview(world2, [row(id_number=number, uscc=t.unit_2.uscc)], union=t.grassroots_2)
    assert errors == [
        (2, "身份证号码", "该职工已参加2026年度互助保障（每人每年限参保一份），不能重复参保")
    ]


@pytest.mark.parametrize(
    ("birth", "category", "male", "ok"),
    [
        # 1975-06, 女50: 50 years + 3 months → 2025-09, past on 2026-03-02
        (date(1975, 6, 15), "女50", False, False),
        # the same woman as 女55: 55 years + 17 months → 2031-11-15
        (date(1975, 6, 15), "女55", False, True),
        (date(1965, 12, 1), "男", True, True),  # retires 2026-03-01 … checked on 2026-03-02
        (date(1966, 1, 1), "男", True, True),  # 60 y + 13 months → 2027-02-01
        (date(1995, 12, 3), "女50", False, True),  # → 2050-12-03
        (date(2010, 3, 2), "", True, True),  # 16 on the enrollment date itself
        (date(2010, 3, 3), "", True, False),  # one day short of 16
    ],
)
def test_age_rule_with_retirement_vectors(
    world: World, birth: date, category: str, male: bool, ok: bool
) -> None:
    number = make_id_number("430102", birth, 11 if male else 12)
    _, errors = preview(
        world, [row(id_number=number, uscc=world.tree.unit_1.uscc, category=category)]
    )
    if birth == date(1965, 12, 1):
        # statutory date 2026-03-01 < enrollment date 2026-03-02: past the limit
        assert errors == [
            (
                2,
                "身份证号码",
                "已超过参保年龄上限：按退休类别“男”，法定退休日期为"
                "2026-03-01，早于参保日期2026-03-02",
            )
        ]
        return
    if ok:
        assert errors == []
    elif birth.year == 1975:
        assert errors == [
            (
                2,
                "身份证号码",
                "已超过参保年龄上限：按退休类别“女50”，法定退休日期为"
                "2025-09-15，早于参保日期2026-03-02",
            )
        ]
    else:
        assert errors == [(2, "身份证号码", "参保日期（2026-03-02）时未满16周岁，不能参保")]


def test_flexible_extension_months_extend_the_limit(tree: factories.Tree) -> None:
    active_plan(2026, flexible_extension_months=3)
    clerk = factories.staff(tree.county_a1, "clerk")
    world = World(tree, active_plan(2026, flexible_extension_months=3), clerk)
    number = make_id_number("430102", date(1965, 12, 1), 11)  # retires 2026-03-01
    _, errors = preview(world, [row(id_number=number, uscc=tree.unit_1.uscc)])
    assert errors == []
    rule = AgeRule(min_age=16, flexible_extension_months=3, on=date(2026, 6, 2))
    assert rule.problem(date(1965, 12, 1), "male") == (
        "已超过参保年龄上限：按退休类别“男”，法定退休日期（含弹性延长3个月）为2026-06-01，"
        "早于参保日期2026-06-02"
    )


def test_unit_unknown_not_under_union_missing_or_bad(world: World) -> None:
    t = world.tree
    _, errors = preview(
        world,
        [
            row(id_number=person(), uscc=factories.uscc()),  # valid code, not registered
            row(id_number=person(), uscc=t.unit_3.uscc),  # registered under another union
            row(id_number=person(), uscc=""),
            row(id_number=person(), uscc="91430100MA0000000X"),
        ],
    )
    assert errors == [
        (2, "单位统一社会信用代码", "该统一社会信用代码的单位尚未登记，请先在「单位」中登记该单位"),
        (3, "单位统一社会信用代码", "该单位不属于芙蓉区某公司工会及其下级工会，不能由本工会参保"),
        (
            4,
            "单位统一社会信用代码",
            "单位统一社会信用代码不能为空（只有通过工会联合会参保时可以留空）",
        ),
        (5, "单位统一社会信用代码", "统一社会信用代码校验位不正确"),
    ]


def test_federation_may_leave_the_unit_empty(world: World) -> None:
    t = world.tree
    federation = factories.union(t.county_a1, "芙蓉区快递行业工会联合会", "federation")
    rows = [row(id_number=person(), uscc="", employment="新就业形态")]
    # the column itself may be absent for a federation
    headers = ["姓名", "身份证号码", "用工形式"]
    content = xlsx([[r[0], r[1], r[4]] for r in rows], headers=headers)
    batch, errors = preview(world, rows, union=federation, content=content)
    assert errors == []
    services.confirm_batch(acting_user=world.clerk, batch=batch, today=TODAY)
    enrollment = Enrollment.objects.get(batch=batch)
    assert enrollment.unit_id is None
    assert enrollment.member.union_id == federation.pk


def test_retirement_category_of_women_and_men(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    _, errors = preview(
        world,
        [
            row(name="王芳", id_number=person(male=False), uscc=uscc),
            row(name="王芳二", id_number=person(male=False), uscc=uscc, category="男"),
            row(name="刘强", id_number=person(), uscc=uscc, category="女55"),
            row(name="刘强二", id_number=person(), uscc=uscc, category="女60"),
            row(name="刘强三", id_number=person(), uscc=uscc, category="男"),
        ],
    )
    assert errors == [
        (2, "退休类别", "女职工须填写退休类别（女50或女55），身份证号码无法区分"),
        (3, "退休类别", "身份证号码显示为女性，退休类别应为“女50”或“女55”"),
        (4, "退休类别", "身份证号码显示为男性，退休类别应为“男”或留空"),
        (5, "退休类别", "退休类别“女60”无效，应为男、女50或女55"),
    ]


def test_phone_account_and_fixed_value_columns(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    _, errors = preview(
        world,
        [
            row(id_number=person(), uscc=uscc, phone="1380013800"),
            row(id_number=person(), uscc=uscc, account="6217-0028"),
            row(id_number=person(), uscc=uscc, account=6.21700287001234e18),
            row(id_number=person(), uscc=uscc, employment="临时工"),
            row(id_number=person(), uscc=uscc, employment=""),
            row(id_number=person(), uscc=uscc, hardship="Y"),
            row(id_number=person(), uscc=uscc, consent="同意"),
            row(name="", id_number=person(), uscc=uscc),
            row(id_number=person(), uscc=uscc, phone=13800138000.0, hardship="否", consent="否"),
        ],
    )
    assert errors == [
        (2, "手机号码", "手机号码应为11位，以1开头"),
        (3, "银行账号", "银行账号应为12至30位数字"),
        (4, "银行账号", "银行账号被存为数字，末尾几位已经丢失；请将该列设为文本格式后重新填写"),
        (5, "用工形式", "用工形式“临时工”无效，应为在编、合同、劳务派遣或新就业形态"),
        (6, "用工形式", "用工形式不能为空，应为在编、合同、劳务派遣或新就业形态"),
        (7, "困难职工", "困难职工只能填写“是”或“否”（留空视为否）"),
        (8, "医保数据授权", "医保数据授权只能填写“是”或“否”（留空视为否）"),
        (9, "姓名", "姓名不能为空"),
    ]


def test_every_error_of_a_row_is_reported_and_masked(world: World) -> None:
    number = person(male=False)
    batch, errors = preview(
        world,
        [
            row(
                name="陈静", id_number=number, uscc="", phone="12345", employment="x", hardship="?"
            ),
        ],
    )
    assert [c for _, c, _ in errors] == [
        "用工形式",
        "困难职工",
        "手机号码",
        "单位统一社会信用代码",
        "退休类别",
    ]
    stored = RosterRowError.objects.filter(batch=batch).first()
    assert stored is not None
    assert stored.id_number_masked == mask_id_number(number)
    assert number not in stored.message


def test_blank_rows_keep_row_numbers_and_title_row_is_tolerated(world: World) -> None:
    uscc = world.tree.unit_1.uscc
    import io

    from openpyxl import Workbook

    workbook = Workbook()
    ws = workbook.active
    assert ws is not None
    ws.title = "说明"
    other = workbook.create_sheet("花名册")
    other.append(["XX公司工会2026年度参保花名册"])
    other.append(["用工形式", "备注", "身份证号码", "姓名", "单位统一社会信用代码"])
    other.append(["合同", "x", person(), "张一", uscc])
    other.append([])
    other.append(["合同", "y", "bad", "张二", uscc])
    buffer = io.BytesIO()
    workbook.save(buffer)
    roster = read_roster(buffer.getvalue())
    assert roster.sheet == "花名册"
    assert [r.row_number for r in roster.rows] == [3, 5]
    _, errors = preview(world, [], content=buffer.getvalue())
    assert errors == [(5, "身份证号码", "身份证号码应为18位，实际为3位")]
