"""The bus between listeners and writers through NATS JetStream (issue 15, running at
127.0.0.1:4222 on the machines CI runs on): a device is answered once the stream holds its
frame; a writer stores each partition in order; a writer killed with SIGKILL mid-stream loses
nothing and stores nothing twice when it starts again, and opens no alarm twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from qilu.db import make_engine, upgrade
from qilu.monitor import devices, hj212, jt808, rules
from qilu.monitor.bus import (
    Delivery,
    JetStreamBus,
    Writer,
    decode_item,
    encode_item,
    ensure_stream,
    partition_of,
)
from qilu.monitor.frames import FrameError
from qilu.monitor.ingest import Received
from qilu.monitor.listen import Listener
from qilu.monitor.models import Alarm, AlarmEvent, BusMark, Device, RawFrame, Reading
from qilu.settings import Settings

from .test_listen import STACK, TRUCK, device, exchange, in_own_loop, location, minute_data

NATS = "nats://127.0.0.1:4222"


@pytest.fixture
def stream() -> Iterator[str]:
    """A stream of this test's own, deleted afterwards."""
    name = f"QILU_TEST_{secrets.token_hex(4).upper()}"
    yield name

    async def drop() -> None:
        connection = await nats.connect(NATS)
        with contextlib.suppress(NotFoundError):
            await connection.jetstream().delete_stream(name)
        await connection.close()

    in_own_loop(drop())


def count(engine: Engine, table: type[RawFrame] | type[Reading]) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def wait_for(done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_frame_crosses_the_stream_as_it_came() -> None:
    moment = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    frame = minute_data(STACK, 12.5)
    decoded = Received("hj212", "10.0.0.1:5000", frame, hj212.decode(frame), moment)
    again = decode_item(encode_item(decoded))
    assert again == decoded
    # A splitter's refusal has no frame to decode again: it crosses with its code and reason.
    garbage = FrameError("jt808", "garbage", "帧外的字节", b"\x01\x02\n\x03")
    refused = decode_item(encode_item(Received("jt808", "p", garbage.raw, garbage, moment)))
    assert isinstance(refused.result, FrameError)
    assert (refused.result.code, refused.raw) == ("jt808.garbage", b"\x01\x02\n\x03")
    # One source, one partition, whatever the connection.
    moved = Received("hj212", "10.0.0.2:6000", frame, decoded.result, moment)
    assert partition_of(moved, 16) == partition_of(decoded, 16)


def test_devices_answered_from_the_stream_are_stored_by_a_writer(
    empty_store: Settings, stream: str
) -> None:
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        rules.install(session)
        devices.register(session, device("hj212", STACK, "pollution_source"))
        devices.register(session, device("jt808", TRUCK, "vehicle"))

    async def run() -> dict[str, list[bytes]]:
        bus = JetStreamBus(engine, NATS, stream=stream, partitions=4)
        listener = Listener(bus, {"hj212": 0, "jt808": 0}, host="127.0.0.1")
        writer = Writer(engine, NATS, [0, 1, 2, 3], stream=stream, batch_size=50)
        ports = await listener.start()
        working = asyncio.create_task(writer.run())
        try:
            values = [20.0, 36.0, 40.0, 20.0, 36.0]  # blue past 35, cleared, blue again
            hj = await exchange(ports["hj212"], [minute_data(STACK, v) for v in values], 5)
            registration = jt808.encode(0x0100, TRUCK, 1, b"\x00" * 37)
            [registered] = await exchange(ports["jt808"], [registration], 1)
            auth = jt808.unescape(registered[1:-1])[15:-1]
            truck = await exchange(
                ports["jt808"],
                [
                    jt808.encode(0x0102, TRUCK, 2, auth),
                    jt808.encode(0x0102, TRUCK, 3, b"wrong"),
                    location(36.651, 117.12, 4),
                ],
                3,
            )
            await asyncio.to_thread(wait_for, lambda: count(engine, RawFrame) == 9)
            return {"hj": hj, "jt": [registered, *truck]}
        finally:
            working.cancel()
            await listener.stop()

    answers = in_own_loop(run())
    assert [hj212.decode(a).message for a in answers["hj"]] == ["9014"] * 5
    registered, good, wrong, position = (jt808.unescape(a[1:-1]) for a in answers["jt"])
    assert registered[:2] == b"\x81\x00" and registered[14] == 0
    assert [a[-2] for a in (good, wrong, position)] == [0, 1, 0]  # the wrong 鉴权码 refused

    with Session(engine) as session:
        stack = session.scalars(select(Device).where(Device.code == STACK)).one()
        stored = session.scalars(
            select(Reading.value).where(Reading.device_id == stack.id).order_by(Reading.id)
        ).all()
        assert stored == [20.0, 36.0, 40.0, 20.0, 36.0]  # in the order they were sent
        alarms = session.scalars(select(Alarm).where(Alarm.device_id == stack.id)).all()
        assert [(a.rule_code, a.cleared_at is not None) for a in alarms] == [
            ("SRC-SO2-AVG", True),
            ("SRC-SO2-AVG", False),
        ]


def test_a_writer_killed_mid_stream_loses_and_repeats_nothing(
    empty_store: Settings, stream: str, tmp_path: Path
) -> None:
    """SIGKILL the writer (which also evaluates the rules, in the same transaction) while it
    stores 6,000 acknowledged frames from 30 stacks, each crossing its limit half-way; started
    again, it ends with every frame stored once and one alarm per stack."""
    engine = make_engine(empty_store)
    upgrade(engine)
    stacks = [f"3701020000000000000{n:05d}" for n in range(30)]
    with Session(engine) as session, session.begin():
        rules.install(session)
        for code in stacks:
            devices.register(session, device("hj212", code, "pollution_source"))
    per_stack = 200
    start = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)

    async def publish() -> int:
        bus = JetStreamBus(engine, NATS, stream=stream, partitions=2)
        await bus.start()
        answered = 0
        for step in range(per_stack):
            value = 20.0 if step < per_stack // 2 else 50.0
            moment = start + timedelta(minutes=step)
            for code in stacks:
                frame = minute_data(code, value)
                item = Received("hj212", "bench", frame, hj212.decode(frame), moment)
                answered += await bus.submit(item, 0) is not None
        await bus.stop()
        return answered

    total = per_stack * len(stacks)
    assert in_own_loop(publish()) == total  # every frame acknowledged to its device

    env = {
        **os.environ,
        "QILU_DATA_DIR": str(empty_store.data_dir),
        "QILU_PII_KEY": empty_store.pii_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_INDEX_KEY": empty_store.index_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_MONITOR_BUS": NATS,
        "QILU_MONITOR_STREAM": stream,
        "QILU_MONITOR_PARTITIONS": "2",
        "QILU_LOG_LEVEL": "warning",
    }
    if empty_store.database_url:
        env["QILU_DATABASE_URL"] = empty_store.database_url
    command = [sys.executable, "-m", "qilu.cli", "monitor", "work", "--ack-wait", "2"]
    command += ["--batch-size", "100"]
    with open(tmp_path / "writer.log", "w") as log:
        first = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        wait_for(lambda: count(engine, RawFrame) >= 600)
        first.send_signal(signal.SIGKILL)
        first.wait()
        stored_at_kill = count(engine, RawFrame)
        assert stored_at_kill < total  # killed mid-stream, not after
        second = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: count(engine, RawFrame) >= total, seconds=120)
            time.sleep(3)  # past the ack wait: anything delivered again would land by now
        finally:
            second.terminate()
            second.wait(timeout=10)

    assert count(engine, RawFrame) == total
    assert count(engine, Reading) == total

    async def left_in_stream() -> int:
        connection = await nats.connect(NATS)
        info = await connection.jetstream().stream_info(stream)
        await connection.close()
        return info.state.messages

    assert in_own_loop(left_in_stream()) == 0  # a work queue: stored frames leave the stream
    with Session(engine) as session:
        opened = session.scalars(
            select(Alarm.device_id).where(Alarm.rule_code == "SRC-SO2-AVG")
        ).all()
        assert len(opened) == len(set(opened)) == len(stacks)  # one per stack, none twice
        events = session.scalar(
            select(func.count()).select_from(AlarmEvent).where(AlarmEvent.action == "opened")
        )
        assert events == len(stacks)
        marks = session.scalars(select(BusMark.sequence)).all()
        assert sum(1 for _ in marks) == 2 and max(marks) == total


