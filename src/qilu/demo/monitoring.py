"""Monitoring in the demo: devices of 历下区 registered, and a few frames sent through the real
codecs and the store, so the duty officer signing in finds alarms on the wall (a stack past its
SO2 limit climbing to red, a river above its warning level)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from qilu.identity.models import LegalEntity
from qilu.monitor import devices, hj212, jt808, rules, simulate, sl651
from qilu.monitor.alarms import Evaluator
from qilu.monitor.bus import LocalBus
from qilu.monitor.ingest import Received, store
from qilu.monitor.listen import Listener
from qilu.monitor.protocols import PROTOCOLS
from qilu.monitor.simulate import SimDevice
from qilu.settings import Settings

HOME = "370102"
DEVICES = (  # protocol, code, kind, name, interval, (latitude, longitude)
    ("hj212", "370102000000000000000001", "pollution_source", "泉城热电 1 号烟囱", 60,
     (36.6612, 117.0823)),
    ("hj212", "370102000000000000000002", "pollution_source", "历下污水处理厂排口", 60,
     (36.6781, 117.0634)),
    ("hj212", "370102000000000000000003", "air_station", "历下区空气质量监测站", 3600,
     (36.6575, 117.0511)),
    ("jt808", "13853100001", "vehicle", "鲁A·D8801 危化品运输车", 30, None),
    ("sl651", "0037010201", "hydro_station", "小清河历下段水位站", 300, (36.6952, 117.0702)),
)  # fmt: skip


def sample_monitoring(session: Session, now: datetime | None = None) -> int:
    """Register the demo's devices and feed them the last minutes' frames; returns how many
    alarms are open."""
    moment = now or datetime.now(UTC)
    rules.install(session, replace=False)
    owner = session.scalars(
        select(LegalEntity.uscc).where(LegalEntity.division_code == HOME).order_by(LegalEntity.id)
    ).first()
    for protocol, code, kind, name, interval, position in DEVICES:
        latitude, longitude = position or (None, None)
        spec = devices.DeviceSpec(
            protocol, code, kind, name, HOME, interval,
            owner if kind == "pollution_source" else None, latitude, longitude,
        )  # fmt: skip
        devices.register(session, spec)
    frames = []
    for minutes_ago, so2 in ((12, 28.0), (8, 41.5), (4, 96.0), (1, 212.0)):  # climbing to 红
        frames.append(
            hj212.encode(
                cn="2051",
                mn=DEVICES[0][1],
                st="31",
                pw="123456",
                qn=None,
                data_time=moment - timedelta(minutes=minutes_ago),
                values={"a21026-Avg": so2, "a21002-Avg": 38.0},
                flags={"a21026": "N"},
            )
        )
    frames.append(
        hj212.encode(
            cn="2051",
            mn=DEVICES[1][1],
            st="32",
            pw="123456",
            qn=None,
            data_time=moment - timedelta(minutes=2),
            values={"w01018-Avg": 31.2},
            flags={"w01018": "N"},
        )
    )
    truck = jt808.location(
        lat=36.6688, lng=117.1021, speed_kmh=68.0, altitude_m=42, direction=90,
        time=moment - timedelta(seconds=20),
    )  # fmt: skip
    frames.append(jt808.encode(0x0200, DEVICES[3][1], 1, truck))
    frames.append(
        sl651.encode(
            centre=1,
            station=DEVICES[4][1],
            password="1234",
            function=0x33,
            serial=7,
            sent=moment - timedelta(minutes=3),
            station_class="H",
            observed=moment - timedelta(minutes=5),
            values={0x39: (29.8, 4, 3), 0x38: (12.4, 2, 2)},  # as the live fleet goes on
        )
    )
    received = [
        Received(_protocol(raw), "demo", raw, PROTOCOLS[_protocol(raw)].decode(raw), moment)
        for raw in frames
    ]
    stored = store(session, received)
    evaluator = Evaluator(session)
    evaluator.readings(stored.rows)
    session.flush()
    return len(evaluator.outcome.opened)


def _protocol(raw: bytes) -> str:
    if raw.startswith(b"##"):
        return "hj212"
    return "sl651" if raw.startswith(b"\x7e\x7e") else "jt808"


def live_fleet() -> list[SimDevice]:
    """What the demo keeps sending while it runs: its five devices, each carrying on its
    story (the stack's SO2 stays high, the river above its warning level), and a small fleet
    of 历下区 around them: vehicles setting out for other cities (one speeding after a
    minute), and a stack that goes silent (its 设备离线 alarm comes three intervals later)."""
    story = {"pollution_source": [1, 2], "air_station": [1], "vehicle": [2], "hydro_station": [0]}
    kept = []
    for protocol, code, kind, name, interval, position in DEVICES:
        latitude, longitude = position or (36.6688, 117.1021)
        index = story[kind].pop(0)
        route = ((latitude, longitude), (36.2, 117.088)) if kind == "vehicle" else None
        kept.append(
            SimDevice(protocol, code.lstrip("0") if protocol == "jt808" else code, kind, name,
                      HOME, interval, latitude, longitude, index, route, from_start=True)
        )  # fmt: skip
    extra = simulate.fleet(vehicles=6, sources=1, air=0, hydro=0, tanks=0, home=HOME)
    return kept + extra


def start_live(engine: Engine, settings: Settings) -> threading.Thread:
    """Listeners on the configured ports (free ones where those are taken) and the live fleet
    sending to them every 10 seconds, in a thread of the demo's process, for as long as it
    runs; returns the thread."""
    sims = live_fleet()
    with Session(engine) as session, session.begin():
        simulate.register(session, sims)
    ports = {
        "hj212": settings.monitor_hj212_port,
        "jt808": settings.monitor_jt808_port,
        "sl651": settings.monitor_sl651_port,
    }

    async def run() -> None:
        listener = Listener(LocalBus(engine), ports, host="127.0.0.1", any_port_if_taken=True)
        bound = await listener.start()
        simulator = simulate.Simulator(
            sims, bound, seconds=365 * 86_400, rate=len(sims) / 10, incident_after=60
        )
        await simulator.run()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True, name="demo-live")
    thread.start()
    return thread
