"""The bus between the listeners and the writers (DESIGN.md, "Monitoring data path").

- `LocalBus`, the embedded default: a writer task in the listener's own process batches what
  the connections received, stores it with its rule evaluation in one transaction, and only
  then answers each device.
- `JetStreamBus` with `Writer` (`qilu monitor work`), when one machine is not enough: a
  listener publishes each frame to a file-backed NATS JetStream stream, on one of the
  stream's partitions chosen by the frame's source, and answers the device once the stream
  holds it. Writers, in other processes or on other machines, each take whole partitions, so
  one writer stores and evaluates a source's frames, in order. A batch, its rule evaluation
  and the partition's mark (the last stream sequence stored) commit together, and only then
  are the frames acknowledged to the stream. A writer killed mid-batch leaves them
  unacknowledged: the stream delivers them again, those at or below the mark are skipped, so
  nothing acknowledged to a device is lost and nothing is stored twice.

Both answer a device the same way (`answer_for`): a JT/T 808 registration or authentication
is checked against the registry; every other frame is acknowledged once it is safe (stored, or
in the stream), its source's readings held aside if it is not registered.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, Protocol, TypeVar

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NATSClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from qilu.monitor import dispatch, hj212, jt808, retention, sl651
from qilu.monitor.alarms import Evaluator
from qilu.monitor.frames import Frame, FrameError
from qilu.monitor.ingest import Received, Stored, registered, store
from qilu.monitor.models import BusMark, Device
from qilu.monitor.protocols import DECODERS

log = structlog.get_logger("qilu.monitor")
SESSION_MESSAGES = ("0x0100", "0x0102")  # JT/T 808 registration and authentication


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, item: Received, serial: int) -> bytes | None:
        """Hand a received frame on; returns, once it is safe, the device's answer (an MQTT
        message's: b"", safe with nothing to send; None: no answer, or the frame could not be
        made safe and the device must send it again)."""
        ...


def take(session: Session, items: list[Received]) -> Stored:
    """Store a batch and run its readings through the rules; the caller commits."""
    stored = store(session, items)
    Evaluator(session).readings(stored.rows, stored.devices.values())
    return stored


def answer_for(item: Received, serial: int, devices: dict[tuple[str, str], Device]) -> bytes | None:
    """What the platform sends back for a frame once it is safe; `devices` holds the
    registered device of a JT/T 808 registration or authentication, by (protocol, code)."""
    frame = item.result
    if isinstance(frame, FrameError):
        return None
    if item.protocol == "hj212":
        return hj212.reply(frame)
    if item.protocol == "sl651":
        return sl651.reply(frame, datetime.now(UTC))
    if item.protocol != "jt808":  # MQTT: safe, nothing to send (the listener tells the broker)
        return b""
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
    return jt808.general_reply(frame, serial, 0)


def watch_once(engine: Engine, retention_days: int = 400) -> None:
    """Silent devices get their no-data alarm; steps past due are chased (催办, 督办); each
    day's partition is made ahead and those past the retention go."""
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        Evaluator(session).silent(now)
        dispatch.overdue(session, now)
    with Session(engine) as session, session.begin():
        retention.maintain(session, now, retention_days)


async def watch_forever(engine: Engine, every: float, retention_days: int = 400) -> None:
    while True:
        await asyncio.sleep(every)  # devices just connected get their first interval
        try:
            await asyncio.to_thread(watch_once, engine, retention_days)
        except Exception as error:  # the next round tries again
            log.error("monitor.watch_failed", error=str(error))


