"""The demo's monitoring (issue 15): its devices report through the real codecs and store, and
the duty officer of 历下区 finds the alarms on the wall."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.db import make_engine, upgrade
from qilu.demo.monitoring import live_fleet, sample_monitoring
from qilu.identity import roles
from qilu.monitor import dispatch, simulate
from qilu.monitor.bus import LocalBus
from qilu.monitor.listen import Listener
from qilu.monitor.models import Alarm, AlarmEvent, RawFrame
from qilu.settings import Settings

from ..factories import make_person, make_staff
from ..monitor.test_listen import in_own_loop


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


def test_the_demos_live_fleet_keeps_its_story_going(empty_store: Settings) -> None:
    """While `qilu demo` runs its devices keep reporting: the alarms the duty officer finds
    stay open (the stack's SO2 stays red, the river above its warning level) instead of
    clearing with the first ordinary reading."""
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        assert sample_monitoring(session) == 2
        simulate.register(session, live_fleet())

    async def run() -> None:
        listener = Listener(
            LocalBus(engine), {"hj212": 0, "jt808": 0, "sl651": 0}, host="127.0.0.1"
        )
        ports = await listener.start()
        try:
            sims = live_fleet()
            await simulate.Simulator(
                sims, ports, seconds=3, rate=len(sims) * 2, incident_after=60, ramp_seconds=0.2
            ).run()
        finally:
            await listener.stop()

    in_own_loop(run())
    with Session(engine) as session:
        frames = session.scalars(select(RawFrame.ok)).all()
        assert len(frames) > 7 + len(live_fleet()) and all(frames)
        active = session.execute(
            select(Alarm.rule_code, Alarm.level).where(Alarm.cleared_at.is_(None))
        ).all()
        assert sorted(active) == [("RIVER-LEVEL", 2), ("SRC-SO2-AVG", 1)]
