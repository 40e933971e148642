"""Unified Social Credit Codes (统一社会信用代码), GB 32100-2015.

18 characters from a 31-character alphabet: registration authority (1), organisation type (1),
GB/T 2260 division of the registering authority (6), the 9-character organisation code of
GB 11714 (8 + its own check character), and a weighted mod-31 check character.
"""

from __future__ import annotations

from typing import NamedTuple

from qilu.codes.divisions import SHANDONG, divisions
from qilu.codes.errors import CodeError
from qilu.codes.normalize import normalize_code

FIELD = "uscc"
# GB 32100-2015 §4.2: digits and capitals without I, O, Z, S, V, valued 0..30 in this order.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# §4.3: weight of position i (1-based) is 3^(i-1) mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
# Σ cᵢ·3^(i-1) mod 31 is int(reversed code, base 34) mod 31, because 34 ≡ 3 (mod 31); int()
# reads letters A..U as 10..30, so our alphabet is first renamed to int()'s digits.
_TO_BASE34 = str.maketrans(ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTU")
_ALLOWED = frozenset(ALPHABET)

# Codes registered by a central authority carry 100000 where a division would be (e.g. the
# ministries' 11100000…).
CENTRAL = "100000"

# GB 11714-1997: organisation code check character, weights 3,7,9,10,5,8,4,2 mod 11, letters
# valued A=10..Z=35.
ORGANISATION_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# The allocation of registration-authority and organisation-type codes in force (国家标准委
# 统一社会信用代码赋码规则及其后增补): authority → {type: name}.
AUTHORITIES: dict[str, tuple[str, dict[str, str]]] = {
    "1": (
        "机构编制",
        {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
    ),
    "2": ("外交", {"1": "外国常驻新闻机构", "9": "其他"}),
    "3": (
        "司法行政",
        {
            "1": "律师执业机构",
            "2": "公证处",
            "3": "基层法律服务所",
            "4": "司法鉴定机构",
            "5": "仲裁委员会",
            "9": "其他",
        },
    ),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"}),
    "6": (
        "旅游",
        {
            "1": "外国旅游部门常驻代表机构",
            "2": "港澳台地区旅游部门常驻内地（大陆）代表机构",
            "9": "其他",
        },
    ),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商（市场监管）", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "N": (
        "农业",
        {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    ),
    "Y": ("其他", {"1": "其他"}),
}


class Uscc(NamedTuple):
    """A valid code and what it says about the organisation."""

    code: str
    authority: str
    organisation_type: str
    division_code: str
    division_name: str
    organisation_code: str
    warnings: tuple[str, ...] = ()


def check_character(first17: str) -> str:
    """The GB 32100 check character of 17 characters of the alphabet."""
    total = int(first17[::-1].translate(_TO_BASE34), 34) % 31
    return ALPHABET[(31 - total) % 31]


def organisation_check_character(body8: str) -> str:
    """The GB 11714 check character of an 8-character organisation code body."""
    total = sum(w * int(c, 36) for w, c in zip(ORGANISATION_WEIGHTS, body8, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def make_uscc(authority: str, organisation_type: str, division_code: str, body8: str) -> str:
    """Compose a valid code around an organisation code body (8 digits or capitals)."""
    first17 = authority + organisation_type + division_code + body8
    first17 += organisation_check_character(body8)
    return first17 + check_character(first17)


def parse_uscc(value: str) -> Uscc:
    """Validate a code as typed; raise `CodeError` naming the position and what was expected.

    A wrong GB 11714 check inside an otherwise valid code is a warning, not an error: such codes
    were issued and are in use, and the outer check character still guards against typos.
    """
    code = normalize_code(value)
    if len(code) != 18:
        raise CodeError(
            "uscc.length",
            f"统一社会信用代码应为 18 位，实为 {len(code)} 位",
            field=FIELD,
            expected=18,
            found=len(code),
        )
    for position, char in enumerate(code, start=1):
        if char not in _ALLOWED:
            raise CodeError(
                "uscc.character",
                f"统一社会信用代码第 {position} 位“{char}”不在代码字符集中"
                "（数字和除 I、O、Z、S、V 外的大写字母）",
                field=FIELD,
                position=position,
                found=char,
            )
    expected = check_character(code[:17])
    if code[17] != expected:
        raise CodeError(
            "uscc.check_character",
            f"统一社会信用代码第 18 位校验码应为 {expected}，实为 {code[17]}",
            field=FIELD,
            position=18,
            expected=expected,
            found=code[17],
        )
    authority = AUTHORITIES.get(code[0])
    if authority is None:
        raise CodeError(
            "uscc.authority",
            f"统一社会信用代码第 1 位登记管理部门代码“{code[0]}”未分配",
            field=FIELD,
            position=1,
            expected="".join(AUTHORITIES),
            found=code[0],
        )
    authority_name, types = authority
    type_name = types.get(code[1])
    if type_name is None:
        raise CodeError(
            "uscc.organisation_type",
            f"统一社会信用代码第 2 位机构类别代码“{code[1]}”不属于{authority_name}"
            f"（可用：{'、'.join(types)}）",
            field=FIELD,
            position=2,
            expected="".join(types),
            found=code[1],
        )
    table = divisions()
    division_code = code[2:8]
    province = table.province_of(division_code) if division_code.isdigit() else None
    if division_code == CENTRAL:  # registered by the central authority (国务院部门 and others)
        return Uscc(
            code=code,
            authority=authority_name,
            organisation_type=type_name,
            division_code=division_code,
            division_name="中央",
            organisation_code=code[8:17],
            warnings=_organisation_warnings(code),
        )
    if province is None:
        raise CodeError(
            "uscc.division",
            f"统一社会信用代码第 3-8 位登记管理机关行政区划码 {division_code} 无效",
            field=FIELD,
            position=3,
            found=division_code,
        )
    warnings: tuple[str, ...] = ()
    division_name = table.full_name(division_code)
    if province.code == SHANDONG and division_code not in table.by_code:
        warnings = (f"行政区划代码 {division_code} 不在现行 GB/T 2260 表中",)
    return Uscc(
        code=code,
        authority=authority_name,
        organisation_type=type_name,
        division_code=division_code,
        division_name=division_name,
        organisation_code=code[8:17],
        warnings=warnings + _organisation_warnings(code),
    )


def _organisation_warnings(code: str) -> tuple[str, ...]:
    expected = organisation_check_character(code[8:16])
    if code[16] == expected:
        return ()
    return (f"第 9-17 位组织机构代码的校验码应为 {expected}，实为 {code[16]}（GB 11714）",)
