"""Masking (脱敏) of personal values a grant does not give in clear, after GB/T 35273's
examples: an ID number keeps its region and its last four digits (370102********1234), a phone
number its first three and last four, a name its first character, a date its year; sensitive
personal values (health, say) show nothing."""

from __future__ import annotations

from typing import Any

from qilu.codes.idcard import mask_id_number
from qilu.data.catalog import FieldSpec
from qilu.pii import mask_phone

HIDDEN = "***"


def mask(field: FieldSpec, value: Any) -> Any:
    """What a consumer without clear-text rights sees of `value`; None stays None."""
    if value is None:
        return None
    if field.type == "id_number":
        return mask_id_number(str(value))
    if field.sensitivity == "sensitive_personal":  # a diagnosis leaks from its first character
        return HIDDEN
    if field.type == "date":
        return f"{str(value)[:4]}-**-**"
    if field.type == "string":
        return _mask_text(str(value))
    return HIDDEN  # a number, a yes/no or a category says everything or nothing


def _mask_text(text: str) -> str:
    if text.isdigit() and len(text) >= 7:  # a phone or another number: keep its ends
        return mask_phone(text)
    if len(text) <= 1:
        return "*"
    if len(text) <= 4:  # a name: the family name stays
        return text[0] + "*" * (len(text) - 1)
    keep = len(text) // 4  # an address or free text: its start and end
    return text[:keep] + "*" * (len(text) - 2 * keep) + text[-keep:]
