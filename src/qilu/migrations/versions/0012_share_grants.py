"""Sharing requests and grants of data resources to departments.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 04:27:54.128371
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_share_grants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "resource_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "consumer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("requested_by_person_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_person_id", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("revoked_by_person_id", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'granted', 'refused', 'revoked')",
            name=op.f("ck_data_share_grants_status"),
        ),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["departments.id"],
            name=op.f("fk_data_share_grants_consumer_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["data_resources.id"],
            name=op.f("fk_data_share_grants_resource_id_data_resources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_share_grants")),
    )
    with op.batch_alter_table("data_share_grants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_share_grants_consumer_id"), ["consumer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_data_share_grants_resource_id"), ["resource_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("data_share_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_share_grants_resource_id"))
        batch_op.drop_index(batch_op.f("ix_data_share_grants_consumer_id"))

    op.drop_table("data_share_grants")
