"""Signing in on a computer by confirming on a phone (扫码登录), and SMS one-time codes as a
second factor.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 02:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cross_device_sign_ins",
        sa.Column("id", ID, nullable=False),
        sa.Column("reference_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("poll_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("check_code", sa.String(length=4), nullable=False),
        sa.Column("desktop_address", sa.String(length=64), nullable=True),
        sa.Column("desktop_agent", sa.String(length=255), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("account_id", ID, nullable=True),
        sa.Column("assurance", sa.Integer(), nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("consumed_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_cross_device_sign_ins_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cross_device_sign_ins")),
        sa.UniqueConstraint("reference_hash", name=op.f("uq_cross_device_sign_ins_reference_hash")),
        sa.UniqueConstraint("poll_hash", name=op.f("uq_cross_device_sign_ins_poll_hash")),
    )
    op.create_table(
        "sms_codes",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sent_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sms_codes_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_codes")),
    )
    op.create_index("ix_sms_codes_account_id", "sms_codes", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_sms_codes_account_id", table_name="sms_codes")
    op.drop_table("sms_codes")
    op.drop_table("cross_device_sign_ins")
