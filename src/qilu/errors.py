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
    # A refusal that has left a trail (an audit entry, a failure counter) keeps it: the unit of
    # work commits what was written before the refusal instead of rolling it back.
    keeps_trail = False

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

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry (an authentication challenge, say)."""
        return {}

    def __str__(self) -> str:
        return self.message


class NotFound(QiluError):
    status_code = 404


class Refused(QiluError):
    """Authentication or authorisation refused; what was recorded about the attempt stays."""

    status_code = 403
    keeps_trail = True


class ConfigurationError(QiluError):
    """The operator must change a setting (database URL, data folder, keys) before going on."""

    status_code = 500
