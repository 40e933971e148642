"""The base libraries that are the identity registers: a load or push into 人口 (JC-RK-001) or
法人 (JC-FR-001) updates the residents and enterprises identity knows, in the same transaction,
batch by batch (`qilu.identity.register` decides what a change means).

Each checked row of a batch is applied, changed or not, so a register that fell behind its
library (a store from before this existed) catches up with the next load of the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from qilu.identity import register
from qilu.pii import Vault

POPULATION = "JC-RK-001"
ENTITIES = "JC-FR-001"
PERSON_STATUS = {None: "active", "正常": "active", "死亡": "deceased", "迁出": "emigrated"}
ENTITY_STATUS = {"存续": "active", "注销": "deregistered", "吊销": "revoked"}

# A batch: each row's number in the file, its checked values, and what `prepare` made of it.
Batch = list[tuple[int, dict[str, Any], dict[str, Any] | None]]


def person_entry(values: dict[str, Any]) -> register.PersonEntry:
    """A checked 人口 row as the register reads it."""
    return register.PersonEntry(
        id_number=str(values["id_number"]),
        name=str(values["name"]),
        sex="M" if values["sex"] == "1" else "F",
        birth_date=_day(values["birth_date"]),
        household_division=str(values["household_division"]),
        address=str(values.get("address") or ""),
        ethnicity=str(values.get("ethnicity") or "01"),
        phone=str(values["phone"]) if values.get("phone") else None,
        status=PERSON_STATUS[values.get("status")],
        status_on=_day(values["status_date"]) if values.get("status_date") else None,
    )


def prepare(vault: Vault, code: str, values: dict[str, Any]) -> dict[str, Any] | None:
    """What a load's worker process can make ahead for the register (a 人口 row's ciphertexts
    and indexes), so the transaction only writes."""
    return register.person_row(vault, person_entry(values)) if code == POPULATION else None


def _persons(session: Session, vault: Vault, batch: Batch, load_id: int) -> register.Applied:
    entries = [person_entry(v) for _, v, _ in batch]
    made = [p for _, _, p in batch if p is not None]
    rows = made if len(made) == len(batch) else None
    applied = register.apply_persons(session, vault, entries, load_id=load_id, rows=rows)
    if applied.moved:
        # The services build on the registers, not the reverse: imported where a move needs them.
        from qilu.services import cases

        for person_id, old, new in applied.moved:
            cases.follow_move(session, person_id, old, new)
    return applied


def _entities(session: Session, vault: Vault, batch: Batch, load_id: int) -> register.Applied:
    entries = [
        register.EntityEntry(
            row=row,
            uscc=str(v["uscc"]),
            name=str(v["name"]),
            industry=str(v["industry"]),
            division=str(v["division"]),
            address=str(v.get("address") or ""),
            registered_capital=Decimal(str(v.get("registered_capital") or 0)),
            established_on=_day(v["established_on"]) if v.get("established_on") else None,
            status=ENTITY_STATUS[str(v["status"])],
            representative_id_number=(
                str(v["legal_representative_id_number"])
                if v.get("legal_representative_id_number")
                else None
            ),
        )
        for row, v, _ in batch
    ]
    return register.apply_entities(session, vault, entries, load_id=load_id)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


APPLY: dict[str, Callable[[Session, Vault, Batch, int], register.Applied]] = {
    POPULATION: _persons,
    ENTITIES: _entities,
}


def feeds_register(code: str) -> bool:
    return code in APPLY


def apply(
    session: Session, vault: Vault, code: str, batch: Batch, load_id: int
) -> list[dict[str, Any]]:
    """Apply a checked batch of `code` to its register; returns the warnings (row, field,
    reason) for rows the register could not take."""
    if code not in APPLY or not batch:
        return []
    applied = APPLY[code](session, vault, batch, load_id)
    return [{"row": r, "field": f, "reason": why} for r, f, why in applied.warnings]
