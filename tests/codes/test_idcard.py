from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qilu.codes.divisions import divisions
from qilu.codes.errors import CodeError
from qilu.codes.idcard import (
    WEIGHTS,
    check_character,
    make_id_number,
    mask_id_number,
    parse_id_number,
    upgrade_to_18,
    validate_id_number,
)


def test_weights_are_those_of_the_standard() -> None:
    # GB 11643-1999 §6.2 lists them explicitly.
    assert WEIGHTS == (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def test_check_character_agrees_with_the_plain_weighted_sum() -> None:
    first17 = "34052419800101001"
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    assert check_character(first17) == "10X98765432"[total % 11]


@pytest.mark.parametrize(
    ("number", "birth", "sex"),
    [
        ("11010519491231002X", date(1949, 12, 31), "F"),  # the standard's own example
        ("440524188001010014", date(1880, 1, 1), "M"),  # the standard's 19th-century example
    ],
)
def test_vectors_from_the_standard(number: str, birth: date, sex: str) -> None:
    parsed = parse_id_number(number)
    assert (parsed.number, parsed.birth_date, parsed.sex) == (number, birth, sex)


def test_decodes_a_shandong_number() -> None:
    parsed = parse_id_number("370102199003073516")
    assert parsed.division_name == "山东省济南市历下区"
    assert parsed.sex == "M"
    assert parsed.warnings == ()
    assert parsed.masked == "370102********3516"


@pytest.mark.parametrize(
    "typed",
    [
        "11010519491231002x",
        " 11010519491231002X ",
        "１１０１０５１９４９１２３１００２Ｘ",
        "110105 19491231 002X",
        "　11010519491231002ｘ　",
    ],
)
def test_normalises_what_people_type(typed: str) -> None:
    assert validate_id_number(typed) == "11010519491231002X"


def test_upgrades_fifteen_digits() -> None:
    assert upgrade_to_18("370102900307351") == "370102199003073516"
    parsed = parse_id_number("370102900307351")
    assert parsed.number == "370102199003073516"
    assert parsed.upgraded_from == "370102900307351"


def test_check_digit_error_names_position_expected_and_found() -> None:
    with pytest.raises(CodeError) as caught:
        parse_id_number("370102199003073510")
    error = caught.value
    assert error.code == "id_number.check_digit"
    assert error.details == {"position": 18, "expected": "6", "found": "0"}
    assert "第 18 位" in error.message


@pytest.mark.parametrize(
    ("value", "code", "position"),
    [
        ("37010219900307351", "id_number.length", None),
        ("3701021990030735A6", "id_number.character", 17),
        ("99010219900307351X", "id_number.province", 1),
        ("370102199002303516", "id_number.birth_date", 7),  # 30 February
        ("370102190002293516", "id_number.birth_date", 7),  # 1900 was no leap year
    ],
)
def test_each_rule_has_its_error(value: str, code: str, position: int | None) -> None:
    with pytest.raises(CodeError) as caught:
        validate_id_number(value)
    assert caught.value.code == code
    assert caught.value.details.get("position") == position


def test_birth_date_may_not_be_in_the_future() -> None:
    number = make_id_number("370102", date(2030, 1, 1), 11)
    with pytest.raises(CodeError) as caught:
        validate_id_number(number, today=date(2026, 11, 28))
    assert caught.value.code == "id_number.birth_date_future"
    assert validate_id_number(number, today=date(2030, 1, 1)) == number


def test_a_leap_day_is_a_real_date() -> None:
    number = make_id_number("370102", date(2000, 2, 29), 12)
    assert parse_id_number(number).birth_date == date(2000, 2, 29)


def test_abolished_divisions_still_validate() -> None:
    # 莱芜市莱城区 became 济南市莱芜区 in 2019; people keep their numbers.
    number = make_id_number("371202", date(1980, 1, 1), 123)
    parsed = parse_id_number(number)
    assert parsed.warnings == ()
    assert parsed.division_name == "山东省莱芜市莱城区"
    assert divisions().by_code["371202"].successor == "370116"


def test_unknown_shandong_county_is_a_warning_not_an_error() -> None:
    parsed = parse_id_number(make_id_number("370199", date(1980, 1, 1), 123))
    assert parsed.division_name == "山东省"
    assert len(parsed.warnings) == 1 and "370199" in parsed.warnings[0]


def test_other_provinces_are_named_without_warnings() -> None:
    parsed = parse_id_number(make_id_number("320102", date(1980, 1, 1), 123))
    assert parsed.division_name == "江苏省"
    assert parsed.warnings == ()


def test_mask() -> None:
    assert mask_id_number("11010519491231002X") == "110105********002X"


divisions_for_ids = st.sampled_from(
    [d.code for d in divisions().by_code.values() if d.level == "county"] + ["110101", "650102"]
)
birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2024, 12, 31))
orders = st.integers(min_value=1, max_value=999)


@given(divisions_for_ids, birth_dates, orders)
def test_generated_numbers_round_trip(division: str, birth: date, order: int) -> None:
    number = make_id_number(division, birth, order)
    parsed = parse_id_number(number)
    assert parsed.number == number
    assert parsed.birth_date == birth
    assert parsed.sex == ("M" if order % 2 else "F")
    assert parsed.division_code == division


@given(divisions_for_ids, birth_dates, orders, st.integers(0, 17), st.integers(1, 10))
def test_any_single_character_change_is_caught(
    division: str, birth: date, order: int, position: int, shift: int
) -> None:
    number = make_id_number(division, birth, order)
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replaced = alphabet[(alphabet.index(number[position]) + shift) % len(alphabet)]
    if replaced == number[position]:
        return
    corrupted = number[:position] + replaced + number[position + 1 :]
    with pytest.raises(CodeError):
        validate_id_number(corrupted)


@given(divisions_for_ids, birth_dates, orders, st.integers(0, 16))
def test_swapping_neighbours_is_caught(
    division: str, birth: date, order: int, position: int
) -> None:
    number = make_id_number(division, birth, order)
    a, b = number[position], number[position + 1]
    if a == b or not b.isdigit():
        return
    swapped = number[:position] + b + a + number[position + 2 :]
    with pytest.raises(CodeError):
        validate_id_number(swapped)
