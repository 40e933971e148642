"""Bulk extract: `python -m bench.extract [--rows N] [--backend B]`.

Loads N synthetic people into the population library (JC-RK-001) of a fresh store, grants a
department system six of its fields (the ID number masked, the rest in clear) with listing, asks
for a CSV snapshot and times the sweeper's part: every record read a page at a time, unsealed,
projected through the grant, written as gzip with its SHA-256, and one audit entry naming all N
people. Then it downloads the file over HTTP (the app in process) and checks the checksum.

The baseline, in the same run: the stored rows dumped as they are into a gzip file at the same
level — `COPY (SELECT content FROM data_records) TO STDOUT` on PostgreSQL, a plain cursor on
SQLite (no grant, no unsealing, no masking, no audit). Target: 1,000,000 rows in ≤ 15 s.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, text

from bench import stores
from bench.change_feed import granted_system
from bench.data_load import prepare, validated_load, write_csv
from qilu.data import extracts
from qilu.data.models import DataExtract
from qilu.db import make_engine, make_sessionmaker
from qilu.identity.oidc_clients import register_service_client
from qilu.identity.roles import OPERATOR
from qilu.pii import load_vault
from qilu.settings import Settings

TARGET = 15.0


def bare(engine: Engine, path: Path) -> float:
    """The stored rows as they are, into gzip: the ceiling."""
    started = time.perf_counter()
    with gzip.open(path, "wb", compresslevel=extracts.LEVEL) as out:
        if engine.dialect.name == "postgresql":
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cursor:  # type: ignore[attr-defined]
                    copy_sql = "COPY (SELECT content FROM data_records ORDER BY id) TO STDOUT"
                    with cursor.copy(copy_sql) as copy:
                        for chunk in copy:
                            out.write(chunk)
            finally:
                raw.close()
        else:
            with engine.connect() as connection:
                rows = connection.execution_options(yield_per=5_000).execute(
                    text("SELECT content FROM data_records ORDER BY id")
                )
                for row in rows:
                    out.write(json.dumps(row.content, ensure_ascii=False).encode() + b"\n")
    return time.perf_counter() - started


def run(backend: str, settings: Settings, csv_path: Path, rows: int) -> None:
    # Imported here, not above: the extract's worker processes import this module, not the app.
    from fastapi.testclient import TestClient

    from qilu.web import create_app

    prepare(settings)
    loaded = validated_load(settings, csv_path)
    engine = make_engine(settings, pool_size=4)
    sessions, vault = make_sessionmaker(engine), load_vault(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ceiling = bare(engine, settings.data_dir / "bare.gz")
    with sessions.begin() as session:
        caller = granted_system(session, "370102-approval")
        extract_id = extracts.request_extract(session, vault, caller, "JC-RK-001", format="csv").id
        # Any system of the department may fetch its extracts: a second one downloads this.
        fetcher = register_service_client(
            session, name="导出下载", department_code="370102-approval", actor=OPERATOR
        )
        credentials = (fetcher.client.client_id, fetcher.secret)
    started = time.perf_counter()
    workers = os.cpu_count() or 1  # as the sweeper makes them
    assert extracts.make(sessions, vault, settings.data_dir, extract_id, workers=workers)
    took = time.perf_counter() - started
    with sessions() as session:
        made = session.get_one(DataExtract, extract_id)
        records, size, sha256 = made.records, made.size, made.sha256
    with TestClient(create_app(settings)) as web:
        token = web.post(
            "/oidc/token",
            data={"grant_type": "client_credentials", "scope": "data.read"},
            auth=credentials,
        ).json()["access_token"]
        answer = web.get(
            f"/api/v1/data/extracts/{extract_id}/file",
            headers={"Authorization": f"Bearer {token}"},
        )
        answer.raise_for_status()
    holds = hashlib.sha256(answer.content).hexdigest() == sha256
    print(
        f"{backend}: {rows:,} rows loaded in {loaded:.1f} s; bare dump to gzip {ceiling:.1f} s "
        f"({rows / ceiling:,.0f}/s)"
    )
    print(
        f"  extract: {records:,} records, {size / 1e6:.1f} MB gzip, in {took:.1f} s = "
        f"{records / took:,.0f}/s in {workers} processes (target ≤ {TARGET:.0f} s for 1,000,000: "
        f"{took * 1_000_000 / rows:.1f} s per million; {took / ceiling:.2f}× the bare dump); "
        f"downloaded {len(answer.content) / 1e6:.1f} MB, checksum holds: {holds}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    stores.add_options(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qilu-extract-") as name:
        csv_path = Path(name) / "people.csv"
        write_csv(csv_path, args.rows)
        for backend, settings in stores.stores(args, outbox_interval=0):
            run(backend, settings, csv_path, args.rows)


if __name__ == "__main__":
    main()
