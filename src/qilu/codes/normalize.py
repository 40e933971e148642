"""Clean up what people really type: full-width characters, lower case, stray spaces."""

from __future__ import annotations

# Full-width ASCII (U+FF01..U+FF5E) maps to ASCII by a fixed offset; the ideographic space too.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_FULL_WIDTH[0x3000] = 0x20


def normalize_code(value: str) -> str:
    """Half-width, upper case, no whitespace anywhere (people group digits with spaces)."""
    return "".join(value.translate(_FULL_WIDTH).split()).upper()
