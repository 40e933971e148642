from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

import qilu.models  # noqa: F401
from qilu.db import (
    Base,
    check_database,
    current_revision,
    head_revision,
    make_engine,
    prepare_data_dir,
    upgrade,
)
from qilu.errors import ConfigurationError
from qilu.settings import Settings


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert current_revision(engine) == head_revision()


def test_identifiers_are_stored_only_encrypted(engine: Engine) -> None:
    columns = {c["name"] for c in inspect(engine).get_columns("persons")}
    assert {"id_number_cipher", "id_number_index", "phone_cipher", "phone_index"} <= columns
    assert not {"id_number", "phone"} & columns


def test_embedded_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path / "data"))
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (tmp_path / "data" / "qilu.db").exists()
    upgrade(engine)  # a second upgrade changes nothing
    assert current_revision(engine) == head_revision()


def test_unreachable_database_is_reported_without_the_password(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://qilu:secret@127.0.0.1:1/qilu")
    status = check_database(make_engine(settings))
    assert not status.reachable
    assert status.error is not None and "secret" not in status.error
    assert "QILU_DATABASE_URL" in status.error


def test_unsupported_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_engine(Settings(data_dir=tmp_path, database_url="mysql://x@localhost/db"))
    assert caught.value.code == "database.backend"


def test_data_dir_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError) as caught:
        prepare_data_dir(blocker / "data")
    assert caught.value.code == "data_dir.not_writable"
    assert "QILU_DATA_DIR" in caught.value.message


def test_concurrent_writers_on_sqlite_wait_instead_of_failing(tmp_path: Path) -> None:
    """Two transactions that read, then write (as every sign-in does) must both commit."""
    import contextlib
    import threading

    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from qilu.audit.models import AuditEvent
    from qilu.audit.service import record, verify

    engine = make_engine(Settings(data_dir=tmp_path))
    upgrade(engine)
    barrier = threading.Barrier(2, timeout=1)
    errors: list[BaseException] = []

    def sign_in(number: int) -> None:
        try:
            with Session(engine) as session, session.begin():
                session.scalar(select(func.count()).select_from(AuditEvent))
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait()  # both have read before either writes, if SQLite lets them
                record(session, "test.concurrent", details={"n": number})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as session:
        assert verify(session).entries == 2
