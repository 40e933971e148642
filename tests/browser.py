"""Fixtures for page tests in a real browser (Playwright driving Debian's Chromium) against
`qilu serve` running in its own process on a seeded embedded store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qilu.db import make_engine
from qilu.demo.service import generate
from qilu.settings import Settings

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
needs_browser = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@dataclass(frozen=True)
class LiveServer:
    base: str
    settings: Settings


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from .conftest import make_settings

    data_dir = tmp_path_factory.mktemp("browser-data")
    settings = make_settings(data_dir)
    generate(make_engine(settings), settings, scale=300, seed=11, entities=40)
    port = free_port()
    keys = {
        "QILU_PII_KEY": settings.pii_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_INDEX_KEY": settings.index_key.get_secret_value(),  # type: ignore[union-attr]
    }
    env = {**os.environ, "QILU_DATA_DIR": str(data_dir), "QILU_PORT": str(port), **keys}
    with open(data_dir / "server.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "qilu.cli", "serve"], env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base)
        yield LiveServer(base, settings)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()
