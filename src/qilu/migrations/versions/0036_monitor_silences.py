"""Monitoring (issue 15): maintenance windows and silences, kept in the store so they outlive a
restart. New table only.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_silences",
        sa.Column("id", Id, nullable=False),
        sa.Column("device_id", Id, nullable=True),
        sa.Column("division_code", sa.String(length=6), nullable=True),
        sa.Column("rule_code", sa.String(length=40), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_by", Id, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["persons.id"], name=op.f("fk_monitor_silences_created_by_persons")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["monitor_devices.id"],
            name=op.f("fk_monitor_silences_device_id_monitor_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_silences")),
    )
    with op.batch_alter_table("monitor_silences", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_silences_until", ["ends_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("monitor_silences", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_silences_until")
    op.drop_table("monitor_silences")
