"""Licences kept for someone (a newborn's certificate in a parent's wallet) and 亮证 showings.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("service_licences") as batch:
        batch.add_column(sa.Column("keeper_code_index", sa.LargeBinary(length=32), nullable=True))
        batch.create_index(
            "ix_service_licences_keeper_code_index", ["keeper_code_index"], unique=False
        )
    op.create_table(
        "service_licence_showings",
        sa.Column("id", ID, nullable=False),
        sa.Column("licence_id", ID, nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("verified_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["service_licences.id"],
            name=op.f("fk_service_licence_showings_licence_id_service_licences"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_licence_showings")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_service_licence_showings_token_digest")),
    )
    op.create_index(
        "ix_service_licence_showings_licence_id",
        "service_licence_showings",
        ["licence_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_service_licence_showings_licence_id", table_name="service_licence_showings")
    op.drop_table("service_licence_showings")
    with op.batch_alter_table("service_licences") as batch:
        batch.drop_index("ix_service_licences_keeper_code_index")
        batch.drop_column("keeper_code_index")
