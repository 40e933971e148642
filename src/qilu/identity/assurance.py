"""Assurance levels (the `acr` of our tokens) and the rule that sensitive actions need a recent,
strong enough authentication.

2: self-declared; 3: name and ID number matched against the population register; 4: with a second
factor (our stand-in for a face match); 5: certificate or in person, never reached online.
A sensitive action needs an authentication younger than `FRESH_FOR`; a high-risk one (changing an
enterprise's legal representative, granting sensitive data) needs level 4 as well.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qilu.errors import QiluError

LEVELS = {2: "自主声明", 3: "实名核验", 4: "两步验证", 5: "证书或现场核验"}
HIGH_RISK = 4
HIGHEST_ONLINE = 4
FRESH_FOR = timedelta(minutes=10)


class StepUpRequired(QiluError):
    """The holder must authenticate again (and perhaps more strongly) before this action.

    Pages answer with the confirmation page; APIs with an RFC 9470 challenge."""

    status_code = 401

    def __init__(self, level: int, *, max_age: int | None = None):
        name = LEVELS.get(level, str(level))
        super().__init__(
            "auth.step_up",
            f"此操作需要重新验证身份（安全级别 {level}：{name}）",
            level=level,
            max_age=max_age,
        )
        self.level = level
        self.max_age = max_age

    def headers(self) -> dict[str, str]:
        """RFC 9470 §3: tell a bearer-token caller what authentication to come back with."""
        challenge = (
            'Bearer error="insufficient_user_authentication", '
            'error_description="A stronger or more recent authentication is required", '
            f'acr_values="{self.level}"'
        )
        if self.max_age is not None:
            challenge += f', max_age="{self.max_age}"'
        return {"WWW-Authenticate": challenge}


def require(
    level: int,
    *,
    assurance: int,
    authenticated_at: datetime,
    fresh_for: timedelta | None = FRESH_FOR,
    now: datetime | None = None,
) -> None:
    """Refuse with `StepUpRequired` unless the authentication is strong and recent enough."""
    moment = now or datetime.now(UTC)
    stale = fresh_for is not None and authenticated_at + fresh_for <= moment
    if assurance < level or stale:
        max_age = int(fresh_for.total_seconds()) if fresh_for is not None else None
        raise StepUpRequired(level, max_age=max_age)
