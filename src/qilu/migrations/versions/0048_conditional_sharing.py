"""有条件共享 (issue 17): conditions as data on a resource, and on a request its decision deadline,
the watch's steps and the rule a refusal rests on. New columns only; the downgrade drops them
without rebuilding the tables (SQLite refuses to rebuild a table others reference).

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-07 16:05:33.661685
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0048"
down_revision = "0047"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "data_resources", sa.Column("sharing_rules", sa.JSON(), server_default="{}", nullable=False)
    )
    op.add_column(
        "data_share_grants",
        sa.Column("refusal_rule", sa.String(length=20), server_default="", nullable=False),
    )
    op.add_column("data_share_grants", sa.Column("due_on", sa.Date(), nullable=True))
    op.add_column(
        "data_share_grants", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "data_share_grants", sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    for column in ("escalated_at", "reminded_at", "due_on", "refusal_rule"):
        op.drop_column("data_share_grants", column)
    op.drop_column("data_resources", "sharing_rules")
