"""Plane geometry on WGS-84 positions at a province's scale: distances in kilometres on a local
equirectangular projection (under 0.5 % off within a few hundred kilometres, which is what a
route corridor or a 禁行区 needs), and polygons by ray casting."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

KM_PER_DEGREE = 111.195  # one degree of latitude (mean Earth radius 6,371 km)

Point = Sequence[float]  # (latitude, longitude)


def inside(polygon: Sequence[Point], latitude: float, longitude: float) -> bool:
    """Whether the position lies inside the polygon (its corners in order, not closed)."""
    found = False
    count = len(polygon)
    for index in range(count):
        lat1, lng1 = polygon[index][0], polygon[index][1]
        lat2, lng2 = polygon[(index + 1) % count][0], polygon[(index + 1) % count][1]
        if (lat1 > latitude) != (lat2 > latitude):
            crossing = lng1 + (latitude - lat1) * (lng2 - lng1) / (lat2 - lat1)
            if longitude < crossing:
                found = not found
    return found


def route_distance_km(route: Sequence[Point], latitude: float, longitude: float) -> float:
    """Kilometres from the position to the nearest point of the route (a polyline)."""
    scale = math.cos(math.radians(latitude))

    def plane(point: Point) -> tuple[float, float]:
        return (
            (point[1] - longitude) * KM_PER_DEGREE * scale,
            (point[0] - latitude) * KM_PER_DEGREE,
        )

    points = [plane(p) for p in route]
    if len(points) == 1:
        return math.hypot(*points[0])
    best = math.inf
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        dx, dy = x2 - x1, y2 - y1
        length = dx * dx + dy * dy
        t = 0.0 if length == 0 else max(0.0, min(1.0, -(x1 * dx + y1 * dy) / length))
        best = min(best, math.hypot(x1 + t * dx, y1 + t * dy))
    return best
