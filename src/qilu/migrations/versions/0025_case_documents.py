"""Documents issued on cases (受理回执, 决定书, 补正告知书), sealed like licences.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_case_documents",
        sa.Column("id", ID, nullable=False),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("key_id", ID, nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", WHEN, nullable=False),
        sa.Column("pdf_digest", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "kind IN ('receipt', 'not_accepted', 'refused', 'correction')",
            name=op.f("ck_service_case_documents_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["service_cases.id"],
            name=op.f("fk_service_case_documents_case_id_service_cases"),
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["service_department_keys.id"],
            name=op.f("fk_service_case_documents_key_id_service_department_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_case_documents")),
        sa.UniqueConstraint("number", name=op.f("uq_service_case_documents_number")),
    )
    op.create_index("ix_service_case_documents_case_id", "service_case_documents", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_service_case_documents_case_id", table_name="service_case_documents")
    op.drop_table("service_case_documents")
