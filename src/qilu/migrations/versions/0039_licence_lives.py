"""E-licences' lives (issue 16): the 电子证照标识 (GB/T 36903), a version, states beyond valid
and revoked (暂扣), the events of each licence and the uses made of it (用证).

Existing licences get their identifier (version 001; the type code from the 证照目录 as it is
today, frozen below, and their issuer's USCC), their state from their status, and an 签发 event
(and a 注销 one if revoked). The holder's code, now kept encrypted for the national licence
library, cannot be recovered for them (only its blind index was kept). Their `version` stays
empty: the document they were sealed as had
no identifier, so it must not gain one, or their seals would stop verifying.

The new `state` is checked by the database on PostgreSQL; SQLite cannot add a check to an
existing table without copying it (and the rows that refer to it would stop it).

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 10:40:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from stdnum.iso7064 import mod_37_36

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ROOT = "1.2.156.3005.2"
# 证照目录 (services/data/licence_types.yaml) as it stood: type → (defining kind, sequence).
TYPES = {
    "居住证": ("public_security", 1),
    "机动车行驶证": ("public_security", 2),
    "机动车驾驶证": ("public_security", 3),
    "特种行业许可证": ("public_security", 4),
    "结婚证": ("civil_affairs", 1),
    "民办非企业单位登记证书": ("civil_affairs", 2),
    "残疾人证": ("civil_affairs", 3),
    "营业执照": ("market_regulation", 1),
    "食品经营许可证": ("market_regulation", 2),
    "食品生产许可证": ("market_regulation", 3),
    "小餐饮登记证": ("market_regulation", 4),
    "药品经营许可证": ("market_regulation", 5),
    "不动产权证书": ("natural_resources", 1),
    "建设工程规划许可证": ("natural_resources", 2),
    "建筑工程施工许可证": ("housing", 1),
    "公共场所卫生许可证": ("health", 1),
    "出生医学证明": ("health", 2),
    "死亡医学证明": ("health", 3),
    "办学许可证": ("education", 1),
    "教师资格证": ("education", 2),
    "危险化学品经营许可证": ("emergency", 1),
    "社会保障卡": ("human_resources", 1),
    "道路运输经营许可证": ("transport", 1),
    "道路运输从业资格证": ("transport", 2),
}

licences = sa.table(
    "service_licences",
    sa.column("id", sa.Integer),
    sa.column("number", sa.String),
    sa.column("licence_type", sa.String),
    sa.column("issuer_department_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("state", sa.String),
    sa.column("identifier", sa.String),
    sa.column("issued_at", sa.DateTime(timezone=True)),
    sa.column("revoked_at", sa.DateTime(timezone=True)),
    sa.column("revoke_reason", sa.Text),
)
departments = sa.table(
    "departments",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("level", sa.String),
    sa.column("uscc", sa.String),
)
events = sa.table(
    "service_licence_events",
    sa.column("licence_id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("from_state", sa.String),
    sa.column("to_state", sa.String),
    sa.column("reason", sa.Text),
    sa.column("version", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
)


def _moment(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def upgrade() -> None:
    op.create_table(
        "service_licence_events",
        sa.Column("id", Id, nullable=False),
        sa.Column("licence_id", Id, nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("from_state", sa.String(length=10), nullable=True),
        sa.Column("to_state", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("replaced", sa.JSON(), nullable=True),
        sa.Column("actor_person_id", Id, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_person_id"],
            ["persons.id"],
            name=op.f("fk_service_licence_events_actor_person_id_persons"),
        ),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["service_licences.id"],
            name=op.f("fk_service_licence_events_licence_id_service_licences"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_licence_events")),
    )
    op.create_index(
        op.f("ix_service_licence_events_licence_id"), "service_licence_events", ["licence_id"]
    )
    op.create_table(
        "service_licence_uses",
        sa.Column("id", Id, nullable=False),
        sa.Column("licence_id", Id, nullable=False),
        sa.Column("used_by", sa.String(length=200), nullable=False),
        sa.Column("department_id", Id, nullable=True),
        sa.Column("purpose", sa.String(length=300), nullable=False),
        sa.Column("authorisation", sa.String(length=100), nullable=False),
        sa.Column("application_id", Id, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["service_applications.id"],
            name=op.f("fk_service_licence_uses_application_id_service_applications"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_service_licence_uses_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["licence_id"],
            ["service_licences.id"],
            name=op.f("fk_service_licence_uses_licence_id_service_licences"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_licence_uses")),
    )
    op.create_index(
        op.f("ix_service_licence_uses_licence_id"), "service_licence_uses", ["licence_id"]
    )
    op.add_column("service_licences", sa.Column("identifier", sa.String(length=120)))
    op.add_column("service_licences", sa.Column("version", sa.Integer()))
    op.add_column("service_licences", sa.Column("state", sa.String(length=10)))
    op.add_column("service_licences", sa.Column("holder_code_cipher", sa.LargeBinary()))
    op.create_index(
        op.f("ix_service_licences_identifier"), "service_licences", ["identifier"], unique=True
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.create_check_constraint(
            op.f("ck_service_licences_state"),
            "service_licences",
            "state IN ('valid', 'suspended', 'revoked')",
        )
    _backfill(bind)


def _backfill(bind: sa.Connection) -> None:
    rows = bind.execute(
        sa.select(departments.c.id, departments.c.kind, departments.c.level, departments.c.uscc)
    ).all()
    uscc = {row.id: row.uscc for row in rows}
    definers = {row.kind: row.uscc for row in rows if row.level == "province"}
    made = []
    for row in bind.execute(sa.select(licences)).all():
        kind, seq = TYPES.get(row.licence_type, (None, 0))
        values = {"state": row.status}
        if kind in definers and row.number.isalnum():
            body = f"{definers[kind]}{seq:03d}{uscc[row.issuer_department_id]}{row.number}001"
            parts = (f"{definers[kind]}{seq:03d}", uscc[row.issuer_department_id], row.number)
            check = mod_37_36.calc_check_digit(body)
            values["identifier"] = ".".join((ROOT, *parts, "001", check))
        bind.execute(sa.update(licences).where(licences.c.id == row.id).values(**values))
        made.append(
            {
                "licence_id": row.id,
                "action": "issue",
                "from_state": None,
                "to_state": "valid",
                "reason": None,
                "version": 1,
                "at": _moment(row.issued_at),
            }
        )
        if row.status == "revoked":
            made.append(
                {
                    "licence_id": row.id,
                    "action": "revoke",
                    "from_state": "valid",
                    "to_state": "revoked",
                    "reason": row.revoke_reason,
                    "version": 1,
                    "at": _moment(row.revoked_at or row.issued_at),
                }
            )
    if made:
        bind.execute(sa.insert(events), made)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_service_licences_state"), "service_licences", type_="check")
    op.drop_index(op.f("ix_service_licences_identifier"), table_name="service_licences")
    for column in ("holder_code_cipher", "state", "version", "identifier"):
        op.drop_column("service_licences", column)
    op.drop_index(op.f("ix_service_licence_uses_licence_id"), table_name="service_licence_uses")
    op.drop_table("service_licence_uses")
    op.drop_index(op.f("ix_service_licence_events_licence_id"), table_name="service_licence_events")
    op.drop_table("service_licence_events")
