"""Rebuilding the blind indexes under a new index key (`qilu keys rotate-pii`, once the vault
holds earlier index keys): every stored HMAC-SM3 index is made again from the value it stands
for, in batches.

An index carries no key id, so what is stale is found by recomputing it: each pass reads every
row once, in primary-key order, and writes only those that differ, each batch its own short
transaction. Look-ups ask for every key's index meanwhile (`Vault.blind_indexes`), so reads and
writes go on throughout; a second run writes nothing the first finished, and stopping anywhere
loses nothing. What each index stands for:

- a person's ID number and phone: their own ciphertexts. Their licences (held or kept) and
  their consents carry the same index and are rewritten in the same transaction, so a wallet
  or a consent never parts from its person;
- a licence whose holder is not in the register (an enterprise, a newborn's 预赋码): the holder
  code its entry in the 电子证照 library keeps;
- a data record's key when it is a blind index (personal or over 64 characters): the key
  fields of the record itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

import qilu.models  # noqa: F401  (registers every table in Base.metadata)
from qilu.audit.service import record
from qilu.data.loading import Layout, record_key_of, values_of
from qilu.data.models import DataRecord, DataResource
from qilu.db import Base
from qilu.demo.seed import Progress
from qilu.errors import QiluError
from qilu.pii import Vault
from qilu.services.licences import LIBRARY

BATCH = 500
PASSES = {
    "persons": "居民索引",
    "service_licences": "证照持有人索引",
    "data_records": "数据记录主键",
}


def rebuild(
    engine: Engine | Connection,
    vault: Vault,
    *,
    progress: Progress | None = None,
    max_batches: int | None = None,
) -> dict[str, int]:
    """Rewrite every index not under the vault's current index key; returns how many rows each
    pass changed. `max_batches` stops early (a run cut short, in tests); a connection in a
    transaction stands for the engine in tests."""
    if not vault.index_rotating:
        raise QiluError(
            "keys.index_not_rotating",
            "没有旧索引密钥：请先设置新的 QILU_INDEX_KEY，并把旧的放入 QILU_INDEX_EARLIER_KEYS",
            field="QILU_INDEX_EARLIER_KEYS",
        )
    budget = _Budget(max_batches)
    passes: dict[str, Callable[[Session, list[Any]], int]] = {
        "persons": lambda s, rows: _persons(s, vault, rows),
        "service_licences": lambda s, rows: _licences(s, vault, rows),
        "data_records": lambda s, rows: _records(s, vault, rows),
    }
    rebuilt = dict.fromkeys(PASSES, 0)
    for name, label in PASSES.items():
        table = _table(name)
        if progress is not None:
            with Session(engine) as session:
                progress.start(label, session.scalar(select(func.count()).select_from(table)) or 0)
        for rows in _batches(engine, table, budget):
            with Session(engine) as session, session.begin():
                rebuilt[name] += passes[name](session, rows)
            if progress is not None:
                progress.advance(label, len(rows))
    if not budget.spent:
        with Session(engine) as session, session.begin():
            record(session, "system.indexes_rebuilt", details={"rebuilt": rebuilt})
    return rebuilt


class _Budget:
    """How many batches a run may take (all, unless cut short)."""

    def __init__(self, most: int | None):
        self.left, self.spent = most, False

    def take(self) -> bool:
        if self.left is not None and self.left <= 0:
            self.spent = True
            return False
        if self.left is not None:
            self.left -= 1
        return True


def _batches(engine: Engine | Connection, table: Table, budget: _Budget) -> Iterator[list[Any]]:
    """Ids of the table's rows, BATCH at a time, in primary-key order."""
    after = 0
    while budget.take():
        with Session(engine) as session:
            ids = list(
                session.scalars(
                    select(table.c.id).where(table.c.id > after).order_by(table.c.id).limit(BATCH)
                )
            )
        if not ids:
            return
        yield ids
        after = ids[-1]


