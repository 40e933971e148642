"""ID-number validation rate, pure Python: `python -m bench.codes [--count N]`.

Validates N distinct, valid synthetic numbers (and decodes them), then a realistic mix as typed
(lower-case x, full-width digits, spaces), and prints values/s. Target: 1,000,000 in under 2 s.
Then the command line's standard-input path (`qilu codes check -` in a new process, import,
reading, describing and writing every line included) beside the bare validation loop of the same
run: target within 1.7× of it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta

from qilu.codes.divisions import SHANDONG, divisions
from qilu.codes.idcard import make_id_number, parse_id_number, validate_id_number

FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def numbers(count: int) -> list[str]:
    counties = [d.code for d in divisions().current("county", within=SHANDONG)]
    start = date(1940, 1, 1)
    return [
        make_id_number(
            counties[i % len(counties)],
            start + timedelta(days=(i * 7) % 30000),
            (i // 30000) % 999 + 1,
        )
        for i in range(count)
    ]


def as_typed(values: list[str]) -> list[str]:
    """Every tenth value full-width, every tenth lower case, every tenth with spaces."""
    typed = []
    for i, value in enumerate(values):
        if i % 10 == 1:
            value = value.translate(FULL_WIDTH)
        elif i % 10 == 2:
            value = value.lower()
        elif i % 10 == 3:
            value = f" {value[:6]} {value[6:14]} {value[14:]} "
        typed.append(value)
    return typed


def rate(label: str, check: object, values: list[str], repeat: int) -> float:
    """Best and median of `repeat` passes over the values: this machine is noisy."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for value in values:
            check(value)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    best, median = min(times), statistics.median(times)
    print(
        f"{label:<42} {len(values):>9,}: best {best:5.2f} s ({len(values) / best:>9,.0f}/s), "
        f"median {median:5.2f} s ({len(values) / median:>9,.0f}/s)"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    count, repeat = args.count, args.repeat
    values = numbers(count)
    assert len(set(values)) == count
    validate_id_number(values[0])  # build the look-up tables outside the timing
    seconds = rate("validate_id_number (clean)", validate_id_number, values, repeat)
    rate("validate_id_number (as typed, 30% messy)", validate_id_number, as_typed(values), repeat)
    rate("parse_id_number (validate + decode)", parse_id_number, values, repeat)
    per_million = seconds * 1_000_000 / count
    verdict = "meets" if per_million < 2 else "MISSES"
    print(f"target: 1,000,000 validations in under 2 s -> {verdict} (median {per_million:.2f} s)")
    command_line(values, repeat)


def command_line(values: list[str], repeat: int) -> None:
    """`qilu codes check -` over the values, each pass in a new process, beside the bare loop."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(values) + "\n")
        listing.flush()
        command = [sys.executable, "-c", "from qilu.entry import main; main()"]
        ratios = []
        for _ in range(repeat):
            started = time.perf_counter()
            for value in values:
                validate_id_number(value)
            bare = time.perf_counter() - started
            with open(listing.name, "rb") as stdin:
                started = time.perf_counter()
                subprocess.run(
                    [*command, "codes", "check", "-"],
                    stdin=stdin,
                    stdout=subprocess.DEVNULL,
                    check=True,
                )
                piped = time.perf_counter() - started
            ratios.append(piped / bare)
            print(f"qilu codes check - {len(values):>9,}: {piped:5.2f} s, bare loop {bare:5.2f} s")
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio <= 1.7 else "MISSES"
    print(f"target: standard input within 1.7x of the bare loop -> {verdict} (median {ratio:.2f}x)")


if __name__ == "__main__":
    main()
