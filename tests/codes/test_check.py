from __future__ import annotations

import io
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from qilu.codes.check import check_code, check_lines, check_stream
from qilu.codes.divisions import SHANDONG, divisions
from qilu.codes.idcard import make_id_number
from qilu.codes.uscc import make_uscc


def test_recognises_each_kind() -> None:
    assert check_code("11010519491231002X").kind == "id_number"
    assert check_code("91350100M000100Y43").kind == "uscc"


def test_an_all_digit_uscc_is_found_even_though_it_looks_like_an_id_number() -> None:
    code = make_uscc("1", "1", "370000", "00000001")
    assert code[:17].isdigit()
    result = check_code(code)
    assert result.is_valid and result.kind == "uscc"


def test_an_id_number_with_a_typo_stays_an_id_number_error() -> None:
    result = check_code("370102199003073510")
    assert not result.is_valid
    assert result.kind == "id_number"
    assert result.describe().startswith("id_number.check_digit:")


def test_abolished_division_is_explained() -> None:
    result = check_code(make_id_number("371202", date(1980, 1, 1), 123))
    assert "2019 年撤销，现属山东省济南市莱芜区" in result.describe()


def test_shandong_table_is_complete() -> None:
    table = divisions()
    assert len(table.current("city", within=SHANDONG)) == 16
    assert len(table.current("county", within=SHANDONG)) == 136
    assert len([d for d in table.by_code.values() if d.level == "province"]) == 34
    assert table.full_name("370116") == "山东省济南市莱芜区"
    assert not table.by_code["371200"].is_current


@given(
    st.sampled_from(sorted(divisions().full_names)),
    st.dates(date(1900, 1, 1), date(2020, 12, 31)),
    st.integers(1, 999),
    st.sampled_from(["clean", "lower", "typo", "spaced", "tab"]),
)
def test_the_bulk_path_says_exactly_what_describe_says(
    division: str, birth: date, order: int, typed: str
) -> None:
    """`check_lines` takes a short path for clean numbers; every line must be the one the
    general path (`check_code(...).describe()`) would have written."""
    number = make_id_number(division, birth, order)
    value = {
        "clean": number,
        "lower": number.lower(),
        "typo": number[:17] + ("0" if number[17] != "0" else "1"),
        "spaced": f" {number} ",
        "tab": number + "\r",
    }[typed]
    out = io.StringIO()
    valid = check_lines([value + "\n", "\n"], out)
    shown = value.rstrip("\r")
    expected = check_code(shown)
    verdict = "ok" if expected.is_valid else "error"
    assert out.getvalue() == f"{shown}\t{verdict}\t{expected.describe()}\n"
    assert valid is expected.is_valid


def test_the_standard_input_path_keeps_order_across_processes() -> None:
    """`qilu codes check -` describes blocks in worker processes: the output is the same, line
    for line and in order, as the one-process path, across block boundaries and bad lines."""
    counties = [d.code for d in divisions().current("county", within=SHANDONG)]
    values = [
        make_id_number(counties[i % len(counties)], date(1950, 1, 1 + i % 28), i % 999 + 1)
        for i in range(40_000)
    ]
    values[12_345] = values[12_345][:17] + "Z"  # an error inside the second block
    values[30_000] = "  "
    data = ("\n".join(values) + "\n").encode()
    expected = io.StringIO()
    assert not check_lines(data.decode().splitlines(keepends=True), expected)
    out = io.BytesIO()
    assert not check_stream(io.BytesIO(data), out, workers=2)
    assert out.getvalue().decode() == expected.getvalue()
    assert len(expected.getvalue().splitlines()) == 39_999
