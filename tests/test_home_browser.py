"""The home page in a real browser (Playwright driving Debian's Chromium), on a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qilu.db import make_engine
from qilu.demo.service import generate

from .conftest import make_settings
from .servers import free_port, wait_until_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`qilu serve` in its own process on a seeded embedded store."""
    data_dir = tmp_path_factory.mktemp("browser-data")
    settings = make_settings(data_dir)
    generate(make_engine(settings), settings, scale=300, seed=11, entities=40)
    port = free_port()
    env = {
        **os.environ,
        "QILU_DATA_DIR": str(data_dir),
        "QILU_PORT": str(port),
        "QILU_PII_KEY": settings.pii_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_INDEX_KEY": settings.index_key.get_secret_value(),
    }  # type: ignore[union-attr]
    process = subprocess.Popen(
        [sys.executable, "-m", "qilu.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 800)], ids=["phone", "desktop"])
def test_home_page(server: str, browser: object, width: int, height: int, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(server + "/")
    assert page.title() == "首页 · 数字山东一体化平台"
    assert page.locator("h1").inner_text() == "一个平台、一个号码、一网通办"
    assert page.locator('[data-stat="residents"]').inner_text() == "300"
    assert page.locator('[data-stat="entities"]').inner_text() == "40"
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


def test_check_a_number_from_the_home_page(server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.goto(server + "/")
    page.get_by_role("link", name="号码核验").first.click()
    page.get_by_label("号码").fill("11010519491231002X\n370102199003073510")
    page.get_by_role("button", name="核验").click()
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 2
    assert "有效" in rows.nth(0).inner_text()
    assert "校验码应为 6" in rows.nth(1).inner_text()
    assert "id_number." not in rows.nth(1).inner_text()  # machine codes are for the API
    page.close()
