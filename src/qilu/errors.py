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


# pydantic's error types, said in Chinese (the English `msg` never reaches a person).
_REASONS = {
    "missing": "必填",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "int_from_float": "须为整数",
    "float_parsing": "须为数字",
    "float_type": "须为数字",
    "finite_number": "须为有限的数字",
    "decimal_parsing": "须为数字",
    "bool_parsing": "须为是或否",
    "bool_type": "须为是或否",
    "string_type": "须为文字",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "不能超过 {max_length} 个字符",
    "string_pattern_mismatch": "格式不对",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "不能大于 {le}",
    "list_type": "须为列表",
    "dict_type": "须为对象",
    "model_type": "须为对象",
    "model_attributes_type": "须为对象",
    "json_invalid": "不是有效的 JSON",
    "json_type": "不是有效的 JSON",
    "literal_error": "须为以下之一：{expected}",
    "enum": "须为以下之一：{expected}",
    "extra_forbidden": "不认识这个字段",
    "date_from_datetime_parsing": "须为日期（年-月-日）",
    "date_parsing": "须为日期（年-月-日）",
    "uuid_parsing": "格式不对",
}


def validation_problems(errors: list[Any], *, skip_location: int = 0) -> list[dict[str, str]]:
    """pydantic's errors as `{field, reason, type}`, the reason in Chinese (a model's own
    `ValueError` is written in Chinese and kept as it says). `skip_location`
    drops leading parts of the location (FastAPI's `body`, `query`, …)."""
    problems = []
    for error in errors:
        location = [str(part) for part in error["loc"][skip_location:]] or [
            str(part) for part in error["loc"]
        ]
        template = _REASONS.get(error["type"], "格式不对")
        try:
            reason = template.format(**(error.get("ctx") or {}))
        except (KeyError, IndexError):
            reason = template
        if error["type"] == "value_error":  # a model's own check: it says it in Chinese
            reason = str(error["msg"]).removeprefix("Value error, ")
        problems.append(
            {
                "field": ".".join(location) or "body",
                "reason": reason,
                "type": error["type"],
            }
        )
    return problems


class InvalidRequest(QiluError):
    """A request whose parameters or body do not have the documented shape."""

    status_code = 422

    def __init__(self, problems: list[dict[str, str]]):
        first = problems[0] if problems else {"field": "", "reason": "格式不对"}
        super().__init__(
            "request.invalid",
            f"{first['field']}：{first['reason']}",
            field=first["field"],
            problems=problems,
        )
