"""Tokens remember when their holder authenticated (for max_age and step-up checks);
administrators can disable a client.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 02:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auth_time", sa.DateTime(timezone=True), nullable=True))
    # Tokens issued before this revision: their issue time is the latest we know.
    op.execute("UPDATE oidc_tokens SET auth_time = issued_at")
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.alter_column("auth_time", existing_type=sa.DateTime(timezone=True), nullable=False)
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.drop_column("auth_time")
