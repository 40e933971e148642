"""系统运行 and /metrics (issue 14): what the operations team sees, and who may see it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from qilu.audit.service import record
from qilu.operations import retention
from qilu.operations.system import sweepers
from qilu.outbox.models import OutboxEffect, SweeperBeat
from qilu.outbox.service import beat, enqueue
from qilu.pii import Vault
from qilu.settings import Settings

from ..identity.test_admin import sign_in_as_admin
from ..services.test_cli import store_env


def test_metrics_are_closed_until_a_token_is_set_and_then_answer_only_to_it(
    app: FastAPI, client: TestClient
) -> None:
    closed = client.get("/metrics")
    assert closed.status_code == 403 and closed.json()["error"]["code"] == "metrics.disabled"
    app.state.settings = app.state.settings.model_copy(
        update={"metrics_token": SecretStr("scrape-me")}
    )
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-you"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "metrics.token"


def scrape(app: FastAPI, client: TestClient) -> str:
    app.state.settings = app.state.settings.model_copy(update={"metrics_token": SecretStr("t")})
    answer = client.get("/metrics", headers={"Authorization": "Bearer t"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    return answer.text


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the series of an exposition that carry these labels (0 if none does): one
    route answered with several statuses is several series."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if (line.startswith(name + "{") or line.startswith(name + " "))
        and all(f'{key}="{value}"' in line for key, value in labels.items())
    )


def test_requests_are_counted_by_route_template_not_by_the_path_typed(
    app: FastAPI, client: TestClient
) -> None:
    before = scrape(app, client)
    route = "/services/applications/{application_id}"
    client.get("/healthz")
    client.get("/services/applications/123456")
    client.get("/services/applications/654321")
    for n in range(3):
        client.get(f"/no/such/page/{n}")
    after = scrape(app, client)
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert sample(after, "qilu_http_requests_total", **healthz) == (
        sample(before, "qilu_http_requests_total", **healthz) + 1
    )
    templated = sample(after, "qilu_http_requests_total", route=route)
    assert templated - sample(before, "qilu_http_requests_total", route=route) == 2
    assert "123456" not in after and "/no/such/page" not in after
    unmatched = {"route": "(unmatched)", "status": "404"}
    assert (
        sample(after, "qilu_http_requests_total", **unmatched)
        - sample(before, "qilu_http_requests_total", **unmatched)
        == 3
    )
    assert sample(after, "qilu_http_request_duration_seconds_count", route="/healthz") >= 1


def test_outbox_lag_and_depth_are_scraped_from_the_store(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    enqueue(session, "services.archive", "lag-test", {"application_id": 0})
    session.execute(
        update(OutboxEffect)
        .where(OutboxEffect.key == "services.archive:lag-test")
        .values(next_attempt_at=datetime.now(UTC) - timedelta(minutes=10))
    )
    text = scrape(app, client)
    assert sample(text, "qilu_outbox_pending") >= 1
    assert sample(text, "qilu_outbox_lag_seconds") >= 600
    assert re.search(r'^qilu_cases_open\{state="correcting"\} \d', text, re.MULTILINE)


def test_the_province_administrator_sees_the_system_page(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    sign_in_as_admin(client, session, vault)
    assert 'href="/admin/system"' in client.get("/admin").text
    fresh = client.get("/admin/system")
    assert fresh.status_code == 200
    assert 'data-database-state="ok"' in fresh.text and 'data-schema-current="true"' in fresh.text
    assert "尚无备份" in fresh.text and 'data-audit-verified="none"' in fresh.text
    assert "一天内没有任何进程执行外发" in fresh.text  # no sweeper has beaten in this store
    record(session, "system.backup_made", subject="/backups/2026-12-06", details={"bytes": 1})
    record(session, "system.audit_verified", details={"entries": 42, "intact": True})
    enqueue(session, "services.archive", "page-test", {"application_id": 0})
    beat(sessionmaker(bind=session.get_bind()), "host-c:9", "worker", 1)
    page = client.get("/admin/system").text
    assert 'data-sweeper="alive"' in page and "host-c:9" in page
    assert "/backups/2026-12-06" in page and 'data-audit-verified="intact"' in page
    pending = re.search(r"data-outbox-pending>(\d+)<", page)
    assert pending and int(pending.group(1)) >= 1


def test_sweepers_beat_and_a_silent_one_shows_as_lost(
    app: FastAPI, client: TestClient, session: Session
) -> None:
    sessions = sessionmaker(bind=session.get_bind())  # the test's connection, its transaction
    beat(sessions, "host-a:1", "worker", 3)
    beat(sessions, "host-a:1", "worker", 2)
    beat(sessions, "host-b:7", "web", 0)
    session.execute(
        update(SweeperBeat)
        .where(SweeperBeat.name == "host-b:7")
        .values(beat_at=datetime.now(UTC) - timedelta(minutes=5))
    )
    found = {s.name: s for s in sweepers(session)}
    assert found["host-a:1"].alive and found["host-a:1"].done == 5
    assert not found["host-b:7"].alive
    later = datetime.now(UTC) + timedelta(days=7, minutes=-1)  # host-b a week silent, not a
    retention.expire(session, draft_days=90, load_report_days=180, now=later)
    names = set(session.scalars(select(SweeperBeat.name)))
    assert "host-b:7" not in names and "host-a:1" in names
    assert sample(scrape(app, client), "qilu_outbox_sweepers_alive") >= 1


def test_the_counts_of_several_server_processes_add_up_at_a_scrape(
    engine: object, settings: Settings, tmp_path: Path
) -> None:
    """`qilu serve --workers N` with PROMETHEUS_MULTIPROC_DIR: each process counts its own
    requests into the folder, and a scrape answered by any of them sums them all."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), **store_env(settings)}
    worker = (
        "from qilu.operations import metrics\n"
        "for _ in range({n}):\n"
        "    metrics.observe('/healthz', 'GET', 200, 0.01)\n"
    )
    for n in (3, 4):
        done = subprocess.run(
            [sys.executable, "-c", worker.format(n=n)], env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    scrape = (
        "from sqlalchemy.orm import Session\n"
        "from qilu.db import make_engine\n"
        "from qilu.operations import metrics\n"
        "from qilu.settings import Settings\n"
        "with Session(make_engine(Settings())) as session:\n"
        "    print(metrics.exposition(session).decode())\n"
    )
    scraped = subprocess.run(
        [sys.executable, "-c", scrape], env=env, capture_output=True, text=True, timeout=60
    )
    assert scraped.returncode == 0, scraped.stderr
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert sample(scraped.stdout, "qilu_http_requests_total", **healthz) == 7
    latency = "qilu_http_request_duration_seconds_count"
    assert sample(scraped.stdout, latency, route="/healthz", method="GET") == 7
    assert "qilu_outbox_pending" in scraped.stdout  # the store's figures come with them
