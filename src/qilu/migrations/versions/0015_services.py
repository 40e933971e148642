"""Services: the catalog (versioned), applications and cases, e-licences, ratings, offers, archives

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 07:25:49.699258
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_chains",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=10), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_chains")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_service_chains_code")),
    )
    with op.batch_alter_table("service_chains", schema=None) as batch_op:
        batch_op.create_index("ix_service_chains_current", ["is_current", "code"], unique=False)

    op.create_table(
        "service_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("department_kind", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=10), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("change_note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_person_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_items")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_service_items_code")),
    )
    with op.batch_alter_table("service_items", schema=None) as batch_op:
        batch_op.create_index("ix_service_items_current", ["is_current", "code"], unique=False)

    op.create_table(
        "service_department_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("private_key_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_service_department_keys_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_department_keys")),
    )
    with op.batch_alter_table("service_department_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_department_keys_department_id"), ["department_id"], unique=False
        )

    op.create_table(
        "service_applications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("chain_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "applicant_person_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("entity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("clerk_person_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "receiving_department_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("disputed", sa.JSON(), nullable=False),
        sa.Column("prefilled", sa.JSON(), nullable=False),
        sa.Column("submission_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('online', 'window')", name=op.f("ck_service_applications_channel")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'in_progress', 'correcting', 'done', 'closed')",
            name=op.f("ck_service_applications_status"),
        ),
        sa.CheckConstraint(
            "(chain_id IS NULL) <> (item_id IS NULL)",
            name=op.f("ck_service_applications_chain_or_item"),
        ),
        sa.ForeignKeyConstraint(
            ["applicant_person_id"],
            ["persons.id"],
            name=op.f("fk_service_applications_applicant_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["chain_id"],
            ["service_chains.id"],
            name=op.f("fk_service_applications_chain_id_service_chains"),
        ),
        sa.ForeignKeyConstraint(
            ["entity_id"],
            ["legal_entities.id"],
            name=op.f("fk_service_applications_entity_id_legal_entities"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["service_items.id"],
            name=op.f("fk_service_applications_item_id_service_items"),
        ),
        sa.ForeignKeyConstraint(
            ["receiving_department_id"],
            ["departments.id"],
            name=op.f("fk_service_applications_receiving_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_applications")),
        sa.UniqueConstraint(
            "applicant_person_id",
            "submission_key",
            name=op.f("uq_service_applications_applicant_person_id"),
        ),
        sa.UniqueConstraint("number", name=op.f("uq_service_applications_number")),
    )
    with op.batch_alter_table("service_applications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_service_applications_applicant", ["applicant_person_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_service_applications_entity_id"), ["entity_id"], unique=False
        )

    op.create_table(
        "service_archives",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("tag_digest", sa.String(length=64), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["service_applications.id"],
            name=op.f("fk_service_archives_application_id_service_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_archives")),
        sa.UniqueConstraint("application_id", name=op.f("uq_service_archives_application_id")),
    )
    op.create_table(
        "service_cases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("implementation_code", sa.String(length=64), nullable=False),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "receiving_department_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("waits_for", sa.JSON(), nullable=False),
        sa.Column("claimed_by_person_id", sa.BigInteger(), nullable=True),
        sa.Column("accepted_on", sa.Date(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("paused_since", sa.Date(), nullable=True),
        sa.Column("paused_days", sa.Integer(), nullable=False),
        sa.Column("pause_reason", sa.String(length=60), nullable=True),
        sa.Column("decision", sa.String(length=12), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("instant", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("post_check", sa.String(length=8), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('waiting', 'submitted', 'accepted', 'reviewing', 'correcting', "
            "'granted', 'refused', 'not_accepted', 'cancelled', 'done')",
            name=op.f("ck_service_cases_state"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["service_applications.id"],
            name=op.f("fk_service_cases_application_id_service_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_service_cases_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["service_items.id"], name=op.f("fk_service_cases_item_id_service_items")
        ),
        sa.ForeignKeyConstraint(
            ["receiving_department_id"],
            ["departments.id"],
            name=op.f("fk_service_cases_receiving_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_service_cases_number")),
    )
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_cases_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(
            "ix_service_cases_queue", ["department_id", "state", "due_on"], unique=False
        )
        batch_op.create_index(
            "ix_service_cases_received", ["receiving_department_id", "state"], unique=False
        )

    op.create_table(
        "service_offers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("item_code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('offered', 'accepted', 'declined')", name=op.f("ck_service_offers_status")
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["service_applications.id"],
            name=op.f("fk_service_offers_application_id_service_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_service_offers_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_offers")),
        sa.UniqueConstraint("person_id", "item_code", name=op.f("uq_service_offers_person_id")),
    )
    with op.batch_alter_table("service_offers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_offers_person_id"), ["person_id"], unique=False
        )

    op.create_table(
        "service_ratings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("overall", sa.Integer(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("overall BETWEEN 1 AND 5", name=op.f("ck_service_ratings_overall")),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["service_applications.id"],
            name=op.f("fk_service_ratings_application_id_service_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_ratings")),
        sa.UniqueConstraint("application_id", name=op.f("uq_service_ratings_application_id")),
    )
    op.create_table(
        "service_case_steps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=False),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("actor_person_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["service_cases.id"],
            name=op.f("fk_service_case_steps_case_id_service_cases"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_case_steps")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_service_case_steps_case_id")),
    )
    op.create_table(
        "service_licences",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("licence_type", sa.String(length=60), nullable=False),
        sa.Column("holder_kind", sa.String(length=10), nullable=False),
        sa.Column("holder_code_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("holder_name", sa.String(length=200), nullable=False),
        sa.Column(
            "issuer_department_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("trust_grade", sa.String(length=1), nullable=False),
        sa.Column("key_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('valid', 'revoked')", name=op.f("ck_service_licences_status")
        ),
        sa.CheckConstraint(
            "trust_grade IN ('A', 'B', 'C', 'D')", name=op.f("ck_service_licences_trust_grade")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["service_cases.id"],
            name=op.f("fk_service_licences_case_id_service_cases"),
        ),
        sa.ForeignKeyConstraint(
            ["issuer_department_id"],
            ["departments.id"],
            name=op.f("fk_service_licences_issuer_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["service_department_keys.id"],
            name=op.f("fk_service_licences_key_id_service_department_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_licences")),
        sa.UniqueConstraint("number", name=op.f("uq_service_licences_number")),
    )
    with op.batch_alter_table("service_licences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_licences_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_service_licences_holder", ["holder_code_index", "licence_type"], unique=False
        )

    op.create_table(
        "service_rectifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "rating_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fix_note", sa.Text(), nullable=True),
        sa.Column("callback_note", sa.Text(), nullable=True),
        sa.Column("appeal_reason", sa.Text(), nullable=True),
        sa.Column("decided_note", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'fixed', 'appealed', 'appeal_upheld')",
            name=op.f("ck_service_rectifications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_service_rectifications_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"],
            ["service_ratings.id"],
            name=op.f("fk_service_rectifications_rating_id_service_ratings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_rectifications")),
    )
    with op.batch_alter_table("service_rectifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_service_rectifications_queue", ["department_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_service_rectifications_rating_id"), ["rating_id"], unique=False
        )

    op.create_table(
        "service_application_materials",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "application_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("material", sa.String(length=60), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column(
            "licence_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("file_name", sa.String(length=200), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source IN ('upload', 'licence', 'library', 'promise')",
            name=op.f("ck_service_application_materials_source"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["service_applications.id"],
            name=op.f("fk_service_application_materials_application_id_service_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["service_licences.id"],
            name=op.f("fk_service_application_materials_licence_id_service_licences"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_application_materials")),
    )
    with op.batch_alter_table("service_application_materials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_service_application_materials_application_id"),
            ["application_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("service_application_materials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_application_materials_application_id"))

    op.drop_table("service_application_materials")
    with op.batch_alter_table("service_rectifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_rectifications_rating_id"))
        batch_op.drop_index("ix_service_rectifications_queue")

    op.drop_table("service_rectifications")
    with op.batch_alter_table("service_licences", schema=None) as batch_op:
        batch_op.drop_index("ix_service_licences_holder")
        batch_op.drop_index(batch_op.f("ix_service_licences_case_id"))

    op.drop_table("service_licences")
    op.drop_table("service_case_steps")
    op.drop_table("service_ratings")
    with op.batch_alter_table("service_offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_offers_person_id"))

    op.drop_table("service_offers")
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_service_cases_received")
        batch_op.drop_index("ix_service_cases_queue")
        batch_op.drop_index(batch_op.f("ix_service_cases_application_id"))

    op.drop_table("service_cases")
    op.drop_table("service_archives")
    with op.batch_alter_table("service_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_applications_entity_id"))
        batch_op.drop_index("ix_service_applications_applicant")

    op.drop_table("service_applications")
    with op.batch_alter_table("service_department_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_department_keys_department_id"))

    op.drop_table("service_department_keys")
    with op.batch_alter_table("service_items", schema=None) as batch_op:
        batch_op.drop_index("ix_service_items_current")

    op.drop_table("service_items")
    with op.batch_alter_table("service_chains", schema=None) as batch_op:
        batch_op.drop_index("ix_service_chains_current")

    op.drop_table("service_chains")
