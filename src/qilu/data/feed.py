"""Reading the change feed (增量订阅): the changes of a resource after a cursor, as a consuming
department's grant shows them — its fields, masked where not granted in clear, only rows within
its row conditions, sensitive records only with the person's consent.

A change carries the record's values at the version the change made, even when the record has
changed since (from the history `RecordChange` keeps), so a subscriber replaying the feed sees
every state in order. A record that an update takes out of the grant's rows arrives once as
`leave` (its key fields only), so a subscriber holding rows by division can drop it.

A page is one audit entry naming every person read (`audit.record(subjects=…)`): a person's
data-use record lists it like any single read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session

from qilu.data import changes as store
from qilu.data.models import DataChange, DataRecord, RecordChange
from qilu.data.reading import (
    CONSENT_MISSING,
    READ,
    REFUSED,
    Grant,
    Projection,
    Read,
    begin_read,
    consented,
    listing_grant,
    opened,
    subject_of,
    wanted_fields,
)
from qilu.errors import QiluError
from qilu.identity.oidc_provider import ServiceCaller
from qilu.pii import Vault

PAGE = 500
LONGEST_PAGE = 5_000
LEAVE = "leave"

_PAGE = (
    select(
        DataChange.seq,
        DataChange.op,
        DataChange.version,
        DataChange.changed_at,
        DataRecord.id,
        DataRecord.version.label("current"),
        DataRecord.content,
        DataRecord.sealed,
    )
    .join(DataRecord, DataRecord.id == DataChange.record_id)
    .where(DataChange.resource_id == bindparam("resource"), DataChange.seq > bindparam("after"))
    .order_by(DataChange.seq)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class Change:
    seq: int
    op: str  # insert | update | leave
    version: int
    changed_at: datetime
    data: dict[str, Any]
    masked: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "op": self.op,
            "version": self.version,
            "changed_at": self.changed_at.isoformat(),
            "data": self.data,
            "masked": self.masked,
        }


@dataclass(frozen=True)
class ChangePage:
    """One page of the feed, and what its audit entry needs."""

    read: Read
    grant: Grant
    after: int
    changes: list[Change]
    next_after: int  # the cursor to ask after next (the last change read, shown or not)
    latest: int  # the resource's newest sequence number
    withheld: int  # changes left out for want of the person's consent
    fields: list[str]
    subjects: list[str]

    @property
    def resource(self) -> str:
        return self.read.resource.code


NOT_LISTING = "本部门的授权只允许按主键查询，不能订阅全部变更"


def read_changes(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    *,
    after: int,
    limit: int = PAGE,
    operator: str | None = None,
    now: datetime | None = None,
) -> ChangePage:
    """The changes of resource `code` after sequence number `after`, under the caller's grant
    (which must allow listing: a feed is every record). Refusals are logged; the page's own
    read is logged by `log_page`, when the caller has it."""
    begun = begin_read(session, vault, caller, code, now, operator=operator)
    read = begun.read
    grant = listing_grant(read, begun.grants, NOT_LISTING)
    if not 1 <= limit <= LONGEST_PAGE:
        raise QiluError("feed.limit", f"每页条数须在 1 到 {LONGEST_PAGE} 之间", field="limit")
    if after < 0:
        raise QiluError("feed.after", "游标须为不小于 0 的整数", field="after")
    rows = (
        session.connection()
        .execute(_PAGE, {"resource": read.resource.id, "after": after, "limit": limit})
        .all()
    )
    history = _history(session, grant, rows)
    wanted = wanted_fields(None, grant)
    keys = [f.name for f in read.shape.key_fields if f.name in set(wanted)]
    shown, left = Projection.of(read.shape, grant, wanted), Projection.of(read.shape, grant, keys)
    changes: list[Change] = []
    subjects: list[str] = []
    withheld = 0
    for row in rows:
        content, sealed = _at_version(row, history)
        values = opened(read, content, sealed)
        op = row.op
        if not grant.reaches(values):
            before = history.get((row.id, row.version))
            if op != store.UPDATE or before is None or not grant.reaches(before.before_content):
                continue  # never within the grant's rows: not the consumer's to know
            op = LEAVE
        subject = subject_of(read, values)
        if not consented(read, wanted, values):
            read.log(REFUSED, subject, {"reason": CONSENT_MISSING, "feed": row.seq})
            withheld += 1
            continue
        data, masked = (left if op == LEAVE else shown)(values)
        changes.append(Change(row.seq, op, row.version, row.changed_at, data, masked))
        if subject is not None:
            subjects.append(subject)
    last = rows[-1].seq if rows else after
    return ChangePage(
        read,
        grant,
        after,
        changes,
        last,
        store.latest(session, read.resource.id),
        withheld,
        wanted,
        subjects,
    )


def page_json(page: ChangePage) -> dict[str, Any]:
    """A page as the API and a webhook carry it."""
    return {
        "resource": page.resource,
        "grant": page.grant.id,
        "after": page.after,
        "changes": [change.as_json() for change in page.changes],
        "withheld": page.withheld,
        "next_after": page.next_after,
        "latest": page.latest,
    }


def log_page(page: ChangePage, session: Session, **details: Any) -> None:
    """The page's read, one entry naming every person in it (in `session`, which may be a
    later transaction than the read's: a webhook's page is logged once delivered)."""
    if not page.changes:
        return
    read = page.read
    read.session, read.chain = session, None
    masked = sorted({name for change in page.changes for name in change.masked})
    read.log(
        READ,
        None,
        {
            "fields": page.fields,
            "masked": masked,
            "feed": {"after": page.after, "to": page.next_after},
            "records": len(page.changes),
            **details,
        },
        subjects=page.subjects,
    )


def _history(session: Session, grant: Grant, rows: Sequence[Any]) -> dict[tuple[int, int], Any]:
    """The history entries a page needs: the values of records changed since (an insert's
    are the second version's "before"), and what an update changed from, when rows are limited
    (to tell a record leaving them)."""
    wanted: set[tuple[int, int]] = set()
    for row in rows:
        if row.version != row.current:
            wanted.add((row.id, row.version if row.version > 1 else 2))
        if row.op == store.UPDATE and grant.row_conditions:
            wanted.add((row.id, row.version))
    if not wanted:
        return {}
    found = session.connection().execute(
        select(
            RecordChange.record_id,
            RecordChange.version,
            RecordChange.before_content,
            RecordChange.before_sealed,
            RecordChange.after_content,
            RecordChange.after_sealed,
        ).where(tuple_(RecordChange.record_id, RecordChange.version).in_(sorted(wanted)))
    )
    return {(entry.record_id, entry.version): entry for entry in found}


def _at_version(row: Any, history: dict[tuple[int, int], Any]) -> tuple[dict[str, Any], Any]:
    """The record's stored values as they were at the change's version."""
    if row.version == row.current:
        return row.content, row.sealed
    if row.version == 1:
        second = history[(row.id, 2)]
        return second.before_content, second.before_sealed
    entry = history[(row.id, row.version)]
    return entry.after_content, entry.after_sealed
