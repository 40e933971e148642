"""A resident's status as the population register says it (active, deceased, emigrated).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 08:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=10), server_default="active", nullable=False)
        )
        batch.add_column(sa.Column("status_on", sa.Date(), nullable=True))
        batch.create_check_constraint("status", "status IN ('active', 'deceased', 'emigrated')")


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.drop_constraint(op.f("ck_persons_status"), type_="check")
        batch.drop_column("status_on")
        batch.drop_column("status")
