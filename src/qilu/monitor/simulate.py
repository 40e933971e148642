"""`qilu monitor simulate`: the synthetic province's devices, talking to the listeners over the
real protocols and TCP (MQTT through the broker), with scripted incidents.

The fleet is made from Shandong's 16 cities: 两客一危 vehicles driving between two of them
(JT/T 808, registering and authenticating first, as a terminal does), polluters under online
monitoring and air stations (HJ 212 minute data), hydrological stations on rivers (SL 651
timed reports) and tanks at chemical parks (MQTT JSON). Each device keeps one connection and
waits for the platform's answer to each frame before the next, as real ones do. The scripted
incidents start `incident_after` seconds in: a truck speeding, another leaving its route, a
tank past its high-high level, a river past its warning level, PM2.5 far above the standard, a
stack's SO2 spiking and another stack going silent.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from qilu.monitor import devices, hj212, jt808, mqtt, sl651
from qilu.monitor.models import Device

City = tuple[str, str, float, float]  # division code, name, latitude, longitude
# The 16 cities' seats (WGS-84): where vehicles drive between and devices are placed around.
CITIES: tuple[City, ...] = (
    ("370100", "济南", 36.651, 117.120), ("370200", "青岛", 36.067, 120.383),
    ("370300", "淄博", 36.813, 118.055), ("370400", "枣庄", 34.810, 117.323),
    ("370500", "东营", 37.434, 118.675), ("370600", "烟台", 37.464, 121.448),
    ("370700", "潍坊", 36.707, 119.162), ("370800", "济宁", 35.415, 116.587),
    ("370900", "泰安", 36.200, 117.088), ("371000", "威海", 37.513, 122.120),
    ("371100", "日照", 35.417, 119.527), ("371300", "临沂", 35.105, 118.356),
    ("371400", "德州", 37.436, 116.359), ("371500", "聊城", 36.457, 115.985),
    ("371600", "滨州", 37.382, 117.971), ("371700", "菏泽", 35.233, 115.481),
)  # fmt: skip
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSU"
INCIDENTS = {
    ("vehicle", 0): "超速行驶",
    ("vehicle", 1): "偏离路线",
    ("tank", 0): "储罐液位超高高限",
    ("hydro_station", 0): "河道水位超警戒",
    ("air_station", 0): "PM2.5 严重超标",
    ("pollution_source", 1): "二氧化硫排放超标",
    ("pollution_source", 0): "设备离线",
}


@dataclass(frozen=True)
class SimDevice:
    protocol: str
    code: str
    kind: str
    name: str
    division: str
    interval: int  # seconds between its reports when the run sets no rate
    latitude: float
    longitude: float
    index: int  # its number among its kind: index 0 and 1 carry the incidents
    route: tuple[tuple[float, float], tuple[float, float]] | None = None  # vehicles
    from_start: bool = False  # its incident is under way when the run starts

    @property
    def incident(self) -> str | None:
        return INCIDENTS.get((self.kind, self.index))


def fleet(
    *,
    vehicles: int = 70,
    sources: int = 15,
    air: int = 5,
    hydro: int = 6,
    tanks: int = 4,
    home: str | None = None,
) -> list[SimDevice]:
    """The same fleet every time for the same sizes (codes, places, routes): spread over the
    16 cities, or, with `home` (a county of Shandong), all registered there, around its
    city's seat, vehicles setting out from it."""
    rng = random.Random(15)
    out: list[SimDevice] = []
    cities, series = CITIES, "0" if home is None else "1"  # a county's fleet has codes of its own
    if home is not None:
        seat = next(c for c in CITIES if c[0] == home[:4] + "00")
        cities = tuple((home, seat[1], seat[2], seat[3]) for _ in CITIES)
        routes = tuple(c for c in CITIES if c != seat)

    def near(city: City, spread: float) -> tuple[float, float]:
        return (
            round(city[2] + rng.uniform(-spread, spread), 5),
            round(city[3] + rng.uniform(-spread, spread), 5),
        )

    for n in range(vehicles):
        start, end = cities[n % 16], CITIES[(n * 7 + 3) % 16]
        if home is not None:
            end = routes[n % len(routes)]
        elif start == end:
            end = CITIES[(n + 1) % 16]
        plate = f"鲁{PLATE_LETTERS[n % 16]}·D{n:05d}"
        out.append(
            SimDevice("jt808", f"139{series}{n:07d}", "vehicle", f"{plate} 危化品运输车",
                      start[0], 30, start[2], start[3], n,
                      ((start[2], start[3]), (end[2], end[3])))
        )  # fmt: skip
    # Stationary devices: how many, protocol, code and name (formatted with the city's code
    # and name and the device's number n), kind, interval, spread (°), step between cities.
    hydro_code = "0038{n:06d}" if home is not None else "0037{n:06d}"
    stationary = (
        (sources, "hj212", "88{code}{n:016d}", "{city}重点排污单位 {m} 号排口",
         "pollution_source", 60, 0.2, 1),
        (air, "hj212", "99{code}{n:016d}", "{city}空气质量监测站 {m}", "air_station", 60, 0.1, 1),
        (hydro, "sl651", hydro_code, "{city}河道水位站 {m}", "hydro_station", 300, 0.3, 1),
        (tanks, "mqtt", "TANK-{code}-{n:04d}", "{city}化工园区 {m} 号储罐", "tank", 10, 0.3, 5),
    )  # fmt: skip
    for count, protocol, code, name, kind, interval, spread, step in stationary:
        for n in range(count):
            city = cities[(n * step) % 16]
            lat, lng = near(city, spread)
            given = {"code": city[0], "city": city[1], "n": n, "m": n + 1}
            out.append(
                SimDevice(protocol, code.format(**given), kind, name.format(**given), city[0],
                          interval, lat, lng, n)
            )  # fmt: skip
    return out


