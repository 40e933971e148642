from __future__ import annotations

import pytest

from qilu.codes.errors import CodeError
from qilu.codes.licence_ids import identifier, parse_identifier, type_code

# Identifiers of licences in live use, each with its check character computed by its issuer.
LIVE = [
    "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3",
    "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S",
    "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
    "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
    "1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9",
]


@pytest.mark.parametrize("live", LIVE)
def test_live_identifiers_check_and_are_rebuilt_exactly(live: str) -> None:
    parsed = parse_identifier(live)
    assert identifier(parsed.type_code, parsed.issuer_uscc, parsed.number, parsed.version) == live


def test_a_changed_licence_gets_a_new_version_and_check() -> None:
    first = identifier("11100000000013338W011", "11430000006122244L", "20230000403", 1)
    second = identifier("11100000000013338W011", "11430000006122244L", "20230000403", 2)
    assert first.endswith(".001.U") and second.endswith(".002.S")


def test_a_wrong_check_character_is_named() -> None:
    # Issued by a tool that computes the check wrongly: MOD 37,36 gives D.
    with pytest.raises(CodeError) as error:
        parse_identifier(
            "1.2.156.3005.2.11100000000013661B006.113700000045046442."
            "209FA4E88F9E4C878F3E9BED2CE7EA49.001.M"
        )
    assert error.value.code == "licence_identifier.check"
    assert error.value.details["expected"] == "D"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2.16.156.11100000000013338W011.1.1.001.U", "licence_identifier.root"),
        (
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.001.U",
            "licence_identifier.format",
        ),
    ],
)
def test_malformed_identifiers_are_refused(value: str, reason: str) -> None:
    with pytest.raises(CodeError) as error:
        parse_identifier(value)
    assert error.value.code == reason


def test_type_codes_name_the_defining_agency() -> None:
    assert type_code("11100000000013338W", 87) == "11100000000013338W087"
    with pytest.raises(CodeError):
        type_code("11100000000013338X", 1)  # not a USCC
    with pytest.raises(CodeError):
        identifier("11100000000013338W087", "11370800MB28559184", "no-lower")
