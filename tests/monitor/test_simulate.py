"""`qilu monitor simulate` (issue 15): the synthetic province's devices over the real protocols
and TCP, terminals registering and authenticating first, and the scripted incidents turning into
the alarms they stand for."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.db import make_engine, upgrade
from qilu.monitor import rules, simulate
from qilu.monitor.bus import LocalBus
from qilu.monitor.ingest import position_flag
from qilu.monitor.listen import Listener
from qilu.monitor.models import Alarm, Device, RawFrame, Reading
from qilu.settings import Settings

from .test_listen import in_own_loop


def test_the_fleet_is_the_same_every_time_and_inside_shandong() -> None:
    sims = simulate.fleet()
    assert sims == simulate.fleet()
    assert len({(s.protocol, s.code) for s in sims}) == len(sims) == 100
    for sim in sims:
        assert position_flag(sim.latitude, sim.longitude) is None, sim.name
        if sim.route:
            for elapsed in (0, 600, 7200):
                lat, lng, speed = simulate.position(sim, elapsed)
                assert position_flag(lat, lng) is None and speed < 80
    county = simulate.fleet(vehicles=3, sources=1, air=0, hydro=1, tanks=0, home="370102")
    assert {s.division for s in county} == {"370102"}
    assert not {s.code for s in county} & {s.code for s in sims}


def test_a_simulated_fleet_reports_and_its_incidents_raise_alarms(
    empty_store: Settings,
) -> None:
    engine = make_engine(empty_store)
    upgrade(engine)
    sims = simulate.fleet(vehicles=3, sources=2, air=1, hydro=1, tanks=0)
    with Session(engine) as session, session.begin():
        rules.install(session)
        assert simulate.register(session, sims) == len(sims)
        assert simulate.register(session, sims) == 0  # only what the store lacks

    async def run() -> simulate.SimStats:
        listener = Listener(
            LocalBus(engine), {"hj212": 0, "jt808": 0, "sl651": 0}, host="127.0.0.1"
        )
        ports = await listener.start()
        try:
            simulator = simulate.Simulator(
                sims, ports, seconds=3, rate=len(sims) * 2, incident_after=0, ramp_seconds=0.2
            )
            return await simulator.run()
        finally:
            await listener.stop()

    stats = in_own_loop(run())
    assert stats.failed_connections == 0 and stats.unanswered == 0
    assert stats.connections == len(sims)
    assert stats.answered == sum(stats.sent.values()) > 0
    with Session(engine) as session:
        # Every vehicle registered (0x0100), was given its 鉴权码 and authenticated.
        codes = session.scalars(select(Device.auth_code).where(Device.protocol == "jt808")).all()
        assert len(codes) == 3 and all(codes)
        assert session.scalar(select(func.count()).select_from(RawFrame)) == stats.answered
        silent = session.scalars(
            select(Device).where(Device.code == sims[3].code)  # pollution source 0
        ).one()
        assert silent.last_seen_at is None  # went silent from the start
        assert (
            session.scalar(
                select(func.count()).select_from(Reading).where(Reading.device_id == silent.id)
            )
            == 0
        )
        opened = set(
            session.execute(
                select(Device.kind, Alarm.rule_code).join(Device, Device.id == Alarm.device_id)
            )
        )
    # The SO2 spike (orange at once) and the river past its warning level; the speeding truck
    # needs 30 s and PM2.5 three hours before theirs.
    assert opened == {("pollution_source", "SRC-SO2-AVG"), ("hydro_station", "RIVER-LEVEL")}
