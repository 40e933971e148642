"""Loads into data resources, their records (personal fields sealed) and the history of changes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 03:44:24.772182
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_record_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("load_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("before_content", sa.JSON(), nullable=False),
        sa.Column("before_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("after_content", sa.JSON(), nullable=False),
        sa.Column("after_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_person_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_record_changes")),
    )
    with op.batch_alter_table("data_record_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_record_changes_load_id"), ["load_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_data_record_changes_record_id"), ["record_id"], unique=False
        )

    op.create_table(
        "data_loads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "resource_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("actor_person_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'failed')", name=op.f("ck_data_loads_status")
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["data_resources.id"],
            name=op.f("fk_data_loads_resource_id_data_resources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_loads")),
    )
    with op.batch_alter_table("data_loads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_loads_resource_id"), ["resource_id"], unique=False
        )

    op.create_table(
        "data_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "resource_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("record_key", sa.String(length=64), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_load_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_load_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["data_resources.id"],
            name=op.f("fk_data_records_resource_id_data_resources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_records")),
        sa.UniqueConstraint("resource_id", "record_key", name=op.f("uq_data_records_resource_id")),
    )


def downgrade() -> None:
    op.drop_table("data_records")
    with op.batch_alter_table("data_loads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_loads_resource_id"))

    op.drop_table("data_loads")
    with op.batch_alter_table("data_record_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_record_changes_record_id"))
        batch_op.drop_index(batch_op.f("ix_data_record_changes_load_id"))

    op.drop_table("data_record_changes")
