"""Monitoring (issue 15): each bus partition's mark, the last stream sequence its writer stored,
so a frame NATS JetStream delivers again after a writer was killed is not stored twice. New
table only.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 03:57:12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_bus_marks",
        sa.Column("consumer", sa.String(length=80), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_monitor_bus_marks")),
    )


def downgrade() -> None:
    op.drop_table("monitor_bus_marks")
