"""Identifiers (reference/identifiers.md), the retirement date (reference/retirement.md, R3) and
masking (S11)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from huzhu.core.ids import (
    USCC_CHARSET,
    InvalidIdentifier,
    RetirementCategory,
    Sex,
    add_months,
    default_retirement_category,
    id_check_character,
    is_valid_id_number,
    make_id_number,
    make_uscc,
    mask_bank_account,
    mask_id_number,
    mask_phone,
    parse_id_number,
    retirement_delay_months,
    statutory_retirement_date,
    validate_bank_account,
    validate_mobile,
    validate_region_code,
    validate_uscc,
)

VALID_IDS = {
    "11010519491231002X": (date(1949, 12, 31), Sex.FEMALE, "110105"),
    "410102199001010012": (date(1990, 1, 1), Sex.MALE, "410102"),
    "410105198506150023": (date(1985, 6, 15), Sex.FEMALE, "410105"),
    "430102197503010033": (date(1975, 3, 1), Sex.MALE, "430102"),
    "43012419651231004X": (date(1965, 12, 31), Sex.FEMALE, "430124"),
}


def _change_last(value: str) -> list[str]:
    alphabet = "0123456789X" if len(value) == 18 and value[:17].isdigit() else USCC_CHARSET
    return [value[:-1] + c for c in alphabet if c != value[-1]]


# --- ID numbers (GB 11643-1999) -------------------------------------------------------------
@pytest.mark.parametrize("number", sorted(VALID_IDS))
def test_valid_id_numbers_parse(number: str) -> None:
    birth, sex, region = VALID_IDS[number]
    parsed = parse_id_number(number)
    assert (parsed.number, parsed.birth_date, parsed.sex, parsed.region_code) == (
        number,
        birth,
        sex,
        region,
    )


@pytest.mark.parametrize("number", sorted(VALID_IDS))
def test_every_other_check_character_is_rejected(number: str) -> None:
    for wrong in _change_last(number):
        with pytest.raises(InvalidIdentifier, match=r"^身份证号码校验位不正确$"):
            parse_id_number(wrong)
        assert not is_valid_id_number(wrong)


def test_lowercase_x_is_accepted_and_stored_upper_case() -> None:
    assert parse_id_number("11010519491231002x").number == "11010519491231002X"
    assert parse_id_number(" 43012419651231004x ").number == "43012419651231004X"


def test_checksum_right_but_date_missing_is_rejected() -> None:
    assert id_check_character("41172819980229005") == "8"
    with pytest.raises(InvalidIdentifier, match=r"^身份证号码中的出生日期不存在$"):
        parse_id_number("411728199802290058")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "身份证号码不能为空"),
        ("   ", "身份证号码不能为空"),
        ("430102750301003", "不支持15位旧身份证号码，请使用18位身份证号码"),
        ("43010219750301003", "身份证号码应为18位，实际为17位"),
        ("4301021975030100333", "身份证号码应为18位，实际为19位"),
        ("43010219750301003Y", "身份证号码只能包含数字，最后一位可以是X"),
        ("4301021975O301003X", "身份证号码只能包含数字，最后一位可以是X"),
        ("430102189912310011", "身份证号码中的出生日期不合理"),
    ],
)
def test_invalid_id_numbers_have_chinese_messages(value: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_id_number(value)
    assert str(caught.value) == message


def test_id_number_born_1899_is_checked_for_plausibility_not_checksum() -> None:
    number = make_id_number("430102", date(1899, 12, 31), 1)
    with pytest.raises(InvalidIdentifier, match="出生日期不合理"):
        parse_id_number(number)


@given(
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 12, 31)),
    sequence=st.integers(min_value=0, max_value=999),
    region=st.sampled_from(["110105", "430102", "433101", "410102"]),
)
def test_make_id_number_round_trips(birth: date, sequence: int, region: str) -> None:
    number = make_id_number(region, birth, sequence)
    parsed = parse_id_number(number)
    assert parsed.birth_date == birth
    assert parsed.region_code == region
    assert parsed.sex == (Sex.MALE if sequence % 2 else Sex.FEMALE)


# --- unified social credit codes (GB 32100-2015) --------------------------------------------
@pytest.mark.parametrize("code", ["91110000600037341L", "81410100MA40000041", "81430100MA4L00003R"])
def test_valid_uscc(code: str) -> None:
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code
    for wrong in _change_last(code):
        with pytest.raises(InvalidIdentifier, match=r"^统一社会信用代码校验位不正确$"):
            validate_uscc(wrong)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "统一社会信用代码不能为空"),
        ("91110000600037341", "统一社会信用代码应为18位，实际为17位"),
        ("91110000600037341I", "统一社会信用代码含有不允许的字符（不使用 I、O、Z、S、V）"),
        ("9111000060003734OL", "统一社会信用代码含有不允许的字符（不使用 I、O、Z、S、V）"),
    ],
)
def test_invalid_uscc_messages(value: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        validate_uscc(value)
    assert str(caught.value) == message


@given(st.text(alphabet=USCC_CHARSET, min_size=17, max_size=17))
def test_make_uscc_is_always_valid(first17: str) -> None:
    assert validate_uscc(make_uscc(first17)) == make_uscc(first17)


@pytest.mark.parametrize("value", ["430100", " 430102 "])
def test_region_codes(value: str) -> None:
    assert validate_region_code(value) == value.strip()


@pytest.mark.parametrize("value", ["", "43010", "4301000", "43010A", "000000", "001234"])
def test_invalid_region_codes(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match=r"^行政区划代码应为6位数字（GB/T 2260）$"):
        validate_region_code(value)


# --- statutory retirement date (2024 reform) -------------------------------------------------
RETIREMENT_VECTORS = [
    (date(1963, 12, 15), RetirementCategory.MALE, date(2023, 12, 15)),
    (date(1965, 1, 10), RetirementCategory.MALE, date(2025, 2, 10)),
    (date(1965, 12, 1), RetirementCategory.MALE, date(2026, 3, 1)),
    (date(1967, 5, 12), RetirementCategory.MALE, date(2028, 1, 12)),
    (date(1971, 4, 20), RetirementCategory.FEMALE55, date(2026, 8, 20)),
    (date(1974, 10, 8), RetirementCategory.FEMALE55, date(2031, 1, 8)),
    (date(1995, 12, 3), RetirementCategory.FEMALE50, date(2050, 12, 3)),
]


@pytest.mark.parametrize(("birth", "category", "expected"), RETIREMENT_VECTORS)
def test_retirement_vectors(birth: date, category: RetirementCategory, expected: date) -> None:
    assert statutory_retirement_date(birth, category) == expected
    assert statutory_retirement_date(birth, category.value) == expected


def test_retirement_day_of_month_is_clamped() -> None:
    # 1965-08-31 male: k = 7, delay 2 -> 2025-10-31 exists. 1975-12-31 female50: k = 11, delay 6
    # -> June has 30 days. 1968-02-29 female55 (before the reform's first cohort): 2023 is a
    # common year -> 28 February.
    assert statutory_retirement_date(date(1965, 8, 31), "male") == date(2025, 10, 31)
    assert statutory_retirement_date(date(1975, 12, 31), "female50") == date(2026, 6, 30)
    assert statutory_retirement_date(date(1968, 2, 29), "female55") == date(2023, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)


MAX_DELAY = {
    RetirementCategory.MALE: 36,
    RetirementCategory.FEMALE55: 36,
    RetirementCategory.FEMALE50: 60,
}
ORIGINAL_AGE = {
    RetirementCategory.MALE: 60,
    RetirementCategory.FEMALE55: 55,
    RetirementCategory.FEMALE50: 50,
}
births = st.dates(min_value=date(1950, 1, 1), max_value=date(2008, 12, 31))
categories = st.sampled_from(list(RetirementCategory))


@given(a=births, b=births, category=categories)
def test_retirement_date_is_monotone_in_birth_date(
    a: date, b: date, category: RetirementCategory
) -> None:
    early, late = sorted((a, b))
    assert statutory_retirement_date(early, category) <= statutory_retirement_date(late, category)


@given(birth=births, category=categories)
def test_delay_is_between_zero_and_the_maximum(birth: date, category: RetirementCategory) -> None:
    delay = retirement_delay_months(birth, category)
    assert 0 <= delay <= MAX_DELAY[category]
    retirement = statutory_retirement_date(birth, category)
    assert add_months(birth, ORIGINAL_AGE[category] * 12) <= retirement
    assert retirement <= add_months(birth, ORIGINAL_AGE[category] * 12 + MAX_DELAY[category])


@given(birth=st.dates(min_value=date(1990, 1, 1), max_value=date(2008, 12, 31)))
def test_young_cohorts_get_the_full_delay(birth: date) -> None:
    assert retirement_delay_months(birth, RetirementCategory.MALE) == 36
    assert retirement_delay_months(birth, RetirementCategory.FEMALE50) == 60


def test_default_category_follows_sex_only_for_men() -> None:
    assert default_retirement_category(Sex.MALE) == RetirementCategory.MALE
    assert default_retirement_category(Sex.FEMALE) is None


# --- masking and contact formats (S11) -------------------------------------------------------
def test_masks() -> None:
    assert mask_id_number("430102197503010033") == "430***********0033"
    assert mask_id_number("11010519491231002X") == "110***********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_bank_account("6222021234567890128") == "**** 0128"
    assert mask_bank_account("1234") == "****"
    assert mask_id_number("1234567") == "*******"
    assert mask_phone("123456") == "******"


@given(st.text(alphabet="0123456789", min_size=8, max_size=30))
def test_masks_never_keep_the_middle(value: str) -> None:
    masked = mask_id_number(value)
    assert len(masked) == len(value)
    assert masked[3:-4] == "*" * (len(value) - 7)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("13812345678", "13812345678"), ("+86 138-1234-5678", "13812345678")],
)
def test_mobile_numbers(value: str, expected: str) -> None:
    assert validate_mobile(value) == expected


@pytest.mark.parametrize("value", ["", "12812345678", "1381234567", "138123456789", "1381234567a"])
def test_invalid_mobile_numbers(value: str) -> None:
    with pytest.raises(InvalidIdentifier, match=r"^手机号码应为11位，以1开头$"):
        validate_mobile(value)


def test_bank_accounts() -> None:
    assert validate_bank_account("6222 0212 3456 7890 128") == "6222021234567890128"
    for bad in ("", "12345678901", "1" * 31, "62220212345678901X"):
        with pytest.raises(InvalidIdentifier, match=r"^银行账号应为12至30位数字$"):
            validate_bank_account(bad)
