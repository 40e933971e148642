"""一网通办 to national standards (issue 16): item codes in the GB/T 39554.1 layout, 实施编码
rebuilt from them, and a 办件编号 by the national rule for every case.

- Basic codes: the shipped catalog's 7-character codes (type + department + sequence) become
  12 characters: Shandong's keeper prefix 37, the same type, department and sequence as main
  item, sub-item 000. Items, offers and the item codes inside chains are rewritten alike.
- 实施编码: the department's USCC, its 行使层级 (2 省级, 3 市级, 4 县级) and the basic code.
- Cases keep the number people were given (`number`); `national_number` is added and filled:
  实施编码 + the day the case was submitted (Beijing) + its serial within that code and day,
  in the order the cases were made. The serials continue from there.

Expand only: a process of the previous release keeps working (it writes cases without a
national number, and reads the rewritten codes as opaque strings).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 09:57:53
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

KEEPER = "37"
LEVELS = {"province": "2", "city": "3", "county": "4"}
BEIJING = timedelta(hours=8)

offers = sa.table("service_offers", sa.column("item_code", sa.String))
chains = sa.table("service_chains", sa.column("id", sa.Integer), sa.column("spec", sa.JSON))
cases = sa.table(
    "service_cases",
    sa.column("id", sa.Integer),
    sa.column("item_id", sa.Integer),
    sa.column("department_id", sa.Integer),
    sa.column("implementation_code", sa.String),
    sa.column("national_number", sa.String),
)
steps = sa.table(
    "service_case_steps",
    sa.column("case_id", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
)
items = sa.table(
    "service_items",
    sa.column("id", sa.Integer),
    sa.column("code", sa.String),
    sa.column("spec", sa.JSON),
)
departments = sa.table(
    "departments",
    sa.column("id", sa.Integer),
    sa.column("uscc", sa.String),
    sa.column("level", sa.String),
)
serials = sa.table(
    "service_case_serials", sa.column("prefix", sa.String), sa.column("last", sa.Integer)
)


def _new(code: str) -> str:
    return f"{KEEPER}{code}000" if len(code) == 7 else code


def _old(code: str) -> str:
    return code[2:9] if len(code) == 12 and code.startswith(KEEPER) else code


def _chain_codes(spec: dict[str, Any], convert: Any) -> dict[str, Any]:
    entries = [
        {**e, "item": convert(e["item"]), "after": [convert(a) for a in e.get("after", [])]}
        for e in spec["items"]
    ]
    return {**spec, "items": entries}


def _rewrite_codes(convert: Any, length: int, wrap: Any) -> None:
    """Every stored item code of `length` characters through `convert` (in Python) or `wrap`
    (in SQL)."""
    bind = op.get_bind()
    code = items.c.code
    bind.execute(sa.update(items).where(sa.func.length(code) == length).values(code=wrap(code)))
    code = offers.c.item_code
    bind.execute(
        sa.update(offers).where(sa.func.length(code) == length).values(item_code=wrap(code))
    )
    for item_id, spec in bind.execute(sa.select(items.c.id, items.c.spec)).all():
        changed = {**spec, "code": convert(spec["code"])}
        bind.execute(sa.update(items).where(items.c.id == item_id).values(spec=changed))
    for chain_id, spec in bind.execute(sa.select(chains.c.id, chains.c.spec)).all():
        bind.execute(
            sa.update(chains)
            .where(chains.c.id == chain_id)
            .values(spec=_chain_codes(spec, convert))
        )


def _beijing_day(moment: datetime | str) -> str:
    if isinstance(moment, str):  # SQLite hands the text back through a plain table
        moment = datetime.fromisoformat(moment)
    return f"{(moment.replace(tzinfo=None) + BEIJING):%Y%m%d}"


def upgrade() -> None:
    op.create_table(
        "service_case_serials",
        sa.Column("prefix", sa.String(length=40), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_service_case_serials")),
    )
    with op.batch_alter_table("service_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("national_number", sa.String(length=50), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_service_cases_national_number"), ["national_number"], unique=True
        )

    _rewrite_codes(_new, 7, lambda code: sa.literal(KEEPER) + code + sa.literal("000"))
    bind = op.get_bind()
    first_step = (
        sa.select(steps.c.case_id, sa.func.min(steps.c.at).label("at"))
        .group_by(steps.c.case_id)
        .subquery()
    )
    rows = bind.execute(
        sa.select(
            cases.c.id, items.c.code, departments.c.uscc, departments.c.level, first_step.c.at
        )
        .join(items, items.c.id == cases.c.item_id)
        .join(departments, departments.c.id == cases.c.department_id)
        .join(first_step, first_step.c.case_id == cases.c.id)
        .order_by(cases.c.id)
    ).all()
    last: dict[str, int] = {}
    for case_id, code, uscc, level, at in rows:
        implementation = f"{uscc}{LEVELS[level]}{code}"
        prefix = f"{implementation}{_beijing_day(at)}"
        last[prefix] = last.get(prefix, 0) + 1
        bind.execute(
            sa.update(cases)
            .where(cases.c.id == case_id)
            .values(
                implementation_code=implementation,
                national_number=f"{prefix}{last[prefix]:04d}",
            )
        )
    if last:
        bind.execute(sa.insert(serials), [{"prefix": p, "last": n} for p, n in last.items()])


def downgrade() -> None:
    # 实施编码 stay in the new layout: the old one cannot be rebuilt from what is kept.
    _rewrite_codes(_old, 12, lambda code: sa.func.substr(code, 3, 7))
    # Not in batch: SQLite drops a column in place (3.35+), where a batch would copy the table
    # and trip over the rows that refer to it.
    op.drop_index(op.f("ix_service_cases_national_number"), table_name="service_cases")
    op.drop_column("service_cases", "national_number")
    op.drop_table("service_case_serials")
