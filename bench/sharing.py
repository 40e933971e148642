"""Sharing look-up figures: `python -m bench.sharing [--residents N] [--seconds S]`.

A PostgreSQL store whose population library (JC-RK-001) holds N residents (10,000,000 by
default), a department with an approved grant on it, and a department system with its own
credentials. Each look-up is the full path: token check, grant check, key normalised and
blind-indexed, record read, personal fields opened (SM4) and masked, an audit entry appended
to the SM3 chain, committed.

Of the N records, `--real` (100,000) are loaded through the platform's loader and are the ones
looked up; the rest are filler written by SQL in the same shape (a 64-hex key, a sealed blob of
the same size, the same JSON), so the table and its key index have their full size. The store is
kept between runs (`--keep`, database `qilu_bench_sharing`) because filling it takes minutes.

Figures: the look-up in process (p50/p99 over single calls, each its own transaction), and over
HTTP against `qilu serve --workers 2` with wrk (requests/s, p50/p99) beside a plain endpoint of
the same server (the code check, no database) as the ceiling. Targets on the 2-core reference
machine: in process p99 ≤ 1 ms; over HTTP ≥ 1,500 requests/s with p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import astuple
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from bench.data_load import COUNTIES
from bench.server import served
from qilu.codes.idcard import make_id_number
from qilu.data import reading, sharing
from qilu.data.catalog import get_resource, install_standard_catalog
from qilu.data.loading import load_rows
from qilu.data.models import DataRecord
from qilu.db import database_url, make_engine, upgrade
from qilu.demo import organisations
from qilu.demo.seed import write_rows
from qilu.identity.oidc_clients import register_service_client
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.pii import load_vault
from qilu.settings import Settings

DATABASE = "qilu_bench_sharing"
CONSUMER = "370102-approval"
# Fixed keys: the kept store must open with the same ones next run (a benchmark, not a secret).
PII_KEY, INDEX_KEY = "0f" * 16, "1e" * 32


def residents(count: int) -> list[dict[str, str]]:
    rows = []
    for n in range(count):
        county = COUNTIES[n % len(COUNTIES)]
        born = date(1940, 1, 1) + timedelta(days=(n // len(COUNTIES)) % 29_000)
        number = make_id_number(county, born, n // (len(COUNTIES) * 29_000) + 1)
        rows.append(
            {
                "id_number": number,
                "name": f"居民{n}",
                "sex": "1" if int(number[16]) % 2 else "2",
                "birth_date": born.isoformat(),
                "household_division": county,
                "address": "山东省济南市历下区某街道",
                "phone": f"138{n:08d}",
            }
        )
    return rows


def fill(settings: Settings, total: int, real: int) -> list[str]:
    """The store as the docstring says; returns the ID numbers that can be looked up."""
    engine = make_engine(settings)
    people = residents(real)
    upgrade(engine)
    with engine.connect() as connection:
        resource_id = connection.execute(
            text("SELECT id FROM data_resources WHERE code = 'JC-RK-001'")
        ).scalar()
        have = (
            connection.execute(
                text("SELECT count(*) FROM data_records WHERE resource_id = :r"),
                {"r": resource_id},
            ).scalar()
            if resource_id
            else 0
        )
    if resource_id is not None and have >= total:
        print(f"store kept from an earlier run: {have:,} records")
        return [p["id_number"] for p in people]
    with engine.begin() as connection:
        columns = ["id", "code", "kind", "name", "level", "division_code", "parent_id", "uscc"]
        write_rows(
            connection,
            "departments",
            columns,
            [astuple(d) for d in organisations.department_rows()],
        )
    vault = load_vault(settings)
    with Session(engine) as session, session.begin():
        install_standard_catalog(session)
        started = time.perf_counter()
        load_rows(session, vault, "JC-RK-001", enumerate(people, 1), source="bench", actor=OPERATOR,
                  workers=os.cpu_count() or 1)  # fmt: skip
        print(f"{real:,} real residents loaded in {time.perf_counter() - started:.1f} s")
        resource_id = get_resource(session, "JC-RK-001").id
        sample = session.scalars(
            select(DataRecord).where(DataRecord.resource_id == resource_id).limit(1)
        ).one()
        asked = sharing.request_access(
            session, "JC-RK-001", consumer=CONSUMER,
            fields=["id_number", "name", "birth_date", "household_division", "phone"],
            clear_fields=["name"], purpose="办理户籍类政务服务事项时核验身份",
            legal_basis="《山东省政务信息资源共享管理办法》",
            valid_until=datetime.now(UTC) + timedelta(days=365), actor=OPERATOR,
        )  # fmt: skip
        sharing.decide(session, asked.id, approve=True, reason="同意", actor=OPERATOR)
        sealed_size = len(sample.sealed or b"")
    started = time.perf_counter()
    with engine.begin() as connection:
        # Filler in the real records' shape: md5 pairs give 64 hex digits like the blind index.
        connection.execute(
            text(
                "INSERT INTO data_records (resource_id, record_key, content, sealed, digest,"
                " version, created_load_id, updated_load_id, updated_at)"
                " SELECT :r, md5(i::text) || md5((i + 7)::text),"
                ' CAST(\'{"household_division": "370102"}\' AS json),'
                " decode(repeat(md5(i::text), :n), 'hex'), decode(md5(i::text) || md5(i::text),"
                " 'hex'), 1, 0, 0, now() FROM generate_series(1, :count) AS i"
            ),
            {"r": resource_id, "count": total - real, "n": sealed_size // 16 + 1},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE data_records"))
    print(f"{total - real:,} filler records written in {time.perf_counter() - started:.0f} s")
    return [p["id_number"] for p in people]


def caller(settings: Settings, rate: int) -> tuple[ServiceCaller, str, str]:
    engine = make_engine(settings)
    with Session(engine) as session, session.begin():
        new = register_service_client(
            session, name="bench", department_code=CONSUMER, rate_per_second=rate, actor=OPERATOR
        )
        return ServiceCaller.of(new.client), new.client.client_id, new.secret or ""


def in_process(settings: Settings, who: ServiceCaller, keys: list[str], count: int) -> list[float]:
    engine = make_engine(settings)
    vault = load_vault(settings)
    times = []
    for n in range(count + 200):
        key = random.choice(keys)
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            reading.lookup(session, vault, who, "JC-RK-001", key)
        if n >= 200:  # the first ones warm the pool, the caches and the plans
            times.append(time.perf_counter() - started)
    return times


def wrk(args: list[str], seconds: int) -> str:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def over_http(settings: Settings, folder: str, keys: list[str], client: tuple[str, str],
              seconds: int) -> None:  # fmt: skip
    env = {
        "QILU_DATA_DIR": folder,
        "QILU_DATABASE_URL": settings.database_url or "",
        "QILU_PII_KEY": PII_KEY,
        "QILU_INDEX_KEY": INDEX_KEY,
    }
    with served(env, 8791) as base:
        token = httpx.post(
            f"{base}/oidc/token", data={"grant_type": "client_credentials"}, auth=client
        ).json()["access_token"]
        key_file = Path(folder) / "keys.txt"
        key_file.write_text("\n".join(keys) + "\n")
        plain_out = wrk([f"{base}/api/v1/codes/check?value=11010519491231002X"], seconds)
        script = str(Path(__file__).with_name("lookup.lua"))
        out = wrk(["-s", script, base, "--", token, str(key_file)], seconds)
        plain = float(re.search(r"Requests/sec:\s+([\d.]+)", plain_out)[1])  # type: ignore[index]
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
        found = re.search(r"failures=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+)", out)
        assert found, out
        if int(found[1]):
            raise RuntimeError(f"{found[1]} look-ups failed: {out}")
        print(f"plain endpoint (code check, no database): {plain:,.0f} requests/s")
        print(
            f"sharing look-up over HTTP: {rate:,.0f} requests/s = {rate / plain:.2f} × plain, "
            f"p50 {float(found[2]):.1f} ms, p99 {float(found[3]):.1f} ms "
            "(target ≥ 1,500/s, p99 ≤ 20 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--residents", type=int, default=10_000_000)
    parser.add_argument("--real", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=5_000, help="in-process look-ups")
    parser.add_argument("--keep", action="store_true", help=f"keep database {DATABASE}")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("QILU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/test"),
        help="server to create the database on",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed for the HTTP figures: apt-get install wrk")
    server_url = database_url(args.postgres)
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}
        ).scalar()
        if not exists:
            connection.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
    try:
        with tempfile.TemporaryDirectory(prefix="qilu-bench-") as folder:
            settings = Settings(
                data_dir=Path(folder),
                database_url=server_url.set(database=DATABASE).render_as_string(
                    hide_password=False
                ),
                pii_key=PII_KEY,
                index_key=INDEX_KEY,
                log_level="warning",
            )
            keys = fill(settings, args.residents, args.real)
            engine = make_engine(settings)
            with Session(engine) as session:
                total = session.scalar(select(func.count()).select_from(DataRecord))
            print(f"population library: {total:,} records")
            who, client_id, secret = caller(settings, rate=100_000)
            times = sorted(in_process(settings, who, keys, args.calls))
            p50, p99 = statistics.median(times), times[int(len(times) * 0.99)]
            print(
                f"sharing look-up in process ({len(times):,} calls, each committed): "
                f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms (target p99 ≤ 1 ms)"
            )
            over_http(settings, folder, keys, (client_id, secret), args.seconds)
    finally:
        if not args.keep:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    main()
