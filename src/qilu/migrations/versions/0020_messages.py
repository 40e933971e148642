"""消息中心: a person's messages and whether they want an SMS copy.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", ID, nullable=False),
        sa.Column("person_id", ID, nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=300), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("read_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_messages_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index("ix_messages_inbox", "messages", ["person_id", "read_at"])
    op.create_table(
        "message_preferences",
        sa.Column("person_id", ID, nullable=False),
        sa.Column("by_sms", sa.Boolean(), nullable=False),
        sa.Column("changed_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_message_preferences_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_message_preferences")),
    )


def downgrade() -> None:
    op.drop_table("message_preferences")
    op.drop_index("ix_messages_inbox", table_name="messages")
    op.drop_table("messages")
