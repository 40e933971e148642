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


def test_residents_navigation_has_no_staff_or_developer_entries(client: TestClient) -> None:
    """Issue 13: 工作台 and 开放接口 out of residents' navigation; developers find the API in the
    footer, staff their workbench from 我的账号."""
    html = client.get("/").text
    navigation = html[html.index('aria-label="主导航"') : html.index("</nav>")]
    assert "工作台" not in navigation and "开放接口" not in navigation
    assert 'href="/api/docs"' in html[html.index("<footer") :]
