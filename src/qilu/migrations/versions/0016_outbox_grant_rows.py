"""The outbox (effects that run after the transaction that caused them commits); sharing grants
that say whether records may be listed and which rows they reach.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_effects",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_effects")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_effects_key")),
    )
    op.create_index("ix_outbox_effects_due", "outbox_effects", ["done_at", "next_attempt_at"])
    with op.batch_alter_table("data_share_grants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("may_list", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("row_conditions", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("data_share_grants", schema=None) as batch_op:
        batch_op.drop_column("row_conditions")
        batch_op.drop_column("may_list")
    op.drop_index("ix_outbox_effects_due", table_name="outbox_effects")
    op.drop_table("outbox_effects")