T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Gathers what many connections submit into batches of up to `size`, or what came in
    `wait` seconds, and hands each batch to `handle` in a worker thread (one transaction);
    each submitter gets its own result, or None if the batch failed."""

    def __init__(
        self, handle: Callable[[list[T]], list[R]], *, size: int = 500, wait: float = 0.05
    ):
        self.handle, self.size, self.wait = handle, size, wait
        self.batches = 0
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R | None]]] = asyncio.Queue(50_000)

    async def submit(self, item: T) -> R | None:
        done: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, done))
        return await done

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + self.wait
            while len(batch) < self.size:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            results: list[R | None]
            try:
                results = list(await asyncio.to_thread(self.handle, [i for i, _ in batch]))
            except Exception as error:  # the store failed: nobody is answered, devices resend
                log.error("monitor.write_failed", error=str(error), frames=len(batch))
                results = [None] * len(batch)
            else:
                self.batches += 1
            for (_, done), result in zip(batch, results, strict=True):
                done.set_result(result)


class LocalBus:
    """In the listener's process: batches of up to `batch_size`, or what came in
    `batch_wait` seconds, stored by one writer thread."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        batch_wait: float = 0.05,
        watch_every: float = 30.0,
        retention_days: int = 400,
    ):
        self.engine, self.watch_every, self.retention_days = engine, watch_every, retention_days
        self.writer = Batcher(self._write, size=batch_size, wait=batch_wait)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.writer.run()),
            asyncio.create_task(watch_forever(self.engine, self.watch_every, self.retention_days)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def submit(self, item: Received, serial: int) -> bytes | None:
        return await self.writer.submit((item, serial))

    def _write(self, batch: list[tuple[Received, int]]) -> list[bytes | None]:
        """Store a batch and work out each device's answer; both in one transaction."""
        with Session(self.engine) as session, session.begin():
            stored = take(session, [item for item, _ in batch])
            return [answer_for(item, serial, stored.devices) for item, serial in batch]


# A frame on the stream: one line of JSON about it, then the frame's bytes as they came.
def encode_item(item: Received) -> bytes:
    about: dict[str, str] = {
        "protocol": item.protocol,
        "peer": item.peer,
        "at": item.received_at.isoformat(),
    }
    if isinstance(item.result, FrameError):  # a splitter's refusal cannot be decoded again
        about["error"], about["reason"] = item.result.code, item.result.reason
    return json.dumps(about).encode() + b"\n" + item.raw


def decode_item(data: bytes) -> Received:
    head, _, raw = data.partition(b"\n")
    about = json.loads(head)
    protocol = about["protocol"]
    result: Frame | FrameError
    if "error" in about:
        code = about["error"].removeprefix(f"{protocol}.")
        result = FrameError(protocol, code, about["reason"], raw)
    else:
        try:
            result = DECODERS[protocol](raw)
        except FrameError as refused:
            result = refused
    return Received(protocol, about["peer"], raw, result, datetime.fromisoformat(about["at"]))


def partition_of(item: Received, partitions: int) -> int:
    """A source's frames all go to one partition (a refused frame's, by its connection)."""
    source = item.result.source if isinstance(item.result, Frame) else item.peer
    return zlib.crc32(f"{item.protocol}:{source}".encode()) % partitions


def subject(stream: str, partition: int | str) -> str:
    return f"{stream.lower()}.frames.{partition}"


async def ensure_stream(js: JetStreamContext, stream: str, retention_hours: float) -> None:
    """The stream on disk as a work queue: a frame stays until its partition's writer has
    stored it (the store, not the stream, is the archive), and at most `retention_hours` if
    no writer comes for it."""
    config = StreamConfig(
        name=stream,
        subjects=[subject(stream, "*")],
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        max_age=retention_hours * 3600,
    )
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(config)
        return
    if info.config.max_age != config.max_age:  # the setting changed since it was made
        await js.update_stream(replace(info.config, max_age=config.max_age))


class JetStreamBus:
    """The listener's side of NATS JetStream: publish, wait for the stream to hold the frame,
    answer (a JT/T 808 registration or authentication after checking the registry)."""

    def __init__(
        self,
        engine: Engine,
        url: str,
        *,
        stream: str = "QILU_MONITOR",
        partitions: int = 16,
        retention_hours: float = 24.0,
    ):
        self.engine, self.url, self.stream = engine, url, stream
        self.partitions, self.retention_hours = partitions, retention_hours
        self._nc: NATSClient | None = None
        self._js: JetStreamContext | None = None
        self.sessions = Batcher(self._session_answers, size=200, wait=0.02)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._nc = await nats.connect(self.url, max_reconnect_attempts=-1)
        self._js = self._nc.jetstream()
        await ensure_stream(self._js, self.stream, self.retention_hours)
        self._task = asyncio.create_task(self.sessions.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._nc is not None:
            await self._nc.drain()

    async def submit(self, item: Received, serial: int) -> bytes | None:
        assert self._js is not None, "start() first"
        target = subject(self.stream, partition_of(item, self.partitions))
        try:
            pending = await self._js.publish_async(target, encode_item(item), stream=self.stream)
            await pending
        except (nats.errors.Error, TimeoutError) as error:  # not safe: the device resends
            log.warning("monitor.publish_failed", error=str(error))
            return None
        frame = item.result
        if isinstance(frame, Frame) and frame.message in SESSION_MESSAGES:
            return await self.sessions.submit((item, serial))
        return answer_for(item, serial, {})

    def _session_answers(self, batch: list[tuple[Received, int]]) -> list[bytes | None]:
        """JT/T 808 registrations and authentications, checked against the registry (a
        registration's 鉴权码 written) in one transaction."""
        with Session(self.engine) as session, session.begin():
            devices = registered(session, [item for item, _ in batch])
            return [answer_for(item, serial, devices) for item, serial in batch]


class Writer:
    """Takes `partitions` of the stream and stores them (`qilu monitor work`): what its
    partitions deliver within `batch_wait` goes into one transaction, each partition's mark
    with it; the writer that holds partition 0 also runs the no-data and deadline watch."""

    def __init__(
        self,
        engine: Engine,
        url: str,
        partitions: list[int],
        *,
        stream: str = "QILU_MONITOR",
        retention_hours: float = 24.0,
        batch_size: int = 500,
        batch_wait: float = 0.05,
        ack_wait: float = 10.0,
        watch_every: float = 30.0,
        retention_days: int = 400,
    ):
        self.engine, self.url, self.partitions, self.stream = engine, url, partitions, stream
        self.retention_days = retention_days
        self.retention_hours, self.batch_size, self.ack_wait = retention_hours, batch_size, ack_wait
        self.watch_every = watch_every
        self.stored = 0  # frames stored by this writer (not those skipped as already stored)
        # One delivery per partition at most is waiting: a transaction takes them all.
        self.batches: Batcher[Delivery, bool] = Batcher(
            self._store, size=len(partitions), wait=batch_wait
        )

    async def run(self) -> None:
        nc = await nats.connect(self.url, max_reconnect_attempts=-1)
        try:
            js = nc.jetstream()
            await ensure_stream(js, self.stream, self.retention_hours)
            work = [self._take_partition(js, p) for p in self.partitions]
            work.append(self.batches.run())
            if 0 in self.partitions:
                work.append(watch_forever(self.engine, self.watch_every, self.retention_days))
            tasks = [asyncio.create_task(w) for w in work]
            try:
                await asyncio.gather(*tasks)
            finally:  # stopped: every task ends before the connection closes under it
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await nc.close()

    async def _take_partition(self, js: JetStreamContext, partition: int) -> None:
        consumer = f"{self.stream}-writer-{partition}"
        # No more unacknowledged than one batch: the next batch is not delivered before this
        # one is stored, and one delivered again comes before any newer frame, so a source's
        # frames are stored in order even across a writer's restart.
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,  # a work queue takes nothing less
            max_ack_pending=self.batch_size,
            ack_wait=self.ack_wait,
        )
        pull = await js.pull_subscribe(
            subject(self.stream, partition), durable=consumer, stream=self.stream, config=config
        )
        while True:
            try:
                messages = await pull.fetch(self.batch_size, timeout=1.0)
            except TimeoutError:  # nothing new (nats' own TimeoutError is one too)
                continue
            if not messages:
                continue
            delivery = Delivery(
                consumer, [m.metadata.sequence.stream for m in messages], [m.data for m in messages]
            )
            if await self.batches.submit(delivery):
                for message in messages:  # stored: the work queue lets each one go
                    await message.ack()
            else:  # not stored: the stream delivers them again after the ack wait
                await asyncio.sleep(1)

    def _store(self, deliveries: list[Delivery]) -> list[bool]:
        """Store what the partitions delivered (but what their marks say is stored) and move
        the marks, in one transaction."""
        with Session(self.engine) as session, session.begin():
            consumers = [d.consumer for d in deliveries]
            marks = {
                m.consumer: m
                for m in session.scalars(
                    select(BusMark).where(BusMark.consumer.in_(consumers)).with_for_update()
                )
            }
            fresh: list[Received] = []
            for delivery in deliveries:
                mark = marks.get(delivery.consumer)
                last = mark.sequence if mark else 0
                pairs = zip(delivery.sequences, delivery.data, strict=True)
                fresh += [decode_item(data) for sequence, data in pairs if sequence > last]
                top = max(last, *delivery.sequences)
                if mark is None:
                    marks[delivery.consumer] = BusMark(consumer=delivery.consumer, sequence=top)
                    session.add(marks[delivery.consumer])
                else:
                    mark.sequence = top
            if fresh:
                take(session, fresh)
        self.stored += len(fresh)
        return [True] * len(deliveries)


@dataclass(frozen=True)
class Delivery:
    """What one partition's consumer was given: stream sequences and frames, in order."""

    consumer: str
    sequences: list[int]
    data: list[bytes]
