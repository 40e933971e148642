"""Catalog metadata (issue 17): a resource's 资源分类, 资源格式, 关联资源代码 (GB/T 21063) and the
city catalog a cascaded entry comes from. New columns; existing resources get the class of their
library and the format of their share mode. The downgrade drops the columns without rebuilding
the table (SQLite refuses to rebuild a table others reference).

Revision ID: 0049
Revises: 0048
Create Date: 2026-12-07 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0049"
down_revision = "0048"
branch_labels = None
depends_on = None

COLUMNS = (
    sa.Column("classification", sa.String(length=40), server_default="", nullable=False),
    sa.Column("format", sa.String(length=20), server_default="", nullable=False),
    sa.Column("related", sa.JSON(), server_default="[]", nullable=False),
    sa.Column("origin", sa.String(length=200), server_default="", nullable=False),
)


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("data_resources", column)
    op.execute(
        "UPDATE data_resources SET classification = CASE library WHEN 'base' THEN '1' "
        "WHEN 'business' THEN '3' ELSE '2' END, "
        "format = CASE share_mode WHEN 'api' THEN 'api' WHEN 'file' THEN 'file' "
        "ELSE 'database' END"
    )


def downgrade() -> None:
    for column in reversed(COLUMNS):
        op.drop_column("data_resources", column.name)
