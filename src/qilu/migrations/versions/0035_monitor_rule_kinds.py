"""Monitoring (issue 15): more rule kinds. A vehicle's approved route and a device's own levels
per rule (a station's 警戒/保证 water levels); a rule's state keeps the reading before (rate
of change) and the last M outcomes (N of M). New nullable columns only.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 04:41:52
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitor_devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("route", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("thresholds", sa.JSON(), nullable=True))
    with op.batch_alter_table("monitor_rule_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("last_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("recent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitor_rule_states", schema=None) as batch_op:
        batch_op.drop_column("recent")
        batch_op.drop_column("last_at")
        batch_op.drop_column("last_value")
    with op.batch_alter_table("monitor_devices", schema=None) as batch_op:
        batch_op.drop_column("thresholds")
        batch_op.drop_column("route")
