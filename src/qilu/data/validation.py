"""Check one row against a resource's fields: types, required values, enumerations, and the
national codes through `codes`. Returns the clean values, or every problem with its field."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from qilu.codes.divisions import divisions
from qilu.codes.errors import CodeError
from qilu.codes.idcard import validate_id_number
from qilu.codes.uscc import parse_uscc
from qilu.data.catalog import FieldSpec

TRUE = frozenset({"true", "1", "是", "y", "yes"})
FALSE = frozenset({"false", "0", "否", "n", "no"})
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d")
LARGEST_INTEGER = 2**63 - 1  # what the store keeps and other systems read as a 64-bit integer
LARGEST_DECIMAL = Decimal(10) ** 18
PLACES = 8


class Checked(NamedTuple):
    values: dict[str, Any]  # JSON-ready: dates as ISO text, decimals as text
    problems: list[tuple[str, str]]  # (field, reason)
    warnings: list[tuple[str, str]]


class _Bad(Exception):
    pass


def check_row(fields: list[FieldSpec], raw: dict[str, Any]) -> Checked:
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    for field in fields:
        given = raw.get(field.name)
        text = given.strip() if isinstance(given, str) else given
        if text is None or text == "":
            if field.required:
                problems.append((field.name, f"{field.label}为必填项"))
            continue
        try:
            values[field.name] = _convert(field, text, warnings)
        except _Bad as bad:
            problems.append((field.name, f"{field.label}：{bad}"))
    return Checked(values, problems, warnings)


def _convert(field: FieldSpec, value: Any, warnings: list[tuple[str, str]]) -> Any:
    kind = field.type
    if isinstance(value, dict | list | tuple | set):  # a JSON push may send anything
        raise _Bad("须为单个值，不能是列表或对象")
    if isinstance(value, bool) and kind != "boolean":
        raise _Bad(f"“{value}”不是{field.label}的取值")
    if kind == "string":
        text = str(value)
        if field.max_length is not None and len(text) > field.max_length:
            raise _Bad(f"长度 {len(text)} 超过上限 {field.max_length}")
        return text
    if kind == "integer":
        if not str(value).lstrip("-").isdigit() or len(str(value)) > 19:
            raise _Bad(f"“{str(value)[:30]}”不是整数")
        whole = int(value)
        if not -LARGEST_INTEGER <= whole <= LARGEST_INTEGER:
            raise _Bad("超出整数范围")
        return _at_least(field, whole)
    if kind == "decimal":
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise _Bad(f"“{value}”不是数字") from None
        if not number.is_finite():
            raise _Bad(f"“{value}”不是数字")
        exponent = number.as_tuple().exponent
        if abs(number) >= LARGEST_DECIMAL or (isinstance(exponent, int) and -exponent > PLACES):
            raise _Bad(f"数值超出范围（整数部分至多 18 位，小数至多 {PLACES} 位）")
        return str(_at_least(field, number))
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        lowered = str(value).lower()
        if lowered in TRUE or lowered in FALSE:
            return lowered in TRUE
        raise _Bad(f"“{value}”不是是/否")
    if kind == "date":
        return _date(value).isoformat()
    if kind == "datetime":
        try:
            return datetime.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise _Bad(f"“{value}”不是 ISO 8601 时间") from None
    if kind == "enum":
        if str(value) not in field.values:
            raise _Bad(f"“{value}”不在可选值（{'、'.join(field.values)}）中")
        return str(value)
    if kind == "id_number":
        try:
            return validate_id_number(str(value))
        except CodeError as error:
            raise _Bad(error.message) from None
    if kind == "uscc":
        try:
            parsed = parse_uscc(str(value))
        except CodeError as error:
            raise _Bad(error.message) from None
        warnings.extend((field.name, f"{field.label}：{w}") for w in parsed.warnings)
        return parsed.code
    if kind == "division":
        return _division(field, str(value), warnings)
    if kind == "party_code":  # a person's ID number or an organisation's USCC
        return _party_code(str(value), warnings, field)
    raise AssertionError(f"unknown field type {kind}")  # FieldSpec admits no other


def _at_least(field: FieldSpec, number: Any) -> Any:
    if field.minimum is not None and number < field.minimum:
        raise _Bad(f"不能小于 {field.minimum}")
    return number


def _party_code(code: str, warnings: list[tuple[str, str]], field: FieldSpec) -> str:
    """An ID number if it reads as one, otherwise a USCC; either must pass its check."""
    text = code.strip().upper()
    if len(text) == 18 and text[:17].isdigit():
        try:
            return validate_id_number(text)
        except CodeError:
            pass  # a USCC can be all digits too
    try:
        parsed = parse_uscc(text)
    except CodeError as error:
        raise _Bad(
            f"既不是有效的公民身份号码，也不是有效的统一社会信用代码（{error.message}）"
        ) from None
    warnings.extend((field.name, f"{field.label}：{w}") for w in parsed.warnings)
    return parsed.code


def _division(field: FieldSpec, code: str, warnings: list[tuple[str, str]]) -> str:
    """Shandong's divisions are all known, so an unknown one there is an error; elsewhere the
    table holds the provinces and some districts, so an unknown code under a real province is
    kept with a warning."""
    table = divisions()
    if table.get(code) is not None:
        return code
    province = code[:2] + "0000"
    if len(code) != 6 or not code.isdigit() or code[:2] == "37" or table.get(province) is None:
        raise _Bad(f"“{code}”不是 GB/T 2260 行政区划代码")
    warnings.append((field.name, f"{field.label}：区划表未收录 {code}（仅收录山东省的全部区划）"))
    return code


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:  # the common case, much faster than strptime
        return date.fromisoformat(str(value))
    except ValueError:
        pass
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(str(value), pattern).date()
        except ValueError:
            continue
    raise _Bad(f"“{value}”不是日期（年-月-日）")
