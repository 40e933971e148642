"""The TCP listeners (`qilu monitor listen`): one asyncio server per protocol, a splitter per
connection, and one writer that stores what arrives in batches.

A device is answered only after the batch holding its frame has committed, so a reading the
platform acknowledged is never lost; a connection waits for that before reading on, so each
source's frames are stored in the order they came. A bad frame is archived with its reason and
never stops the listener; a connection silent past `idle_seconds` is closed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from qilu.monitor import dispatch, hj212, jt808, mqtt, sl651
from qilu.monitor.alarms import Evaluator
from qilu.monitor.frames import Frame, FrameError
from qilu.monitor.ingest import Received, store
from qilu.monitor.models import Device
from qilu.monitor.protocols import PROTOCOLS

log = structlog.get_logger("qilu.monitor")


@dataclass
class _Pending:
    item: Received
    serial: int  # the platform's message serial on this connection (JT/T 808)
    done: asyncio.Future[bytes | None]


@dataclass
class ListenerStats:
    frames: Counter[str] = field(default_factory=Counter)  # by protocol
    refused: Counter[str] = field(default_factory=Counter)  # by error code
    batches: int = 0
    connections: int = 0


class Listener:
    """Listens on `ports` (protocol → port; 0 picks a free one) until stopped."""

    def __init__(
        self,
        engine: Engine,
        ports: dict[str, int],
        *,
        host: str = "0.0.0.0",
        batch_size: int = 500,
        batch_wait: float = 0.05,
        idle_seconds: float = 600.0,
        silence_every: float = 30.0,
        mqtt_broker: str = "",
    ):
        self.engine, self.ports, self.host = engine, ports, host
        self.batch_size, self.batch_wait, self.idle_seconds = batch_size, batch_wait, idle_seconds
        self.silence_every, self.mqtt_broker = silence_every, mqtt_broker
        self.mqtt_subscribed = asyncio.Event()
        self._inflight: set[asyncio.Task[bytes | None]] = set()
        self.stats = ListenerStats()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=50_000)
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.bound: dict[str, int] = {}

    async def start(self) -> dict[str, int]:
        for name, port in self.ports.items():
            server = await asyncio.start_server(self._handler(name), self.host, port, limit=2**16)
            self._servers.append(server)
            self.bound[name] = server.sockets[0].getsockname()[1]
        self._tasks = [
            asyncio.create_task(self._write_forever()),
            asyncio.create_task(self._watch_silence()),
        ]
        if self.mqtt_broker:
            self._tasks.append(asyncio.create_task(self._subscribe_forever()))
        return self.bound

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        for task in self._tasks:
            task.cancel()

    def _handler(
        self, name: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        protocol = PROTOCOLS[name]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            address = writer.get_extra_info("peername")
            peer = f"{address[0]}:{address[1]}" if address else "unknown"
            splitter, serial = protocol.splitter(), 0
            self.stats.connections += 1
            try:
                while True:
                    chunk = await asyncio.wait_for(reader.read(4096), self.idle_seconds)
                    if not chunk:
                        break
                    for piece in splitter.feed(chunk):
                        serial = (serial + 1) & 0xFFFF
                        answer = await self._submit(name, protocol.decode, peer, piece, serial)
                        if answer:
                            writer.write(answer)
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                pass
            finally:
                self.stats.connections -= 1
                writer.close()

        return handle

    async def _subscribe_forever(self) -> None:
        """Messages from the broker join the same queue (in the order they came); the broker's
        connection is made again if it drops."""
        host, _, port = self.mqtt_broker.rpartition(":")
        peer = f"mqtt:{self.mqtt_broker}"
        while True:
            try:
                async with aiomqtt.Client(
                    host, int(port), identifier=f"qilu-{os.getpid()}"
                ) as client:
                    await client.subscribe(mqtt.SUBSCRIPTION, qos=1)
                    self.mqtt_subscribed.set()
                    async for message in client.messages:
                        payload = message.payload
                        body = payload if isinstance(payload, bytes | bytearray) else b""
                        raw = str(message.topic).encode() + b"\n" + bytes(body)
                        # Not awaited: the next message need not wait for this one's commit.
                        task = asyncio.create_task(self._submit("mqtt", mqtt.decode, peer, raw, 0))
                        self._inflight.add(task)
                        task.add_done_callback(self._inflight.discard)
            except aiomqtt.MqttError as error:
                self.mqtt_subscribed.clear()
                log.warning("monitor.mqtt_disconnected", error=str(error))
                await asyncio.sleep(2)

    async def _submit(
        self,
        name: str,
        decode: Callable[[bytes], Frame],
        peer: str,
        piece: bytes | FrameError,
        serial: int,
    ) -> bytes | None:
        if isinstance(piece, FrameError):
            result: Frame | FrameError = piece
            raw = piece.raw
        else:
            raw = piece
            try:
                result = decode(piece)
            except FrameError as refused:
                result = refused
        self.stats.frames[name] += 1
        if isinstance(result, FrameError):
            self.stats.refused[result.code] += 1
        item = Received(name, peer, raw, result, datetime.now(UTC))
        done: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(item, serial, done))
        return await done

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + self.batch_wait
            while len(batch) < self.batch_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            try:
                answers = await asyncio.to_thread(self._write, batch)
            except Exception as error:  # the store failed: nobody is answered, devices resend
                log.error("monitor.write_failed", error=str(error), frames=len(batch))
                for pending in batch:
                    pending.done.set_result(None)
                continue
            self.stats.batches += 1
            for pending, answer in zip(batch, answers, strict=True):
                pending.done.set_result(answer)

    async def _watch_silence(self) -> None:
        """Every `silence_every` seconds, open no-data alarms for devices gone silent."""
        while True:
            await asyncio.sleep(self.silence_every)
            try:
                await asyncio.to_thread(self._silence)
            except Exception as error:  # the next round tries again
                log.error("monitor.silence_failed", error=str(error))

    def _silence(self) -> None:
        """Silent devices get their no-data alarm; steps past due are chased (催办, 督办)."""
        with Session(self.engine) as session, session.begin():
            now = datetime.now(UTC)
            Evaluator(session).silent(now)
            dispatch.overdue(session, now)

    def _write(self, batch: list[_Pending]) -> list[bytes | None]:
        """Store a batch and work out each device's answer; both in one transaction."""
        with Session(self.engine) as session, session.begin():
            stored = store(session, [p.item for p in batch])
            Evaluator(session).readings(stored.rows)
            return [answer_for(p.item, p.serial, stored.devices) for p in batch]


def answer_for(item: Received, serial: int, devices: dict[tuple[str, str], Device]) -> bytes | None:
    """What the platform sends back for a frame (after it is stored); `devices` are the
    batch's registered devices by (protocol, code)."""
    frame = item.result
    if isinstance(frame, FrameError):
        return None
    if item.protocol == "hj212":
        return hj212.reply(frame)
    if item.protocol == "sl651":
        return sl651.reply(frame, datetime.now(UTC))
    if item.protocol != "jt808":  # MQTT: the broker acknowledged it
        return None
    device = devices.get(("jt808", frame.source))
    if frame.message == "0x0100":  # registration: only a terminal registered here may join
        if device is None:
            return jt808.registration_reply(frame, serial, 4)  # 数据库中无该终端
        if not device.auth_code:
            device.auth_code = secrets.token_hex(8)
        return jt808.registration_reply(frame, serial, 0, device.auth_code)
    if frame.message == "0x0102":
        given = frame.details.get("auth_code")
        accepted = device is not None and bool(device.auth_code) and given == device.auth_code
        return jt808.general_reply(frame, serial, 0 if accepted else 1)
    return jt808.general_reply(frame, serial, 0 if device is not None else 1)
