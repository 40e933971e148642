"""Service-item codes of the national integrated platform (全国一体化政务服务平台),
GB/T 39554.1-2020 (基本目录及实施清单 第1部分：编码要求), and the case number (办件编号)
built on them.

The standard's own text is sold, not published; the layouts below are read from its published
summaries and checked against codes in live use on provincial platforms:

- 基本编码 (basic code), 12 characters: who keeps the catalog entry (2: ``00`` for the national
  基本目录, a province's GB/T 2260 prefix for items it adds), the item type (2, the national
  事项类型 list: 01 行政许可 … 10 其他行政权力, 20 公共服务; provinces add their own above
  20), the department (2), the main
  item (3) and the sub-item (3, ``000`` when the item has none). Stored as ``varchar(12)`` by
  the platform's exchange tables (``catalog_code``); Shandong's ``370117002011`` and
  Guangdong's ``442199806003`` read this way.
- 实施编码 (implementation code), 31 characters: the implementing agency's USCC (18), its
  行使层级 (1) and the basic code (12). Seen in use as ``11370800MB28559184`` + ``3`` +
  ``370117002011`` (a 济宁 city agency).
- 办件编号 (case number): the implementation code, the day the case was accepted (yyyymmdd) and a
  serial within that implementation and day (4 digits, more if a day needs them), as the
  national 好差评 interface samples show (``12441500196720244T3442199806003`` + ``20220623`` +
  ``0068``). The region is in it twice over: the agency's USCC carries its GB/T 2260 division.
"""

from __future__ import annotations

import re
from datetime import date
from typing import NamedTuple

from qilu.codes.errors import CodeError
from qilu.codes.normalize import normalize_code
from qilu.codes.uscc import parse_uscc

FIELD = "item_code"
NATIONAL = "00"  # the keeper of the national 基本目录

# 事项类型 as the national catalog numbers them (the ten kinds of power, then 公共服务).
ITEM_TYPES: dict[str, str] = {
    "01": "行政许可",
    "02": "行政处罚",
    "03": "行政强制",
    "04": "行政征收",
    "05": "行政给付",
    "06": "行政检查",
    "07": "行政确认",
    "08": "行政奖励",
    "09": "行政裁决",
    "10": "其他行政权力",
    "20": "公共服务",
}
TYPE_CODES = {name: code for code, name in ITEM_TYPES.items()}

# 行使层级: the level of government that exercises the item.
USE_LEVELS: dict[str, str] = {
    "1": "国家级",
    "2": "省级",
    "3": "市级",
    "4": "县级",
    "5": "镇（乡、街道）级",
    "6": "村（社区）级",
}
LEVEL_OF = {"province": "2", "city": "3", "county": "4"}

_BASIC = re.compile(r"^(\d{2})(\d{2})([0-9A-Z]{2})(\d{3})(\d{3})$")
_CASE = re.compile(r"^(.{31})(\d{8})(\d{4,})$")


class BasicCode(NamedTuple):
    keeper: str  # 00 or a province prefix
    item_type: str
    department: str
    main: str
    sub: str

    def __str__(self) -> str:
        return "".join(self)


class ImplementationCode(NamedTuple):
    agency_uscc: str
    use_level: str
    basic: BasicCode

    def __str__(self) -> str:
        return f"{self.agency_uscc}{self.use_level}{self.basic}"


class CaseNumber(NamedTuple):
    implementation: ImplementationCode
    accepted_on: date
    serial: int

    def __str__(self) -> str:
        return f"{self.implementation}{self.accepted_on:%Y%m%d}{self.serial:04d}"


def basic_code(keeper: str, item_type: str, department: str, main: int, sub: int = 0) -> str:
    """The basic code of an item; `item_type` is its name (行政许可) and `department` the two
    characters of its competent department in the keeper's numbering."""
    if item_type not in TYPE_CODES:
        raise CodeError(f"{FIELD}.type", f"未知的事项类型：{item_type}", field=FIELD)
    if not (1 <= main <= 999 and 0 <= sub <= 999):
        raise CodeError(f"{FIELD}.sequence", "主项序号须为 1–999，子项序号须为 0–999", field=FIELD)
    return str(BasicCode(keeper, TYPE_CODES[item_type], department, f"{main:03d}", f"{sub:03d}"))


def parse_basic(code: str, *, field: str = FIELD) -> BasicCode:
    value = normalize_code(code)
    found = _BASIC.match(value)
    if found is None:
        raise CodeError(
            f"{FIELD}.format",
            "基本编码应为 12 位：编码机构 2 位、事项类型 2 位、部门 2 位、主项 3 位、子项 3 位",
            field=field,
            found=value,
        )
    basic = BasicCode(*found.groups())
    # A type outside the national list is not refused: provinces number their own kinds of
    # public service (Guangdong's 21), and their codes must still be read.
    if basic.main == "000":
        raise CodeError(f"{FIELD}.main", "基本编码的主项序号不能为 000", field=field, position=7)
    return basic


def implementation_code(agency_uscc: str, level: str, basic: str) -> str:
    """实施编码 of `basic` carried out by the agency with `agency_uscc` at `level` (province,
    city, county)."""
    return str(ImplementationCode(agency_uscc, LEVEL_OF[level], parse_basic(basic)))


def parse_implementation(code: str, *, field: str = "implementation_code") -> ImplementationCode:
    value = normalize_code(code)
    if len(value) != 31:
        raise CodeError(
            "implementation_code.length",
            f"实施编码应为 31 位（统一社会信用代码 18 位、行使层级 1 位、基本编码 12 位），"
            f"这里是 {len(value)} 位",
            field=field,
        )
    parse_uscc(value[:18])
    if value[18] not in USE_LEVELS:
        raise CodeError(
            "implementation_code.level",
            f"实施编码第 19 位 {value[18]} 不是行使层级代码（1–6）",
            field=field,
            position=19,
        )
    return ImplementationCode(value[:18], value[18], parse_basic(value[19:], field=field))


def case_number(implementation: str, accepted_on: date, serial: int) -> str:
    """办件编号: the `serial`-th case of `implementation` accepted on `accepted_on`."""
    if serial < 1:
        raise CodeError("case_number.serial", "办件流水号从 1 开始", field="case_number")
    return str(CaseNumber(parse_implementation(implementation), accepted_on, serial))


def parse_case_number(number: str, *, field: str = "case_number") -> CaseNumber:
    value = normalize_code(number)
    found = _CASE.match(value)
    if found is None:
        raise CodeError(
            "case_number.format",
            "办件编号应为实施编码 31 位、受理日期 8 位和流水号（至少 4 位）",
            field=field,
        )
    implementation, day, serial = found.groups()
    try:
        accepted_on = date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        raise CodeError(
            "case_number.date", f"办件编号中的受理日期 {day} 不存在", field=field, position=32
        ) from None
    return CaseNumber(parse_implementation(implementation, field=field), accepted_on, int(serial))
