"""Check a value that may be either kind of code, as `qilu codes check` and the API do."""

from __future__ import annotations

from typing import Literal, NamedTuple

from qilu.codes.divisions import divisions
from qilu.codes.errors import CodeError
from qilu.codes.idcard import IdNumber, parse_id_number
from qilu.codes.normalize import normalize_code
from qilu.codes.uscc import Uscc, parse_uscc

Kind = Literal["id_number", "uscc"]
SEX_NAMES = {"M": "男", "F": "女"}


class CheckResult(NamedTuple):
    value: str
    kind: Kind
    parsed: IdNumber | Uscc | None
    error: CodeError | None

    @property
    def is_valid(self) -> bool:
        return self.error is None

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.parsed.warnings if self.parsed is not None else ()

    def describe(self) -> str:
        """One line in Chinese: what the code says, or exactly what is wrong with it."""
        if self.error is not None:
            return f"{self.error.code}: {self.error.message}"
        parts: list[str]
        if isinstance(self.parsed, IdNumber):
            parts = [
                f"身份号码 {self.parsed.number}",
                SEX_NAMES[self.parsed.sex],
                f"出生 {self.parsed.birth_date.isoformat()}",
                self.parsed.division_name,
            ]
            division = divisions().get(self.parsed.division_code)
            if division is not None and division.abolished_in and division.successor:
                successor = divisions().full_name(division.successor)
                parts.append(f"该区划已于 {division.abolished_in} 年撤销，现属{successor}")
            if self.parsed.upgraded_from:
                parts.append("由 15 位号码升级")
        elif isinstance(self.parsed, Uscc):
            parts = [
                f"统一社会信用代码 {self.parsed.code}",
                f"{self.parsed.authority}/{self.parsed.organisation_type}",
                self.parsed.division_name or self.parsed.division_code,
                f"组织机构代码 {self.parsed.organisation_code}",
            ]
        else:  # pragma: no cover - parsed is set whenever error is None
            raise AssertionError("a valid result carries its parsed code")
        parts.extend(f"警告：{warning}" for warning in self.warnings)
        return " · ".join(parts)


def guess_kind(value: str) -> Kind:
    """ID numbers are digits (with a final X); anything with other letters is a USCC."""
    text = normalize_code(value)
    body = text[:-1] if text.endswith("X") else text
    return "id_number" if body.isdigit() or not text else "uscc"


def check_code(value: str) -> CheckResult:
    """Validate a value as the kind its shape suggests.

    A USCC can be all digits too. Such a value is read as an ID number unless its first two
    digits are no province or its 7th-14th digits no date; only then is it tried as a USCC. If
    both fail, the error reported is the one of the kind it can still be.
    """
    kind = guess_kind(value)
    try:
        if kind == "uscc":
            return CheckResult(value, kind, parse_uscc(value), None)
        return CheckResult(value, kind, parse_id_number(value), None)
    except CodeError as error:
        if error.code not in ("id_number.province", "id_number.birth_date"):
            return CheckResult(value, kind, None, error)
        try:
            return CheckResult(value, "uscc", parse_uscc(value), None)
        except CodeError as uscc_error:
            if error.code == "id_number.province":
                return CheckResult(value, "uscc", None, uscc_error)
            return CheckResult(value, kind, None, error)
