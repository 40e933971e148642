"""The store: engines, sessions and migrations for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Engine,
    FromClause,
    Integer,
    MetaData,
    TypeDecorator,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from qilu.errors import ConfigurationError
from qilu.settings import Settings

# Stable constraint names, so migrations name the same thing on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64 bits for 10^8 rows.
Id = BigInteger().with_variant(Integer, "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC on both backends: SQLite would hand it back without its zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must carry their time zone")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def next_serial(session: Session, table: FromClause, key: str) -> int:
    """The next number of the series `key` in a counter table (its key column first, then
    `last`): one atomic upsert, so two transactions never take the same number."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    key_column = next(iter(table.primary_key))
    serial: int = session.execute(
        dialect.insert(table)
        .values({key_column.name: key, "last": 1})
        .on_conflict_do_update(index_elements=[key_column], set_={"last": table.c.last + 1})
        .returning(table.c.last)
    ).scalar_one()
    return serial


def database_url(raw: str) -> URL:
    """Parse a URL; plain postgresql:// means psycopg 3, the driver we ship."""
    try:
        url = make_url(raw)
    except ArgumentError as error:
        raise ConfigurationError(
            "database.url", f"QILU_DATABASE_URL 无法解析（{error}）", field="QILU_DATABASE_URL"
        ) from error
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            "database.backend",
            f"不支持的数据库 {url.get_backend_name()}：QILU_DATABASE_URL 须为 sqlite 或 postgresql",
            field="QILU_DATABASE_URL",
        )
    return url


def prepare_data_dir(path: Path) -> Path:
    """Create the data folder and prove it is writable, or say what to do."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ConfigurationError(
            "data_dir.not_writable",
            f"数据目录 {path} 不可写（{error.strerror or error}）：请设置 QILU_DATA_DIR 为可写目录",
            field="QILU_DATA_DIR",
        ) from error
    return path


def make_engine(settings: Settings, **options: Any) -> Engine:
    """An engine for the configured store; SQLite gets WAL, foreign keys and real savepoints."""
    if settings.is_embedded:
        prepare_data_dir(settings.data_dir)
    url = database_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    # A pool as large as the requests in flight, so connections are reused, never opened per
    # request. No ping before each use (it doubled the round trips): after a database restart the
    # first statement on a dead connection fails, and that invalidates the whole pool at once.
    options.setdefault("pool_size", settings.db_pool_size)
    return create_engine(url, max_overflow=settings.db_pool_size // 2, **options)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (SAVEPOINTs work).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "synchronous=NORMAL",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _begin_sqlite(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: two deferred transactions that both read and then
    # write would deadlock, and SQLite answers that with "database is locked" instead of waiting.
    # Read-only probes (health, schema revision) run in autocommit and take no lock.
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_readers(engine: Engine) -> sessionmaker[Session]:
    """Sessions for work that only reads. On PostgreSQL each statement runs on its own
    (autocommit): one round trip per statement, no BEGIN and COMMIT around it. SQLite reads are
    local calls, so there they are ordinary sessions."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return make_sessionmaker(engine)


def copy_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Append rows to a PostgreSQL table with binary COPY, on the connection's transaction: no
    statement per row, no text escaping of ciphertexts. JSON values go in wrapped in
    `psycopg.types.json.Json`."""
    names = ", ".join(columns)
    described = Base.metadata.tables[table].c
    types = [
        described[c].type.compile(dialect=connection.dialect).split("(")[0].strip().lower()
        for c in columns
    ]
    raw = connection.connection.driver_connection
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True)
class DatabaseStatus:
    reachable: bool
    backend: str
    error: str | None = None


def check_database(engine: Engine) -> DatabaseStatus:
    backend = engine.url.get_backend_name()
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        return DatabaseStatus(False, backend, describe_database_error(engine, error))
    return DatabaseStatus(True, backend)


def describe_database_error(engine: Engine, error: DBAPIError) -> str:
    """One line an operator can act on; the password never appears."""
    shown = engine.url.render_as_string(hide_password=True)
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error).splitlines()[0]
    if "readonly" in reason or "unable to open" in reason:
        return f"数据库 {shown} 不可写（{reason}）：请检查 QILU_DATA_DIR 的权限"
    if error.connection_invalidated or isinstance(error, OperationalError):
        return f"无法连接数据库 {shown}（{reason}）：请检查 QILU_DATABASE_URL 以及数据库是否在运行"
    return f"数据库操作失败（{reason}）"


def alembic_config(connection: Any | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("qilu").joinpath("migrations")))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one transaction."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def head_revision() -> str | None:
    """The newest migration this version of Qilu ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def require_current_schema(engine: Engine) -> None:
    """Refuse to serve a store that is unreachable or not migrated to this version."""
    status = check_database(engine)
    if not status.reachable:
        raise ConfigurationError("database.unreachable", status.error or "数据库不可达")
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise ConfigurationError(
            "database.schema_outdated",
            f"数据库结构版本为 {current or '空'}，本版本需要 {head}：请先运行 qilu db upgrade",
        )


def current_revision(engine: Engine) -> str | None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = (
            connection.execute(text("SELECT version_num FROM alembic_version")).first()
            if engine.dialect.has_table(connection, "alembic_version")
            else None
        )
    return row[0] if row else None
