"""Department systems with client credentials, clear-text fields of a grant, residents' consents.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department_id", ID, nullable=True))
        batch_op.add_column(sa.Column("rate_per_second", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_oidc_clients_department_id_departments"),
            "departments",
            ["department_id"],
            ["id"],
        )
        batch_op.create_index(
            batch_op.f("ix_oidc_clients_department_id"), ["department_id"], unique=False
        )
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=ID, nullable=True)
    with op.batch_alter_table("data_share_grants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("clear_fields", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("data_share_grants", schema=None) as batch_op:
        batch_op.alter_column("clear_fields", server_default=None)
    op.create_table(
        "data_consents",
        sa.Column("id", ID, nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("subject_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("resource_id", ID, nullable=False),
        sa.Column("consumer_id", ID, nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["departments.id"],
            name=op.f("fk_data_consents_consumer_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["data_resources.id"],
            name=op.f("fk_data_consents_resource_id_data_resources"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_consents")),
    )
    op.create_index("ix_data_consents_person_id", "data_consents", ["person_id"])
    op.create_index(
        "ix_data_consents_lookup", "data_consents", ["subject_index", "resource_id", "consumer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_data_consents_lookup", table_name="data_consents")
    op.drop_index("ix_data_consents_person_id", table_name="data_consents")
    op.drop_table("data_consents")
    with op.batch_alter_table("data_share_grants", schema=None) as batch_op:
        batch_op.drop_column("clear_fields")
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=ID, nullable=False)
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_clients_department_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_oidc_clients_department_id_departments"), type_="foreignkey"
        )
        batch_op.drop_column("rate_per_second")
        batch_op.drop_column("department_id")
