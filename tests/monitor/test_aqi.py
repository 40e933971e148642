"""The AQI (issue 15): HJ 633-2012's whole table 1, and the 2026 edition that follows GB
3095-2026's tighter PM2.5 and PM10 limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qilu.monitor import aqi


@pytest.mark.parametrize("row", sorted(aqi.BREAKPOINTS_2012))
def test_every_breakpoint_of_hj_633_2012_table_1(row: str) -> None:
    """At each concentration breakpoint of 表 1 the IAQI is the breakpoint's own index."""
    for concentration, expected in zip(aqi.BREAKPOINTS_2012[row], aqi.IAQI, strict=False):
        assert aqi.iaqi(concentration, row, "2012") == pytest.approx(expected), concentration


def test_values_between_breakpoints_are_interpolated() -> None:
    # 公式 1: PM2.5 95 µg/m³ lies between 75 (IAQI 100) and 115 (150): 100 + 50 × 20 / 40.
    assert aqi.iaqi(95, "pm25_24h", "2012") == pytest.approx(125)
    # aqi-hub 0.3.3 gives 50 here; the table says SO₂ 24 h 150 µg/m³ is IAQI 100.
    assert aqi.iaqi(150, "so2_24h", "2012") == pytest.approx(100)
    assert aqi.iaqi(900, "pm25_24h", "2012") == 500  # past the table: 500
    assert aqi.iaqi(900, "so2_1h", "2012") is None  # past 800: the 24-hour row instead


def test_the_2026_edition_moves_pm_only() -> None:
    assert aqi.iaqi(60, "pm25_24h", "2026") == pytest.approx(100)
    assert aqi.iaqi(60, "pm25_24h", "2012") == pytest.approx(81.25)  # 50 + 50 × 25 / 40
    assert aqi.iaqi(120, "pm10_24h", "2026") == pytest.approx(100)
    assert aqi.iaqi(200, "no2_1h", "2026") == aqi.iaqi(200, "no2_1h", "2012") == 100
    assert aqi.edition_for(datetime(2026, 2, 28, 15, 59, tzinfo=UTC)) == "2012"
    assert aqi.edition_for(datetime(2026, 2, 28, 16, 0, tzinfo=UTC)) == "2026"  # 3月1日 0 时


def test_the_hourly_index_names_its_primary_and_exceeding_pollutants() -> None:
    hour = {"a34004": 95.0, "a34002": 120.0, "a21026": 20.0, "a21004": 60.0, "a05024": 90.0}
    index = aqi.hourly(hour, "2012")
    assert index is not None
    assert (index.aqi, index.primary, index.category) == (125, ("a34004",), "轻度污染")
    assert index.exceeding == ("a34004",)
    stricter = aqi.hourly(hour, "2026")
    assert stricter is not None and stricter.aqi > index.aqi  # 95 is further past 60 than 75
    clean = aqi.hourly({"a34004": 20.0, "a21004": 30.0}, "2012")
    assert clean is not None and (clean.aqi, clean.primary, clean.category) == (29, (), "优")
    assert aqi.hourly({"a01012": 25.0}) is None  # no pollutant of the six
    # SO₂ past 800 µg/m³ in an hour: its 24-hour row decides (表 1 注 2): 200 + 100 × 100 / 800.
    assert aqi.hourly({"a21026": 900.0}, "2012") == aqi.Index(213, ("a21026",), "重度污染",
                                                          "#99004C", ("a21026",))  # fmt: skip
