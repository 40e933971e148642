"""Proxy overhead: `python -m bench.api_proxy [--calls N] [--backend B]`.

A department's API (a local echo service in its own process) is registered in a fresh store and
granted to a consumer; `qilu serve` runs in its own process. The same call is made N times, one
after another on a kept-alive connection, directly to the echo service and through Qilu
(`/api/v1/apis/{code}/call/…`: token check, grant check, rate limit, the consumer's identity
signed SM2 for the provider, the answer's evidence signed SM2 and kept, one audit entry). The
figure is the difference of the medians; Qilu's own `GET /healthz` in the same run shows what
any request through the web stack costs. Target: overhead ≤ 2 ms at the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from sqlalchemy.orm import Session

from bench import stores
from bench.change_feed import _free_port
from bench.server import served
from qilu.data import apis, sharing
from qilu.db import make_engine, upgrade
from qilu.demo import organisations
from qilu.demo.seed import write_rows
from qilu.identity.oidc_clients import register_service_client
from qilu.identity.roles import OPERATOR
from qilu.settings import Settings

TARGET_MS = 2.0
CONSUMER = "370102-approval"
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "echo", "version": "1"},
    "paths": {"/echo/{word}": {"get": {"operationId": "echo", "summary": "回声"}}},
}


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave as two writes: no 40 ms stall

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def prepare(settings: Settings, echo: str) -> tuple[str, str]:
    """The store with the API registered and granted; the consumer system's credentials."""
    engine = make_engine(settings)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        columns = ["id", "code", "kind", "name", "level", "division_code", "parent_id", "uscc"]
        rows = [astuple(d) for d in organisations.department_rows()]
        write_rows(session.connection(), "departments", columns, rows)
        apis.register_api(
            session,
            {
                "code": "JK-BENCH-001",
                "name": "回声接口",
                "provider": "370000-public_security",
                "topic": "测试",
                "sharing": "unconditional",
                "legal_basis": "基准测试",
                "base_url": echo,
                "rate_per_second": 10_000,
                "openapi": OPENAPI,
            },
            actor=OPERATOR,
        )
        sharing.request_access(
            session,
            "JK-BENCH-001",
            consumer=CONSUMER,
            fields=["echo"],
            purpose="测量代理开销",
            legal_basis="基准测试",
            valid_until=datetime.now(UTC) + timedelta(days=1),
            actor=OPERATOR,
        )
        made = register_service_client(
            session,
            name="基准系统",
            department_code=CONSUMER,
            rate_per_second=10_000,
            actor=OPERATOR,
        )
        return made.client.client_id, made.secret or ""


def timed(client: httpx.Client, url: str, calls: int, headers: dict[str, str]) -> list[float]:
    for _ in range(min(200, calls)):  # warm up: connections, caches, the JIT-less interpreter
        client.get(url, headers=headers).raise_for_status()
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        answer = client.get(url, headers=headers)
        took.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return took


def run(backend: str, settings: Settings, calls: int) -> None:
    port = _free_port()
    echo = subprocess.Popen([sys.executable, "-m", "bench.api_proxy", "--echo", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        time.sleep(0.5)
        client_id, secret = prepare(settings, base)
        env = {
            "QILU_DATA_DIR": str(settings.data_dir),
            "QILU_PII_KEY": settings.pii_key.get_secret_value(),  # type: ignore[union-attr]
            "QILU_INDEX_KEY": settings.index_key.get_secret_value(),  # type: ignore[union-attr]
            "QILU_OUTBOX_INTERVAL": "0",
            **({"QILU_DATABASE_URL": settings.database_url} if settings.database_url else {}),
        }
        with served(env, _free_port(), workers=1) as qilu, httpx.Client() as client:
            token = client.post(
                f"{qilu}/oidc/token",
                data={"grant_type": "client_credentials", "scope": "data.read"},
                auth=(client_id, secret),
            ).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            direct = timed(client, f"{base}/echo/word", calls, {})
            health = timed(client, f"{qilu}/healthz", calls, {})
            proxied = timed(
                client, f"{qilu}/api/v1/apis/JK-BENCH-001/call/echo/word", calls, bearer
            )
    finally:
        echo.kill()
    medians = [statistics.median(t) for t in (direct, health, proxied)]
    nineties = [statistics.quantiles(t, n=10)[-1] for t in (direct, health, proxied)]
    overhead = medians[2] - medians[0]
    print(
        f"{backend}: {calls:,} calls each — direct to the echo service p50 {medians[0]:.2f} ms "
        f"(p90 {nineties[0]:.2f}); Qilu /healthz p50 {medians[1]:.2f} ms (p90 {nineties[1]:.2f}); "
        f"through Qilu p50 {medians[2]:.2f} ms (p90 {nineties[2]:.2f}) → overhead "
        f"{overhead:.2f} ms at the median (target ≤ {TARGET_MS:.0f} ms), "
        f"{medians[2] / medians[0]:.1f}× the direct call"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--echo", type=int, help="(internal) serve the echo service on PORT")
    stores.add_options(parser)
    args = parser.parse_args()
    if args.echo:
        ThreadingHTTPServer(("127.0.0.1", args.echo), _Echo).serve_forever()
        return
    for backend, settings in stores.stores(args):
        run(backend, settings, args.calls)


if __name__ == "__main__":
    main()
