from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from qilu.demo.seed import SeedPlan, seed_shandong
from qilu.pii import Vault


def test_home_shows_the_parts_and_live_counts(
    client: TestClient, connection: Connection, vault: Vault
) -> None:
    seed_shandong(connection, vault, SeedPlan(seed=5, residents=120, entities=17))
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="zh-CN">' in html
    assert 'name="viewport"' in html
    assert 'data-stat="residents">120<' in html
    assert 'data-stat="entities">17<' in html
    for part in ("一号通行", "一体化大数据平台", "一网通办", "监测预警", "全景地图", "督导评估"):
        assert part in html
    assert "16 市 · 136 县区" in html
