"""Synthetic generation and insert rate: `python -m bench.seed [--scale N] [--backend B]`.

Generates and stores N residents (with the 4,011 departments and their staff) into a fresh SQLite
file and/or a fresh PostgreSQL database, exactly as `qilu seed --entities 0` does, timed from the
empty database to the commit; `--entities M` adds legal entities. Prints per-stage times, rows/s
and peak memory (this process and its worker processes). Targets for 1,000,000 residents on a
2-core machine: PostgreSQL under 60 s, SQLite under 90 s, memory well under 1 GiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

from bench import stores
from qilu.db import make_engine
from qilu.demo.service import generate
from qilu.settings import Settings

TARGETS = {"sqlite": 90.0, "postgresql": 60.0}


class StageClock:
    """A Progress that times each stage of the seed."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.totals: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def start(self, stage: str, total: int) -> None:
        self.started[stage] = self.last[stage] = time.perf_counter()
        self.totals[stage] = total

    def advance(self, stage: str, amount: int) -> None:
        self.last[stage] = time.perf_counter()

    def report(self) -> None:
        for stage, started in self.started.items():
            seconds = max(self.last[stage] - started, 1e-9)
            rows = self.totals[stage]
            print(
                f"    {stage:<6} {rows:>10,} rows {seconds:7.2f} s {rows / seconds:>11,.0f} rows/s"
            )


def run(backend: str, settings: Settings, scale: int, entities: int, workers: int | None) -> float:
    clock = StageClock()
    engine = make_engine(settings)
    started = time.perf_counter()
    generate(
        engine,
        settings,
        scale=scale,
        seed=2020,
        entities=entities,
        workers=workers,
        progress=clock,
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"{backend}: {scale:,} residents, {entities:,} entities: {seconds:.1f} s from empty "
        f"database to commit = {scale / seconds:,.0f} residents/s"
    )
    clock.report()
    print(f"    peak memory: main process {own:,.0f} MiB, largest worker {children:,.0f} MiB")
    if entities == 0:
        per_million = seconds * 1_000_000 / scale
        verdict = "meets" if per_million <= TARGETS[backend] else "MISSES"
        print(
            f"    target: 1,000,000 residents in under {TARGETS[backend]:.0f} s -> {verdict} "
            f"({per_million:.1f} s per million)"
        )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    stores.add_options(parser)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, workers: {args.workers or 'auto'}")
    for backend, settings in stores.stores(args):
        run(backend, settings, args.scale, args.entities, args.workers)


if __name__ == "__main__":
    main()
