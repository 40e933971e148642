"""预约: window visits booked in half-day slots, with queue numbers.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 05:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_bookings",
        sa.Column("id", ID, nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("department_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("period", sa.String(length=2), nullable=False),
        sa.Column("queue_number", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("cancelled_at", WHEN, nullable=True),
        sa.Column("reminded_at", WHEN, nullable=True),
        sa.CheckConstraint("period IN ('am', 'pm')", name=op.f("ck_service_bookings_period")),
        sa.CheckConstraint(
            "status IN ('booked', 'cancelled')", name=op.f("ck_service_bookings_status")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_service_bookings_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["service_items.id"],
            name=op.f("fk_service_bookings_item_id_service_items"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_service_bookings_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_bookings")),
        sa.UniqueConstraint(
            "department_id",
            "day",
            "queue_number",
            name=op.f("uq_service_bookings_department_id"),
        ),
    )
    op.create_index("ix_service_bookings_person_id", "service_bookings", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_service_bookings_person_id", table_name="service_bookings")
    op.drop_table("service_bookings")
