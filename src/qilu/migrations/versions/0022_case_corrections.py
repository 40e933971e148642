"""补正 done right: what a correction asks for (fields, materials, deadline) kept on the case;
and the colour of the clock its approvers were last warned of.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_cases") as batch:
        batch.add_column(sa.Column("correction", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("clock_warned", sa.String(length=6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_cases") as batch:
        batch.drop_column("clock_warned")
        batch.drop_column("correction")