class _LostAck(Writer):
    """A writer whose first batch commits but is never acknowledged: as if killed between the
    two. The stream delivers that batch again after the ack wait."""

    failed = False

    def _store(self, deliveries: list[Delivery]) -> list[bool]:
        stored = super()._store(deliveries)
        if not self.failed:
            self.failed = True
            raise RuntimeError("killed after commit")
        return stored


def test_a_batch_stored_but_not_acknowledged_is_not_stored_again(
    empty_store: Settings, stream: str
) -> None:
    engine = make_engine(empty_store)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        rules.install(session)
        devices.register(session, device("hj212", STACK, "pollution_source"))
    moment = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)

    async def run() -> _LostAck:
        bus = JetStreamBus(engine, NATS, stream=stream, partitions=1)
        await bus.start()
        for value in (10.0, 40.0, 10.0, 40.0):  # an alarm opened, cleared, opened again
            frame = minute_data(STACK, value)
            await bus.submit(Received("hj212", "p", frame, hj212.decode(frame), moment), 0)
        await bus.stop()
        writer = _LostAck(engine, NATS, [0], stream=stream, batch_size=10, ack_wait=1)
        working = asyncio.create_task(writer.run())
        await asyncio.sleep(4)  # the first delivery, the ack wait, the second delivery
        working.cancel()
        return writer

    writer = in_own_loop(run())
    assert writer.failed and writer.stored == 4  # the second delivery stored nothing
    assert count(engine, Reading) == 4
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Alarm)) == 2


def test_the_streams_keeping_time_follows_the_setting(stream: str) -> None:
    """QILU_MONITOR_STREAM_HOURS: the stream is made with it, and changed when it changes."""

    async def run() -> list[float | None]:
        connection = await nats.connect(NATS)
        js = connection.jetstream()
        ages = []
        for hours in (24.0, 24.0, 72.0):
            await ensure_stream(js, stream, hours)
            ages.append((await js.stream_info(stream)).config.max_age)
        await connection.close()
        return ages

    assert in_own_loop(run()) == [86_400, 86_400, 259_200]
