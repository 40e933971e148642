"""Roles of civil servants in their departments.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 00:54:03.424196
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_roles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "staff_member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by_person_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_member_id"],
            ["staff_members.id"],
            name=op.f("fk_staff_roles_staff_member_id_staff_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_roles")),
        sa.UniqueConstraint("staff_member_id", "role", name=op.f("uq_staff_roles_staff_member_id")),
    )
    with op.batch_alter_table("staff_roles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_roles_staff_member_id"), ["staff_member_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_roles_staff_member_id"))

    op.drop_table("staff_roles")
