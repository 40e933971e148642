"""Rules and alarms (issue 15): one alarm per problem, levels moving in place, no flapping, a
pending period, invalid data ignored, silence noticed, and two racing readings opening one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.db import make_engine, upgrade
from qilu.errors import QiluError
from qilu.monitor import devices, rules
from qilu.monitor.alarms import Evaluator
from qilu.monitor.models import Alarm, AlarmEvent, Device, Rule
from qilu.settings import Settings

START = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def stack(session: Session, kind: str = "pollution_source", code: str = "MN-1") -> Device:
    rules.install(session)
    spec = devices.DeviceSpec("hj212", code, kind, "1号排口", "370102", 60)
    return devices.register(session, spec)


def feed(session: Session, device: Device, metric: str, values: list[Any]) -> Evaluator:
    """Readings one minute apart; a value may be (value, flag)."""
    evaluator = Evaluator(session)
    rows = []
    for minute, item in enumerate(values):
        value, flag = item if isinstance(item, tuple) else (item, "N")
        rows.append(
            {
                "device_id": device.id,
                "metric": metric,
                "observed_at": START + timedelta(minutes=minute),
                "value": value,
                "flag": flag,
                "frame_id": minute,
            }
        )
    evaluator.readings(rows)
    session.flush()
    return evaluator


def history(session: Session, device: Device) -> list[tuple[str, int]]:
    return [
        (e.action, e.level)
        for e in session.scalars(
            select(AlarmEvent)
            .join(Alarm, Alarm.id == AlarmEvent.alarm_id)
            .where(Alarm.device_id == device.id)
            .order_by(AlarmEvent.id)
        )
    ]


def test_an_alarm_opens_moves_in_place_and_clears_past_the_hysteresis(session: Session) -> None:
    device = stack(session)
    # SO2: blue 35, yellow 50, orange 100, red 200; clears below 35 − 10 % = 31.5.
    feed(session, device, "a21026-Avg", [30, 36, 60, 250, 40, 33, 31, 36])
    assert history(session, device) == [
        ("opened", 4),
        ("escalated", 3),
        ("escalated", 1),
        ("deescalated", 4),
        ("cleared", 4),
        ("opened", 4),  # a new alarm: the cleared one is not reopened
    ]
    alarms = session.scalars(select(Alarm).where(Alarm.device_id == device.id)).all()
    assert len(alarms) == 2 and alarms[0].cleared_at is not None and alarms[1].cleared_at is None
    assert alarms[0].value == 36 and alarms[0].last_value == 31


def test_a_value_hovering_at_the_limit_opens_one_alarm_and_does_not_flap(
    session: Session,
) -> None:
    device = stack(session)
    feed(session, device, "a21026-Avg", [34.9, 35.1] * 20)
    assert history(session, device) == [("opened", 4)]


def test_data_the_device_marked_invalid_never_alarms(session: Session) -> None:
    device = stack(session)
    feed(session, device, "a21026-Avg", [(500, "M"), (500, "C"), (500, "D"), (500, "B")])
    assert history(session, device) == []
    feed(session, device, "a21026-Avg", [(500, "T")])  # 超测量上限 is a real high value
    assert history(session, device) == [("opened", 1)]


def test_a_pending_period_must_hold_before_an_alarm_opens(session: Session) -> None:
    """PM2.5 at an air station: 60 µg/m³ for three hours (one reading an hour here)."""
    device = stack(session, "air_station", "AIR-1")
    evaluator = Evaluator(session)
    hours = [70, 70, 50, 70, 70, 70, 70]  # the dip at hour 2 starts the count again
    rows = [
        {
            "device_id": device.id,
            "metric": "a34004-Avg",
            "observed_at": START + timedelta(hours=hour),
            "value": value,
            "flag": "N",
            "frame_id": hour,
        }
        for hour, value in enumerate(hours)
    ]
    evaluator.readings(rows)
    [alarm] = evaluator.outcome.opened
    assert alarm.opened_at == START + timedelta(hours=6)  # hour 3 + three hours


def test_a_silent_device_gets_a_no_data_alarm_that_its_next_reading_clears(
    session: Session,
) -> None:
    device = stack(session)
    device.registered_at = START - timedelta(minutes=2)
    assert Evaluator(session).silent(START).opened == []  # two intervals: not yet
    [alarm] = Evaluator(session).silent(START + timedelta(minutes=2)).opened
    assert alarm.rule_code == "NO-DATA" and alarm.level == 4
    assert Evaluator(session).silent(START + timedelta(minutes=9)).opened == []  # still one
    cleared = feed(session, device, "a21026-Avg", [10]).outcome.cleared
    assert [a.id for a in cleared] == [alarm.id]


def test_rules_are_versioned_and_checked(session: Session) -> None:
    assert rules.install(session) == len(rules.shipped())
    assert rules.install(session) == 0  # unchanged: nothing new
    changed = [
        s.model_copy(update={"levels": {"blue": 30, "red": 200}}) if s.code == "SRC-SO2-AVG" else s
        for s in rules.shipped()
    ]
    assert rules.install(session, changed) == 1
    versions = session.execute(
        select(Rule.version, Rule.is_current).where(Rule.code == "SRC-SO2-AVG").order_by(Rule.id)
    ).all()
    assert [tuple(v) for v in versions] == [(1, False), (2, True)]
    # What `qilu monitor listen` does at start: add what is missing, keep the province's own.
    assert rules.install(session, replace=False) == 0
    bad = [
        ([{"code": "X"}], "monitor.rules"),
        ([{**rules.shipped()[0].model_dump(), "levels": {"red": 10, "blue": 50}}], "monitor.rules"),
        ([{**rules.shipped()[0].model_dump(), "kinds": ["ufo"]}], "monitor.rules"),
    ]
    for raw, code in bad:
        with pytest.raises(QiluError) as refused:
            rules.parse(raw)
        assert refused.value.code == code and "第 1 条规则" in refused.value.message


def test_two_readings_racing_for_one_alarm_open_one(empty_store: Settings) -> None:
    """Two writers evaluate the same over-limit reading at once: on PostgreSQL both look, find
    no alarm, and insert; the store's unique index lets one through and the other takes that
    one. (SQLite's writers queue for the database, so the second finds the first's alarm.)"""
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        device_id = stack(session).id
    racing = engine.dialect.name == "postgresql"
    barrier, outcomes = threading.Barrier(2), []

    def writer() -> None:
        with Session(engine) as session, session.begin():
            device = session.get_one(Device, device_id)
            evaluator = Evaluator(session)
            evaluator._active(device.id, "SRC-SO2-AVG")  # both look before either writes
            if racing:
                barrier.wait(10)
            feed_rows = [
                {
                    "device_id": device.id,
                    "metric": "a21026-Avg",
                    "observed_at": START,
                    "value": 80.0,
                    "flag": "N",
                    "frame_id": 1,
                }
            ]
            outcomes.append(len(evaluator.readings(feed_rows).opened))

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Alarm)) == 1
    assert sorted(outcomes) == [0, 1]
    engine.dispose()
