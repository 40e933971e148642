"""Load rows into a resource. Every row is checked against the schema; valid rows are upserted by
key, invalid ones reported with row number, field and reason; nothing is dropped silently. A load
is one transaction: if it fails part way, the library is as it was. Every change to an existing
record keeps its values before and after, with the load, the person and the time.

Personal fields of a row are sealed together with SM4 (one cipher per row, the resource code as
associated data); a personal key is stored as its HMAC-SM3 blind index.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    String,
    any_,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data import changes as changes_store
from qilu.data import registers
from qilu.data.catalog import FieldSpec, fields_of, get_resource
from qilu.data.files import Row
from qilu.data.models import DataLoad, DataRecord, DataResource, RecordChange
from qilu.data.validation import check_row
from qilu.db import copy_rows
from qilu.digests import sm3
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import roles
from qilu.parallel import in_order
from qilu.pii import Vault

PERSONAL = frozenset({"personal", "sensitive_personal"})
BATCH = 2_000


@dataclass(frozen=True)
class Shape:
    """What follows from a schema for storing and reading rows: which fields are sealed, which
    make the key (and whether it is blind-indexed), and which names the person a record is
    about (a personal ID-number field)."""

    fields: list[FieldSpec]
    by_name: dict[str, FieldSpec]
    key_fields: list[FieldSpec]
    sealed: frozenset[str]
    blind_key: bool
    subject: str | None

    @classmethod
    def of(cls, fields: list[FieldSpec]) -> Shape:
        sealed = frozenset(f.name for f in fields if f.sensitivity in PERSONAL)
        keys = [f for f in fields if f.key]
        subject = next((f.name for f in fields if f.type == "id_number" and f.name in sealed), None)
        return cls(
            fields,
            {f.name: f for f in fields},
            keys,
            sealed,
            any(f.name in sealed for f in keys),
            subject,
        )

    @property
    def personal(self) -> bool:
        return bool(self.sealed)


@dataclass(frozen=True)
class Layout:
    """How a resource's rows are stored: which fields are sealed, how the key is made."""

    resource: DataResource
    fields: list[FieldSpec]
    key_fields: list[str]
    sealed_fields: frozenset[str]
    blind_key: bool

    @property
    def column(self) -> str:
        return f"data:{self.resource.code}"

    @classmethod
    def of(cls, session: Session, resource: DataResource) -> Layout:
        shape = _shape_of(session, resource)
        keys = [f.name for f in shape.key_fields]
        return cls(resource, shape.fields, keys, shape.sealed, shape.blind_key)

    def record_key(self, vault: Vault, key_values: list[str]) -> str:
        return record_key_of(vault, self.column, self.blind_key, key_values)


# A schema version never changes once written (a change is a new version), so its shape is
# kept per process, keyed by resource id, version and the resource's registration time (ids
# alone can come again in another store, or in SQLite after a rollback).
Version = tuple[int, int, datetime]
_SHAPES: dict[Version, Shape] = {}


def shape_of_version(session: Session, version: Version) -> Shape:
    cached = _SHAPES.get(version)
    if cached is None:
        resource_id, number, _ = version
        cached = _SHAPES[version] = Shape.of(fields_of(session, resource_id, number))
    return cached


def _shape_of(session: Session, resource: DataResource) -> Shape:
    return shape_of_version(session, (resource.id, resource.version, resource.created_at))


def record_key_of(vault: Vault, column: str, blind: bool, key_values: list[str]) -> str:
    """The stored key: the values joined, or their blind index if personal (or too long)."""
    key = "|".join(key_values)
    return vault.blind_index(key, column).hex() if blind or len(key) > 64 else key


def earlier_record_keys(
    vault: Vault, column: str, blind: bool, key_values: list[str]
) -> tuple[str, ...]:
    """The keys a record made before an index-key rotation may still be stored under (none
    unless a rotation runs and the key is a blind index)."""
    key = "|".join(key_values)
    if not vault.index_rotating or not (blind or len(key) > 64):
        return ()
    return tuple(index.hex() for index in vault.blind_indexes(key, column)[1:])


@dataclass
class _Pending:
    row: int
    key: str
    content: dict[str, Any]
    sealed: bytes | None
    digest: bytes
    values: dict[str, Any] | None = None  # in clear, kept for a register's library only
    register_row: dict[str, Any] | None = None  # what the register needs, made in the worker
    earlier: tuple[str, ...] = ()  # its keys under earlier index keys, during a rotation


