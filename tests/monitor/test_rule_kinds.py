"""Rule kinds beyond a plain threshold (issue 15): rate of change, N of M, the AQI, a vehicle's
route corridor and 禁行区, and a station's own 警戒/保证 levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.errors import QiluError
from qilu.monitor import devices, dispatch, geo, jt808, rules, silences
from qilu.monitor.alarms import Evaluator
from qilu.monitor.bus import take
from qilu.monitor.ingest import Received
from qilu.monitor.models import Alarm, AlarmEvent, Device, Reading, Rule

START = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
JINAN, TAIAN = (36.651, 117.120), (36.200, 117.088)
FRAMES = count(1)


def register(session: Session, kind: str, protocol: str = "hj212", **extra: object) -> Device:
    rules.install(session)
    code = f"DEV-{next(FRAMES)}"
    spec = devices.DeviceSpec(protocol, code, kind, "设备", "370102", 60, **extra)  # type: ignore[arg-type]
    return devices.register(session, spec)


def feed(session: Session, device: Device, frames: list[dict[str, float]], step: timedelta) -> None:
    """Frames `step` apart, each a set of metrics about one moment."""
    rows = [
        {
            "device_id": device.id,
            "metric": metric,
            "observed_at": START + step * index,
            "value": value,
            "flag": "N",
            "frame_id": frame_id,
        }
        for index, values in enumerate(frames)
        for frame_id in [next(FRAMES)]
        for metric, value in values.items()
    ]
    Evaluator(session).readings(rows)
    session.flush()


def history(session: Session, device: Device, rule: str) -> list[tuple[str, int]]:
    return [
        (e.action, e.level)
        for e in session.scalars(
            select(AlarmEvent)
            .join(Alarm, Alarm.id == AlarmEvent.alarm_id)
            .where(Alarm.device_id == device.id, Alarm.rule_code == rule)
            .order_by(AlarmEvent.id)
        )
    ]


def test_a_river_rising_fast_alarms_by_its_rate(session: Session) -> None:
    station = register(session, "hydro_station", "sl651")
    levels = [27.0, 27.05, 27.2, 27.5, 27.5, 27.52]  # 10 minutes apart: +0.3, +0.9, +1.8 m/h
    feed(session, station, [{"Z": z} for z in levels], timedelta(minutes=10))
    assert history(session, station, "RIVER-RISE") == [
        ("opened", 3),  # 0.9 m/h: 黄
        ("escalated", 2),  # 1.8 m/h: 橙
        ("cleared", 2),  # level again: 0 m/h, under 0.5 less the 20 % margin
    ]


def test_n_of_m_opens_on_three_of_five_and_ignores_a_single_spike(session: Session) -> None:
    tank = register(session, "tank", "mqtt")
    spike = [30, 45, 30, 30, 30, 30]
    feed(session, tank, [{"temperature_c": t} for t in spike], timedelta(minutes=1))
    assert history(session, tank, "TANK-TEMP") == []
    other = register(session, "tank", "mqtt")
    temperatures = [45, 30, 45, 30, 45, 30, 30, 30, 30, 30]
    feed(session, other, [{"temperature_c": t} for t in temperatures], timedelta(minutes=1))
    # Opened on the fifth (3 of 5 past 40 °C), cleared on the tenth (none of the last five).
    assert history(session, other, "TANK-TEMP") == [("opened", 3), ("cleared", 3)]
    alarm = session.scalars(select(Alarm).where(Alarm.device_id == other.id)).one()
    assert alarm.opened_at == START + timedelta(minutes=4)
    assert alarm.cleared_at == START + timedelta(minutes=9)


def test_the_aqi_of_a_station_alarms_after_an_hour_of_heavy_pollution(session: Session) -> None:
    station = register(session, "air_station")
    hour = {"a34004-Avg": 300.0, "a34002-Avg": 100.0, "a21004-Avg": 50.0}  # PM2.5 → AQI 350
    feed(session, station, [hour, hour, {"a34004-Avg": 40.0}], timedelta(minutes=60))
    assert history(session, station, "AIR-AQI") == [("opened", 2), ("cleared", 2)]
    alarm = session.scalars(
        select(Alarm).where(Alarm.device_id == station.id, Alarm.rule_code == "AIR-AQI")
    ).one()
    assert alarm.value == 350 and alarm.opened_at == START + timedelta(hours=1)


def test_a_vehicle_off_its_route_or_in_a_closed_zone_alarms(session: Session) -> None:
    truck = register(session, "vehicle", "jt808", route=[JINAN, TAIAN])
    on_route = {"lat": 36.45, "lng": 117.105, "speed_kmh": 60}
    off_route = {"lat": 36.45, "lng": 117.35, "speed_kmh": 60}  # 0.244° east: about 22 km
    positions = [on_route, off_route, off_route, off_route, on_route]
    feed(session, truck, positions, timedelta(seconds=30))
    # Off for 60 s (the pending period) before it opens; back on the road, it clears.
    assert history(session, truck, "VEH-ROUTE") == [("opened", 1), ("cleared", 1)]
    # 0.244° × 111.2 km × cos 36.45°, less a little for the road's slant.
    assert geo.route_distance_km([JINAN, TAIAN], 36.45, 117.35) == pytest.approx(21.8, abs=0.1)

    zone = {"lat": 36.667, "lng": 117.015, "speed_kmh": 20}  # 济南老城区
    feed(session, truck, [zone, {"lat": 36.62, "lng": 117.11}], timedelta(minutes=10))
    assert history(session, truck, "VEH-ZONE") == [("opened", 2), ("cleared", 2)]


def test_the_terminals_own_alarm_bits_open_and_clear_alarms(session: Session) -> None:
    """JT/T 808 alarm bits are level flags repeated in every report: a set bit opens one alarm,
    a report without it clears it; bits no rule watches do nothing."""
    rules.install(session)
    spec = devices.DeviceSpec("jt808", "13800000808", "vehicle", "鲁A 危货", "370102", 30)
    truck = devices.register(session, spec)
    sos, fatigue, collision, antenna = 1 << 0, 1 << 2, 1 << 29, 1 << 5
    words = [antenna, sos, sos | fatigue, sos | fatigue, fatigue, collision, 0]
    for index, word in enumerate(words):
        body = jt808.location(lat=36.65, lng=117.1, speed_kmh=40, altitude_m=30, direction=0,
                              time=START + timedelta(seconds=30 * index), alarm=word)  # fmt: skip
        raw = jt808.encode(0x0200, truck.code, index, body)
        take(session, [Received("jt808", "t", raw, jt808.decode(raw), START)])
    session.flush()
    assert history(session, truck, "VEH-SOS") == [("opened", 1), ("cleared", 1)]
    assert history(session, truck, "VEH-FATIGUE") == [("opened", 3), ("cleared", 3)]
    assert history(session, truck, "VEH-CRASH") == [("opened", 1), ("cleared", 1)]
    assert history(session, truck, "VEH-SPEED") == []
    # The alarm's chart shows whether its bit was set, not the whole word.
    alarm = session.scalars(select(Alarm).where(Alarm.rule_code == "VEH-SOS")).one()
    rule = session.get_one(Rule, alarm.rule_id)
    readings = session.scalars(
        select(Reading)
        .where(Reading.device_id == truck.id, Reading.metric == "alarm_flags")
        .order_by(Reading.observed_at.desc())
    ).all()
    view = dispatch.AlarmView(alarm, truck, rule, list(readings), [], [], False, False)
    assert [value for _, value in dispatch.chart(view)["points"]] == [0, 1, 1, 1, 0, 0, 0]  # type: ignore[attr-defined]


def test_a_station_alarms_at_its_own_warning_level(session: Session) -> None:
    own = register(
        session, "hydro_station", "sl651", thresholds={"RIVER-LEVEL": {"yellow": 26.0, "red": 27.0}}
    )
    shared = register(session, "hydro_station", "sl651")
    for station in (own, shared):
        feed(session, station, [{"Z": 26.4}, {"Z": 27.1}], timedelta(minutes=5))
    assert history(session, own, "RIVER-LEVEL") == [("opened", 3), ("escalated", 1)]
    assert history(session, shared, "RIVER-LEVEL") == []  # 28.5 is the shipped 警戒 level


@pytest.mark.parametrize(
    ("kind", "protocol", "extra", "field"),
    [
        ("hydro_station", "sl651", {"thresholds": {"NO-SUCH": {"red": 1.0}}}, "thresholds"),
        ("hydro_station", "sl651", {"thresholds": {"RIVER-LEVEL": {"red": 1.0, "yellow": 2.0}}},
         "thresholds"),
        ("hydro_station", "sl651", {"thresholds": {"VEH-SPEED": {"red": 120.0}}}, "thresholds"),
        ("hydro_station", "sl651", {"route": [JINAN, TAIAN]}, "route"),
        ("vehicle", "jt808", {"route": [JINAN, (40.0, 116.4)]}, "route"),  # 北京
    ],
)  # fmt: skip
def test_a_devices_own_levels_and_route_are_checked(
    session: Session, kind: str, protocol: str, extra: dict[str, object], field: str
) -> None:
    with pytest.raises(QiluError) as refused:
        register(session, kind, protocol, **extra)
    assert refused.value.field == field


def test_rules_of_the_new_kinds_are_checked_when_loaded() -> None:
    base = {"code": "X-1", "name": "规则", "kinds": ["tank"], "metric": "t", "source": "默认值"}
    with pytest.raises(QiluError, match="n ≤ m"):
        rules.parse([{**base, "kind": "n_of_m", "n": 4, "m": 3, "levels": {"red": 1}}])
    with pytest.raises(QiluError, match="zones"):
        rules.parse([{**base, "kind": "geofence", "levels": {"orange": 1}}])
    with pytest.raises(QiluError, match="alarms"):
        rules.parse([{**base, "kind": "device_alarm", "alarms": ["sos"], "levels": {"red": 1}}])


def test_a_maintenance_window_holds_alarms_back_and_outlives_a_restart(session: Session) -> None:
    stack = register(session, "pollution_source")
    other = register(session, "pollution_source")
    silences.add(
        session, device=stack, division_code=None, rule_code="SRC-SO2-AVG",
        starts_at=START, ends_at=START + timedelta(minutes=30), reason="脱硫塔检修",
    )  # fmt: skip
    # Each feed is a new Evaluator, as after a restart: the window is read from the store.
    feed(session, stack, [{"a21026-Avg": 120.0}], timedelta(minutes=10))
    feed(session, other, [{"a21026-Avg": 120.0}], timedelta(minutes=10))
    assert history(session, stack, "SRC-SO2-AVG") == []
    assert history(session, other, "SRC-SO2-AVG") == [("opened", 2)]
    late = [{"a21026-Avg": 120.0}] * 4  # 0, 10, 20, 30 minutes: the last one past the window
    feed(session, stack, late, timedelta(minutes=10))
    assert history(session, stack, "SRC-SO2-AVG") == [("opened", 2)]
    alarm = session.scalars(select(Alarm).where(Alarm.device_id == stack.id)).one()
    assert alarm.opened_at == START + timedelta(minutes=30)


def test_a_division_wide_window_and_its_checks(session: Session) -> None:
    station = register(session, "hydro_station", "sl651")
    silences.add(
        session, device=None, division_code="370100", rule_code=None, starts_at=START,
        ends_at=START + timedelta(hours=2), reason="全市水文站标定",
    )  # fmt: skip
    feed(session, station, [{"Z": 31.0}], timedelta(minutes=5))  # 历下区 is in 济南市
    assert history(session, station, "RIVER-LEVEL") == []
    for given, field in [
        ({"device": station, "division_code": "370100"}, "device"),
        ({"device": None, "division_code": "110101"}, "division"),
        ({"device": station, "division_code": None, "rule_code": "NO-SUCH"}, "rule"),
        ({"device": station, "division_code": None, "ends_at": START - timedelta(hours=1)},
         "ends_at"),
        ({"device": station, "division_code": None, "reason": " "}, "reason"),
    ]:  # fmt: skip
        arguments = {
            "rule_code": None, "starts_at": START, "ends_at": START + timedelta(hours=1),
            "reason": "检修", **given,
        }  # fmt: skip
        with pytest.raises(QiluError) as refused:
            silences.add(session, **arguments)  # type: ignore[arg-type]
        assert refused.value.field == field
