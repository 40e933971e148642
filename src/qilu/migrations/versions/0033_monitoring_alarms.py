"""Monitoring (issue 15): warning rules by version, their pending state per device, alarms (one
not cleared per device and rule, by a partial unique index) with their dispatch, and their
history. New tables only.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 01:40:46
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_rules")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_monitor_rules_code")),
    )
    op.create_table(
        "monitor_alarms",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rule_code", sa.String(length=40), nullable=False),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "assignee_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_reason", sa.String(length=12), nullable=True),
        sa.CheckConstraint("level BETWEEN 1 AND 4", name=op.f("ck_monitor_alarms_level")),
        sa.ForeignKeyConstraint(
            ["assignee_person_id"],
            ["persons.id"],
            name=op.f("fk_monitor_alarms_assignee_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_monitor_alarms_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["monitor_devices.id"],
            name=op.f("fk_monitor_alarms_device_id_monitor_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["monitor_rules.id"], name=op.f("fk_monitor_alarms_rule_id_monitor_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alarms")),
    )
    with op.batch_alter_table("monitor_alarms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitor_alarms_wall", ["division_code", "state", "opened_at"], unique=False
        )
        batch_op.create_index(
            "uq_monitor_alarms_active",
            ["device_id", "rule_code"],
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )

    op.create_table(
        "monitor_rule_states",
        sa.Column(
            "device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("rule_code", sa.String(length=40), nullable=False),
        sa.Column("pending_level", sa.Integer(), nullable=True),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["monitor_devices.id"],
            name=op.f("fk_monitor_rule_states_device_id_monitor_devices"),
        ),
        sa.PrimaryKeyConstraint("device_id", "rule_code", name=op.f("pk_monitor_rule_states")),
    )
    op.create_table(
        "monitor_alarm_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alarm_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column(
            "actor_person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_person_id"],
            ["persons.id"],
            name=op.f("fk_monitor_alarm_events_actor_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["monitor_alarms.id"],
            name=op.f("fk_monitor_alarm_events_alarm_id_monitor_alarms"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alarm_events")),
    )
    with op.batch_alter_table("monitor_alarm_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_alarm_events_alarm_id"), ["alarm_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("monitor_alarm_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_alarm_events_alarm_id"))

    op.drop_table("monitor_alarm_events")
    op.drop_table("monitor_rule_states")
    with op.batch_alter_table("monitor_alarms", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_monitor_alarms_active",
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )
        batch_op.drop_index("ix_monitor_alarms_wall")

    op.drop_table("monitor_alarms")
    op.drop_table("monitor_rules")
