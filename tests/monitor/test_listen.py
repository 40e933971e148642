"""`qilu monitor listen` (issue 15): devices connect over TCP, are answered only once their
frames are stored, unknown sources are held aside and replayed when registered, bad frames are
archived with their reason, and no connection's garbage stops the others."""

from __future__ import annotations

import asyncio
import logging
import random
import resource
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.db import make_engine, upgrade
from qilu.monitor import devices, hj212, jt808, rules
from qilu.monitor.bus import LocalBus
from qilu.monitor.frames import BEIJING
from qilu.monitor.ingest import position_flag
from qilu.monitor.listen import Listener
from qilu.monitor.models import Alarm, Device, RawFrame, Reading, UnknownSource
from qilu.settings import Settings

from .test_sl651 import TIMED

T = TypeVar("T")
MOMENT = datetime(2026, 12, 7, 9, 0, tzinfo=BEIJING)
STACK = "370102000000000000000001"  # an HJ 212 MN
TRUCK = "013800138000"  # a JT/T 808 terminal


def device(protocol: str, code: str, kind: str) -> devices.DeviceSpec:
    return devices.DeviceSpec(protocol, code, kind, f"{kind} {code}", "370102", 60)


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on an event loop of its own thread: the browser tests' Playwright keeps
    a loop running in the test thread, where `asyncio.run` is refused."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


def minute_data(mn: str, value: float) -> bytes:
    return hj212.encode(
        cn="2051", mn=mn, st="31", pw="123456", qn="20261207090000001", data_time=MOMENT,
        values={"a21026-Avg": value}, flags={"a21026": "N"}, ack=True,
    )  # fmt: skip


def location(lat: float, lng: float, serial: int) -> bytes:
    body = jt808.location(
        lat=lat, lng=lng, speed_kmh=62.5, altitude_m=40, direction=90, time=MOMENT
    )
    return jt808.encode(0x0200, TRUCK, serial, body)


