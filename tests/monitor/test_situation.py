"""The 应急指挥 map's data (issue 15): Shandong's 16 cities as offline GeoJSON, and the devices
of a duty officer's ground with their alarms and a vehicle's latest position."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.codes.divisions import divisions
from qilu.errors import NotFound, Refused
from qilu.identity import roles
from qilu.monitor import devices, dispatch, hj212, jt808, rules
from qilu.monitor.bus import take
from qilu.monitor.counties import county_at
from qilu.monitor.ingest import Received
from qilu.monitor.models import Alarm
from qilu.monitor.simulate import CITIES

from ..factories import make_person, make_staff


def test_the_vendored_map_holds_todays_136_counties_and_16_cities() -> None:
    text = resources.files("qilu").joinpath("static/vendor/echarts/shandong.json")
    geometry = json.loads(text.read_text(encoding="utf-8"))
    table = divisions()
    shandong = {
        d.code for d in table.by_code.values()
        if d.code.startswith("37") and d.level == "county" and d.is_current
    }  # fmt: skip
    assert {f["id"] for f in geometry["features"]} == shandong and len(shandong) == 136
    assert sorted(c["code"] for c in geometry["cities"]) == sorted(code for code, *_ in CITIES)
    for code, name, latitude, longitude in CITIES:  # each seat lies in one of its counties
        county = county_at(latitude, longitude)
        assert county is not None and table.by_code[county].parent == code, name


def test_a_position_finds_its_county() -> None:
    assert county_at(36.6614, 117.0204) == "370102"  # 泉城广场, 历下区
    assert county_at(36.0671, 120.3826) == "370202"  # 五四广场, 市南区
    assert county_at(37.8, 112.5) is None  # 太原, 山西
    assert county_at(117.0204, 36.6614) is None  # swapped


def test_the_map_shows_the_officers_ground_alarms_first(
    session: Session, vault: object, departments: None
) -> None:
    rules.install(session)
    now = datetime.now(UTC)
    stack = devices.register(
        session,
        devices.DeviceSpec("hj212", "MN-MAP-1", "pollution_source", "排口", "370102", 60,
                           None, 36.66, 117.08),
    )  # fmt: skip
    truck = devices.register(
        session, devices.DeviceSpec("jt808", "13912345678", "vehicle", "鲁A 车", "370102", 30)
    )
    elsewhere = devices.register(
        session,
        devices.DeviceSpec("hj212", "MN-MAP-2", "pollution_source", "青岛排口", "370202", 60,
                           None, 36.07, 120.38),
    )  # fmt: skip
    so2 = hj212.encode(
        cn="2051", mn="MN-MAP-1", st="31", pw="123456", qn=None, data_time=now,
        values={"a21026-Avg": 240.0}, flags={"a21026": "N"},
    )  # fmt: skip
    body = jt808.location(lat=36.67, lng=117.1, speed_kmh=50, altitude_m=30, direction=0, time=now)
    position = jt808.encode(0x0200, "13912345678", 1, body)
    swapped = jt808.location(lat=117.1, lng=36.67, speed_kmh=50, altitude_m=30, direction=0,
                             time=now)  # fmt: skip
    take(
        session,
        [
            Received("hj212", "t", so2, hj212.decode(so2), now),
            Received("jt808", "t", position, jt808.decode(position), now),
            # A later frame with latitude and longitude swapped: flagged, the truck stays put.
            Received("jt808", "t", b"", jt808.decode(jt808.encode(0x0200, "13912345678", 2,
                                                                  swapped)), now),
        ],
    )  # fmt: skip
    session.flush()
    officer = make_staff(
        session, make_person(session, vault, name="值班员"), "370102-emergency",
        "duty_officer",  # type: ignore[arg-type]
    )  # fmt: skip
    seen = dispatch.situation(session, roles.staff(session, officer.id))
    places = seen.places
    assert [(p.device_id, p.level) for p in places] == [(stack.id, 1), (truck.id, None)]
    assert (places[1].latitude, places[1].longitude) == (36.67, 117.1)
    assert elsewhere.id not in {p.device_id for p in places}
    resident = make_person(session, vault, name="居民")
    nobody = make_staff(session, resident, "370102-ecology", "approver")  # type: ignore[arg-type]
    assert seen.counties == {"370102": (1, 1)}
    assert dispatch.situation(session, roles.staff(session, nobody.id)).places == []


def test_a_vehicles_alarm_belongs_to_the_county_where_it_happened(
    session: Session, vault: object, departments: None
) -> None:
    """A 济南 truck speeding through 临沂's 兰山区: the alarm is 临沂's, whose duty officer
    sees it with the truck on the map and 兰山区 tinted, and handles it; 历下's duty officer
    (where the truck is registered) sees it too but may not act on it."""
    rules.install(session)
    start = datetime.now(UTC)
    truck = devices.register(
        session, devices.DeviceSpec("jt808", "13912345679", "vehicle", "鲁A 危货", "370102", 30)
    )
    frames = []
    for sequence, seconds in enumerate((0, 20, 40)):  # past VEH-SPEED's 30 s pending period
        at = start + timedelta(seconds=seconds)
        body = jt808.location(lat=35.05, lng=118.34, speed_kmh=125, altitude_m=60, direction=0,
                              time=at)  # fmt: skip
        frame = jt808.encode(0x0200, "13912345679", sequence, body)
        frames.append(Received("jt808", "t", frame, jt808.decode(frame), at))
    take(session, frames)
    session.flush()
    alarm = session.scalars(select(Alarm).where(Alarm.device_id == truck.id)).one()
    assert (alarm.rule_code, alarm.division_code, alarm.level) == ("VEH-SPEED", "371302", 1)
    linyi = make_staff(
        session, make_person(session, vault, name="临沂值班"), "371300-emergency",
        "duty_officer",  # type: ignore[arg-type]
    )  # fmt: skip
    seen = dispatch.situation(session, roles.staff(session, linyi.id))
    assert [(p.device_id, p.level) for p in seen.places] == [(truck.id, 1)]
    assert seen.counties == {"371302": (1, 1)}
    jinan = make_staff(
        session, make_person(session, vault, name="历下值班"), "370102-emergency",
        "duty_officer",  # type: ignore[arg-type]
    )  # fmt: skip
    home = roles.staff(session, jinan.id)
    assert dispatch.situation(session, home).counties == {"371302": (1, 1)}
    assert [a.id for a in dispatch.visible(session, home)] == [alarm.id]
    with pytest.raises(Refused):
        dispatch.act(session, home, alarm.id, "acknowledge", note="已电话核实")
    dispatch.act(session, roles.staff(session, linyi.id), alarm.id, "acknowledge", note="已核实")
    assert alarm.state == "acknowledged"
    elsewhere = make_staff(
        session, make_person(session, vault, name="青岛值班"), "370202-emergency",
        "duty_officer",  # type: ignore[arg-type]
    )  # fmt: skip
    assert dispatch.visible(session, roles.staff(session, elsewhere.id)) == []
    with pytest.raises(NotFound):
        dispatch.view(session, roles.staff(session, elsewhere.id), alarm.id)
