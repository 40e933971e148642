"""Monitoring (issue 15): registered devices, sources held aside, the raw-frame archive and
the readings (new tables only: expand).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 01:32:15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_unknown_sources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frames", sa.BigInteger(), nullable=False),
        sa.Column("last_peer", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_unknown_sources")),
        sa.UniqueConstraint("protocol", "code", name=op.f("uq_monitor_unknown_sources_protocol")),
    )
    op.create_table(
        "monitor_devices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "owner_entity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("auth_code", sa.String(length=64), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('pollution_source', 'air_station', 'vehicle', 'hydro_station', 'tank')",
            name=op.f("ck_monitor_devices_kind"),
        ),
        sa.CheckConstraint(
            "protocol IN ('hj212', 'jt808', 'sl651', 'mqtt')",
            name=op.f("ck_monitor_devices_protocol"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_entity_id"],
            ["legal_entities.id"],
            name=op.f("fk_monitor_devices_owner_entity_id_legal_entities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_devices")),
        sa.UniqueConstraint("protocol", "code", name=op.f("uq_monitor_devices_protocol")),
    )
    with op.batch_alter_table("monitor_devices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_devices_division_code"), ["division_code"], unique=False
        )

    op.create_table(
        "monitor_frames",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("protocol", sa.String(length=8), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=40), nullable=True),
        sa.Column("message", sa.String(length=10), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=True),
        sa.Column("device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["monitor_devices.id"],
            name=op.f("fk_monitor_frames_device_id_monitor_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_frames")),
    )
    with op.batch_alter_table("monitor_frames", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_frames_received_at"), ["received_at"], unique=False
        )
        batch_op.create_index(
            "ix_monitor_frames_source", ["protocol", "source", "received_at"], unique=False
        )

    op.create_table(
        "monitor_readings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "device_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("flag", sa.String(length=12), nullable=True),
        sa.Column("frame_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["monitor_devices.id"],
            name=op.f("fk_monitor_readings_device_id_monitor_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["frame_id"],
            ["monitor_frames.id"],
            name=op.f("fk_monitor_readings_frame_id_monitor_frames"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_readings")),
    )
    with op.batch_alter_table("monitor_readings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitor_readings_series", ["device_id", "metric", "observed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("monitor_readings", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_readings_series")

    op.drop_table("monitor_readings")
    with op.batch_alter_table("monitor_frames", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_frames_source")
        batch_op.drop_index(batch_op.f("ix_monitor_frames_received_at"))

    op.drop_table("monitor_frames")
    with op.batch_alter_table("monitor_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_devices_division_code"))

    op.drop_table("monitor_devices")
    op.drop_table("monitor_unknown_sources")
