"""The change feed's store (增量): every record a load inserts or changes gets the next sequence
number of its resource, in the load's own transaction, so the feed is exactly the history the
platform keeps and nothing changes without appearing in it.

Sequence numbers are taken with an UPDATE of the resource's row, whose lock a load holds until it
commits: a second load of the same resource waits for the first, so numbers follow commit order
and a reader that has seen number N can never later find a smaller one appear. Records get their
ids here too, before they are written, so the entries of rows written by COPY can name them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from qilu.data.models import DataChange, DataRecord, DataResource
from qilu.db import copy_rows

INSERT, UPDATE = "insert", "update"
_TAKE = (
    update(DataResource)
    .where(DataResource.id == bindparam("resource"))
    .values(change_seq=DataResource.change_seq + bindparam("count"))
    .returning(DataResource.change_seq)
)
_PG_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('data_records', 'id')) FROM generate_series(1, :n)"
)


def new_record_ids(session: Session, count: int) -> list[int]:
    """Ids for `count` new records. On SQLite the load holds the write lock, so the ids after
    the largest are free until it commits."""
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(session.execute(_PG_IDS, {"n": count}).scalars())
    largest = session.execute(select(func.coalesce(func.max(DataRecord.id), 0))).scalar_one()
    return list(range(largest + 1, largest + 1 + count))


def append(
    session: Session,
    resource_id: int,
    load_id: int,
    moment: datetime,
    entries: list[tuple[int, int, str]],
) -> None:
    """Add (record id, version, INSERT or UPDATE) entries to the resource's feed, in order."""
    if not entries:
        return
    last = session.execute(_TAKE, {"resource": resource_id, "count": len(entries)}).scalar_one()
    first = last - len(entries) + 1
    rows: list[dict[str, Any]] = [
        {
            "resource_id": resource_id,
            "seq": first + n,
            "record_id": record_id,
            "version": version,
            "op": op,
            "load_id": load_id,
            "changed_at": moment,
        }
        for n, (record_id, version, op) in enumerate(entries)
    ]
    if session.get_bind().dialect.name == "postgresql":
        columns = list(rows[0])
        copy_rows(session.connection(), "data_changes", columns, (list(r.values()) for r in rows))
    else:
        session.execute(insert(DataChange), rows)


def latest(session: Session, resource_id: int) -> int:
    """The resource's newest sequence number (0 before its first change)."""
    return int(
        session.execute(
            select(DataResource.change_seq).where(DataResource.id == resource_id)
        ).scalar_one()
    )
