"""Foundation: the population and legal-entity registers, departments, staff, seed runs.

Identifiers are stored encrypted with a blind index from this first revision on (DESIGN.md),
so no later migration has to rewrite personal data.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 23:49:49.769887
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("parent_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.CheckConstraint(
            "level IN ('province', 'city', 'county')", name=op.f("ck_departments_level")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["departments.id"], name=op.f("fk_departments_parent_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("code", name=op.f("uq_departments_code")),
        sa.UniqueConstraint("division_code", "kind", name="uq_departments_division_kind"),
        sa.UniqueConstraint("uscc", name=op.f("uq_departments_uscc")),
    )
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_departments_division_code"), ["division_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_departments_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "persons",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("id_number_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("id_number_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("birth_division_code", sa.String(length=6), nullable=False),
        sa.Column("household_division_code", sa.String(length=6), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("ethnicity_code", sa.String(length=2), nullable=False),
        sa.Column("phone_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("phone_index", sa.LargeBinary(length=32), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("sex IN ('M', 'F')", name=op.f("ck_persons_sex")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persons")),
        sa.UniqueConstraint("id_number_index", name=op.f("uq_persons_id_number_index")),
    )
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_persons_household_division_code"),
            ["household_division_code"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_persons_phone_index"), ["phone_index"], unique=False)

    op.create_table(
        "seed_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("entities", sa.Integer(), nullable=False),
        sa.Column("departments", sa.Integer(), nullable=False),
        sa.Column("staff", sa.Integer(), nullable=False),
        sa.Column(
            "finished_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seed_runs")),
    )
    op.create_table(
        "legal_entities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("industry_code", sa.String(length=1), nullable=False),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column(
            "legal_representative_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("registered_capital", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("established_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('active', 'deregistered', 'revoked')", name=op.f("ck_legal_entities_status")
        ),
        sa.ForeignKeyConstraint(
            ["legal_representative_id"],
            ["persons.id"],
            name=op.f("fk_legal_entities_legal_representative_id_persons"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_entities")),
        sa.UniqueConstraint("uscc", name=op.f("uq_legal_entities_uscc")),
    )
    with op.batch_alter_table("legal_entities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_legal_entities_division_code"), ["division_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_legal_entities_legal_representative_id"),
            ["legal_representative_id"],
            unique=False,
        )

    op.create_table(
        "staff_members",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("title", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_staff_members_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_staff_members_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_members")),
        sa.UniqueConstraint(
            "department_id", "person_id", name=op.f("uq_staff_members_department_id")
        ),
    )
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_members_department_id"), ["department_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_staff_members_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_members_person_id"))
        batch_op.drop_index(batch_op.f("ix_staff_members_department_id"))

    op.drop_table("staff_members")
    with op.batch_alter_table("legal_entities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_entities_legal_representative_id"))
        batch_op.drop_index(batch_op.f("ix_legal_entities_division_code"))

    op.drop_table("legal_entities")
    op.drop_table("seed_runs")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_persons_phone_index"))
        batch_op.drop_index(batch_op.f("ix_persons_household_division_code"))

    op.drop_table("persons")
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_departments_parent_id"))
        batch_op.drop_index(batch_op.f("ix_departments_division_code"))

    op.drop_table("departments")
