"""Loads count the rows they rejected for a repeated key (read by the quality figures).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 04:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_loads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("duplicates", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("data_loads", schema=None) as batch_op:
        batch_op.alter_column("duplicates", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("data_loads", schema=None) as batch_op:
        batch_op.drop_column("duplicates")
