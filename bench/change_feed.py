"""Change feed delivery: `python -m bench.change_feed [--rows N] [--backend B]`.

Loads N synthetic people into the population library (JC-RK-001) of a fresh store — every row
checked, sealed and entered in the feed — then pushes the feed to two department systems'
webhooks at once — each subscription drained by a worker process of its own, as two `qilu
outbox run` workers share subscriptions by lease — each through its own grant (fields,
masking, the SM2 signature of each page, one audit entry per page naming every person in it).
The subscribers are separate processes that write down each page's first and last sequence
number; one of them is killed when it has about a third of the feed and started again three
seconds later. At the end both logs must cover 1…N in order with nothing missing (a page may
come twice: at least once).

The baseline, in the same run: the same records read from the table a page at a time by id, as
stored (no grant, no unsealing, no masking, no signature, no audit), serialised and POSTed to
the same kind of subscriber — what moving the bytes costs. Target: ≥ 5,000 changes/s to each of
two subscribers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench import stores
from bench.data_load import prepare, validated_load, write_csv
from qilu.audit.models import AuditEvent
from qilu.data import sharing, subscriptions
from qilu.data.catalog import get_resource
from qilu.data.models import Subscription
from qilu.db import make_engine, make_sessionmaker
from qilu.identity.oidc_clients import register_service_client
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault, load_vault
from qilu.settings import Settings

TARGET = 5_000.0
CONSUMERS = ("370102-approval", "370000-health")
FIELDS = ["id_number", "name", "sex", "birth_date", "household_division", "phone"]


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    log_path: Path

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        seqs = [change["seq"] for change in body["changes"]]
        if self.path == "/hook":
            in_order = all(a < b for a, b in itertools.pairwise(seqs))
            with self.log_path.open("a") as log:
                log.write(f"{seqs[0]} {seqs[-1]} {len(seqs)} {'ok' if in_order else 'BAD'}\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(port: int, log_path: Path) -> None:
    """A subscriber: `python -m bench.change_feed --serve PORT LOG`."""
    _Hook.log_path = log_path
    ThreadingHTTPServer(("127.0.0.1", port), _Hook).serve_forever()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Subscriber:
    def __init__(self, folder: Path, name: str):
        self.port, self.log = _free_port(), folder / f"{name}.log"
        self.log.touch()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "bench.change_feed", "--serve", str(self.port)]
        self.process = subprocess.Popen([*command, str(self.log)])
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def received(self) -> int:
        return sum(int(line.split()[2]) for line in self.log.read_text().splitlines())

    def check(self, last: int) -> tuple[bool, int]:
        """Whether the pages cover 1…last in order with no gap; and how many came twice."""
        high, repeated = 0, 0
        for line in self.log.read_text().splitlines():
            first, end, _count, order = line.split()
            if order != "ok" or int(first) > high + 1:
                return False, repeated
            repeated += max(0, high - int(first) + 1)
            high = max(high, int(end))
        return high == last, repeated


def granted_system(session: Session, department: str) -> ServiceCaller:
    """A system of `department` with a grant to list the population library's FIELDS."""
    asked = sharing.request_access(
        session,
        "JC-RK-001",
        consumer=department,
        fields=FIELDS,
        clear_fields=["name"],
        may_list=True,
        purpose="同步本部门业务系统的人口信息副本",
        legal_basis="《政务数据共享条例》",
        valid_until=datetime.now(UTC) + timedelta(days=30),
        actor=OPERATOR,
        now=datetime.now(UTC) - timedelta(minutes=1),
    )
    sharing.decide(session, asked.id, approve=True, reason="同意", actor=OPERATOR)
    client = register_service_client(
        session, name=f"{department} 系统", department_code=department, actor=OPERATOR
    ).client
    return ServiceCaller.of(client)


def grant_and_subscribe(
    sessions: sessionmaker[Session], vault: Vault, department: str, url: str
) -> int:
    with sessions.begin() as session:
        caller = granted_system(session, department)
        made = subscriptions.subscribe(session, vault, caller, "JC-RK-001", url, after=0)
        return made.id


def drain(
    sessions: sessionmaker[Session], vault: Vault, subscription_id: int, latest: int
) -> float:
    """Deliver until the subscriber has acknowledged everything; returns the seconds taken."""
    started = time.perf_counter()
    with httpx.Client() as client:
        while True:
            subscriptions.deliver(sessions, vault, subscription_id, post=client.post)
            with sessions() as session:
                found = session.get_one(Subscription, subscription_id)
                if found.cursor >= latest:
                    return time.perf_counter() - started
                if found.status != subscriptions.ACTIVE:
                    raise RuntimeError(f"subscription stopped: {found.last_error}")
                wait = (found.next_attempt_at - datetime.now(UTC)).total_seconds()
            if wait > 0:
                time.sleep(min(wait, 0.5))


