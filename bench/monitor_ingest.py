"""Telemetry ingest end to end: `python -m bench.monitor_ingest [--seconds S] [--connections C]`.

A fresh store (SQLite and/or a throw-away PostgreSQL database) with registered devices and the
shipped rules; `qilu monitor listen`'s Listener in this process; simulated devices in another
process, C connections at once, each sending a frame and waiting for its answer (the answer
comes only once the frame's batch is stored and its readings evaluated), in the issue's mix:
70 % JT/T 808 locations, 20 % HJ 212 minute data, 10 % SL 651 reports. Prints frames/s and the
send → answered latency (p50, p95), against a baseline in the same run: the same simulator
against an echo server that answers at once (what the loopback and the simulator cost).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench import stores
from qilu.db import make_engine, upgrade
from qilu.monitor import devices, hj212, jt808, rules, sl651
from qilu.monitor.bus import LocalBus
from qilu.monitor.listen import Listener
from qilu.monitor.models import Reading
from qilu.settings import Settings

VEHICLES, STACKS, STATIONS = 700, 200, 100


def vehicle(n: int) -> str:
    return f"1380000{n:04d}"


def stack(n: int) -> str:
    return f"37010200000000000000{n:04d}"


def station_code(n: int) -> str:
    return f"0037{n:06d}"


def frame(kind: str, n: int, serial: int) -> bytes:
    now = datetime.now(UTC)
    if kind == "jt808":
        body = jt808.location(
            lat=36.6 + n / 1e4, lng=117.0 + n / 1e4, speed_kmh=60 + n % 30, altitude_m=40,
            direction=n % 360, time=now,
        )  # fmt: skip
        return jt808.encode(0x0200, vehicle(n), serial, body)
    if kind == "hj212":
        return hj212.encode(
            cn="2051", mn=stack(n), st="31", pw="123456", qn=None, data_time=now,
            values={"a21026-Avg": 20 + n % 20, "a21002-Avg": 30 + n % 30}, ack=True,
        )  # fmt: skip
    return sl651.encode(
        centre=1, station=station_code(n), password="1234", function=0x32, serial=serial,
        sent=now, station_class="H", observed=now,
        values={0x39: (25.0 + n / 100, 4, 3), 0x38: (12.1, 2, 2)},
    )  # fmt: skip


async def simulate(ports: dict[str, int], connections: int, seconds: float) -> dict[str, Any]:
    """C device connections, each sending and awaiting its answer until time is up."""
    latencies: list[float] = []
    kinds = ["jt808"] * 7 + ["hj212"] * 2 + ["sl651"]
    deadline = time.monotonic() + seconds

    async def device(index: int) -> None:
        kind = kinds[index % len(kinds)]
        count = {"jt808": VEHICLES, "hj212": STACKS, "sl651": STATIONS}[kind]
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[kind])
        serial, n = 0, index % count
        while time.monotonic() < deadline:
            serial = (serial + 1) & 0xFFFF
            sent = time.monotonic()
            writer.write(frame(kind, n, serial))
            await writer.drain()
            if not await reader.read(4096):
                break
            latencies.append(time.monotonic() - sent)
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(device(i) for i in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "frames": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50": statistics.median(latencies) if latencies else 0.0,
        "p95": latencies[int(len(latencies) * 0.95)] if latencies else 0.0,
    }


def _simulator(ports: dict[str, int], connections: int, seconds: float, out: Any) -> None:
    out.put(asyncio.run(simulate(ports, connections, seconds)))


def run_simulator(ports: dict[str, int], connections: int, seconds: float) -> dict[str, Any]:
    queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_simulator, args=(ports, connections, seconds, queue))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    return result


async def echo_ports() -> tuple[list[asyncio.Server], dict[str, int]]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data[:16])
            await writer.drain()

    servers, ports = [], {}
    for name in ("jt808", "hj212", "sl651"):
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    return servers, ports


def prepare(settings: Settings) -> Any:
    engine = make_engine(settings)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        rules.install(session)
        specs = [
            *(devices.DeviceSpec("jt808", vehicle(n), "vehicle", f"车{n}", "370102", 30)
              for n in range(VEHICLES)),
            *(devices.DeviceSpec("hj212", stack(n), "pollution_source", f"排口{n}", "370102", 60)
              for n in range(STACKS)),
            *(devices.DeviceSpec("sl651", station_code(n), "hydro_station", f"站{n}", "370102", 300)
              for n in range(STATIONS)),
        ]  # fmt: skip
        for spec in specs:
            devices.register(session, spec)
    return engine


def measure(backend: str, settings: Settings, connections: int, seconds: float) -> None:
    engine = prepare(settings)

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        servers, ports = await echo_ports()
        baseline = await asyncio.to_thread(run_simulator, ports, connections, seconds)
        for server in servers:
            server.close()
        listener = Listener(
            LocalBus(engine), {"jt808": 0, "hj212": 0, "sl651": 0}, host="127.0.0.1"
        )
        bound = await listener.start()
        result = await asyncio.to_thread(run_simulator, bound, connections, seconds)
        await listener.stop()
        return baseline, result

    baseline, result = asyncio.run(main())
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(Reading)) or 0
    engine.dispose()
    print(
        f"{backend}: {connections} connections, {seconds:.0f} s: {result['per_second']:,.0f} "
        f"frames/s stored and answered ({result['frames']:,} frames, {stored:,} readings); "
        f"answered p50 {result['p50'] * 1000:.0f} ms, p95 {result['p95'] * 1000:.0f} ms"
    )
    print(
        f"    baseline (echo server, same simulator): {baseline['per_second']:,.0f} frames/s, "
        f"p95 {baseline['p95'] * 1000:.1f} ms; "
        f"ratio {baseline['per_second'] / result['per_second']:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=200)
    stores.add_options(parser)
    args = parser.parse_args()
    for backend, settings in stores.stores(args, log_level="warning"):
        measure(backend, settings, args.connections, args.seconds)


if __name__ == "__main__":
    main()
