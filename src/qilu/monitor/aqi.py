"""The air quality index (AQI) per HJ 633 (环境空气质量指数技术规定), by edition.

- `2012`: HJ 633-2012's table 1 in full, against the limits of GB 3095-2012.
- `2026`: GB 3095-2026 (published 2026-02-13, in force from 2026-03-01) tightened the 24-hour
  class-2 limits of PM2.5 (75 → 60 µg/m³) and PM10 (150 → 120), and the index's IAQI-100
  breakpoints of the two moved with them. Only those two breakpoints are known to have moved
  (from two public implementations; the revised HJ 633 text was not found): every other
  breakpoint stays as in 2012, and this is what `2026` computes until the revised table is
  read.

Data about a moment before 2026-03-01 is computed with 2012, later data with 2026
(`edition_for`), so an old hour's index is what was published for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from qilu.monitor.frames import BEIJING

Edition = Literal["2012", "2026"]
IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
IN_FORCE_2026 = datetime(2026, 3, 1, tzinfo=BEIJING)  # GB 3095-2026 in force

# HJ 633-2012 表 1: concentration at each IAQI breakpoint (µg/m³; CO in mg/m³). Hourly (1 h)
# rows are used for the real-time index; PM2.5 and PM10 have 24-hour rows only, which the
# real-time index applies to their hourly values.
BREAKPOINTS_2012: dict[str, tuple[float, ...]] = {
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "so2_1h": (0, 150, 500, 650, 800),  # above 800: the 24-hour row (注 2)
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "no2_1h": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "co_1h": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "o3_8h": (0, 100, 160, 215, 265, 800),  # above 800: the 1-hour row (注 3)
    "pm25_24h": (0, 35, 75, 115, 150, 250, 350, 500),
}
BREAKPOINTS: dict[Edition, dict[str, tuple[float, ...]]] = {
    "2012": BREAKPOINTS_2012,
    "2026": {
        **BREAKPOINTS_2012,
        "pm10_24h": (0, 50, 120, 250, 350, 420, 500, 600),
        "pm25_24h": (0, 35, 60, 115, 150, 250, 350, 500),
    },
}
# HJ 212 factor codes of the six pollutants, and the row each takes in the hourly index.
HOURLY = {
    "a21026": "so2_1h",
    "a21004": "no2_1h",
    "a34002": "pm10_24h",
    "a21005": "co_1h",
    "a05024": "o3_1h",
    "a34004": "pm25_24h",
}
NAMES = {"a21026": "SO₂", "a21004": "NO₂", "a34002": "PM10", "a21005": "CO", "a05024": "O₃",
         "a34004": "PM2.5"}  # fmt: skip
# 表 2: the six categories by AQI, with their colours.
CATEGORIES = (
    (50, "优", "#00E400"),
    (100, "良", "#FFFF00"),
    (150, "轻度污染", "#FF7E00"),
    (200, "中度污染", "#FF0000"),
    (300, "重度污染", "#99004C"),
    (float("inf"), "严重污染", "#7E0023"),
)


@dataclass(frozen=True)
class Index:
    aqi: int
    primary: tuple[str, ...]  # HJ 212 codes of the primary pollutants (none at AQI ≤ 50)
    category: str
    colour: str
    exceeding: tuple[str, ...]  # 超标污染物: IAQI above 100


def edition_for(moment: datetime) -> Edition:
    """The edition in force for data about `moment`."""
    return "2026" if moment >= IN_FORCE_2026 else "2012"


def iaqi(concentration: float, row: str, edition: Edition = "2026") -> float | None:
    """The individual index of one pollutant (公式 1), None where the row has no breakpoint
    above the value (SO₂ 1 h past 800, O₃ 8 h past 800: the standard switches rows)."""
    points = BREAKPOINTS[edition][row]
    if concentration < 0:
        return None
    for index in range(1, len(points)):
        low, high = points[index - 1], points[index]
        if concentration <= high:
            low_i, high_i = IAQI[index - 1], IAQI[index]
            return (high_i - low_i) / (high - low) * (concentration - low) + low_i
    return None if len(points) < len(IAQI) else 500.0  # beyond the table: 500 (注 1)


def hourly(values: dict[str, float], edition: Edition = "2026") -> Index | None:
    """The real-time (hourly) index from hourly concentrations by HJ 212 factor code
    (`a34004` …), None when none of the six is there. SO₂ above 800 µg/m³ takes its
    24-hour row, as 表 1's 注 2 says."""
    individual: dict[str, float] = {}
    for code, row in HOURLY.items():
        if code not in values:
            continue
        value = iaqi(values[code], row, edition)
        if value is None and code == "a21026":
            value = iaqi(values[code], "so2_24h", edition)
        if value is not None:
            individual[code] = value
    if not individual:
        return None
    top = max(individual.values())
    aqi = _ceil(top)
    primary = tuple(c for c, v in individual.items() if _ceil(v) == aqi) if aqi > 50 else ()
    category, colour = next((n, c) for limit, n, c in CATEGORIES if aqi <= limit)
    exceeding = tuple(c for c, v in individual.items() if v > 100)
    return Index(aqi, primary, category, colour, exceeding)


def _ceil(value: float) -> int:
    """HJ 633 5.2: indices are rounded up to whole numbers."""
    whole = int(value)
    return whole if whole == value else whole + 1