async def exchange(port: int, frames: list[bytes], answers: int) -> list[bytes]:
    """Send the frames on one connection and read `answers` replies."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = []
    for frame in frames:
        writer.write(frame)
        await writer.drain()
    for _ in range(answers):
        got.append(await asyncio.wait_for(reader.read(4096), 10))
    writer.close()
    return got


def test_devices_are_answered_after_their_readings_are_stored(empty_store: Settings) -> None:
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        rules.install(session)
        devices.register(session, device("hj212", STACK, "pollution_source"))
        # Registered as written on the terminal (012…): frames name it without the zero.
        devices.register(session, device("jt808", TRUCK, "vehicle"))
        devices.register(session, device("sl651", "0011223344", "hydro_station"))

    async def run() -> dict[str, list[bytes]]:
        listener = Listener(
            LocalBus(engine), {"hj212": 0, "jt808": 0, "sl651": 0}, host="127.0.0.1"
        )
        ports = await listener.start()
        try:
            hj = await exchange(
                ports["hj212"],
                [b"garbage", minute_data(STACK, 35.2), minute_data("UNKNOWN000001", 7.0)],
                2,
            )
            registration = jt808.encode(0x0100, TRUCK, 1, b"\x00" * 37)
            [registered] = await exchange(ports["jt808"], [registration], 1)
            auth = jt808.unescape(registered[1:-1])[15:-1]  # after reply serial and result
            truck = await exchange(
                ports["jt808"],
                [
                    jt808.encode(0x0102, TRUCK, 2, auth),
                    location(36.651, 117.12, 3),
                    location(117.12, 36.651, 4),  # latitude and longitude swapped
                ],
                3,
            )
            station = await exchange(ports["sl651"], [bytes.fromhex(TIMED)], 1)
            return {"hj": hj, "jt": [registered, *truck], "sl": station}
        finally:
            await listener.stop()

    answers = in_own_loop(run())
    assert [hj212.decode(a).message for a in answers["hj"]] == ["9014", "9014"]
    registered, auth, first, second = (jt808.unescape(a[1:-1]) for a in answers["jt"])
    assert registered[:2] == b"\x81\x00" and registered[14] == 0  # 0x8100, result 成功
    assert [a[:2] for a in (auth, first, second)] == [b"\x80\x01"] * 3
    assert [a[-2] for a in (auth, first, second)] == [0, 0, 0]  # each 成功
    [confirmed] = answers["sl"]  # the timed report confirmed, downlink, addresses swapped
    assert (
        confirmed[10] == 0x32
        and confirmed[11] >> 4 == 8
        and confirmed[2:7] == bytes.fromhex("0011223344")
    )

    with Session(engine) as session:
        refused = session.scalars(select(RawFrame.error).where(RawFrame.ok.is_(False))).all()
        assert refused == ["hj212.garbage"]
        stack = session.scalars(select(Device).where(Device.code == STACK)).one()
        values = session.execute(
            select(Reading.metric, Reading.value, Reading.flag, Reading.observed_at).where(
                Reading.device_id == stack.id
            )
        ).all()
        assert [(m, v, f) for m, v, f, _ in values] == [("a21026-Avg", 35.2, "N")]
        assert values[0].observed_at == MOMENT
        assert stack.last_seen_at is not None
        # 35.2 mg/m³ of SO2 is past the 超低排放 limit (35): a blue alarm, opened in the
        # transaction that stored the reading.
        alarm = session.scalars(select(Alarm).where(Alarm.device_id == stack.id)).one()
        assert (alarm.rule_code, alarm.level, alarm.value) == ("SRC-SO2-AVG", 4, 35.2)
        flags = session.scalars(
            select(Reading.flag).where(Reading.metric == "lat").order_by(Reading.id)
        ).all()
        assert flags == [None, "swapped"]
        held = session.scalars(select(UnknownSource)).one()
        assert (held.protocol, held.code, held.frames) == ("hj212", "UNKNOWN000001", 1)
        level = session.scalar(select(Reading.value).where(Reading.metric == "Z"))
        assert level == 10.49

    with Session(engine) as session, session.begin():  # the steward registers it: replayed
        latecomer = devices.register(session, device("hj212", "UNKNOWN000001", "air_station"))
        assert session.scalar(select(func.count()).select_from(UnknownSource)) == 0
        replayed = session.scalars(
            select(Reading.value).where(Reading.device_id == latecomer.id)
        ).all()
        assert replayed == [7.0]
    engine.dispose()


def test_a_flood_on_one_connection_does_not_stop_the_others(empty_store: Settings) -> None:
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        devices.register(session, device("hj212", STACK, "pollution_source"))

    async def run() -> list[bytes]:
        listener = Listener(LocalBus(engine), {"hj212": 0}, host="127.0.0.1")
        ports = await listener.start()
        try:
            _, flooder = await asyncio.open_connection("127.0.0.1", ports["hj212"])
            for _ in range(256):  # a megabyte with no packet end, and the connection left open
                flooder.write(b"##1000" + b"x" * 4090)
            await flooder.drain()
            answered = await exchange(ports["hj212"], [minute_data(STACK, 1.5)], 1)
            flooder.close()
            return answered
        finally:
            await listener.stop()

    [answer] = in_own_loop(run())
    assert hj212.decode(answer).message == "9014"
    engine.dispose()


def test_positions_are_flagged_against_shandongs_extent() -> None:
    assert position_flag(36.651, 117.12) is None  # 济南
    assert position_flag(117.12, 36.651) == "swapped"
    assert position_flag(39.9, 116.4) == "out_of_area"  # 北京: allowed, flagged
    assert position_flag(0.0, 0.0) == "out_of_area"
    assert position_flag(200.0, 300.0) == "invalid"


def test_a_device_is_checked_field_by_field_before_it_is_registered(empty_store: Settings) -> None:
    from qilu.errors import QiluError

    engine = make_engine(empty_store)
    upgrade(engine)
    cases = [
        (device("hj212", "", "pollution_source"), "monitor.code"),
        (device("xml", "A", "pollution_source"), "monitor.protocol"),
        (device("hj212", "A", "spaceship"), "monitor.kind"),
        (devices.DeviceSpec("hj212", "A", "tank", "罐区", "110101", 60), "monitor.division"),
        (devices.DeviceSpec("hj212", "A", "tank", "罐区", "370102", 0), "monitor.interval"),
        (
            devices.DeviceSpec("hj212", "A", "tank", "罐区", "370102", 60, "91370000MA3C0000XX"),
            "monitor.owner",
        ),
    ]
    with Session(engine) as session:
        for spec, code in cases:
            try:
                devices.register(session, spec)
            except QiluError as refused:
                assert refused.code == code and refused.field
            else:
                raise AssertionError(f"{spec} was accepted")
        devices.register(session, device("hj212", "A", "tank"))
        try:
            devices.register(session, device("hj212", "A", "tank"))
        except QiluError as twice:
            assert twice.code == "monitor.duplicate"
        session.rollback()
    engine.dispose()


def test_garbage_on_every_port_and_thousands_of_half_open_connections(
    empty_store: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A megabyte of random bytes on each port, 3,000 connections that send half a frame and
    hang there, and still every protocol's device is answered; the garbage is archived with
    its reason, and memory stays bounded (each connection's buffer has a limit)."""
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        devices.register(session, device("hj212", STACK, "pollution_source"))
        devices.register(session, device("jt808", TRUCK, "vehicle"))
        devices.register(session, device("sl651", "0011223344", "hydro_station"))
    noise = random.Random(808).randbytes(1 << 20)
    starts = {"hj212": b"##0100QN=2026", "jt808": b"\x7e\x02\x00\x00", "sl651": b"\x7e\x7e\x01"}

    async def run() -> tuple[dict[str, list[bytes]], int]:
        listener = Listener(LocalBus(engine), dict.fromkeys(starts, 0), host="127.0.0.1")
        ports = await listener.start()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hanging = []
        try:
            for name in starts:
                _, garbage = await asyncio.open_connection("127.0.0.1", ports[name])
                garbage.write(noise)
                await garbage.drain()
                hanging.append(garbage)
            for index in range(3000):
                name = list(starts)[index % 3]
                _, half = await asyncio.open_connection("127.0.0.1", ports[name])
                half.write(starts[name])
                hanging.append(half)
            await asyncio.sleep(0.5)
            answers = {
                "hj212": await exchange(ports["hj212"], [minute_data(STACK, 2.5)], 1),
                "jt808": await exchange(ports["jt808"], [location(36.65, 117.12, 9)], 1),
                "sl651": await exchange(ports["sl651"], [bytes.fromhex(TIMED)], 1),
            }
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB
            return answers, grown
        finally:
            for writer in hanging:
                writer.close()
            await listener.stop()

    answers, grown = in_own_loop(run())
    # Stopping with 3,000 connections open ends them quietly, none an "unhandled exception".
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert hj212.decode(answers["hj212"][0]).message == "9014"
    assert jt808.unescape(answers["jt808"][0][1:-1])[:2] == b"\x80\x01"
    assert answers["sl651"][0][10] == 0x32
    assert grown < 200 * 1024  # well under 200 MB for 3,003 connections and 3 MB of noise
    with Session(engine) as session:
        refused = session.execute(
            select(RawFrame.protocol, func.count()).where(RawFrame.ok.is_(False))
            .group_by(RawFrame.protocol)
        ).all()  # fmt: skip
        assert {protocol for protocol, _ in refused} == set(starts)
    engine.dispose()


