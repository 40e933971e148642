"""`qilu serve --workers 2` in its own process for the HTTP figures, ready when it answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def served(env: dict[str, str], port: int, workers: int = 2) -> Iterator[str]:
    """Serve with these QILU_ settings on `port`; yields the base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "qilu.cli", "serve", "--workers", str(workers)],
        env={**os.environ, **env, "QILU_PORT": str(port), "QILU_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
