from __future__ import annotations

from datetime import date

import pytest

from qilu.codes.errors import CodeError
from qilu.codes.items import (
    basic_code,
    case_number,
    implementation_code,
    parse_basic,
    parse_case_number,
    parse_implementation,
)

# Codes in live use: a 济宁 city agency's 实施编码 (a Shandong catalog item), and a case number
# with its 实施编码 from the national 好差评 interface samples (Guangdong).
SHANDONG = "11370800MB285591843370117002011"
GUANGDONG_CASE = "12441500196720244T3442199806003202206230068"


def test_a_live_shandong_implementation_code_reads_part_by_part() -> None:
    code = parse_implementation(SHANDONG)
    assert code.agency_uscc == "11370800MB28559184"
    assert code.use_level == "3"  # 市级
    assert code.basic == ("37", "01", "17", "002", "011")
    assert str(code) == SHANDONG


def test_a_live_case_number_reads_back_to_its_implementation_day_and_serial() -> None:
    number = parse_case_number(GUANGDONG_CASE)
    assert str(number.implementation) == "12441500196720244T3442199806003"
    assert number.accepted_on == date(2022, 6, 23)
    assert number.serial == 68
    assert str(number) == GUANGDONG_CASE


def test_codes_are_built_in_the_same_layout_they_are_read() -> None:
    basic = basic_code("37", "行政许可", "17", 2, 11)
    assert basic == "370117002011"
    assert implementation_code("11370800MB28559184", "city", basic) == SHANDONG
    built = case_number(SHANDONG, date(2026, 12, 7), 12)
    assert built == SHANDONG + "202612070012"
    assert parse_case_number(built).serial == 12
    # A day with more than 9,999 cases of one implementation still gets unique numbers.
    assert case_number(SHANDONG, date(2026, 12, 7), 10_000).endswith("2026120710000")


def test_central_agencies_register_under_100000() -> None:
    assert parse_implementation("11100000000013338W1000101001000").agency_uscc == (
        "11100000000013338W"
    )


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("3701170020", "item_code.format"),  # too short
        ("370117000011", "item_code.main"),  # main item 000
        ("37011700201A", "item_code.format"),  # letter in the sub-item
    ],
)
def test_malformed_basic_codes_are_refused_with_the_reason(code: str, reason: str) -> None:
    with pytest.raises(CodeError) as error:
        parse_basic(code)
    assert error.value.code == reason


def test_malformed_implementation_codes_and_case_numbers_are_refused() -> None:
    with pytest.raises(CodeError) as error:
        parse_implementation(SHANDONG[:-1])
    assert error.value.code == "implementation_code.length"
    with pytest.raises(CodeError) as error:
        parse_implementation(SHANDONG[:18] + "7" + SHANDONG[19:])
    assert error.value.code == "implementation_code.level"
    with pytest.raises(CodeError) as error:  # the agency's USCC fails its check character
        parse_implementation("11370800MB28559185" + SHANDONG[18:])
    assert error.value.code == "uscc.check_character"
    with pytest.raises(CodeError) as error:
        parse_case_number(SHANDONG + "202602300001")
    assert error.value.code == "case_number.date"
    with pytest.raises(CodeError) as error:
        basic_code("37", "行政许可", "17", 0)
    assert error.value.code == "item_code.sequence"
