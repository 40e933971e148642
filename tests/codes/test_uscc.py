from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qilu.codes.errors import CodeError
from qilu.codes.uscc import (
    ALPHABET,
    AUTHORITIES,
    WEIGHTS,
    check_character,
    make_uscc,
    organisation_check_character,
    parse_uscc,
)


def test_alphabet_and_weights_are_those_of_the_standard() -> None:
    assert len(ALPHABET) == 31 and not set("IOZSV") & set(ALPHABET)
    # GB 32100-2015 §4.3 table 3.
    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def test_check_character_agrees_with_the_plain_weighted_sum() -> None:
    first17 = "91350100M000100Y4"
    total = sum(ALPHABET.index(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    assert check_character(first17) == ALPHABET[(31 - total % 31) % 31]


def test_vector_from_the_standard() -> None:
    # GB 32100-2015 appendix example.
    parsed = parse_uscc("91350100M000100Y43")
    assert parsed.authority == "工商（市场监管）"
    assert parsed.organisation_type == "企业"
    assert parsed.division_name == "福建省"
    assert parsed.organisation_code == "M000100Y4"
    assert parsed.warnings == ()


def test_organisation_code_check_from_gb_11714() -> None:
    # Worked by hand: weights 3,7,9,10,5,8,4,2 over D=13,2,1,4,3,5,6,9 sum to 199, and
    # 11 - 199 mod 11 = 10, written X; a remainder of 0 gives 11, written 0.
    assert organisation_check_character("D2143569") == "X"
    assert organisation_check_character("00000000") == "0"


def test_every_allocated_authority_and_type_is_accepted() -> None:
    for authority, (_, types) in AUTHORITIES.items():
        for organisation_type in types:
            code = make_uscc(authority, organisation_type, "370102", "MA3C5W2B")
            assert parse_uscc(code).code == code
    assert {"1", "5", "9", "Y", "A", "N", "3"} <= set(AUTHORITIES)


@pytest.mark.parametrize(
    ("value", "code", "position"),
    [
        ("91350100M000100Y4", "uscc.length", None),
        ("91350100M000100YO3", "uscc.character", 17),
        ("91350100M000100Y44", "uscc.check_character", 18),
        (make_uscc("B", "1", "370102", "MA3C5W2B"), "uscc.authority", 1),
        (make_uscc("9", "9", "370102", "MA3C5W2B"), "uscc.organisation_type", 2),
        (make_uscc("9", "1", "990000", "MA3C5W2B"), "uscc.division", 3),
    ],
)
def test_each_rule_has_its_error(value: str, code: str, position: int | None) -> None:
    with pytest.raises(CodeError) as caught:
        parse_uscc(value)
    assert caught.value.code == code
    assert caught.value.details.get("position") == position


def test_check_error_says_expected_and_found() -> None:
    with pytest.raises(CodeError) as caught:
        parse_uscc("91350100M000100Y44")
    assert caught.value.details == {"position": 18, "expected": "3", "found": "4"}


def test_bad_embedded_organisation_code_is_a_warning() -> None:
    body = "MA3C5W2B"
    wrong = "0" if organisation_check_character(body) != "0" else "1"
    first17 = "91370102" + body + wrong
    code = first17 + check_character(first17)
    parsed = parse_uscc(code)
    assert len(parsed.warnings) == 1 and "GB 11714" in parsed.warnings[0]


def test_normalises_full_width_and_lower_case() -> None:
    assert parse_uscc(" ９１３５０１００m０００１００y４３ ").code == "91350100M000100Y43"


bodies = st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=8, max_size=8)
kinds = st.sampled_from([(a, t) for a, (_, types) in AUTHORITIES.items() for t in types])
places = st.sampled_from(["370000", "370100", "370102", "371728", "110000", "440300"])


@given(kinds, places, bodies)
def test_generated_codes_round_trip(kind: tuple[str, str], place: str, body: str) -> None:
    code = make_uscc(kind[0], kind[1], place, body)
    parsed = parse_uscc(code)
    assert parsed.code == code and parsed.warnings == ()


@given(kinds, places, bodies, st.integers(0, 17), st.integers(1, 30))
def test_any_single_character_change_is_caught(
    kind: tuple[str, str], place: str, body: str, position: int, shift: int
) -> None:
    code = make_uscc(kind[0], kind[1], place, body)
    replaced = ALPHABET[(ALPHABET.index(code[position]) + shift) % 31]
    corrupted = code[:position] + replaced + code[position + 1 :]
    with pytest.raises(CodeError):
        parse_uscc(corrupted)


def test_central_authorities_register_under_100000() -> None:
    # 住房和城乡建设部, the defining agency of many national licence types.
    parsed = parse_uscc("11100000000013338W")
    assert parsed.division_name == "中央" and parsed.organisation_type == "机关"
    with pytest.raises(CodeError) as error:
        parse_uscc("11200000000013338W"[:17] + "0")
    assert error.value.code in {"uscc.check_character", "uscc.division"}
