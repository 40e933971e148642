"""Monitoring (issue 15): on PostgreSQL, the raw frames and the readings become tables
partitioned by the day they were received (`monitor.retention` makes each day's partition ahead
and drops those past QILU_MONITOR_RETENTION_DAYS; a DEFAULT partition takes what no day's
partition holds yet). Partitions live in the schema `monitor_partitions`. A reading keeps its
frame's id without a foreign key (one cannot point into a partitioned table by id alone).
Rows already stored are copied over.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07 05:25:00
"""

from __future__ import annotations

from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

TABLES = ("monitor_frames", "monitor_readings")
INDEXES = (
    "CREATE INDEX ix_monitor_frames_received_at ON monitor_frames (received_at)",
    "CREATE INDEX ix_monitor_frames_source ON monitor_frames (protocol, source, received_at)",
    "CREATE INDEX ix_monitor_readings_series ON monitor_readings (device_id, metric, observed_at)",
)
DEVICE_KEYS = tuple(
    f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_device_id_monitor_devices "
    "FOREIGN KEY (device_id) REFERENCES monitor_devices (id)"
    for table in TABLES
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        with op.batch_alter_table("monitor_readings", schema=None) as batch_op:
            batch_op.drop_constraint(
                "fk_monitor_readings_frame_id_monitor_frames", type_="foreignkey"
            )
        return
    op.execute("CREATE SCHEMA IF NOT EXISTS monitor_partitions")
    for table in TABLES:
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
        op.execute(
            f"CREATE TABLE {table}_new (LIKE {table} INCLUDING DEFAULTS) "
            "PARTITION BY RANGE (received_at)"
        )
        op.execute(
            f"CREATE TABLE monitor_partitions.{table}_default PARTITION OF {table}_new DEFAULT"
        )
        op.execute(f"INSERT INTO {table}_new SELECT * FROM {table}")
    op.execute("DROP TABLE monitor_readings")
    op.execute("DROP TABLE monitor_frames")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id, received_at)")
    for statement in (*INDEXES, *DEVICE_KEYS):
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        with op.batch_alter_table("monitor_readings", schema=None) as batch_op:
            batch_op.create_foreign_key(
                "fk_monitor_readings_frame_id_monitor_frames",
                "monitor_frames",
                ["frame_id"],
                ["id"],
            )
        return
    for table in TABLES:
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY NONE")
        op.execute(f"CREATE TABLE {table}_old (LIKE {table} INCLUDING DEFAULTS)")
        op.execute(f"INSERT INTO {table}_old SELECT * FROM {table}")
    op.execute("DROP TABLE monitor_readings")
    op.execute("DROP TABLE monitor_frames")
    op.execute("DROP SCHEMA monitor_partitions CASCADE")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table}_old RENAME TO {table}")
        op.execute(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY (id)")
    for statement in (*INDEXES, *DEVICE_KEYS):
        op.execute(statement)
    op.execute(
        "ALTER TABLE monitor_readings ADD CONSTRAINT fk_monitor_readings_frame_id_monitor_frames "
        "FOREIGN KEY (frame_id) REFERENCES monitor_frames (id)"
    )
