"""`qilu backup` and `qilu restore` (issue 14): backup → drop → restore → verify, on SQLite and on
PostgreSQL; a damaged backup, the wrong keys or a store in use are refused before anything is
written."""

from __future__ import annotations

import json
import secrets
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.codes.idcard import make_id_number
from qilu.db import database_url, make_engine
from qilu.identity.service import find_person
from qilu.pii import load_vault
from qilu.settings import Settings

from .services.test_cli import archived_store, store_env
from .test_cli import run


@pytest.fixture
def store(empty_store: Settings) -> Settings:
    """A store of its own (an SQLite file, or a PostgreSQL database) with one archived case."""
    archived_store(empty_store)
    return empty_store


def drop(settings: Settings) -> None:
    """The bad day: the database and the data folder are gone (an empty database remains)."""
    if settings.database_url:
        server = database_url(settings.database_url)
        admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{server.database}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{server.database}"')
        admin.dispose()
    shutil.rmtree(settings.data_dir)


def test_backup_drop_restore_verify(store: Settings, tmp_path: Path) -> None:
    env = store_env(store)
    target = tmp_path / "backup-1"
    made = run("backup", str(target), env=env)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((target / "manifest.json").read_text("utf-8"))
    assert manifest["revision"] and set(manifest["parts"]) >= {"files.tar"}
    assert "keys.json" not in manifest["parts"]  # production keys stay in the secrets store
    again = run("backup", str(target), env=env)
    assert again.returncode == 1 and "已存在" in again.stderr
    inside = run("backup", str(store.data_dir / "backups" / "1"), env=env)
    assert inside.returncode == 1 and "数据目录" in inside.stderr

    drop(store)
    restored = run("restore", str(target), env=env)
    assert restored.returncode == 0, restored.stderr
    audited = run("audit", "verify", env=env)
    assert audited.returncode == 0 and "审计链完整" in audited.stdout, audited.stdout
    archived = run("archive", "verify", env=env)
    assert archived.returncode == 0 and "共 1 个归档包，1 个完好" in archived.stdout
    engine = make_engine(store)
    with Session(engine) as session:  # personal data reads under the same keys
        elder = find_person(
            session, load_vault(store), make_id_number("370102", date(1941, 2, 3), 17)
        )
        assert elder.name == "赵奶奶"
        actions = session.scalars(select(AuditEvent.action)).all()
        assert "system.restored" in actions
    engine.dispose()
    twice = run("restore", str(target), env=env)
    assert twice.returncode == 1 and "不是空库" in twice.stderr


def test_a_restore_refuses_a_damaged_backup_and_the_wrong_keys(
    store: Settings, tmp_path: Path
) -> None:
    env = store_env(store)
    target = tmp_path / "backup-2"
    assert run("backup", str(target), env=env).returncode == 0
    engine = make_engine(store)
    with Session(engine) as session:  # the backup is on record, for 系统运行 to show
        made = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "system.backup_made")
        ).one()
        assert made.subject == str(target.resolve())
    engine.dispose()
    drop(store)
    wrong = {**env, "QILU_PII_KEY": secrets.token_hex(16)}
    refused = run("restore", str(target), env=wrong)
    assert refused.returncode == 1 and "密钥" in refused.stderr
    part = next(p for p in target.iterdir() if p.name.startswith("database."))
    damaged = bytearray(part.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    part.write_bytes(bytes(damaged))
    broken = run("restore", str(target), env=env)
    assert broken.returncode == 1 and "SM3" in broken.stderr
    engine = make_engine(store)
    with Session(engine) as session:  # nothing was written by either refusal
        assert not session.connection().dialect.has_table(session.connection(), "persons")
    engine.dispose()
    assert {p.name for p in store.data_dir.iterdir()} <= {"qilu.db"}