# A checked row: its number, what to store (None if rejected), its problems and its warnings.
Prepared = tuple[int, _Pending | None, list[tuple[str, str]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Preparer:
    """Checks and seals rows. It holds no connection and pickles (the vault rebuilds from its
    keys), so worker processes can share the work of a large load."""

    vault: Vault
    fields: list[FieldSpec]
    key_fields: list[str]
    sealed_fields: frozenset[str]
    blind_key: bool
    column: str
    register: str | None  # the resource's code when it feeds an identity register

    @classmethod
    def of(cls, layout: Layout, vault: Vault) -> Preparer:
        return cls(
            vault,
            layout.fields,
            layout.key_fields,
            layout.sealed_fields,
            layout.blind_key,
            layout.column,
            layout.resource.code if registers.feeds_register(layout.resource.code) else None,
        )

    def chunk(self, rows: list[Row]) -> list[Prepared]:
        return [self.one(number, raw) for number, raw in rows]

    def one(self, number: int, raw: dict[str, Any]) -> Prepared:
        if "__invalid__" in raw:
            return number, None, [("row", str(raw["__invalid__"]))], []
        checked = check_row(self.fields, raw)
        if checked.problems:
            return number, None, checked.problems, checked.warnings
        values = checked.values
        key_values = [str(values[name]) for name in self.key_fields]
        key = record_key_of(self.vault, self.column, self.blind_key, key_values)
        earlier = earlier_record_keys(self.vault, self.column, self.blind_key, key_values)
        content = {k: v for k, v in values.items() if k not in self.sealed_fields}
        personal = {k: v for k, v in values.items() if k in self.sealed_fields}
        open_part = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        sealed_part = json.dumps(
            personal, sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        sealed = self.vault.encrypt(sealed_part, self.column) if personal else None
        digest = sm3(open_part.encode(), b"\x00", sealed_part.encode())
        if self.register is None:
            pending = _Pending(number, key, content, sealed, digest, earlier=earlier)
            return number, pending, [], checked.warnings
        made = registers.prepare(self.vault, self.register, values)
        pending = _Pending(number, key, content, sealed, digest, values, made, earlier)
        return number, pending, [], checked.warnings


def _prepared_chunks(
    preparer: Preparer, rows: Iterable[Row], workers: int
) -> Iterator[list[Prepared]]:
    """The rows checked and sealed, chunk by chunk in file order (in `workers` processes)."""
    return in_order(preparer.chunk, _chunked(rows, BATCH), workers)


def _chunked(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_rows(
    session: Session,
    vault: Vault,
    code: str,
    rows: Iterable[Row],
    *,
    source: str,
    actor: roles.Actor,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    now: datetime | None = None,
) -> DataLoad:
    """Load `rows` into resource `code`; returns the load with its counts and problems.
    `actor` is a data steward of the provider, its system, or the operator; with `workers` > 1,
    rows are checked and sealed in that many processes."""
    resource = get_resource(session, code)
    roles.authorize(actor, "data.publish", roles.Target.of(resource.provider))
    by = roles.person_of(actor)
    layout = Layout.of(session, resource)
    moment = now or datetime.now(UTC)
    load = DataLoad(
        resource_id=resource.id,
        schema_version=resource.version,
        source=source[:200],
        actor_person_id=by,
        started_at=moment,
        status="running",
        problems=[],
        warnings=[],
    )
    session.add(load)
    session.flush()
    counts = dict.fromkeys(
        ("total", "inserted", "updated", "unchanged", "rejected", "duplicates"), 0
    )
    problems: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    analysed = 0
    for prepared in _prepared_chunks(Preparer.of(layout, vault), rows, workers):
        batch: dict[str, _Pending] = {}
        for number, pending, row_problems, row_warnings in prepared:
            counts["total"] += 1
            warnings.extend({"row": number, "field": f, "reason": r} for f, r in row_warnings)
            if pending is None:
                problems.extend({"row": number, "field": f, "reason": r} for f, r in row_problems)
                counts["rejected"] += 1
            elif pending.key in batch:
                first = batch[pending.key].row
                reason = f"主键与第 {first} 行重复"
                _duplicate(problems, counts, number, layout.key_fields[0], reason)
            else:
                batch[pending.key] = pending
        duplicates = _write(session, layout, load, batch, counts, problems, by, moment)
        warnings += registers.apply(
            session,
            vault,
            code,
            [
                (p.row, p.values, p.register_row)
                for k, p in batch.items()
                if p.values and k not in duplicates
            ],
            load.id,
        )
        if counts["inserted"] >= analysed * 2 + BATCH:
            analysed = _refresh_statistics(session, counts["inserted"])
        if progress is not None:
            progress(counts["total"])
    for name, value in counts.items():
        setattr(load, name, value)
    load.problems, load.warnings = problems, warnings
    load.status, load.finished_at = "done", datetime.now(UTC)
    record(
        session,
        "data.loaded",
        actor_person_id=by,
        subject=f"resource:{code}",
        details={"load": load.id, "source": load.source, **counts},
    )
    return load


def push_rows(
    session: Session,
    vault: Vault,
    code: str,
    records: list[dict[str, Any]],
    *,
    actor: roles.Actor,
    source: str,
) -> DataLoad:
    """Records a provider's system (or the platform itself) pushes: all of them are stored, or
    none (every bad row is reported with its field and reason). Only the provider pushes."""
    resource = get_resource(session, code)
    if not roles.allows(actor, "data.publish", roles.Target.of(resource.provider)):
        raise Refused(
            "data.not_provider",
            f"只有提供部门（{resource.provider.name}）可以向{resource.name}推送数据",
            field="resource",
        )
    known = {f.name for f in Layout.of(session, resource).fields}
    unknown = [
        {"row": n, "field": name, "reason": f"资源中没有字段 {name}"}
        for n, values in enumerate(records, start=1)
        for name in values
        if name not in known
    ]
    if unknown:  # a value would be silently dropped: the sender must know
        raise _rejected(unknown)
    savepoint = session.begin_nested()
    rows = enumerate(records, start=1)
    load = load_rows(session, vault, code, rows, source=source, actor=actor)
    if load.rejected:
        savepoint.rollback()
        raise _rejected(load.problems)
    savepoint.commit()
    return load


def _rejected(problems: list[dict[str, Any]]) -> QiluError:
    """A push refused whole, every problem named by record and field."""
    ordered = sorted(problems, key=lambda p: p["row"])
    first = ordered[0]
    return QiluError(
        "data.rows_rejected",
        f"{len(ordered)} 处问题，全部记录未写入（第 {first['row']} 条：{first['reason']}）",
        field=f"records.{first['row']}.{first['field']}",
        problems=ordered,
    )


def _refresh_statistics(session: Session, inserted: int) -> int:
    """PostgreSQL plans each batch's key look-up from table statistics; while a load fills an
    empty table they say "empty", the plan scans the table for every key, and the load slows to
    a crawl. Refresh them as the table doubles (within the load's own transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE data_records"))
        session.execute(text("ANALYZE data_changes"))
    return inserted


def _duplicate(
    problems: list[dict[str, Any]], counts: dict[str, int], row: int, field: str, reason: str
) -> None:
    problems.append({"row": row, "field": field, "reason": reason, "kind": "duplicate"})
    counts["rejected"] += 1
    counts["duplicates"] += 1


def _write(
    session: Session,
    layout: Layout,
    load: DataLoad,
    batch: dict[str, _Pending],
    counts: dict[str, int],
    problems: list[dict[str, Any]],
    by: int | None,
    moment: datetime,
) -> set[str]:
    """Upsert the batch; returns the keys refused as repeats of an earlier batch's row."""
    repeated: set[str] = set()
    if not batch:
        return repeated
    table = DataRecord.__table__
    existing = {
        row.record_key: row
        for row in session.execute(
            select(
                table.c.id,
                table.c.record_key,
                table.c.digest,
                table.c.version,
                table.c.content,
                table.c.sealed,
                table.c.updated_load_id,
            ).where(
                table.c.resource_id == layout.resource.id,
                _among(session, [*batch, *(k for p in batch.values() for k in p.earlier)]),
            )
        )
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for key, pending in batch.items():
        # A record stored under an earlier index key stays under it (the rotation re-keys it).
        found = existing.get(key) or next(
            (existing[k] for k in pending.earlier if k in existing), None
        )
        if found is None:
            inserts.append(
                {
                    "resource_id": layout.resource.id,
                    "record_key": key,
                    "content": pending.content,
                    "sealed": pending.sealed,
                    "digest": pending.digest,
                    "version": 1,
                    "created_load_id": load.id,
                    "updated_load_id": load.id,
                    "updated_at": moment,
                }
            )
        elif found.updated_load_id == load.id:  # an earlier batch of this file had the key
            reason = "主键与本文件前面的某行重复"
            _duplicate(problems, counts, pending.row, layout.key_fields[0], reason)
            repeated.add(key)
            continue
        elif found.digest == pending.digest:
            counts["unchanged"] += 1
            continue
        else:
            updates.append(
                {
                    "id": found.id,
                    "content": pending.content,
                    "sealed": pending.sealed,
                    "digest": pending.digest,
                    "version": found.version + 1,
                    "updated_load_id": load.id,
                    "updated_at": moment,
                }
            )
            changes.append(
                {
                    "record_id": found.id,
                    "load_id": load.id,
                    "version": found.version + 1,
                    "before_content": found.content,
                    "before_sealed": found.sealed,
                    "after_content": pending.content,
                    "after_sealed": pending.sealed,
                    "changed_at": moment,
                    "actor_person_id": by,
                }
            )
    for record_id, row in zip(
        changes_store.new_record_ids(session, len(inserts)), inserts, strict=True
    ):
        row["id"] = record_id
    changes_store.append(
        session,
        layout.resource.id,
        load.id,
        moment,
        [(row["id"], 1, changes_store.INSERT) for row in inserts]
        + [(row["id"], row["version"], changes_store.UPDATE) for row in updates],
    )
    # Bulk writes, never one ORM object per row; new rows by binary COPY on PostgreSQL.
    if inserts and session.get_bind().dialect.name == "postgresql":
        columns = list(inserts[0])
        copy_rows(
            session.connection(),
            "data_records",
            columns,
            ([Json(v) if k == "content" else v for k, v in row.items()] for row in inserts),
        )
    elif inserts:
        session.execute(insert(DataRecord), inserts)
    if updates:
        session.execute(update(DataRecord), updates)  # by primary key
        session.execute(insert(RecordChange), changes)
    counts["inserted"] += len(inserts)
    counts["updated"] += len(updates)
    return repeated


def _among(session: Session, keys: list[str]) -> ColumnElement[bool]:
    """`record_key IN (…)`; on PostgreSQL `= ANY(array)`: one parameter instead of thousands
    (a statement that long is parsed afresh each time)."""
    column = DataRecord.record_key
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("keys", keys, type_=ARRAY(String)))
    return column.in_(keys)


def values_of(vault: Vault, layout: Layout, record_row: DataRecord) -> dict[str, Any]:
    """A stored record's values, its sealed fields opened."""
    values = dict(record_row.content)
    if record_row.sealed is not None:
        values |= json.loads(vault.decrypt(record_row.sealed, layout.column))
    return values


def find_record(
    session: Session, vault: Vault, code: str, key_values: list[str]
) -> dict[str, Any] | None:
    """The record of resource `code` with this key (each key field's value), opened."""
    found = find_stored(session, vault, code, key_values)
    return None if found is None else values_of(vault, found[0], found[1])


def find_stored(
    session: Session, vault: Vault, code: str, key_values: list[str]
) -> tuple[Layout, DataRecord] | None:
    """The stored record of resource `code` with this key, and the resource's layout."""
    layout = Layout.of(session, get_resource(session, code))
    keys = (
        layout.record_key(vault, key_values),
        *earlier_record_keys(vault, layout.column, layout.blind_key, key_values),
    )
    found = session.scalars(
        select(DataRecord).where(
            DataRecord.resource_id == layout.resource.id, DataRecord.record_key.in_(keys)
        )
    ).first()
    return None if found is None else (layout, found)


def get_load(session: Session, load_id: int, actor: roles.Actor) -> DataLoad:
    """A load and its problems (which quote the rows), for the provider's stewards only."""
    load = session.get(DataLoad, load_id)
    if load is None or not roles.allows(
        actor, "data.publish", roles.Target.of(load.resource.provider)
    ):
        raise NotFound("data.load_not_found", f"没有编号为 {load_id} 的加载记录")
    return load


def error_report(load: DataLoad) -> str:
    """The rejected rows as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(["行号", "字段", "原因"])
    for problem in sorted(load.problems, key=lambda p: p["row"]):
        writer.writerow([problem["row"], problem["field"], problem["reason"]])
    return out.getvalue()