def _drain_apart(
    settings: Settings, subscription_id: int, latest: int, n: int, results: Any
) -> None:
    """A worker process of its own (as each `qilu outbox run` is), draining one subscription."""
    engine = make_engine(settings)
    seconds = drain(make_sessionmaker(engine), load_vault(settings), subscription_id, latest)
    results.put((n, seconds))


def bare(sessions: sessionmaker[Session], url: str) -> float:
    """The same records as stored, a page at a time, POSTed: the ceiling."""
    started = time.perf_counter()
    after = 0
    # By id alone (the store holds this one resource's rows): with the resource in the WHERE,
    # SQLite walks the (resource, key) index and sorts every page — a scan per page.
    page = text("SELECT id, content, version FROM data_records WHERE id > :a ORDER BY id LIMIT :n")
    with httpx.Client() as client, sessions() as session:
        while rows := session.execute(page, {"a": after, "n": subscriptions.BATCH}).all():
            changes = [{"seq": row.id, "version": row.version, "data": row.content} for row in rows]
            body = json.dumps({"changes": changes}, ensure_ascii=False).encode()
            client.post(url.replace("/hook", "/bare"), content=body)
            after = rows[-1].id
    return time.perf_counter() - started


def run(backend: str, settings: Settings, csv_path: Path, rows: int, folder: Path) -> None:
    prepare(settings)
    loaded = validated_load(settings, csv_path)
    engine = make_engine(settings, pool_size=4)
    sessions, vault = make_sessionmaker(engine), load_vault(settings)
    with sessions() as session:
        latest = get_resource(session, "JC-RK-001").change_seq
        feed_rows = session.execute(text("SELECT count(*) FROM data_changes")).scalar_one()
    hooks = [Subscriber(folder, f"{backend}-{n}") for n in range(2)]
    for hook in hooks:
        hook.start()
    try:
        ceiling = bare(sessions, hooks[0].url)
        ids = [
            grant_and_subscribe(sessions, vault, department, hook.url)
            for department, hook in zip(CONSUMERS, hooks, strict=True)
        ]
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        workers = [
            context.Process(target=_drain_apart, args=(settings, ids[n], latest, n, results))
            for n in range(2)
        ]

        def outage() -> None:
            while hooks[1].received() < latest // 3:
                time.sleep(0.05)
            hooks[1].stop()
            time.sleep(3)
            hooks[1].start()

        engine.dispose()  # the workers open their own connections
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        outage()
        took = dict(results.get() for _ in workers)
        for worker in workers:
            worker.join()
        both = time.perf_counter() - started
    finally:
        for hook in hooks:
            hook.stop()
    checks = [hook.check(latest) for hook in hooks]
    with sessions() as session:
        pages = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "data.read")
        )
    print(
        f"{backend}: {rows:,} rows loaded (and entered in the feed: {feed_rows:,} entries) in "
        f"{loaded:.1f} s; bare read+POST of the stored rows {ceiling:.1f} s "
        f"({rows / ceiling:,.0f}/s)"
    )
    for n, (complete, repeated) in enumerate(checks):
        rate = latest / took[n]
        print(
            f"  subscriber {n + 1}{' (killed for 3 s at a third)' if n else ''}: {latest:,} "
            f"changes in {took[n]:.1f} s = {rate:,.0f}/s (target ≥ {TARGET:,.0f}/s, "
            f"{rate / (rows / ceiling):.2f}× the bare rate); in order and complete: {complete}; "
            f"delivered twice: {repeated:,}"
        )
    print(
        f"  both together: {2 * latest:,} changes in {both:.1f} s = {2 * latest / both:,.0f}/s; "
        f"{pages:,} audit entries for the pages"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "LOG"))
    stores.add_options(parser)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    with tempfile.TemporaryDirectory(prefix="qilu-feed-") as name:
        folder = Path(name)
        csv_path = folder / "people.csv"
        write_csv(csv_path, args.rows)
        for backend, settings in stores.stores(args, outbox_interval=0):
            run(backend, settings, csv_path, args.rows, folder)


if __name__ == "__main__":
    main()
