"""Check a value that may be either kind of code, as `qilu codes check` and the API do."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from functools import cache, partial
from itertools import islice
from typing import BinaryIO, Literal, NamedTuple, TextIO

from qilu.codes.divisions import divisions
from qilu.codes.errors import CodeError
from qilu.codes.idcard import IdNumber, birth_dates, parse_id_number, plainly_valid
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


@cache
def _division_suffixes() -> dict[str, str]:
    """What `describe` says after the birth date, for each division a number can start with."""
    table = divisions()
    suffixes = {}
    for code, name in table.full_names.items():
        suffix = f" · {name}"
        division = table.get(code)
        if division is not None and division.abolished_in and division.successor:
            successor = table.full_name(division.successor)
            suffix += f" · 该区划已于 {division.abolished_in} 年撤销，现属{successor}"
        suffixes[code] = suffix
    return suffixes


@cache
def _days() -> dict[str, str]:
    """Every birth date's YYYYMMDD as `describe` writes it (YYYY-MM-DD)."""
    return {key: day.isoformat() for key, day in birth_dates().items()}


_SEX_PARTS = {d: f" · {SEX_NAMES['M' if d in '13579' else 'F']} · 出生 " for d in "0123456789"}
CHUNK = 8192
BLOCK = 256 * 1024


def check_lines(lines: Iterable[str], out: TextIO, *, strict: bool = False) -> bool:
    """`qilu codes check VALUE…`: one `value<TAB>ok|error<TAB>details` line per non-blank line,
    written a chunk at a time; True if every value is valid."""
    remaining = (line.rstrip("\r\n") for line in lines)
    all_valid = True
    for chunk in iter(lambda: list(islice(remaining, CHUNK)), []):
        text, valid = _describe(chunk, strict=strict)
        out.write(text)
        all_valid &= valid
    return all_valid


def check_stream(
    source: BinaryIO, out: BinaryIO, *, strict: bool = False, workers: int = 1
) -> bool:
    """`qilu codes check -`: as `check_lines`, for a stream of UTF-8 lines (a register of
    millions piped through), read a block at a time and described in `workers` processes,
    the output kept in input order."""
    blocks = _blocks(source)
    describe = partial(_describe_block, strict=strict)
    first = next(blocks, b"")
    text, all_valid = describe(first)  # a short list is done before any process starts
    out.write(text)
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:  # inherit the tables
            for text, valid in pool.imap(describe, blocks):
                out.write(text)
                all_valid &= valid
        return all_valid
    for block in blocks:
        text, valid = describe(block)
        out.write(text)
        all_valid &= valid
    return all_valid


def _blocks(source: BinaryIO) -> Iterator[bytes]:
    """The stream in blocks of whole lines."""
    rest = b""
    while block := source.read(BLOCK):
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest += block
            continue
        yield rest + block[:cut]
        rest = block[cut:]
    if rest:
        yield rest


def _describe_block(block: bytes, *, strict: bool) -> tuple[bytes, bool]:
    text, valid = _describe(block.decode("utf-8", "replace").splitlines(), strict=strict)
    return text.encode(), valid


def _describe(chunk: list[str], *, strict: bool) -> tuple[str, bool]:
    """The output lines of a chunk of input lines (without their line ends). An 18-character
    number of a known division that passes takes a short path saying exactly what `describe`
    would (tested), since a bulk check of a register is mostly those; it is written as one
    comprehension because this loop is the whole cost of checking a register."""
    suffixes, days, sexes = _division_suffixes(), _days(), _SEX_PARTS
    slow: list[bool] = []
    lines = [
        f"{v}\tok\t身份号码 {n}{sexes[n[16]]}{days[n[6:14]]}{suffix}\n"
        if n is not None and (suffix := suffixes.get(v[:6])) is not None
        else _line(v, strict, slow)
        for v, n in zip(chunk, map(plainly_valid, chunk), strict=True)
    ]
    return "".join(lines), all(slow)


def _line(value: str, strict: bool, verdicts: list[bool]) -> str:
    """The general path: any code, as typed, with its verdict kept in `verdicts`."""
    if not value.strip():
        return ""
    result = check_code(value)
    valid = result.is_valid and not (strict and result.warnings)
    verdicts.append(valid)
    return f"{value}\t{'ok' if valid else 'error'}\t{result.describe()}\n"