def test_a_terminal_must_authenticate_on_each_connection(empty_store: Settings) -> None:
    """A position from a connection where the terminal has not authenticated is archived as
    refused and answered 失败, even when the terminal authenticated on another connection: a
    connection that skips 鉴权 is not taken for the terminal it names."""
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        devices.register(session, device("jt808", TRUCK, "vehicle"))

    async def run() -> list[bytes]:
        listener = Listener(LocalBus(engine), {"jt808": 0}, host="127.0.0.1")
        ports = await listener.start()
        try:
            registration = jt808.encode(0x0100, TRUCK, 1, b"\x00" * 37)
            [registered] = await exchange(ports["jt808"], [registration], 1)
            auth = jt808.unescape(registered[1:-1])[15:-1]
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["jt808"])
            answers = []
            for frame in (jt808.encode(0x0102, TRUCK, 2, auth), location(36.651, 117.12, 3)):
                writer.write(frame)
                answers.append(await asyncio.wait_for(reader.read(4096), 10))
            # Meanwhile another connection names the same terminal without 鉴权.
            answers += await exchange(ports["jt808"], [location(36.7, 117.2, 4)], 1)
            writer.close()
            return answers
        finally:
            await listener.stop()

    authenticated, accepted, impostor = (jt808.unescape(a[1:-1]) for a in in_own_loop(run()))
    assert [a[:2] for a in (authenticated, accepted, impostor)] == [b"\x80\x01"] * 3
    assert [a[-2] for a in (authenticated, accepted, impostor)] == [0, 0, 1]  # 失败
    with Session(engine) as session:
        latitudes = session.scalars(select(Reading.value).where(Reading.metric == "lat")).all()
        assert latitudes == [36.651]
        refused = session.scalars(select(RawFrame.error).where(RawFrame.ok.is_(False))).all()
        assert refused == ["jt808.unauthenticated"]
    engine.dispose()
