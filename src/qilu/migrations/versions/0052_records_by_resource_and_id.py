"""A resource's records by id (issue 17): listings, extracts and the open-data CSV page through
a resource's records by id; without this index SQLite walks the key index and sorts the whole
resource for every page. Index only.

Revision ID: 0052
Revises: 0051
Create Date: 2026-12-07 17:17:00
"""

from __future__ import annotations

from alembic import op

revision = "0052"
down_revision = "0051"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_data_records_resource_id_id", "data_records", ["resource_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_data_records_resource_id_id", table_name="data_records")
