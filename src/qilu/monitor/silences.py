"""Maintenance windows and silences: while one holds, no alarm opens for what it covers (a
device, every rule or one; or every device of a division). A device's own maintenance flag (HJ
212 `M`) already keeps its readings from alarming; a silence is the platform's side, for work
the device does not announce. Kept in the store, they outlive a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.divisions import code_prefix, divisions
from qilu.errors import QiluError
from qilu.monitor.models import Device, Rule, Silence

LONGEST = timedelta(days=30)


def add(
    session: Session,
    *,
    device: Device | None,
    division_code: str | None,
    rule_code: str | None,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    by: int | None = None,
) -> Silence:
    """A silence for a device or (with no device) a division, checked field by field."""
    if (device is None) == (division_code is None):
        raise QiluError("silence.scope", "请指定一台设备或一个行政区划（二选一）", field="device")
    if division_code is not None:
        division = divisions().get(division_code)
        if division is None or not division.is_current or not division_code.startswith("37"):
            raise QiluError(
                "silence.division", "行政区划代码须为山东省现行的区划", field="division"
            )
    if (
        rule_code is not None
        and session.scalars(select(Rule.id).where(Rule.code == rule_code)).first() is None
    ):
        raise QiluError("silence.rule", f"没有规则 {rule_code}", field="rule")
    if not starts_at < ends_at <= starts_at + LONGEST:
        raise QiluError("silence.period", "结束须晚于开始，且不超过 30 天", field="ends_at")
    text = reason.strip()
    if len(text) < 2 or len(text) > 200:
        raise QiluError("silence.reason", "请写明原因（2–200 字）", field="reason")
    silence = Silence(
        device_id=device.id if device else None, division_code=division_code,
        rule_code=rule_code, starts_at=starts_at, ends_at=ends_at, reason=text,
        created_by=by, created_at=datetime.now(UTC),
    )  # fmt: skip
    session.add(silence)
    session.flush()
    record(
        session,
        "monitor.silence_added",
        actor_person_id=by,
        subject=f"silence:{silence.id}",
        details={"device": silence.device_id, "division": division_code, "rule": rule_code,
                 "until": ends_at.isoformat()},
    )  # fmt: skip
    return silence


def current(session: Session, since: datetime) -> list[Silence]:
    """The silences that hold at some moment from `since` on."""
    return list(session.scalars(select(Silence).where(Silence.ends_at > since)))


def covers(silence: Silence, device: Device, rule_code: str, at: datetime) -> bool:
    if not silence.starts_at <= at < silence.ends_at:
        return False
    if silence.rule_code is not None and silence.rule_code != rule_code:
        return False
    if silence.device_id is not None:
        return silence.device_id == device.id
    return device.division_code.startswith(code_prefix(silence.division_code or ""))
