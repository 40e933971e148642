"""How `src/qilu/static/vendor/echarts/shandong-cities.json` was made (run once, offline).

Source: the npm package echarts 4.9.0 (Apache-2.0), `map/json/province/shandong.json`: the 17
prefecture-level cities of Shandong as ECharts' compressed GeoJSON ("UTF8Encoding": each ring a
string of zigzag-encoded deltas, scaled by 1024). This decodes it to plain GeoJSON (WGS-84
longitude, latitude) and, since 莱芜市 (371200) became part of 济南市 in 2019, adds 莱芜's
polygons to 济南's feature. County boundaries are not in any package on the registries this
machine reaches; the map shows cities.

    npm pack echarts@4.9.0 && tar xzf echarts-4.9.0.tgz package/map/json/province/shandong.json
    python docs/vendor/shandong_map.py package/map/json/province/shandong.json \
        src/qilu/static/vendor/echarts/shandong-cities.json
"""

from __future__ import annotations

import json
import sys
from typing import Any


def decode_ring(encoded: str, offsets: list[int], scale: float) -> list[list[float]]:
    """ECharts' `decodePolygon`: zigzag, delta, then divide by the scale."""
    x, y = offsets
    ring = []
    for index in range(0, len(encoded), 2):
        dx, dy = ord(encoded[index]) - 64, ord(encoded[index + 1]) - 64
        x += (dx >> 1) ^ -(dx & 1)
        y += (dy >> 1) ^ -(dy & 1)
        ring.append([round(x / scale, 5), round(y / scale, 5)])
    return ring


def decode(collection: dict[str, Any]) -> dict[str, Any]:
    scale = collection.get("UTF8Scale", 1024)
    features: dict[str, dict[str, Any]] = {}
    for feature in collection["features"]:
        geometry = feature["geometry"]
        polygons = (
            [geometry["coordinates"]]
            if geometry["type"] == "Polygon"
            else geometry["coordinates"]
        )
        offsets = (
            [geometry["encodeOffsets"]]
            if geometry["type"] == "Polygon"
            else geometry["encodeOffsets"]
        )
        decoded = [
            [decode_ring(r, o, scale) for r, o in zip(rings, ring_offsets, strict=True)]
            for rings, ring_offsets in zip(polygons, offsets, strict=True)
        ]
        code = feature["id"]
        features[code] = {
            "type": "Feature",
            "id": code,
            "properties": {"name": feature["properties"]["name"], "code": code},
            "geometry": {"type": "MultiPolygon", "coordinates": decoded},
        }
    laiwu = features.pop("371200")  # 2019: 莱芜市 joined 济南市
    features["370100"]["geometry"]["coordinates"] += laiwu["geometry"]["coordinates"]
    return {"type": "FeatureCollection", "features": list(features.values())}


if __name__ == "__main__":
    source, target = sys.argv[1:3]
    with open(source, encoding="utf-8") as given:
        result = decode(json.load(given))
    with open(target, "w", encoding="utf-8") as out:
        json.dump(result, out, ensure_ascii=False, separators=(",", ":"))
