"""Sealing keys name their algorithm: SM2 for new keys, Ed25519 for the keys made before.

The default stays on the column, so a process of the previous release still serving during
the upgrade (expand, then contract) writes its Ed25519 keys correctly named.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_department_keys") as batch:
        batch.add_column(
            sa.Column("algorithm", sa.String(length=10), server_default="ed25519", nullable=False)
        )
        batch.create_check_constraint("algorithm", "algorithm IN ('sm2', 'ed25519')")


def downgrade() -> None:
    with op.batch_alter_table("service_department_keys") as batch:
        batch.drop_constraint(op.f("ck_service_department_keys_algorithm"), type_="check")
        batch.drop_column("algorithm")
