"""The demo's monitoring (issue 15): its devices report through the real codecs and store, and
the duty officer of 历下区 finds the alarms on the wall."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.demo.monitoring import sample_monitoring
from qilu.identity import roles
from qilu.monitor import dispatch
from qilu.monitor.models import Alarm, AlarmEvent, RawFrame

from ..factories import make_person, make_staff


def test_the_duty_officer_finds_the_demos_alarms(
    session: Session, vault: object, departments: None
) -> None:
    assert sample_monitoring(session) == 2
    assert session.scalars(select(RawFrame.ok)).all() == [True] * 7  # every frame decoded
    officer = make_staff(
        session,
        make_person(session, vault, name="值班员"),
        "370102-emergency",
        "duty_officer",  # type: ignore[arg-type]
    )
    wall = dispatch.visible(session, roles.staff(session, officer.id))
    assert [(a.rule_code, a.level) for a in wall] == [("SRC-SO2-AVG", 1), ("RIVER-LEVEL", 2)]
    so2 = wall[0]
    climbed = session.scalars(
        select(AlarmEvent.action).where(AlarmEvent.alarm_id == so2.id).order_by(AlarmEvent.id)
    ).all()
    assert climbed == ["opened", "escalated", "escalated"]  # 蓝 → 黄 → 红
    active = session.scalars(select(Alarm.id).where(Alarm.cleared_at.is_(None))).all()
    assert set(active) == {a.id for a in wall}
