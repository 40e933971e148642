"""Alembic environment: runs on the connection Qilu hands over (see `qilu.db.upgrade`)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

import qilu.models  # noqa: F401  (registers every table on the metadata)
from qilu.db import Base, UtcDateTime


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types, so they never import Qilu's code."""
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Qilu always passes its own connection
    raise RuntimeError("run migrations through `qilu db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
