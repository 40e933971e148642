"""Loading rate: `python -m bench.data_load [--rows N] [--backend B]`.

Writes N synthetic population rows as a CSV file, then loads it into the population library
(JC-RK-001) of a fresh store with `qilu data load`'s code path: every row checked (ID number check
digit and birth date, division, enumerations, dates), personal fields sealed with SM4, the key
blind-indexed, upserted by key; checking and sealing in one worker process per core. In the same
run, the same file goes through a bare `COPY` into an unindexed text table (PostgreSQL) or a bare
executemany insert (SQLite): the ceiling of moving the bytes with no checks. Targets for 1,000,000
rows on 2 cores: PostgreSQL ≤ 30 s, SQLite ≤ 60 s. Since issue 14 a 人口 load also derives the
identity register in the same transaction; the same file loaded into a copy of the resource that
feeds no register shows what that derivation costs.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import tempfile
import time
from dataclasses import astuple
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from bench import stores
from qilu.codes.idcard import make_id_number
from qilu.data.catalog import (
    get_resource,
    install_standard_catalog,
    register_resource,
    standard_catalog,
)
from qilu.data.files import read_rows
from qilu.data.loading import Layout, load_rows
from qilu.db import make_engine, upgrade
from qilu.demo import organisations
from qilu.demo.seed import write_rows
from qilu.identity.roles import OPERATOR
from qilu.pii import load_vault
from qilu.settings import Settings

TARGETS = {"sqlite": 60.0, "postgresql": 30.0}
COUNTIES = ["370102", "370103", "370104", "370202", "370203", "370302", "370602", "370883"]
HEADER = ["公民身份号码", "姓名", "性别", "出生日期", "户籍地行政区划", "住址", "联系电话"]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(rows):
            county = COUNTIES[n % len(COUNTIES)]
            born = date(1940, 1, 1) + timedelta(days=(n // len(COUNTIES)) % 29_000)
            order = n // (len(COUNTIES) * 29_000) + 1
            number = make_id_number(county, born, order)
            sex = "1" if int(number[16]) % 2 else "2"
            writer.writerow(
                [number, f"居民{n}", sex, born.isoformat(), county, "山东省某地", f"138{n:08d}"]
            )


def prepare(settings: Settings) -> None:
    engine = make_engine(settings)
    upgrade(engine)
    with engine.begin() as connection:
        columns = ["id", "code", "kind", "name", "level", "division_code", "parent_id", "uscc"]
        rows = [astuple(d) for d in organisations.department_rows()]
        write_rows(connection, "departments", columns, rows)
    with Session(engine) as session, session.begin():
        install_standard_catalog(session)
        population = next(s for s in standard_catalog() if s.code == "JC-RK-001")
        copy = population.model_copy(update={"code": NO_REGISTER})
        register_resource(session, copy, actor=OPERATOR)


NO_REGISTER = "BN-RK-001"  # the 人口 library's fields, feeding no register


def validated_load(settings: Settings, path: Path, code: str = "JC-RK-001") -> float:
    engine = make_engine(settings)
    vault = load_vault(settings)
    started = time.perf_counter()
    with path.open("rb") as stream, Session(engine) as session, session.begin():
        fields = Layout.of(session, get_resource(session, code)).fields
        rows = read_rows(stream, path.name, fields)
        workers = os.cpu_count() or 1
        result = load_rows(session, vault, code, rows, source="b", actor=OPERATOR, workers=workers)
        assert result.rejected == 0 and result.inserted == result.total, result.problems[:3]
    return time.perf_counter() - started


def bare_load(settings: Settings, path: Path) -> float:
    engine = make_engine(settings)
    columns = ", ".join(f"c{i} text" for i in range(len(HEADER)))
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE bare_rows ({columns})")
        if engine.dialect.name == "postgresql":
            cursor = connection.connection.cursor()
            with (
                path.open("rb") as stream,
                cursor.copy(  # type: ignore[attr-defined]
                    "COPY bare_rows FROM STDIN WITH (FORMAT csv, HEADER true)"
                ) as copy,
            ):
                while chunk := stream.read(1 << 20):
                    copy.write(chunk)
        else:
            with path.open(newline="", encoding="utf-8") as stream:
                reader = csv.reader(stream)
                next(reader)
                marks = ", ".join("?" for _ in HEADER)
                cursor = connection.connection.cursor()
                cursor.executemany(f"INSERT INTO bare_rows VALUES ({marks})", reader)
    return time.perf_counter() - started


def run(backend: str, settings: Settings, path: Path, rows: int) -> None:
    prepare(settings)
    ceiling = bare_load(settings, path)
    seconds = validated_load(settings, path)
    unregistered = validated_load(settings, path, NO_REGISTER)
    print(
        f"{backend}: {rows:,} rows validated and loaded in {seconds:.1f} s "
        f"({rows / seconds:,.0f} rows/s, target ≤ {TARGETS[backend]:.0f} s); "
        f"bare {'COPY' if backend == 'postgresql' else 'insert'} of the same file "
        f"{ceiling:.1f} s ({rows / ceiling:,.0f} rows/s) → {ceiling / seconds:.0%} of the ceiling; "
        f"without deriving the register {unregistered:.1f} s → the register adds "
        f"{seconds / unregistered - 1:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    stores.add_options(parser)
    args = parser.parse_args()
    keys = {"pii_key": secrets.token_hex(16), "index_key": secrets.token_hex(32)}
    with tempfile.TemporaryDirectory(prefix="qilu-load-") as folder:
        path = Path(folder) / "people.csv"
        started = time.perf_counter()
        write_csv(path, args.rows)
        size = path.stat().st_size / 2**20
        print(f"wrote {args.rows:,} rows ({size:.0f} MiB) in {time.perf_counter() - started:.1f} s")
        if args.backend in ("sqlite", "both"):
            run("sqlite", Settings(data_dir=Path(folder) / "s", **keys), path, args.rows)
        if args.backend in ("postgresql", "both"):
            with stores.throwaway_database(args.postgres) as url:
                settings = Settings(data_dir=Path(folder) / "p", database_url=url, **keys)
                run("postgresql", settings, path, args.rows)


if __name__ == "__main__":
    main()
