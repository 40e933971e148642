"""Migrations expand, then contract (issue 14): while a new release's migrations run, processes
of the previous release still serve, so everything the previous release's schema had must
still be there and everything added must accept the previous release's writes (nullable, or
with a default). Dropping or renaming is a contraction: a later release's migration, once no
process of this one runs."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from qilu.audit.service import verify
from qilu.codes.idcard import make_id_number
from qilu.db import head_revision, make_engine, upgrade
from qilu.identity.accounts import authenticate
from qilu.pii import load_vault
from qilu.services.models import Application
from qilu.settings import Settings

from .services.test_cli import archived_store, store_env

# The schema of the previous release (issue 13's, before going live's migrations): move it to
# the head of each release when that release ships.
PREVIOUS_RELEASE = "0025"


def columns(engine: Engine) -> dict[str, dict[str, dict[str, Any]]]:
    found = inspect(engine)
    return {
        table: {column["name"]: column for column in found.get_columns(table)}
        for table in found.get_table_names()
        if table != "alembic_version"
    }


def test_the_previous_releases_schema_survives_the_upgrade(empty_store: Settings) -> None:
    engine = make_engine(empty_store)
    upgrade(engine, PREVIOUS_RELEASE)
    before = columns(engine)
    upgrade(engine, "head")
    after = columns(engine)
    engine.dispose()
    assert head_revision() != PREVIOUS_RELEASE  # the check has something to check
    missing = [f"{t}.{c}" for t, cs in before.items() for c in cs if c not in after.get(t, {})]
    assert missing == [], "dropped or renamed while the previous release still serves"
    unwritable = [
        f"{table}.{name}"
        for table, found in after.items()
        if table in before
        for name, column in found.items()
        if name not in before[table]
        and not column["nullable"]
        and column.get("default") is None
        and column.get("autoincrement") is not True
    ]
    assert unwritable == [], "the previous release's inserts would fail on these new columns"


# The previous release's code (the end of issue 13), run against the new schema.
PREVIOUS_COMMIT = "66c4abcebd1376b9ec4eb243145e7a5a01630e47"
ROOT = Path(__file__).resolve().parent.parent


def previous_release(folder: Path) -> Path | None:
    """The previous release's `src` unpacked from git, or None if this checkout lacks it."""
    known = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{PREVIOUS_COMMIT}^{{commit}}"],
        capture_output=True,
    )
    if known.returncode != 0:
        return None
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PREVIOUS_COMMIT, "src/qilu"],
        capture_output=True,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as unpacked:
        unpacked.extractall(folder, filter="data")
    return folder / "src"


def test_the_previous_release_serves_its_hot_path_on_the_new_schema(
    empty_store: Settings, tmp_path: Path
) -> None:
    """Expand, then contract, tried for real: the new release migrates and loads the
    registers; the previous release's code then opens an account and runs an application to
    its 秒批 decision on that schema; the new release reads everything it wrote."""
    old_src = previous_release(tmp_path / "previous")
    if old_src is None:
        pytest.skip(f"commit {PREVIOUS_COMMIT[:7]} is not in this checkout (a shallow clone)")
    archived_store(empty_store)  # new code: migrated to head, registers loaded, an elder known
    number = make_id_number("370102", date(1941, 2, 3), 17)
    env = {**os.environ, **store_env(empty_store), "PYTHONPATH": str(old_src)}
    ran = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "previous" / "hot_path.py"), number, "赵奶奶"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert str(old_src) in subprocess.run(  # it really was the previous release's package
        [sys.executable, "-c", "import qilu; print(qilu.__file__)"],
        capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    application_number = ran.stdout.strip()
    engine, vault = make_engine(empty_store), load_vault(empty_store)
    with Session(engine) as session:
        written = session.scalars(
            select(Application).where(Application.number == application_number)
        ).one()
        assert written.status == "done"
        signed_in = authenticate(
            session, vault, id_number=number, password="Previous-Release-1",
            profile="standard", client_address="test",
        )  # fmt: skip
        assert signed_in.account.person.name == "赵奶奶"
        assert verify(session).broken is None  # its audit entries chain on from ours
    engine.dispose()
