"""Migrations expand, then contract (issue 14): while a new release's migrations run, processes
of the previous release still serve, so everything the previous release's schema had must
still be there and everything added must accept the previous release's writes (nullable, or
with a default). Dropping or renaming is a contraction: a later release's migration, once no
process of this one runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect

from qilu.db import head_revision, make_engine, upgrade
from qilu.settings import Settings

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
