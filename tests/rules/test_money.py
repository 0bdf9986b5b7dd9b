"""huzhu.core.money: strict yuan parsing, formatting, the one rounding rule, capitals."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huzhu.core.money import (
    Money,
    chinese_capital,
    div_round_half_up,
    format_fen,
    format_rate,
    parse_rate,
    parse_yuan,
    round_half_up,
)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("0", 0),
        ("5", 500),
        ("5.5", 550),
        ("5.50", 550),
        ("0.01", 1),
        ("1234.56", 123456),
        ("007.10", 710),
        ("99999999999999999999.99", 9999999999999999999999),
    ],
)
def test_parse_yuan_accepts_plain_numbers(text: str, fen: int) -> None:
    assert parse_yuan(text) == fen


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".5",
        "5.",
        "+5",
        "-5",
        "-0.00",
        "1e3",
        "1,000",
        "1.000",
        " 5",
        "5 ",
        "５",  # full-width digit
        "٥",  # Arabic-Indic digit
        "0x10",
        "NaN",
        "1_000",
    ],
)
def test_parse_yuan_rejects_everything_else_in_chinese(text: str) -> None:
    with pytest.raises(ValueError, match="金额"):
        parse_yuan(text)


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (-1, "-0.01"),
        (123450, "1234.50"),
        (-1230, "-12.30"),
        (100, "1.00"),
    ],
)
def test_format_fen(fen: int, text: str) -> None:
    assert format_fen(fen) == text


@given(st.integers(min_value=0, max_value=10**15))
def test_format_then_parse_round_trips(fen: int) -> None:
    assert parse_yuan(format_fen(fen)) == fen


def test_format_never_writes_negative_zero() -> None:
    assert format_fen(-0) == "0.00"
    assert not format_fen(0).startswith("-")


@pytest.mark.parametrize(
    ("text", "rate"),
    [("0.65", Fraction(65, 100)), ("1", Fraction(1)), ("0.0125", Fraction(125, 10000))],
)
def test_parse_rate(text: str, rate: Fraction) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0.12345", "-0.1", ".5", "1e-2", ""])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="比例"):
        parse_rate(text)


def test_format_rate() -> None:
    assert format_rate(Fraction(1, 2)) == "0.50"
    assert format_rate(Fraction(1234, 10000)) == "0.1234"
    assert format_rate(Fraction(6, 5)) == "1.20"
    with pytest.raises(ValueError):
        format_rate(Fraction(1, 3))


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Fraction(5, 2), 3),
        (Fraction(-5, 2), -3),
        (Fraction(3, 2), 2),
        (Fraction(249999, 100000), 2),
        (Fraction(25, 10), 3),
        (Fraction(-249999, 100000), -2),
        (Fraction(0), 0),
        (Fraction(1, 2), 1),
        (Fraction(-1, 2), -1),
        (Fraction(7, 3), 2),
    ],
)
def test_round_half_up_is_half_away_from_zero(value: Fraction, rounded: int) -> None:
    assert round_half_up(value) == rounded


@given(
    st.integers(min_value=-(10**18), max_value=10**18), st.integers(min_value=1, max_value=10**6)
)
def test_round_half_up_is_the_nearest_integer_with_halves_away_from_zero(
    num: int, den: int
) -> None:
    value = Fraction(num, den)
    result = round_half_up(value)
    assert abs(result - value) <= Fraction(1, 2)
    if abs(result - value) == Fraction(1, 2):
        assert abs(result) > abs(value)
    assert round_half_up(-value) == -result
    # The batch path's integer form for non-negative units of 1/10000 is the same function.
    if num >= 0 and den == 10000:
        assert (num + 5000) // 10000 == result == div_round_half_up(num, den)


@pytest.mark.parametrize(
    ("fen", "capital"),
    [
        (0, "零元整"),
        (5, "伍分"),
        (50, "伍角整"),
        (105, "壹元零伍分"),
        (1030, "壹拾元叁角整"),
        (1600, "壹拾陆元整"),
        (12000, "壹佰贰拾元整"),
        (123456, "壹仟贰佰叁拾肆元伍角陆分"),
        (100005, "壹仟元零伍分"),
        (168032, "壹仟陆佰捌拾元叁角贰分"),
        (100100, "壹仟零壹元整"),
        (101000, "壹仟零壹拾元整"),
        (10010000, "壹拾万零壹佰元整"),
        (2000100, "贰万零壹元整"),
        (1000000000, "壹仟万元整"),
        (10000000000, "壹亿元整"),
        (10001000000, "壹亿零壹万元整"),
        (10000100000, "壹亿零壹仟元整"),
        (1234567890123, "壹佰贰拾叁亿肆仟伍佰陆拾柒万捌仟玖佰零壹元贰角叁分"),
        (-12345, "负壹佰贰拾叁元肆角伍分"),
    ],
)
def test_chinese_capital(fen: int, capital: str) -> None:
    assert chinese_capital(fen) == capital


def test_money_value_object() -> None:
    a = Money.parse("100.10")
    b = Money(5)
    assert (a + b).fen == 10015
    assert (a - b).format() == "100.05"
    assert (-a).format() == "-100.10"
    assert a.times(Fraction(1, 3)).fen == 3337  # 3336.67 rounds half-up
    assert str(Money(0)) == "0.00"
    assert Money(12000).capital() == "壹佰贰拾元整"
    assert Money(1) < Money(2)
    with pytest.raises(TypeError):
        Money(1.5)  # type: ignore[arg-type]
