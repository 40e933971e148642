"""E-licence identifiers (电子证照标识), GB/T 36903-2018, with the 证照类型代码 of GB/T 36902-2018.

An identifier is an OID under the national root for e-licences, five parts after it, joined by
dots:

    1.2.156.3005.2 . 证照类型代码 . 颁发机构代码 . 证照编号 . 版本号 . 校验位

- 证照类型代码: the USCC of the agency that defined the licence type (18) and that agency's
  sequence number for it (3), e.g. ``11100000000013338W`` (住房和城乡建设部) + ``087``;
- 颁发机构代码: the issuing agency's USCC;
- 证照编号: the number printed on the licence (digits and capitals);
- 版本号: three digits, 001 for the first issue, raised when the licence is changed or renewed;
- 校验位: ISO 7064 MOD 37,36 (GB/T 17710) over the four parts written together without dots.

The layout and the check were confirmed against identifiers in live use (in tests): five of six
check; the sixth came from a tool known to compute the check wrongly.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_37_36

from qilu.codes.errors import CodeError
from qilu.codes.uscc import parse_uscc

FIELD = "licence_identifier"
ROOT = "1.2.156.3005.2"
_NUMBER = re.compile(r"^[0-9A-Z]{1,40}$")
_TYPE = re.compile(r"^[0-9A-Z]{18}\d{3}$")


class LicenceIdentifier(NamedTuple):
    type_code: str
    issuer_uscc: str
    number: str
    version: int
    check: str

    def __str__(self) -> str:
        parts = (self.type_code, self.issuer_uscc, self.number, f"{self.version:03d}", self.check)
        return ".".join((ROOT, *parts))


def type_code(defining_uscc: str, sequence: int) -> str:
    """证照类型代码 of the `sequence`-th type the agency with `defining_uscc` defined."""
    if not 1 <= sequence <= 999:
        raise CodeError("licence_type.sequence", "证照类型顺序号须为 1–999", field="type_code")
    return f"{parse_uscc(defining_uscc).code}{sequence:03d}"


def identifier(type_code: str, issuer_uscc: str, number: str, version: int = 1) -> str:
    """The identifier of licence `number` of `type_code` issued by `issuer_uscc`."""
    if not _TYPE.match(type_code):
        raise CodeError(
            "licence_type.format",
            "证照类型代码应为定义机构统一社会信用代码 18 位加顺序号 3 位",
            field="type_code",
        )
    if not _NUMBER.match(number):
        raise CodeError(
            f"{FIELD}.number", "证照编号只能由数字和大写字母组成（至多 40 位）", field="number"
        )
    if not 1 <= version <= 999:
        raise CodeError(f"{FIELD}.version", "证照版本号须为 001–999", field="version")
    body = f"{type_code}{issuer_uscc}{number}{version:03d}"
    check = mod_37_36.calc_check_digit(body)
    return str(LicenceIdentifier(type_code, issuer_uscc, number, version, check))


def parse_identifier(value: str, *, field: str = FIELD) -> LicenceIdentifier:
    text = value.strip().upper()
    if not text.startswith(ROOT + "."):
        raise CodeError(
            f"{FIELD}.root", f"电子证照标识应以 {ROOT} 开头", field=field, expected=ROOT
        )
    parts = text[len(ROOT) + 1 :].split(".")
    if len(parts) != 5 or not parts[3].isdigit() or len(parts[3]) != 3:
        raise CodeError(
            f"{FIELD}.format",
            "电子证照标识应为：根代码.证照类型代码.颁发机构代码.证照编号.版本号.校验位",
            field=field,
        )
    type_part, issuer, number, version, check = parts
    try:
        mod_37_36.validate(f"{type_part}{issuer}{number}{version}{check}")
    except ValidationError:
        expected = mod_37_36.calc_check_digit(f"{type_part}{issuer}{number}{version}")
        raise CodeError(
            f"{FIELD}.check",
            f"电子证照标识的校验位应为 {expected}，实为 {check}",
            field=field,
            expected=expected,
            found=check,
        ) from None
    return LicenceIdentifier(type_part, issuer, number, int(version), check)
