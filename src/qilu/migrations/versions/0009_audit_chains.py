"""Spread audit appends over 32 chains, so concurrent writers rarely wait for one another.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 03:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CHAINS = 32


def upgrade() -> None:
    heads = sa.table(
        "audit_chain_heads",
        sa.column("chain", sa.Integer),
        sa.column("seq", sa.BigInteger),
        sa.column("hash", sa.LargeBinary),
    )
    op.bulk_insert(heads, [{"chain": c, "seq": 0, "hash": bytes(32)} for c in range(1, CHAINS)])


def downgrade() -> None:
    # Entries already appended to chains 1-31 keep their heads: the log only grows.
    op.execute("DELETE FROM audit_chain_heads WHERE chain > 0 AND seq = 0")
