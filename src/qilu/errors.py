"""The one error type every layer raises: a stable machine code plus a Chinese message."""

from __future__ import annotations

from typing import Any


class QiluError(Exception):
    """A refusal the user can act on.

    `code` is stable and machine-readable (`id_number.check_digit`); `message` is Chinese and
    names the field and the reason; `details` carries structured facts (position, expected,
    found) for APIs and tests. HTTP status is the web layer's choice, not the rule's.
    """

    status_code = 400

    def __init__(self, code: str, message: str, *, field: str | None = None, **details: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return self.message


class NotFound(QiluError):
    status_code = 404


class ConfigurationError(QiluError):
    """The operator must change a setting (database URL, data folder, keys) before going on."""

    status_code = 500
