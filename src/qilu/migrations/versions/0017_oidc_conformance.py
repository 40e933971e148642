"""The OIDC provider as department systems expect it: keys published before they sign,
remembered consent, pushed authorization requests, client assertions (private_key_jwt), logout
URIs, real-name scopes per system, JWT access tokens, and the browser session behind each token.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activates_at", WHEN, nullable=True))
    op.execute("UPDATE signing_keys SET activates_at = created_at")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.alter_column("activates_at", existing_type=WHEN, nullable=False)
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jwks", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("allowed_scopes", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column(
                "access_token_format", sa.String(length=8), nullable=False, server_default="opaque"
            )
        )
        batch_op.add_column(sa.Column("backchannel_logout_uri", sa.String(500), nullable=True))
        batch_op.add_column(sa.Column("frontchannel_logout_uri", sa.String(500), nullable=True))
    with op.batch_alter_table("oidc_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("web_session_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("web_session_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_oidc_tokens_web_session_id", ["web_session_id"])
    op.create_table(
        "oidc_consents",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("granted_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_oidc_consents_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_consents")),
        sa.UniqueConstraint("account_id", "client_id", name=op.f("uq_oidc_consents_account_id")),
    )
    op.create_index("ix_oidc_consents_account_id", "oidc_consents", ["account_id"])
    op.create_table(
        "oidc_pushed_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("reference_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_pushed_requests")),
        sa.UniqueConstraint("reference_hash", name=op.f("uq_oidc_pushed_requests_reference_hash")),
    )
    op.create_table(
        "oidc_assertions",
        sa.Column("id", ID, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_assertions")),
        sa.UniqueConstraint("client_id", "jti", name=op.f("uq_oidc_assertions_client_id")),
    )
    op.create_index("ix_oidc_assertions_expires_at", "oidc_assertions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_assertions_expires_at", table_name="oidc_assertions")
    op.drop_table("oidc_assertions")
    op.drop_table("oidc_pushed_requests")
    op.drop_index("ix_oidc_consents_account_id", table_name="oidc_consents")
    op.drop_table("oidc_consents")
    with op.batch_alter_table("oidc_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_oidc_tokens_web_session_id")
        batch_op.drop_column("web_session_id")
    with op.batch_alter_table("oidc_codes", schema=None) as batch_op:
        batch_op.drop_column("web_session_id")
    with op.batch_alter_table("oidc_clients", schema=None) as batch_op:
        for column in ("frontchannel_logout_uri", "backchannel_logout_uri", "access_token_format",
                       "allowed_scopes", "jwks"):  # fmt: skip
            batch_op.drop_column(column)
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_column("activates_at")
