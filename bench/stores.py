"""Where a benchmark runs: a new SQLite folder, or a throw-away PostgreSQL database on the
server `--postgres` names (created for the run, dropped afterwards)."""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from qilu.db import database_url
from qilu.settings import Settings

DEFAULT_SERVER = os.environ.get(
    "QILU_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def add_options(parser: argparse.ArgumentParser) -> None:
    """`--backend sqlite|postgresql|both` and `--postgres URL`."""
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--postgres", default=DEFAULT_SERVER, help="server to create a throw-away database on"
    )


@contextmanager
def throwaway_database(server: str) -> Iterator[str]:
    """A new database on `server` for this run; yields its URL and drops it afterwards."""
    base = database_url(server)
    name = f"qilu_bench_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def stores(args: argparse.Namespace, **settings: Any) -> Iterator[tuple[str, Settings]]:
    """Each backend `--backend` asks for, as settings with fresh personal-data keys."""
    keys = {"pii_key": secrets.token_hex(16), "index_key": secrets.token_hex(32)}
    with tempfile.TemporaryDirectory(prefix="qilu-bench-") as folder:
        if args.backend in ("sqlite", "both"):
            data_dir = Path(folder) / "sqlite"
            yield "sqlite", Settings.model_validate({"data_dir": data_dir, **keys, **settings})
        if args.backend in ("postgresql", "both"):
            with throwaway_database(args.postgres) as url:
                data_dir = Path(folder) / "postgresql"
                yield (
                    "postgresql",
                    Settings.model_validate(
                        {"data_dir": data_dir, "database_url": url, **keys, **settings}
                    ),
                )