def _persons(session: Session, vault: Vault, ids: list[int]) -> int:
    """Re-index the people, and in the same transaction what carries their index."""
    persons = _table("persons")
    rows = session.execute(
        select(
            persons.c.id,
            persons.c.id_number_cipher,
            persons.c.id_number_index,
            persons.c.phone_cipher,
            persons.c.phone_index,
        ).where(persons.c.id.in_(ids))
    )
    fresh, moved = [], []
    for row_id, number_cipher, number_index, phone_cipher, phone_index in rows:
        index = vault.blind_index(vault.decrypt(number_cipher, "id_number"), "id_number")
        phone = vault.decrypt(phone_cipher, "phone") if phone_cipher is not None else None
        phone_now = vault.blind_index(phone, "phone") if phone is not None else None
        if (index, phone_now) != (number_index, phone_index):
            fresh.append({"row": row_id, "number": index, "phone": phone_now})
        if index != number_index:
            moved.append({"old": number_index, "new": index})
    if fresh:
        session.connection().execute(
            update(persons)
            .where(persons.c.id == bindparam("row"))
            .values(id_number_index=bindparam("number"), phone_index=bindparam("phone")),
            fresh,
        )
    for table, column in (
        ("service_licences", "holder_code_index"),
        ("service_licences", "keeper_code_index"),
        ("data_consents", "subject_index"),
    ):
        target = _table(table)
        olds = [m["old"] for m in moved]
        # Most people hold no licence and gave no consent: one query finds who does, so the
        # updates are for them only.
        carried = set(session.scalars(select(target.c[column]).where(target.c[column].in_(olds))))
        if carried:
            session.connection().execute(
                update(target)
                .where(target.c[column] == bindparam("old"))
                .values({column: bindparam("new")}),
                [m for m in moved if m["old"] in carried],
            )
    return len(fresh)


def _licences(session: Session, vault: Vault, ids: list[int]) -> int:
    """Licences whose holder index is not their holder's under the current key: an
    enterprise's, or a 预赋码 holder's not in the register (a person's followed the person)."""
    licences = _table("service_licences")
    rows = session.execute(
        select(
            licences.c.id, licences.c.number, licences.c.holder_kind, licences.c.holder_code_index
        ).where(licences.c.id.in_(ids))
    ).all()
    holders = _library_holders(session, vault, [number for _, number, _, _ in rows])
    fresh = []
    for row_id, number, kind, stored in rows:
        code = holders.get(number)
        if code is None:  # not in the library (it was not published here): nothing to go by
            continue
        column = "licence_holder" if kind == "enterprise" else "id_number"
        index = vault.blind_index(code, column)
        if index != stored and stored in vault.blind_indexes(code, column):
            fresh.append({"row": row_id, "index": index})
    if fresh:
        session.connection().execute(
            update(licences)
            .where(licences.c.id == bindparam("row"))
            .values(holder_code_index=bindparam("index")),
            fresh,
        )
    return len(fresh)


def _library_holders(session: Session, vault: Vault, numbers: list[str]) -> dict[str, str]:
    """Licence number → holder code, from the licences' entries in the 电子证照 library."""
    resource = session.scalars(select(DataResource).where(DataResource.code == LIBRARY)).first()
    if resource is None:
        return {}
    layout = Layout.of(session, resource)
    found = session.scalars(
        select(DataRecord).where(
            DataRecord.resource_id == resource.id, DataRecord.record_key.in_(numbers)
        )
    )
    holders = {}
    for entry in found:
        values = values_of(vault, layout, entry)
        holders[str(values["licence_number"])] = str(values["holder_id"])
    return holders


def _records(session: Session, vault: Vault, ids: list[int]) -> int:
    """Records whose key is a blind index (personal, or too long to keep): made again from
    the record's own key fields."""
    records = session.scalars(select(DataRecord).where(DataRecord.id.in_(ids))).all()
    layouts: dict[int, Layout] = {}
    fresh = []
    for entry in records:
        if len(entry.record_key) != 64:  # a blind key is 64 hexadecimal characters
            continue
        layout = layouts.get(entry.resource_id)
        if layout is None:
            resource = session.get_one(DataResource, entry.resource_id)
            layout = layouts[entry.resource_id] = Layout.of(session, resource)
        values = values_of(vault, layout, entry)
        if any(values.get(name) is None for name in layout.key_fields):
            continue  # a record of a schema whose key was different: left as it is
        key_values = [str(values[name]) for name in layout.key_fields]
        key = record_key_of(vault, layout.column, layout.blind_key, key_values)
        if key != entry.record_key:
            fresh.append({"row": entry.id, "key": key})
    if fresh:
        table = _table("data_records")
        session.connection().execute(
            update(table).where(table.c.id == bindparam("row")).values(record_key=bindparam("key")),
            fresh,
        )
    return len(fresh)


def _table(name: str) -> Table:
    return Base.metadata.tables[name]  # every model is loaded: see the import of qilu.models