def register(session: Session, sims: list[SimDevice]) -> int:
    """Register the fleet's devices the store lacks; returns how many were added."""
    keys = {(d.protocol, d.code) for d in sims}
    have: set[tuple[str, str]] = set()
    listed = list(keys)
    for start in range(0, len(listed), 500):
        chunk = listed[start : start + 500]
        have.update(
            session.execute(
                select(Device.protocol, Device.code).where(
                    tuple_(Device.protocol, Device.code).in_(chunk)
                )
            )
        )
    added = 0
    for sim in sims:
        if (sim.protocol, sim.code) in have:
            continue
        devices.register(
            session,
            devices.DeviceSpec(
                sim.protocol, sim.code, sim.kind, sim.name, sim.division, sim.interval,
                None, sim.latitude, sim.longitude, route=list(sim.route) if sim.route else None,
            ),
        )  # fmt: skip
        added += 1
    return added


def frame(sim: SimDevice, elapsed: float, serial: int, incident: bool) -> bytes:
    """What the device sends `elapsed` seconds into the run (an incident, once it is on)."""
    now = datetime.now(UTC)
    wobble = math.sin(elapsed / 30 + sim.index)
    if sim.kind == "vehicle":
        lat, lng, speed = position(sim, elapsed)
        if incident and sim.index == 0:
            speed = 125.0
        if incident and sim.index == 1:
            lat += 0.25  # 25 km off the road
        body = jt808.location(
            lat=lat, lng=lng, speed_kmh=speed, altitude_m=40, direction=90, time=now
        )
        return jt808.encode(0x0200, sim.code, serial, body)
    if sim.kind in ("pollution_source", "air_station"):
        if sim.kind == "air_station":
            pm25 = 180.0 if incident and sim.index == 0 else 40 + 15 * wobble
            values = {"a34004-Avg": pm25, "a34002-Avg": pm25 * 1.6}
        else:
            so2 = 212.0 if incident and sim.index == 1 else 20 + 5 * wobble
            values = {"a21026-Avg": so2, "a21002-Avg": 30 + 10 * wobble}
        flags = {metric.rpartition("-")[0]: "N" for metric in values}
        return hj212.encode(
            cn="2051", mn=sim.code, st="22" if sim.kind == "air_station" else "31",
            pw="123456", qn=None, data_time=now, values=values, flags=flags, ack=True,
        )  # fmt: skip
    if sim.kind == "hydro_station":
        # Rivers move slowly: 0.3 m over hours, well under the rate rule.
        level = 29.8 if incident and sim.index == 0 else 27.0 + 0.3 * math.sin(elapsed / 3600)
        if sim.index % 2:  # every other station speaks SL 651's ASCII encoding
            return sl651.encode_ascii(
                centre=1, station=sim.code, password="1234", function=0x32,
                serial=serial, sent=now, station_class="H", observed=now,
                values={"Z": f"{level:.3f}", "VT": "12.40"},
            )  # fmt: skip
        return sl651.encode(
            centre=1, station=sim.code, password="1234", function=0x32,
            serial=serial, sent=now, station_class="H", observed=now,
            values={0x39: (level, 4, 3), 0x38: (12.4, 2, 2)},
        )  # fmt: skip
    level = min(97.0, 80 + elapsed / 2) if incident and sim.index == 0 else 60 + 5 * wobble
    payload = {
        "time": now.isoformat(),
        "values": {
            "level_pct": round(level, 2),
            "temperature_c": round(25 + 2 * wobble, 2),
            "pressure_kpa": round(101 + wobble, 2),
            "gas_lel_pct": 0.0,
        },
    }
    return json.dumps(payload).encode()


def position(sim: SimDevice, elapsed: float) -> tuple[float, float, float]:
    """Where the vehicle is on its route, driving there and back at 55–78 km/h (under the
    80 km/h limit)."""
    assert sim.route is not None
    (lat1, lng1), (lat2, lng2) = sim.route
    length_km = math.hypot((lat2 - lat1) * 111, (lng2 - lng1) * 111 * math.cos(math.radians(lat1)))
    speed = 55 + (sim.index * 7) % 24
    travelled = (elapsed * speed / 3600 / max(length_km, 1) + sim.index / 97) % 2
    fraction = travelled if travelled <= 1 else 2 - travelled
    return lat1 + (lat2 - lat1) * fraction, lng1 + (lng2 - lng1) * fraction, float(speed)


