"""Resident identity numbers (公民身份号码), GB 11643-1999.

18 characters: 6-digit GB/T 2260 division of first registration, 8-digit birth date, 3-digit
order code (odd for men, even for women), and an ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal, NamedTuple

from qilu.codes.divisions import SHANDONG, divisions
from qilu.codes.errors import CodeError
from qilu.codes.normalize import normalize_code

Sex = Literal["M", "F"]

FIELD = "id_number"
# GB 11643-1999 §6.2: weight of position i is 2^(18-i) mod 11; the check maps S mod 11 to these.
WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"
# check_character() below, tabulated by int(first17, 13) mod 11 for the hot path.
_CHECK_BY_BASE13_REMAINDER = tuple(_CHECK_CHARS[(2 * r) % 11] for r in range(11))
_EARLIEST_BIRTH = date(1850, 1, 1)
_LATEST_TABLED_BIRTH = date(2099, 12, 31)


class IdNumber(NamedTuple):
    """A valid number and what it says about its holder."""

    number: str
    birth_date: date
    sex: Sex
    division_code: str
    division_name: str
    warnings: tuple[str, ...] = ()
    upgraded_from: str | None = None

    @property
    def masked(self) -> str:
        return mask_id_number(self.number)


def check_character(first17: str) -> str:
    """The check character for 17 digits.

    Σ dᵢ·2^(17-i) mod 11 equals 2·int(digits, base 13) mod 11, because 13 ≡ 2 (mod 11): letting
    int() do the weighted sum in C makes validation several times faster than a Python loop.
    """
    return _CHECK_CHARS[(2 * int(first17, 13)) % 11]


def mask_id_number(number: str) -> str:
    """370102********1234: division kept, birth date and order hidden (GB/T 35273 practice)."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def _birth_date_table() -> dict[str, date]:
    """Every calendar date 1850-2099 keyed by its YYYYMMDD text."""
    first, last = _EARLIEST_BIRTH.toordinal(), _LATEST_TABLED_BIRTH.toordinal()
    days = [date.fromordinal(n) for n in range(first, last + 1)]
    return {d.isoformat().replace("-", ""): d for d in days}  # C calls: half the start-up


# Look-up tables of the hot path, built once at import and never changed afterwards.
_BIRTH_DATES = _birth_date_table()
_PROVINCES = divisions().provinces
_FULL_NAMES = divisions().full_names

# Any birth date up to the day before this process started is in the past for its whole life:
# only later dates (newborns) need the clock, which costs more than the rest of a validation.
_SURELY_PAST = date.today() - timedelta(days=1)


def validate_id_number(value: str, *, today: date | None = None) -> str:
    """The number in its normal 18-character form if valid; raise `CodeError` otherwise.

    This is the hot path of bulk checks and loads, so it favours precomputed look-ups and
    leaves decoding (names, sex) to `parse_id_number`.
    """
    first17 = value[:17]
    if len(value) == 18 and value.isascii() and first17.isdigit():
        number = value if value[17] != "x" else value.upper()
    else:
        number = normalize_code(value)
        if len(number) == 15:
            number = upgrade_to_18(number)
        _check_shape(number)
        first17 = number[:17]
    if number[:2] not in _PROVINCES:
        raise CodeError(
            "id_number.province",
            f"身份号码前 2 位 {number[:2]} 不是 GB/T 2260 的省级行政区划代码",
            field=FIELD,
            position=1,
            found=number[:2],
        )
    birth = _BIRTH_DATES.get(number[6:14])
    if birth is None:
        raise CodeError(
            "id_number.birth_date",
            f"身份号码第 7-14 位出生日期 {number[6:14]} 不是真实的日期",
            field=FIELD,
            position=7,
            found=number[6:14],
        )
    if (today is not None or birth > _SURELY_PAST) and birth > (today or date.today()):
        raise CodeError(
            "id_number.birth_date_future",
            f"身份号码第 7-14 位出生日期 {number[6:14]} 晚于今天",
            field=FIELD,
            position=7,
            found=number[6:14],
        )
    expected = _CHECK_BY_BASE13_REMAINDER[int(first17, 13) % 11]
    if number[17] != expected:
        raise CodeError(
            "id_number.check_digit",
            f"身份号码第 18 位校验码应为 {expected}，实为 {number[17]}（号码有误或抄写错误）",
            field=FIELD,
            position=18,
            expected=expected,
            found=number[17],
        )
    return number


