"""A department merged into another (撤并): which one took it over, and since when.

Both columns are nullable, so the previous release keeps writing departments (expand).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 23:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("departments") as batch:
        identifier = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
        batch.add_column(sa.Column("merged_into_id", identifier, nullable=True))
        batch.add_column(sa.Column("merged_on", sa.Date(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_departments_merged_into_id_departments"),
            "departments",
            ["merged_into_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("departments") as batch:
        batch.drop_constraint(op.f("fk_departments_merged_into_id_departments"), type_="foreignkey")
        batch.drop_column("merged_on")
        batch.drop_column("merged_into_id")
