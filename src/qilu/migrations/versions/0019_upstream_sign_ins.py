"""Sign-ins through an upstream OpenID Connect provider (the national platform's 统一身份认证).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "upstream_sign_ins",
        sa.Column("id", ID, nullable=False),
        sa.Column("state_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("next_path", sa.String(length=512), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upstream_sign_ins")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_upstream_sign_ins_state_hash")),
    )
    op.create_index("ix_upstream_sign_ins_expires_at", "upstream_sign_ins", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_upstream_sign_ins_expires_at", table_name="upstream_sign_ins")
    op.drop_table("upstream_sign_ins")
