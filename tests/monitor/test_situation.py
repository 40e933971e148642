"""The 应急指挥 map's data (issue 15): Shandong's 16 cities as offline GeoJSON, and the devices
of a duty officer's ground with their alarms and a vehicle's latest position."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources

from sqlalchemy.orm import Session

from qilu.identity import roles
from qilu.monitor import devices, dispatch, geo, hj212, jt808, rules
from qilu.monitor.bus import take
from qilu.monitor.ingest import Received
from qilu.monitor.simulate import CITIES

from ..factories import make_person, make_staff


def test_the_vendored_map_holds_the_16_cities_each_around_its_seat() -> None:
    text = resources.files("qilu").joinpath("static/vendor/echarts/shandong-cities.json")
    cities = {f["id"]: f for f in json.loads(text.read_text(encoding="utf-8"))["features"]}
    assert sorted(cities) == sorted(code for code, *_ in CITIES)  # 莱芜 (371200) is 济南's now
    for code, name, latitude, longitude in CITIES:
        polygons = cities[code]["geometry"]["coordinates"]
        rings = [[(lat, lng) for lng, lat in polygon[0]] for polygon in polygons]
        assert any(geo.inside(ring, latitude, longitude) for ring in rings), name
        assert cities[code]["properties"]["name"] == name + "市"


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
    places = dispatch.situation(session, roles.staff(session, officer.id))
    assert [(p.device_id, p.level) for p in places] == [(stack.id, 1), (truck.id, None)]
    assert (places[1].latitude, places[1].longitude) == (36.67, 117.1)
    assert elsewhere.id not in {p.device_id for p in places}
    resident = make_person(session, vault, name="居民")
    nobody = make_staff(session, resident, "370102-ecology", "approver")  # type: ignore[arg-type]
    assert dispatch.situation(session, roles.staff(session, nobody.id)) == []
