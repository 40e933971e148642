"""MQTT with JSON payloads (issue 15): the published schema's messages decode, bad ones are
refused with a stable code, a tank publishing to the local Mosquitto broker is stored and
raises its alarm through the same listener, and a message is acknowledged to the broker only
once it is stored."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.db import make_engine, upgrade
from qilu.monitor import devices, mqtt, rules
from qilu.monitor.bus import LocalBus
from qilu.monitor.frames import FrameError
from qilu.monitor.ingest import Received
from qilu.monitor.listen import Listener
from qilu.monitor.models import Alarm, RawFrame, Reading
from qilu.settings import Settings

from .test_listen import in_own_loop

BROKER = ("127.0.0.1", 1883)  # Mosquitto, as on the machines CI runs on
BROKER_AT = f"{BROKER[0]}:{BROKER[1]}"


def message(**changes: object) -> bytes:
    body = {"time": "2026-12-07T09:00:00+08:00", "values": {"level_pct": 84.1}, **changes}
    return json.dumps(body).encode()


def test_the_schemas_example_decodes() -> None:
    [example] = mqtt.schema()["examples"]
    frame = mqtt.decode_message("qilu/telemetry/TANK-1", json.dumps(example).encode())
    assert (frame.protocol, frame.source) == ("mqtt", "TANK-1")
    assert {(r.metric, r.value, r.flag) for r in frame.readings} == {
        ("level_pct", 84.1, "N"),
        ("temperature_c", 21.3, None),
        ("gas_lel_pct", 2.0, None),
    }
    assert frame.time is not None and frame.time.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("qilu/telemetry/TANK-1", b"{not json", "mqtt.json"),
        ("qilu/telemetry/TANK-1", message(values={}), "mqtt.json"),
        ("qilu/telemetry/TANK-1", message(values={"level_pct": "high"}), "mqtt.json"),
        ("qilu/telemetry/TANK-1", message(flags={"level_pct": "X"}), "mqtt.json"),
        ("qilu/telemetry/TANK-1", message(extra=1), "mqtt.json"),
        ("qilu/telemetry/TANK-1", message(time="2026-12-07T09:00:00"), "mqtt.time"),
        ("qilu/telemetry/TANK-1", message(values={"Level%": 1}), "mqtt.metric"),
        ("other/TANK-1", message(), "mqtt.topic"),
        ("qilu/telemetry/a/b", message(), "mqtt.topic"),
        ("qilu/telemetry/TANK-1", b" " * (17 * 1024), "mqtt.length"),
    ],
)
def test_bad_messages_are_refused_with_a_stable_code(topic: str, payload: bytes, code: str) -> None:
    with pytest.raises(FrameError) as refused:
        mqtt.decode_message(topic, payload)
    assert refused.value.code == code


def test_a_tank_publishing_to_the_broker_is_stored_and_alarms(empty_store: Settings) -> None:
    engine = make_engine(empty_store)
    upgrade(engine)
    code = f"TANK-{secrets.token_hex(4)}"  # a topic of this run's own
    with Session(engine) as session, session.begin():
        rules.install(session)
        devices.register(
            session, devices.DeviceSpec("mqtt", code, "tank", "1 号储罐", "370102", 10)
        )
    start = datetime.now(UTC).replace(microsecond=0)

    async def run() -> None:
        listener = Listener(
            LocalBus(engine), {}, mqtt_broker=BROKER_AT, mqtt_client_id=f"qilu-test-{code}"
        )
        await listener.start()
        try:
            await asyncio.wait_for(listener.mqtt_subscribed.wait(), 10)
            async with aiomqtt.Client(*BROKER) as sensor:
                for seconds, level in ((0, 96.5), (15, 97.0)):  # past 高高位 for 15 s
                    body = {
                        "time": (start + timedelta(seconds=seconds)).isoformat(),
                        "values": {"level_pct": level, "temperature_c": 22.0},
                    }
                    await sensor.publish(f"qilu/telemetry/{code}", json.dumps(body), qos=1)
                await sensor.publish(f"qilu/telemetry/{code}", b"garbage", qos=1)
            for _ in range(100):  # until the writer has stored all three
                await asyncio.sleep(0.1)
                with Session(engine) as session:
                    if len(session.scalars(select(RawFrame.id)).all()) >= 3:
                        break
            await asyncio.sleep(0.3)
        finally:
            await listener.stop()

    in_own_loop(run())
    with Session(engine) as session:
        levels = session.scalars(
            select(Reading.value).where(Reading.metric == "level_pct").order_by(Reading.observed_at)
        ).all()
        assert levels == [96.5, 97.0]
        refused = session.scalars(select(RawFrame.error).where(RawFrame.ok.is_(False))).all()
        assert refused == ["mqtt.json"]
        alarm = session.scalars(select(Alarm)).one()
        assert (alarm.rule_code, alarm.level) == ("TANK-LEVEL-HIGH", 1)
        assert alarm.opened_at == start + timedelta(seconds=15)  # after its pending period
    engine.dispose()


class Stuck:
    """A bus whose store never answers: a listener dying while it waits."""

    def __init__(self) -> None:
        self.got: list[Received] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, item: Received, serial: int) -> bytes | None:
        self.got.append(item)
        await asyncio.Event().wait()
        return b""


def test_a_message_not_yet_stored_comes_again_after_the_listener_restarts(
    empty_store: Settings,
) -> None:
    """The broker keeps the listener's session; a message the listener took but never stored
    was never acknowledged, so the broker sends it to the restarted listener. (Acknowledged on
    receipt, as aiomqtt does by default, it would be lost.)"""
    engine = make_engine(empty_store)
    upgrade(engine)
    code = f"TANK-{secrets.token_hex(4)}"
    with Session(engine) as session, session.begin():
        rules.install(session)
        devices.register(
            session, devices.DeviceSpec("mqtt", code, "tank", "2 号储罐", "370102", 10)
        )
    client_id = f"qilu-test-{code}"

    async def run() -> None:
        stuck = Stuck()
        first = Listener(stuck, {}, mqtt_broker=BROKER_AT, mqtt_client_id=client_id)
        await first.start()
        await asyncio.wait_for(first.mqtt_subscribed.wait(), 10)
        async with aiomqtt.Client(*BROKER) as sensor:
            await sensor.publish(f"qilu/telemetry/{code}", message(), qos=1)
        for _ in range(100):
            if stuck.got:
                break
            await asyncio.sleep(0.05)
        assert len(stuck.got) == 1  # taken, never stored
        await first.stop()
        second = Listener(LocalBus(engine), {}, mqtt_broker=BROKER_AT, mqtt_client_id=client_id)
        await second.start()
        try:
            for _ in range(100):
                await asyncio.sleep(0.1)
                with Session(engine) as session:
                    if session.scalars(select(Reading.id)).first() is not None:
                        break
            await asyncio.sleep(0.3)
        finally:
            await second.stop()

    in_own_loop(run())
    with Session(engine) as session:
        assert session.scalars(select(Reading.value)).all() == [84.1]
    engine.dispose()
