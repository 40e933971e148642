"""亲友代办: family members authorised to apply for a resident; applications made that way.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "family_proxies",
        sa.Column("id", ID, nullable=False),
        sa.Column("principal_person_id", ID, nullable=False),
        sa.Column("proxy_person_id", ID, nullable=False),
        sa.Column("relation", sa.String(length=8), nullable=False),
        sa.Column("valid_until", WHEN, nullable=False),
        sa.Column("granted_at", WHEN, nullable=False),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.Column("revoked_by_person_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_person_id"],
            ["persons.id"],
            name=op.f("fk_family_proxies_principal_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["proxy_person_id"],
            ["persons.id"],
            name=op.f("fk_family_proxies_proxy_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_person_id"],
            ["persons.id"],
            name=op.f("fk_family_proxies_revoked_by_person_id_persons"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_proxies")),
    )
    op.create_index(
        "ix_family_proxies_principal_person_id", "family_proxies", ["principal_person_id"]
    )
    op.create_index("ix_family_proxies_proxy_person_id", "family_proxies", ["proxy_person_id"])
    with op.batch_alter_table("service_applications") as batch:
        batch.drop_constraint(op.f("ck_service_applications_channel"), type_="check")
        batch.create_check_constraint("channel", "channel IN ('online', 'window', 'family')")


def downgrade() -> None:
    with op.batch_alter_table("service_applications") as batch:
        batch.drop_constraint(op.f("ck_service_applications_channel"), type_="check")
        batch.create_check_constraint("channel", "channel IN ('online', 'window')")
    op.drop_index("ix_family_proxies_proxy_person_id", table_name="family_proxies")
    op.drop_index("ix_family_proxies_principal_person_id", table_name="family_proxies")
    op.drop_table("family_proxies")
