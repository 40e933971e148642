from __future__ import annotations

from datetime import date

from qilu.codes.check import check_code
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
