"""Fixtures shared by every test: settings, and a migrated database per backend.

Database tests run on SQLite always and on PostgreSQL when QILU_TEST_DATABASE_URL is set. Each
backend is migrated once per run (PostgreSQL in a database of its own, dropped at the end); each
test runs inside a transaction that is rolled back, its session on a SAVEPOINT.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from qilu.db import database_url, make_engine, upgrade
from qilu.pii import Vault
from qilu.routes import get_reader, get_session
from qilu.settings import Settings
from qilu.web import create_app

from .browser import browser, live_server  # noqa: F401  (fixtures for page tests)

TEST_POSTGRES = os.environ.get("QILU_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_POSTGRES else [])


def make_settings(data_dir: Path, database: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database,
        pii_key=secrets.token_hex(16),
        index_key=secrets.token_hex(32),
        log_format="console",
        log_level="warning",
        outbox_interval=0,  # tests sweep the outbox themselves, inside their own transaction
        monitor_events_seconds=1,  # a wall's event stream ends soon (its browser reconnects)
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    if not TEST_POSTGRES:
        pytest.skip("QILU_TEST_DATABASE_URL is not set")
    with fresh_postgres() as url:
        yield url


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped on leaving."""
    assert TEST_POSTGRES
    server = database_url(TEST_POSTGRES)
    name = f"qilu_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a store of this test's own, not even migrated: an SQLite file in a new data
    folder, or a new PostgreSQL database (dropped afterwards)."""
    if request.param == "postgresql":
        with fresh_postgres() as url:
            yield make_settings(tmp_path / "data", url)
    else:
        yield make_settings(tmp_path / "data")


@pytest.fixture(scope="session", params=BACKENDS)
def backend_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    if request.param == "postgresql":
        return make_settings(data_dir, request.getfixturevalue("postgres_url"))
    return make_settings(data_dir)


@pytest.fixture(scope="session")
def engine(backend_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(backend_settings)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(backend_settings: Settings) -> Settings:
    return backend_settings


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        yield session


@pytest.fixture
def vault(settings: Settings) -> Vault:
    from qilu.pii import load_vault

    return load_vault(settings)


@pytest.fixture
def app(settings: Settings, session: Session) -> FastAPI:
    app = create_app(settings)

    def test_session() -> Iterator[Session]:
        yield session

    app.dependency_overrides[get_session] = test_session
    app.dependency_overrides[get_reader] = test_session
    # What streams after the request (an open-data CSV) reads in the test's transaction too;
    # on SQLite a session of its own would wait for the test's write lock.
    app.state.readers = sessionmaker(
        bind=session.connection(), join_transaction_mode="create_savepoint"
    )
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def departments(connection: Connection) -> None:
    """Every department of the synthetic province (province, city and county), as seeded."""
    write_departments(connection)


def write_departments(connection: Connection) -> None:
    from dataclasses import astuple

    from qilu.demo import organisations
    from qilu.demo.seed import write_rows

    rows = organisations.department_rows()
    columns = ["id", "code", "kind", "name", "level", "division_code", "parent_id", "uscc"]
    write_rows(connection, "departments", columns, [astuple(d) for d in rows])
    if connection.dialect.name == "postgresql":  # as the seed does: new departments come next
        connection.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('departments', 'id'), MAX(id)) FROM departments"
        )
