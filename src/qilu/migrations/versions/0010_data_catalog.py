"""The data resource catalog: resources and the versions of their schemas.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 03:38:54.370960
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_resources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "provider_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("library", sa.String(length=10), nullable=False),
        sa.Column("topic", sa.String(length=50), nullable=False),
        sa.Column("sharing", sa.String(length=16), nullable=False),
        sa.Column("sharing_conditions", sa.Text(), nullable=False),
        sa.Column("opening", sa.String(length=12), nullable=False),
        sa.Column("update_cycle", sa.String(length=10), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "library IN ('base', 'theme', 'special', 'business')",
            name=op.f("ck_data_resources_library"),
        ),
        sa.CheckConstraint(
            "opening IN ('open', 'conditional', 'closed')", name=op.f("ck_data_resources_opening")
        ),
        sa.CheckConstraint(
            "sharing IN ('unconditional', 'conditional', 'none')",
            name=op.f("ck_data_resources_sharing"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["departments.id"],
            name=op.f("fk_data_resources_provider_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_resources")),
        sa.UniqueConstraint("code", name=op.f("uq_data_resources_code")),
    )
    with op.batch_alter_table("data_resources", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_resources_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "data_resource_schemas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "resource_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("change_note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_person_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["data_resources.id"],
            name=op.f("fk_data_resource_schemas_resource_id_data_resources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_resource_schemas")),
        sa.UniqueConstraint(
            "resource_id", "version", name=op.f("uq_data_resource_schemas_resource_id")
        ),
    )
    with op.batch_alter_table("data_resource_schemas", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_data_resource_schemas_resource_id"), ["resource_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("data_resource_schemas", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_resource_schemas_resource_id"))

    op.drop_table("data_resource_schemas")
    with op.batch_alter_table("data_resources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_resources_provider_id"))

    op.drop_table("data_resources")
