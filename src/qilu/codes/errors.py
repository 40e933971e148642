"""The error raised for a malformed code, with where and what exactly is wrong."""

from __future__ import annotations

from typing import Any

from qilu.errors import QiluError


class CodeError(QiluError):
    """A code that is not valid: `details` holds position (1-based), expected and found."""

    def __init__(self, code: str, message: str, *, field: str, **details: Any):
        super().__init__(code, message, field=field, **details)
