"""Which county a position lies in: Shandong's 136 county-level divisions, from the same offline
geometry the map draws (`static/vendor/echarts/shandong.json`, made by
`docs/vendor/shandong_map.py`). A vehicle's alarm belongs to the county where it happened, so
that county's duty officers (and its city's, and the province's) handle it, wherever the
vehicle was registered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from qilu.monitor import geo

Ring = list[tuple[float, float]]  # (latitude, longitude), as geo.inside takes them


@dataclass(frozen=True)
class County:
    code: str
    polygons: list[list[Ring]]  # each an outer ring and its holes
    box: tuple[float, float, float, float]  # south, west, north, east

    def holds(self, latitude: float, longitude: float) -> bool:
        south, west, north, east = self.box
        if not (south <= latitude <= north and west <= longitude <= east):
            return False
        return any(
            geo.inside(outer, latitude, longitude)
            and not any(geo.inside(hole, latitude, longitude) for hole in holes)
            for outer, *holes in self.polygons
        )


@cache
def counties() -> list[County]:
    text = resources.files("qilu").joinpath("static/vendor/echarts/shandong.json")
    found = []
    for feature in json.loads(text.read_text(encoding="utf-8"))["features"]:
        polygons = [
            [[(lat, lng) for lng, lat in ring] for ring in polygon]
            for polygon in feature["geometry"]["coordinates"]
        ]
        points = [p for polygon in polygons for p in polygon[0]]
        box = (
            min(p[0] for p in points),
            min(p[1] for p in points),
            max(p[0] for p in points),
            max(p[1] for p in points),
        )
        found.append(County(feature["id"], polygons, box))
    return found


def county_at(latitude: float, longitude: float) -> str | None:
    """The code of the county holding the position, None outside Shandong (or at sea)."""
    for county in counties():
        if county.holds(latitude, longitude):
            return county.code
    return None