def birth_dates() -> dict[str, date]:
    """The calendar the checks use: every date 1850-2099 by its YYYYMMDD text (do not change)."""
    return _BIRTH_DATES


def plainly_valid(value: str) -> str | None:
    """The number if `value` is 18 plain characters that pass every check and were born before
    yesterday, else None (`validate_id_number` then says what is wrong). No exception and no
    normalising: the short path of bulk checks, which are mostly such numbers."""
    first17 = value[:17]
    if len(value) != 18 or not first17.isdigit() or not first17.isascii():
        return None
    birth = _BIRTH_DATES.get(value[6:14])
    if birth is None or birth > _SURELY_PAST or value[:2] not in _PROVINCES:
        return None
    expected = _CHECK_BY_BASE13_REMAINDER[int(first17, 13) % 11]
    last = value[17]
    if last == expected:
        return value
    return first17 + "X" if last == "x" and expected == "X" else None


def parse_id_number(value: str, *, today: date | None = None) -> IdNumber:
    """Validate a number as typed (15 or 18 characters) and decode what it says."""
    number = validate_id_number(value, today=today)
    division_code = number[:6]
    division_name = _FULL_NAMES.get(division_code)
    warnings: tuple[str, ...] = ()
    if division_name is None:
        province = _PROVINCES[number[:2]]
        division_name = province.name
        if province.code == SHANDONG:  # the only province whose counties we ship
            warnings = (f"行政区划代码 {division_code} 不在现行 GB/T 2260 表中（号码仍然有效）",)
    clean = len(value) == 18 and value.isascii() and value[:17].isdigit()
    typed = None if clean else normalize_code(value)
    return IdNumber(
        number,
        _BIRTH_DATES[number[6:14]],
        "M" if number[16] in "13579" else "F",
        division_code,
        division_name,
        warnings,
        typed if typed is not None and len(typed) == 15 else None,
    )


def _check_shape(number: str) -> None:
    if len(number) != 18:
        raise CodeError(
            "id_number.length",
            f"身份号码应为 18 位（或旧版 15 位），实为 {len(number)} 位",
            field=FIELD,
            expected=18,
            found=len(number),
        )
    for position, char in enumerate(number, start=1):
        allowed = "0123456789X" if position == 18 else "0123456789"
        if char not in allowed:
            what = "数字或 X" if position == 18 else "数字"
            raise CodeError(
                "id_number.character",
                f"身份号码第 {position} 位应为{what}，实为“{char}”",
                field=FIELD,
                position=position,
                expected=what,
                found=char,
            )


def upgrade_to_18(number15: str) -> str:
    """A first-generation 15-digit number (born 19YY) in its 18-character form (GB 11643 附录)."""
    for position, char in enumerate(number15, start=1):
        if not "0" <= char <= "9":
            raise CodeError(
                "id_number.character",
                f"15 位身份号码第 {position} 位应为数字，实为“{char}”",
                field=FIELD,
                position=position,
                expected="数字",
                found=char,
            )
    first17 = number15[:6] + "19" + number15[6:]
    return first17 + check_character(first17)


def make_id_number(division_code: str, birth: date, order: int) -> str:
    """Compose a valid number (order 1-999: odd for men, even for women)."""
    first17 = f"{division_code}{birth.year:04d}{birth.month:02d}{birth.day:02d}{order:03d}"
    return first17 + check_character(first17)
