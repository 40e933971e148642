"""The home page and the code check in a real browser, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.identity.service import register_counts

from .browser import LiveServer, needs_browser

pytestmark = needs_browser


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 800)], ids=["phone", "desktop"])
def test_home_page(
    live_server: LiveServer, browser: object, width: int, height: int, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    outside: list[str] = []
    server = live_server.base
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(server + "/")
    assert page.title() == "首页 · 数字山东一体化平台"
    assert page.locator("h1").inner_text() == "一个平台、一个号码、一网通办"
    # The register as it stands (other page tests add newborns to the 人口 library, and so to it).
    engine = make_engine(live_server.settings)
    with Session(engine) as session:
        counts = register_counts(session)
    engine.dispose()
    assert counts.residents >= 300 and counts.entities >= 40  # the live server's seed, at least
    assert page.locator('[data-stat="residents"]').inner_text() == f"{counts.residents:,}"
    assert page.locator('[data-stat="entities"]').inner_text() == f"{counts.entities:,}"
    assert page.locator(".part").count() == 8
    # Nothing spills sideways on a phone, and the layout is one column there.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('.parts')).gridTemplateColumns.split(' ').length"
    )
    assert columns == (1 if width < 600 else 4)
    page.screenshot(path=str(tmp_path / f"home-{width}.png"), full_page=True)
    assert outside == [] and failed == []
    page.close()


def test_check_a_number_from_the_home_page(live_server: LiveServer, browser: object) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.goto(live_server.base + "/")
    page.get_by_role("link", name="号码核验").first.click()
    page.get_by_label("号码").fill("11010519491231002X\n370102199003073510")
    page.get_by_role("button", name="核验").click()
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 2
    assert "有效" in rows.nth(0).inner_text()
    assert "校验码应为 6" in rows.nth(1).inner_text()
    assert "id_number." not in rows.nth(1).inner_text()  # machine codes are for the API
    page.close()
