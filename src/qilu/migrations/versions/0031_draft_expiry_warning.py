"""When a draft's applicant was told it will expire (nullable: the previous release never
sets it, expand).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_applications") as batch:
        batch.add_column(sa.Column("expiry_warned_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_applications") as batch:
        batch.drop_column("expiry_warned_at")
