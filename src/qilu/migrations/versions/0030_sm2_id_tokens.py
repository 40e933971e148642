"""A department system may want its ID tokens signed with SM2 (国密). The default keeps the
previous release's registrations valid (expand).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 00:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oidc_clients") as batch:
        batch.add_column(
            sa.Column("id_token_alg", sa.String(length=8), server_default="RS256", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("oidc_clients") as batch:
        batch.drop_column("id_token_alg")
