"""单套制 archives to archival standards (issue 16): each package's 档号, 全宗号, 保管期限 and 密级
(DA/T 13, DA/T 46), its last 四性检测 with the report, and when it was transferred; and the 件号
counter of each 档号 series. Expand only: packages archived before get their metadata from a
check or a transfer.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07 11:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None

COLUMNS = (
    ("reference", sa.String(length=60)),
    ("fonds", sa.String(length=20)),
    ("retention", sa.String(length=4)),
    ("classification", sa.String(length=8)),
    ("check_passed", sa.Boolean()),
    ("check_report", sa.JSON()),
    ("checked_at", sa.DateTime(timezone=True)),
    ("transferred_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "service_archive_serials",
        sa.Column("series", sa.String(length=40), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series", name=op.f("pk_service_archive_serials")),
    )
    for name, kind in COLUMNS:
        op.add_column("service_archives", sa.Column(name, kind, nullable=True))
    op.create_index(
        op.f("ix_service_archives_reference"), "service_archives", ["reference"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_service_archives_reference"), table_name="service_archives")
    for name, _ in reversed(COLUMNS):
        op.drop_column("service_archives", name)
    op.drop_table("service_archive_serials")
