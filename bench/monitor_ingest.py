"""Telemetry ingest end to end: `python -m bench.monitor_ingest [--devices N] [--rate R]
[--seconds S] [--bus local|nats|both] [--backend sqlite|postgresql|both]`.

A fresh store with the shipped rules and `simulate.fleet` registered in the issue's mix (70 %
JT/T 808 vehicles, 20 % HJ 212 sources and air stations, 10 % SL 651 stations); the listener in
this process; the simulator (`qilu monitor simulate`'s) in another process, every device on its
own TCP connection, registering first (JT/T 808 0x0100/0x0102), then sending at R frames/s in
all and waiting for each answer. With `--bus nats` the listener answers once NATS JetStream holds
the frame and `qilu monitor work` stores it, in a process of its own; with `--bus local` the
answer comes after the store's commit.

Prints: frames/s answered and stored, answer p50/p95, ingest → stored p95 (from the store's
row count sampled every 0.2 s against each frame's receive time), ingest → alarm opened (from
the receipt of the reading that opened an alarm until a sample sees the alarm), frames lost
(answered, never stored), CPU seconds of the listener and writer processes (frames/s per core),
and a baseline in the same run: the same simulator against an echo server that answers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any

import nats
import uvloop
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bench import stores
from qilu.db import make_engine, upgrade
from qilu.monitor import rules, simulate
from qilu.monitor.bus import Bus, JetStreamBus, LocalBus
from qilu.monitor.listen import Listener
from qilu.monitor.models import Alarm, RawFrame, Reading
from qilu.settings import Settings

NATS = os.environ.get("QILU_BENCH_NATS", "nats://127.0.0.1:4222")


def province(devices: int) -> list[simulate.SimDevice]:
    return simulate.fleet(
        vehicles=devices * 70 // 100,
        sources=devices * 15 // 100,
        air=devices * 5 // 100,
        hydro=devices - devices * 70 // 100 - devices * 15 // 100 - devices * 5 // 100,
        tanks=0,
    )


def _simulate(ports: dict[str, int], devices: int, rate: float, seconds: float, out: Any) -> None:
    simulator = simulate.Simulator(
        province(devices), ports, seconds=seconds, rate=rate, incident_after=seconds / 2,
        ramp_seconds=min(30.0, devices / 500),
    )  # fmt: skip
    started = time.monotonic()
    stats = uvloop.run(simulator.run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(
        {
            "sent": sum(stats.sent.values()),
            "answered": stats.answered,
            "unanswered": stats.unanswered,
            "failed": stats.failed_connections,
            "peak": stats.peak_connected,
            "elapsed": time.monotonic() - started,
            "p50": stats.p(0.5),
            "p95": stats.p(0.95),
            "cpu": usage.ru_utime + usage.ru_stime,
        }
    )


def run_simulator(ports: dict[str, int], devices: int, rate: float, seconds: float) -> Any:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_simulate, args=(ports, devices, rate, seconds, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


async def echo_ports() -> tuple[list[asyncio.Server], dict[str, int]]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            if data.startswith(b"\x7e") and data[1:3] == b"\x01\x00":  # a 0x8100 that says 成功
                data = b"\x7e\x81\x00" + bytes(11) + b"\x00\x00\x00\x00AUTH\x00\x7e"
            writer.write(data[:64])
            await writer.drain()

    servers, ports = [], {}
    for name in ("jt808", "hj212", "sl651"):
        server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=4096)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    return servers, ports


def prepare(settings: Settings, devices: int) -> Engine:
    engine = make_engine(settings)
    upgrade(engine)
    started = time.monotonic()
    with Session(engine) as session, session.begin():
        rules.install(session)
        simulate.register(session, province(devices))
    print(f"    {devices:,} devices registered in {time.monotonic() - started:.0f} s")
    return engine


def stored_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(RawFrame)) or 0


class Sampler(threading.Thread):
    """The store's frame count every 0.2 s, against the wall clock, and when a sample first
    sees each alarm."""

    def __init__(self, engine: Engine):
        super().__init__(daemon=True)
        self.engine, self.stopped = engine, threading.Event()
        self.samples: list[tuple[float, int]] = []
        self.alarms_seen: dict[int, float] = {}

    def run(self) -> None:
        last = 0
        while not self.stopped.is_set():
            now = time.time()
            self.samples.append((now, stored_count(self.engine)))
            with Session(self.engine) as session:
                for alarm_id in session.scalars(select(Alarm.id).where(Alarm.id > last)):
                    last = max(last, alarm_id)
                    self.alarms_seen[alarm_id] = now
            time.sleep(0.2)


def alarm_waits(engine: Engine, seen: dict[int, float]) -> list[float]:
    """Each alarm a reading opened: from the receipt of that reading's frame (the device's
    reading of the alarm's value at its time) until a sample saw the alarm. Alarms on a
    computed value (an AQI) and no-data alarms, which the watch opens, have no such reading
    and are left out."""
    waits = []
    with Session(engine) as session:
        for alarm in session.scalars(select(Alarm).where(Alarm.id.in_(seen))):
            received = session.scalar(
                select(func.min(Reading.received_at)).where(
                    Reading.device_id == alarm.device_id,
                    Reading.observed_at == alarm.opened_at,
                    Reading.value == alarm.value,
                )
            )
            if received is not None:
                waits.append(seen[alarm.id] - received.timestamp())
    return sorted(waits)


def stored_latency_p95(engine: Engine, samples: list[tuple[float, int]]) -> float:
    """Each frame's wait from its receipt until the first sample that counts it stored (in
    store order, which is receive order within a partition)."""
    with Session(engine) as session:
        received = session.scalars(select(RawFrame.received_at).order_by(RawFrame.id)).all()
    waits, sample = [], 0
    for index, moment in enumerate(received):
        while sample < len(samples) and samples[sample][1] <= index:
            sample += 1
        if sample == len(samples):
            break
        at = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
        waits.append(samples[sample][0] - at.timestamp())
    waits.sort()
    return waits[int(len(waits) * 0.95)] if waits else 0.0


def writer_env(settings: Settings, stream: str) -> dict[str, str]:
    env = {
        **os.environ,
        "QILU_DATA_DIR": str(settings.data_dir),
        "QILU_PII_KEY": settings.pii_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_INDEX_KEY": settings.index_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_MONITOR_BUS": NATS,
        "QILU_MONITOR_STREAM": stream,
        "QILU_LOG_LEVEL": "warning",
    }
    if settings.database_url:
        env["QILU_DATABASE_URL"] = settings.database_url
    return env


async def drop_stream(stream: str) -> None:
    connection = await nats.connect(NATS)
    await connection.jetstream().delete_stream(stream)
    await connection.close()


def measure(
    backend: str, settings: Settings, bus_name: str, devices: int, rate: float, seconds: float
) -> None:
    print(f"{backend}, {bus_name} bus:")
    engine = prepare(settings, devices)
    stream = f"QILU_BENCH_{secrets.token_hex(3).upper()}"
    writer = None
    bus: Bus = LocalBus(engine)
    if bus_name == "nats":
        bus = JetStreamBus(engine, NATS, stream=stream)
        writer = subprocess.Popen(
            [sys.executable, "-m", "qilu.cli", "monitor", "work"], env=writer_env(settings, stream)
        )
    sampler = Sampler(engine)

    async def main() -> tuple[Any, Any]:
        servers, ports = await echo_ports()
        baseline = await asyncio.to_thread(run_simulator, ports, devices, rate, seconds)
        for server in servers:
            server.close()
        listener = Listener(bus, {"jt808": 0, "hj212": 0, "sl651": 0}, host="127.0.0.1")
        bound = await listener.start()
        sampler.start()
        before = resource.getrusage(resource.RUSAGE_SELF)
        result = await asyncio.to_thread(run_simulator, bound, devices, rate, seconds)
        after = resource.getrusage(resource.RUSAGE_SELF)
        result["listener_cpu"] = (after.ru_utime + after.ru_stime) - (
            before.ru_utime + before.ru_stime
        )
        await listener.stop()
        return baseline, result

    baseline, result = uvloop.run(main())
    deadline = time.monotonic() + 300
    while stored_count(engine) < result["answered"] and time.monotonic() < deadline:
        time.sleep(0.5)
    drained = time.time()
    time.sleep(0.5)
    sampler.stopped.set()
    sampler.join()
    stored = stored_count(engine)
    writer_cpu = 0.0
    if writer is not None:
        writer.terminate()
        writer.wait()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        writer_cpu = usage.ru_utime + usage.ru_stime - result["cpu"] - baseline["cpu"]
        asyncio.run(drop_stream(stream))
    p95_stored = stored_latency_p95(engine, sampler.samples)
    stored_rate = stored / max(drained - sampler.samples[0][0], 0.001)
    waits = alarm_waits(engine, sampler.alarms_seen)
    engine.dispose()
    answered_rate = result["answered"] / result["elapsed"]
    cores = result["listener_cpu"] + writer_cpu
    print(
        f"    {result['peak']:,} connections at once ({result['failed']} failed); "
        f"{answered_rate:,.0f} frames/s answered ({result['answered']:,} answered, "
        f"{result['unanswered']} unanswered); answer p50 {result['p50'] * 1000:.0f} ms, "
        f"p95 {result['p95'] * 1000:.0f} ms"
    )
    print(
        f"    stored {stored:,} frames, {stored_rate:,.0f}/s until the last "
        f"({max(0, result['answered'] - stored):,} answered and not stored); "
        f"ingest → stored p95 {p95_stored:.2f} s; "
        f"listener {result['listener_cpu']:.0f} CPU s, writer {writer_cpu:.0f} CPU s: "
        f"{stored / max(cores, 0.01):,.0f} frames per CPU second"
    )
    if waits:
        p50, p95 = waits[len(waits) // 2], waits[int(len(waits) * 0.95)]
        print(
            f"    ingest → alarm opened (beyond its pending period): p50 {p50:.2f} s, "
            f"p95 {p95:.2f} s over {len(waits)} alarms"
        )
    echo_rate = baseline["answered"] / baseline["elapsed"]
    print(
        f"    baseline (echo server, same simulator): {echo_rate:,.0f} frames/s, "
        f"p95 {baseline['p95'] * 1000:.1f} ms; simulator {result['cpu']:.0f} CPU s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=2000, help="frames/s asked of the fleet")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--bus", choices=["local", "nats", "both"], default="both")
    stores.add_options(parser)
    args = parser.parse_args()
    buses = ["local", "nats"] if args.bus == "both" else [args.bus]
    for bus_name in buses:  # a fresh store for each
        for backend, settings in stores.stores(args, log_level="warning"):
            measure(backend, settings, bus_name, args.devices, args.rate, args.seconds)


if __name__ == "__main__":
    main()
