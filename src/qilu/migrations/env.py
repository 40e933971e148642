"""Alembic environment: runs on the connection Qilu hands over (see `qilu.db.upgrade`)."""

from __future__ import annotations

from alembic import context

import qilu.models  # noqa: F401  (registers every table on the metadata)
from qilu.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Qilu always passes its own connection
    raise RuntimeError("run migrations through `qilu db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
