"""Agents authorised by legal representatives, and the identity a browser acts as.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 00:49:50.776224
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enterprise_agents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "entity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "agent_person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "granted_by_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "revoked_by_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["agent_person_id"],
            ["persons.id"],
            name=op.f("fk_enterprise_agents_agent_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["legal_entities.id"],
            name=op.f("fk_enterprise_agents_entity_id_legal_entities"),
        ),
        sa.ForeignKeyConstraint(
            ["granted_by_person_id"],
            ["persons.id"],
            name=op.f("fk_enterprise_agents_granted_by_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_person_id"],
            ["persons.id"],
            name=op.f("fk_enterprise_agents_revoked_by_person_id_persons"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprise_agents")),
    )
    with op.batch_alter_table("enterprise_agents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enterprise_agents_agent_person_id"), ["agent_person_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_enterprise_agents_entity_id"), ["entity_id"], unique=False
        )

    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "acting_for_entity_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_web_sessions_acting_for_entity_id_legal_entities"),
            "legal_entities",
            ["acting_for_entity_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_web_sessions_acting_for_entity_id_legal_entities"), type_="foreignkey"
        )
        batch_op.drop_column("acting_for_entity_id")

    with op.batch_alter_table("enterprise_agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enterprise_agents_entity_id"))
        batch_op.drop_index(batch_op.f("ix_enterprise_agents_agent_person_id"))

    op.drop_table("enterprise_agents")
