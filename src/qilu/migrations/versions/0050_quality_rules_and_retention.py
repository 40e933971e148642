"""Quality rules, data contracts and retention (issue 17): a resource's rules, threshold and
保存期限, and the day's check of the rules. A new table and new columns; the downgrade drops
the columns without rebuilding data_resources (SQLite refuses to rebuild a table others
reference).

Revision ID: 0050
Revises: 0049
Create Date: 2026-12-07 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision = "0049"
branch_labels = None
depends_on = None

COLUMNS = (
    sa.Column("quality_rules", sa.JSON(), server_default="[]", nullable=False),
    sa.Column("quality_threshold", sa.Float(), server_default="0.98", nullable=False),
    sa.Column("retention_days", sa.Integer(), nullable=True),
)


def upgrade() -> None:
    op.create_table(
        "data_quality_checks",
        sa.Column(
            "resource_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sampled", sa.Integer(), nullable=False),
        sa.Column("passing", sa.Float(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["data_resources.id"],
            name=op.f("fk_data_quality_checks_resource_id_data_resources"),
        ),
        sa.PrimaryKeyConstraint("resource_id", "day", name=op.f("pk_data_quality_checks")),
    )
    for column in COLUMNS:
        op.add_column("data_resources", column)


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("data_resources", column.name)
    op.drop_table("data_quality_checks")