@dataclass
class SimStats:
    sent: Counter[str] = field(default_factory=Counter)  # by protocol
    answered: int = 0
    unanswered: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, send → answer
    connections: int = 0  # made in all
    connected: int = 0  # open now
    peak_connected: int = 0
    failed_connections: int = 0

    def p(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


class Simulator:
    """Runs the fleet against listeners at `host` on `ports` for `seconds`: each device at
    its own interval, or all together at `rate` frames/s."""

    def __init__(
        self,
        sims: list[SimDevice],
        ports: dict[str, int],
        *,
        host: str = "127.0.0.1",
        mqtt_broker: str = "",
        seconds: float = 60,
        rate: float | None = None,
        incident_after: float | None = 60,
        answer_timeout: float = 10,
        ramp_seconds: float = 5,
    ):
        self.sims, self.ports, self.host, self.mqtt_broker = sims, ports, host, mqtt_broker
        self.seconds, self.rate, self.incident_after = seconds, rate, incident_after
        self.answer_timeout, self.ramp_seconds = answer_timeout, ramp_seconds
        self.stats = SimStats()
        self._started = 0.0

    def _period(self, sim: SimDevice) -> float:
        return len(self.sims) / self.rate if self.rate else float(sim.interval)

    def _incident(self, sim: SimDevice, elapsed: float) -> bool:
        return (
            self.incident_after is not None
            and sim.incident is not None
            and (sim.from_start or elapsed >= self.incident_after)
        )

    async def run(self) -> SimStats:
        self._started = time.monotonic()
        tcp = [s for s in self.sims if s.protocol != "mqtt" and s.protocol in self.ports]
        tanks = [s for s in self.sims if s.protocol == "mqtt"]
        work = [self._device(sim, n * self.ramp_seconds / max(len(tcp), 1)) for n, sim in
                enumerate(tcp)]  # fmt: skip
        if tanks and self.mqtt_broker:
            work.append(self._tanks(tanks))
        await asyncio.gather(*work)
        return self.stats

    async def _device(self, sim: SimDevice, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            reader, writer = await asyncio.open_connection(self.host, self.ports[sim.protocol])
        except OSError:
            self.stats.failed_connections += 1
            return
        self.stats.connections += 1
        self.stats.connected += 1
        self.stats.peak_connected = max(self.stats.peak_connected, self.stats.connected)
        period, serial = self._period(sim), 0
        next_at = time.monotonic() + random.uniform(0, period)
        try:
            if sim.protocol == "jt808" and not await self._join(sim, reader, writer):
                return
            end = self._started + self.seconds
            while next_at < end and time.monotonic() < end:  # behind schedule: stop at the end
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += period
                elapsed = time.monotonic() - self._started
                if self._incident(sim, elapsed) and sim.incident == "设备离线":
                    return
                serial = (serial + 1) & 0xFFFF
                await self._send(
                    sim, reader, writer, frame(sim, elapsed, serial, self._incident(sim, elapsed))
                )
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self.stats.connected -= 1
            writer.close()

    async def _join(
        self, sim: SimDevice, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """0x0100 registration, then 0x0102 authentication with the code it was given."""
        body = b"\x00\x25\x00\x00" + b"QILU\x00" + b"SIM-808".ljust(20, b"\x00")
        body += sim.code[-7:].encode().ljust(7, b"\x00") + b"\x02" + sim.name[:2].encode("gbk")
        answer = await self._send(sim, reader, writer, jt808.encode(0x0100, sim.code, 0, body))
        if not answer:
            return False
        reply = jt808.unescape(answer[1:-1])
        if reply[:2] != b"\x81\x00" or reply[14] != 0:
            return False
        auth = reply[15:-1]
        return bool(await self._send(sim, reader, writer, jt808.encode(0x0102, sim.code, 1, auth)))

    async def _send(
        self,
        sim: SimDevice,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        data: bytes,
    ) -> bytes:
        sent = time.monotonic()
        writer.write(data)
        await writer.drain()
        self.stats.sent[sim.protocol] += 1
        try:
            answer = await asyncio.wait_for(reader.read(4096), self.answer_timeout)
        except TimeoutError:
            self.stats.unanswered += 1
            return b""
        if not answer:
            raise ConnectionError("closed by the platform")
        self.stats.answered += 1
        if len(self.stats.latencies) < 1_000_000:
            self.stats.latencies.append(time.monotonic() - sent)
        return answer

    async def _tanks(self, tanks: list[SimDevice]) -> None:
        """Tank-farm gateways publish through the broker (QoS 1: the broker acknowledges)."""
        host, _, port = self.mqtt_broker.rpartition(":")
        async with aiomqtt.Client(host, int(port)) as client:
            period = min(self._period(t) for t in tanks)
            while (elapsed := time.monotonic() - self._started) < self.seconds:
                for tank in tanks:
                    payload = frame(tank, elapsed, 0, self._incident(tank, elapsed))
                    await client.publish(mqtt.TOPIC_PREFIX + tank.code, payload, qos=1)
                    self.stats.sent["mqtt"] += 1
                await asyncio.sleep(period)
