"""Money as integer fen (分), exact rates, and the one rounding function.

RULES.md "Conventions": money is exact; files and screens use yuan with two decimals, code and
database use integer fen, no float ever touches money; amounts are rounded half-up (四舍五入) to the
fen only where RULES.md writes round(). ARCHITECTURE.md convention 3: one rounding function.

Pure Python on purpose: the benefit engine (``huzhu.rules``) and the Django apps both import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "Money",
    "chinese_capital",
    "div_round_half_up",
    "format_fen",
    "format_rate",
    "parse_rate",
    "parse_yuan",
    "round_half_up",
]

# INTERFACES.md §2: "A money field is plain ASCII digits, optionally `.` and one or two digits".
# [0-9] and not \d: \d also matches full-width and other Unicode digits.
_YUAN_RE = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
# RULES.md "Conventions": rates are decimals with at most 4 places.
_RATE_RE = re.compile(r"[0-9]+(?:\.[0-9]{1,4})?")


def parse_yuan(text: str) -> int:
    """Parse a non-negative yuan amount ("1234.5", "7", "0.05") into integer fen.

    Strict on purpose (INTERFACES.md §2): ``.5``, ``+5``, ``-0.00``, ``1e3``, ``1,000``, ``1.000``,
    surrounding spaces and non-ASCII digits are all rejected with a ``ValueError`` whose message is
    Chinese (it is shown to people as is).
    """
    if not isinstance(text, str) or _YUAN_RE.fullmatch(text) is None:
        raise ValueError(f"金额“{text}”格式不正确：应为不带符号的数字，最多两位小数（如 1234.50）")
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int(frac.ljust(2, "0"))


def format_fen(fen: int) -> str:
    """Integer fen as yuan with two decimals: 123450 → "1234.50", -1230 → "-12.30", 0 → "0.00".

    Never "-0.00": the sign is written only for a non-zero negative amount.
    """
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_rate(text: str) -> Fraction:
    """Parse a non-negative rate with at most four decimals ("0.65", "1", "0.0125") exactly."""
    if not isinstance(text, str) or _RATE_RE.fullmatch(text) is None:
        raise ValueError(f"比例“{text}”格式不正确：应为不带符号的小数，最多四位小数（如 0.65）")
    return Fraction(text)


def format_rate(rate: Fraction) -> str:
    """A rate as a plain decimal without superfluous zeros, at least two decimals: "0.50", "0.1234".

    Rates of a valid plan have at most four decimals, so the text is exact; anything else is a bug.
    """
    scaled = rate * 10000
    if scaled.denominator != 1:
        raise ValueError(f"比例 {rate} 超过四位小数")
    units = int(scaled)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10000)
    digits = f"{frac:04d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits}"


def div_round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, on integers only (the body of ``round_half_up``).

    Half-up means half away from zero (四舍五入 as Chinese finance applies it to negative amounts
    too): 2.5 → 3, -2.5 → -3. The sign is symmetric, so the rounding of -x is -(rounding of x).
    """
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((2 * -numerator + denominator) // (2 * denominator))


def round_half_up(x: Fraction) -> int:
    """The one rounding function of RULES.md: round(x) to the nearest integer, halves away from 0.

    Callers pass an exact amount in fen (a ``Fraction``) and get integer fen.
    """
    return div_round_half_up(x.numerator, x.denominator)


# Chinese financial capitals (大写金额), as written on fiscal receipts (财政票据) and bank forms
# (中国人民银行《支付结算办法》附件《正确填写票据和结算凭证的基本规定》).
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_GROUP_UNITS = ("", "万", "亿", "万亿")


def _group_text(group: int) -> str:
    """0 < group < 10000 as capitals with inner zeros collapsed to one 零 (1001 → 壹仟零壹)."""
    text = ""
    pending_zero = False
    for position in range(3, -1, -1):
        digit = (group // 10**position) % 10
        if digit == 0:
            pending_zero = bool(text)
            continue
        if pending_zero:
            text += "零"
            pending_zero = False
        text += _DIGITS[digit] + _SMALL_UNITS[position]
    return text


def _integer_text(yuan: int) -> str:
    """The yuan part, e.g. 100100 → 壹拾万零壹佰, 100000000 → 壹亿.

    The leading 拾 is written 壹拾 (the receipt convention: 10 → 壹拾, 100000 → 壹拾万).
    """
    if yuan >= 10 ** (4 * len(_GROUP_UNITS)):
        raise ValueError("金额过大，无法写成大写")
    groups: list[int] = []
    while yuan:
        yuan, group = divmod(yuan, 10000)
        groups.append(group)
    text = ""
    zero_pending = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero_pending = bool(text)
            continue
        # A 零 stands for the zeros between two non-zero digits, whether they sit inside this group
        # (leading zeros: 壹万零伍佰) or span whole empty groups (壹亿零壹万).
        if text and (zero_pending or group < 1000):
            text += "零"
        zero_pending = False
        text += _group_text(group) + _GROUP_UNITS[index]
    return text


def chinese_capital(fen: int) -> str:
    """Amount in fen written in Chinese financial capitals (大写金额).

    Convention chosen (the common 财政票据 / bank-form style):
    - integer part with 零 for every run of zeros between non-zero digits, a leading 拾 written
      壹拾, then 元: 1001.00 → 壹仟零壹元整, 100100.00 → 壹拾万零壹佰元整;
    - then 角 and 分; 整 ends the text when there is no 分 (壹拾元叁角整, 壹佰贰拾元整);
    - a zero 角 between a non-zero 元 part and a non-zero 分 is written 零 (壹仟元零伍分); a zero 元
      digit before a non-zero 角 is not (壹仟陆佰捌拾元叁角贰分 — both spellings are allowed);
    - below one yuan the 元 part is left out (伍角整, 伍分); zero is 零元整;
    - a negative amount is prefixed 负.
    """
    if fen < 0:
        return "负" + chinese_capital(-fen)
    yuan, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    if yuan == 0 and cents == 0:
        return "零元整"
    text = _integer_text(yuan) + "元" if yuan else ""
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif fen_digit and yuan:
        text += "零"
    if fen_digit:
        text += _DIGITS[fen_digit] + "分"
    else:
        text += "整"
    return text


@dataclass(frozen=True, order=True, slots=True)
class Money:
    """An amount of money in integer fen. Immutable; arithmetic stays in fen, never float."""

    fen: int

    def __post_init__(self) -> None:
        if not isinstance(self.fen, int) or isinstance(self.fen, bool):
            raise TypeError("Money holds integer fen")

    @classmethod
    def parse(cls, text: str) -> Money:
        """From a non-negative yuan text such as "1234.50" (strict, see ``parse_yuan``)."""
        return cls(parse_yuan(text))

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen + other.fen)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        return Money(self.fen - other.fen)

    def __neg__(self) -> Money:
        return Money(-self.fen)

    def __bool__(self) -> bool:
        return self.fen != 0

    def times(self, rate: Fraction) -> Money:
        """This amount times an exact rate, rounded half-up to the fen once."""
        return Money(round_half_up(rate * self.fen))

    def format(self) -> str:
        return format_fen(self.fen)

    def capital(self) -> str:
        return chinese_capital(self.fen)

    def __str__(self) -> str:
        return format_fen(self.fen)
