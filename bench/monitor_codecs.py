"""Telemetry codecs alone: `python -m bench.monitor_codecs [--seconds S]`.

Frames per second on one core for each protocol's splitter + decoder, on frames shaped like the
field's (an HJ 212 minute packet of 12 factors, a JT/T 808 location with extras, an SL 651
timed report), against a baseline in the same run: `json.loads` of the frame's own JSON
(what a device speaking plain JSON over MQTT would cost to parse). The issue's mix (70 % JT/T
808, 20 % HJ 212, 10 % SL 651) gives the figure a listener's decoding is bounded by.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import datetime

from qilu.monitor import hj212, jt808, sl651
from qilu.monitor.frames import BEIJING

MOMENT = datetime(2026, 12, 7, 9, 0, tzinfo=BEIJING)


def frames() -> dict[str, tuple[bytes, Callable[[], object]]]:
    factors = ["a21026", "a21002", "a34013", "a19001", "a01012", "a01011", "a00000", "a01014"]
    values = {f"{code}-{s}": 12.345 for code in factors[:4] for s in ("Min", "Avg", "Max")}
    values |= {f"{code}-Avg": 3.5 for code in factors[4:]}
    hj = hj212.encode(
        cn="2051", mn="370102000000000000000001", st="31", pw="123456",
        qn="20261207090000000", data_time=MOMENT, values=values,
        flags={code: "N" for code in factors}, ack=True,
    )  # fmt: skip
    body = jt808.location(
        lat=36.651, lng=117.12, speed_kmh=72.5, altitude_m=40, direction=180, time=MOMENT
    ) + bytes.fromhex("0104000012340202003730011f3101 0c".replace(" ", ""))
    jt = jt808.encode(0x0200, "013800138000", 7, body)
    sl = sl651.encode(
        centre=1, station="0037010201", password="1234", function=0x32, serial=9,
        sent=MOMENT, station_class="H", observed=MOMENT,
        values={0x20: (4.0, 3, 1), 0x26: (120.5, 3, 1), 0x39: (27.31, 4, 3), 0x38: (12.1, 2, 2)},
    )  # fmt: skip
    return {
        "hj212": (hj, lambda: hj212.Splitter().feed(hj) and hj212.decode(hj)),
        "jt808": (jt, lambda: jt808.Splitter().feed(jt) and jt808.decode(jt)),
        "sl651": (sl, lambda: sl651.Splitter().feed(sl) and sl651.decode(sl)),
    }


def rate(work: Callable[[], object], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            work()
        count += 200
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    rates = {}
    for name, (raw, work) in frames().items():
        decoded = json.dumps(
            {"ok": True, **{k: v for k, v in work().as_json().items() if k != "ok"}}  # type: ignore[attr-defined]
        )
        rates[name] = rate(work, args.seconds)
        baseline = rate(lambda text=decoded: json.loads(text), args.seconds)
        print(
            f"{name}: {len(raw):4d}-byte frame, {rates[name]:9,.0f} frames/s on one core; "
            f"json.loads of its {len(decoded)}-byte JSON {baseline:9,.0f}/s; "
            f"ratio {baseline / rates[name]:.1f}x"
        )
    mix = 1 / (0.7 / rates["jt808"] + 0.2 / rates["hj212"] + 0.1 / rates["sl651"])
    print(f"issue mix (70 % JT/T 808, 20 % HJ 212, 10 % SL 651): {mix:,.0f} frames/s per core")


if __name__ == "__main__":
    main()
