"""The TCP listeners (`qilu monitor listen`): one asyncio server per protocol, a splitter per
connection, and the MQTT subscriber, all handing frames to the bus (`bus.py`).

A device is answered only once the bus has made its frame safe (stored, or held by the
stream), so a reading the platform acknowledged is never lost; a connection waits for that
before reading on, so each source's frames reach the bus in the order they came. A bad frame is
archived with its reason and never stops the listener; a connection silent past `idle_seconds`
is closed.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiomqtt
import structlog

from qilu.monitor import jt808, mqtt
from qilu.monitor.bus import Bus
from qilu.monitor.frames import Frame, FrameError
from qilu.monitor.ingest import Received
from qilu.monitor.protocols import PROTOCOLS

log = structlog.get_logger("qilu.monitor")


class NotSafeError(Exception):
    """An MQTT message could not be made safe: the session starts again to have it resent."""


@dataclass
class ListenerStats:
    frames: Counter[str] = field(default_factory=Counter)  # by protocol
    refused: Counter[str] = field(default_factory=Counter)  # by error code
    connections: int = 0


class Listener:
    """Listens on `ports` (protocol → port; 0 picks a free one) until stopped."""

    def __init__(
        self,
        bus: Bus,
        ports: dict[str, int],
        *,
        host: str = "0.0.0.0",
        idle_seconds: float = 600.0,
        mqtt_broker: str = "",
        mqtt_client_id: str = "qilu-monitor",
        any_port_if_taken: bool = False,
    ):
        self.bus, self.ports, self.host = bus, ports, host
        self.any_port_if_taken = any_port_if_taken  # a free port where a given one is taken
        self.idle_seconds, self.mqtt_broker = idle_seconds, mqtt_broker
        self.mqtt_client_id = mqtt_client_id  # the broker keeps its session: one per listener
        self.mqtt_subscribed = asyncio.Event()
        self.stats = ListenerStats()
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._connections: set[asyncio.Task[object]] = set()
        self.bound: dict[str, int] = {}

    async def start(self) -> dict[str, int]:
        await self.bus.start()
        for name, port in self.ports.items():
            try:
                server = await self._serve(name, port)
            except OSError:
                if not self.any_port_if_taken:
                    raise
                server = await self._serve(name, 0)
            self._servers.append(server)
            self.bound[name] = server.sockets[0].getsockname()[1]
        if self.mqtt_broker:
            self._tasks.append(asyncio.create_task(self._subscribe_forever()))
        return self.bound

    async def _serve(self, name: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(
            self._handler(name), self.host, port, limit=2**16, backlog=4096
        )

    async def stop(self) -> None:
        """Stop listening, end the open connections (a frame not yet safe is not answered,
        so its device sends it again), then the bus."""
        for server in self._servers:
            server.close()
        handlers = [*self._connections, *self._tasks]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        await self.bus.stop()

    def _handler(
        self, name: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        protocol = PROTOCOLS[name]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            address = writer.get_extra_info("peername")
            peer = f"{address[0]}:{address[1]}" if address else "unknown"
            splitter, serial = protocol.splitter(), 0
            terminals = jt808.Connection() if name == "jt808" else None
            self.stats.connections += 1
            task = asyncio.current_task()
            if task is not None:
                self._connections.add(task)
            try:
                while True:
                    chunk = await asyncio.wait_for(reader.read(4096), self.idle_seconds)
                    if not chunk:
                        break
                    for piece in splitter.feed(chunk):
                        serial = (serial + 1) & 0xFFFF
                        answer = await self._submit(
                            name, protocol.decode, peer, piece, serial, terminals
                        )
                        if answer:
                            writer.write(answer)
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                pass
            except asyncio.CancelledError:
                # stop() ends the connection. The task ends normally, not cancelled: Python
                # 3.11's streams call task.exception() on a connection task that ends, which
                # raises (and logs an "unhandled exception") for a cancelled one.
                pass
            finally:
                self.stats.connections -= 1
                self._connections.discard(task)
                writer.close()

        return handle

    async def _subscribe_forever(self) -> None:
        """Messages from the broker join the same queue (in the order they came). A message is
        acknowledged to the broker only once it is safe, in the order they came (MQTT 3.1.1
        §4.6); the session is kept (`clean_session` off, one client id per listener), so what
        was not acknowledged comes again after a reconnect or a restart. The connection is
        made again if it drops, or if a message could not be made safe."""
        host, _, port = self.mqtt_broker.rpartition(":")
        peer = f"mqtt:{self.mqtt_broker}"
        while True:
            try:
                async with aiomqtt.Client(
                    host, int(port), identifier=self.mqtt_client_id, clean_session=False
                ) as client:
                    # aiomqtt has no setting for it; paho's client acknowledges when told to.
                    client._client.manual_ack_set(True)
                    await client.subscribe(mqtt.SUBSCRIPTION, qos=1)
                    self.mqtt_subscribed.set()
                    await self._take_messages(client, peer)
            except (aiomqtt.MqttError, NotSafeError) as error:
                self.mqtt_subscribed.clear()
                log.warning("monitor.mqtt_disconnected", error=str(error))
                await asyncio.sleep(2)

    async def _take_messages(self, client: aiomqtt.Client, peer: str) -> None:
        waiting: deque[tuple[aiomqtt.Message, asyncio.Task[bytes | None]]] = deque()
        lost = asyncio.get_running_loop().create_future()

        def settle(_: object) -> None:
            while waiting and waiting[0][1].done():
                message, task = waiting.popleft()
                if task.cancelled() or task.exception() or task.result() is None:
                    if not lost.done():  # not safe: start again, the broker sends it again
                        lost.set_exception(NotSafeError(f"message {message.mid}"))
                    return
                if message.qos:
                    client._client.ack(message.mid, message.qos)

        async def receive() -> None:
            async for message in client.messages:
                payload = message.payload
                body = payload if isinstance(payload, bytes | bytearray) else b""
                raw = str(message.topic).encode() + b"\n" + bytes(body)
                # Not awaited: the next message need not wait for this one's commit.
                task = asyncio.create_task(self._submit("mqtt", mqtt.decode, peer, raw, 0))
                waiting.append((message, task))
                task.add_done_callback(settle)

        receiving = asyncio.create_task(receive())
        try:
            await asyncio.wait([receiving, lost], return_when=asyncio.FIRST_COMPLETED)
            if lost.done():
                lost.result()
            receiving.result()
        finally:
            receiving.cancel()
            for _, task in waiting:  # what is still being stored comes again in the new session
                task.remove_done_callback(settle)

    async def _submit(
        self,
        name: str,
        decode: Callable[[bytes], Frame],
        peer: str,
        piece: bytes | FrameError,
        serial: int,
        terminals: jt808.Connection | None = None,
    ) -> bytes | None:
        """Decode a piece and hand it to the bus; the device's answer once it is safe. A JT/T
        808 frame from a terminal not authenticated on the connection is archived as refused
        and answered 0x8001 失败."""
        if isinstance(piece, FrameError):
            result: Frame | FrameError = piece
            raw = piece.raw
        else:
            raw = piece
            try:
                result = decode(piece)
            except FrameError as refused:
                result = refused
        frame = result if isinstance(result, Frame) else None
        refusal = terminals.refusal(frame) if terminals and frame else None
        if refusal is not None:
            result = refusal
        self.stats.frames[name] += 1
        if isinstance(result, FrameError):
            self.stats.refused[result.code] += 1
        item = Received(name, peer, raw, result, datetime.now(UTC))
        answer = await self.bus.submit(item, serial)
        if frame is None or terminals is None:
            return answer
        if refusal is not None:
            return jt808.general_reply(frame, serial, 1)
        terminals.answered(frame, answer)
        return answer
