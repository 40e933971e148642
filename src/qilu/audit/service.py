"""Record and verify the audit log.

Each entry's hash is SM3(previous entry's hash ‖ canonical JSON of the entry), so changing,
removing or reordering any entry breaks every link after it. Appends take the chain head's row
lock first (an UPDATE, which also takes SQLite's write lock at once), so concurrent writers
chain their entries one after another instead of forking the chain.

The log is 32 such chains. Each transaction appends to one picked at random, so two that
both write an entry (every sign-in and token does) seldom wait for the same head row; within a
chain the entries are ordered and linked as above, and `verify` walks every chain.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session, SessionTransaction

from qilu.audit.models import AuditChainHead, AuditEvent, AuditSubject
from qilu.db import copy_rows
from qilu.digests import sm3
from qilu.errors import QiluError

GENESIS = bytes(32)
CHAINS = 32  # heads 0-31 exist from migration 0009


_HEADS: Table = AuditChainHead.__table__  # type: ignore[assignment]
# Built once: Core statements on the session's connection, no ORM unit-of-work per entry.
_ADVANCE = (
    update(_HEADS)
    .where(_HEADS.c.chain == bindparam("head"))
    .values(seq=_HEADS.c.seq + 1)
    .returning(_HEADS.c.seq, _HEADS.c.hash)
)
_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_INSERT = insert(_EVENTS)
_SEAL = update(_HEADS).where(_HEADS.c.chain == bindparam("head")).values(hash=bindparam("new"))
_COLUMNS = (
    "chain",
    "seq",
    "occurred_at",
    "action",
    "actor_person_id",
    "actor_entity_uscc",
    "subject",
    "client_address",
    "details",
    "previous_hash",
    "hash",
)
# PostgreSQL writes the entry and the new head in one statement (one round trip fewer).
_INSERT_AND_SEAL = _SEAL.add_cte(
    insert(_EVENTS).values({name: bindparam(f"e_{name}") for name in _COLUMNS}).cte("entry")
)


LISTED_SUBJECTS = 1_000  # an entry lists up to this many people; beyond, their digest


def record(
    session: Session,
    action: str,
    *,
    actor_person_id: int | None = None,
    actor_entity_uscc: str | None = None,
    subject: str | None = None,
    client_address: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
    chain: int | None = None,
    subjects: list[str] | None = None,
) -> AuditEvent:
    """Append one entry to the log in the session's transaction (to `chain`, or any); returns
    the entry as written (not attached to the session). `subjects` names further people an
    entry for a batch is about: indexed, and covered by the chain — listed in its details, or
    for more than `LISTED_SUBJECTS` (an extract of a million people) their count and the SM3
    digest of their sorted list, which the index's rows for the entry must reproduce."""
    named = list(dict.fromkeys(sorted(subjects or [])))  # sorted runs given merge at speed
    if len(named) > LISTED_SUBJECTS:
        details = {**(details or {}), **subjects_digest(named)}
    elif named:
        details = {**(details or {}), "subjects": named}
    try:  # keep exactly what JSON can carry, so the stored entry hashes as it did here
        canonical_details = json.loads(json.dumps(details or {}, ensure_ascii=False))
    except (TypeError, ValueError) as error:
        raise QiluError("audit.details", f"审计详情须为 JSON 数据（{error}）") from error
    session.flush()  # what the entry is about is written before it (nothing to do if clean)
    connection = session.connection()  # begins the transaction if nothing has yet
    chain = _chain_of_transaction(session) if chain is None else chain
    seq, previous = connection.execute(_ADVANCE, {"head": chain}).one()
    event = AuditEvent(
        chain=chain,
        seq=seq,
        occurred_at=(at or datetime.now(UTC)).astimezone(UTC),
        action=action,
        actor_person_id=actor_person_id,
        actor_entity_uscc=actor_entity_uscc,
        subject=subject,
        client_address=client_address,
        details=canonical_details,
        previous_hash=previous,
    )
    event.hash = entry_hash(event)
    values = {name: getattr(event, name) for name in _COLUMNS}
    if connection.dialect.name == "postgresql":
        prefixed = {f"e_{name}": value for name, value in values.items()}
        connection.execute(_INSERT_AND_SEAL, {**prefixed, "head": chain, "new": event.hash})
    else:
        connection.execute(_INSERT, values)
        connection.execute(_SEAL, {"head": chain, "new": event.hash})
    if named and connection.dialect.name == "postgresql":  # a page names a thousand: one COPY
        _copy_subjects(connection, named, chain, seq)
    elif named:
        rows = [{"subject": subject, "chain": chain, "seq": seq} for subject in named]
        connection.execute(insert(AuditSubject), rows)
    return event


def _copy_subjects(connection: Connection, named: list[str], chain: int, seq: int) -> None:
    """The index rows of an entry, by COPY: as one text made in a single join when no subject
    holds a character text COPY would need escaped (they are identifiers: an extract's million
    take a second less than row by row), or else row by row."""
    columns = ["subject", "chain", "seq"]
    tail = f"\t{chain}\t{seq}\n"
    text = tail.join(named) + tail
    escaped = "\\" in text or "\r" in text
    if escaped or text.count("\t") != 2 * len(named) or text.count("\n") != len(named):
        copy_rows(connection, "audit_event_subjects", columns, ((s, chain, seq) for s in named))
        return
    raw = connection.connection.driver_connection
    statement = f"COPY audit_event_subjects ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        copy.write(text)


def subjects_digest(named: list[str]) -> dict[str, Any]:
    """What an entry naming many people keeps of them: how many, and the SM3 of the sorted
    list (one per line)."""
    return {"subjects_count": len(named), "subjects_sm3": sm3("\n".join(named).encode()).hex()}


def _chain_of_transaction(session: Session) -> int:
    """One chain per transaction, picked at random on its first entry: a transaction writing
    several entries then holds one head lock, never two in an order another could reverse (two
    such transactions would deadlock). Forgotten when the transaction ends (below)."""
    chain = session.info.get(_CHAIN_KEY)
    if chain is None:
        chain = session.info[_CHAIN_KEY] = random.randrange(CHAINS)
    return int(chain)


_CHAIN_KEY = "audit_chain"


@orm_event.listens_for(Session, "after_transaction_end")
def _forget_chain(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_CHAIN_KEY, None)


def entry_hash(event: AuditEvent) -> bytes:
    payload = json.dumps(
        hashed_fields(event), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return sm3(event.previous_hash, payload.encode())


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    """What an entry's hash covers (with the previous entry's hash)."""
    return {
        "chain": event.chain,
        "seq": event.seq,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "action": event.action,
        "actor_person_id": event.actor_person_id,
        "actor_entity_uscc": event.actor_entity_uscc,
        "subject": event.subject,
        "client_address": event.client_address,
        "details": event.details,
    }


@dataclass(frozen=True)
class BrokenLink:
    chain: int
    seq: int
    reason: str


@dataclass(frozen=True)
class Verification:
    entries: int
    broken: BrokenLink | None

    @property
    def is_intact(self) -> bool:
        return self.broken is None


def verify(session: Session, batch: int = 5_000) -> Verification:
    """Walk every chain from its start and report the first link that does not hold."""
    count = 0
    for head in session.scalars(select(AuditChainHead).order_by(AuditChainHead.chain)).all():
        expected_seq, running = 1, GENESIS
        entries = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain == head.chain)
            .order_by(AuditEvent.seq)
            .execution_options(yield_per=batch)
        )
        for event in entries:
            problem = _check(event, expected_seq, running)
            if problem:
                return Verification(count, BrokenLink(head.chain, expected_seq, problem))
            count += 1
            expected_seq, running = event.seq + 1, event.hash
        if (head.seq, head.hash) != (expected_seq - 1, running):
            reason = (
                f"链尾与记录不符：链头记为第 {head.seq} 条，实有 {expected_seq - 1} 条"
                "（尾部被删除或改动）"
            )
            return Verification(count, BrokenLink(head.chain, expected_seq - 1, reason))
    return Verification(count, None)


def _check(event: AuditEvent, expected_seq: int, running: bytes) -> str | None:
    if event.seq != expected_seq:
        return f"第 {expected_seq} 条记录缺失（序号跳到 {event.seq}）"
    if event.previous_hash != running:
        return f"第 {event.seq} 条记录的前序哈希与第 {event.seq - 1} 条不符"
    if entry_hash(event) != event.hash:
        return f"第 {event.seq} 条记录（{event.action}）的内容与其哈希不符：已被改动"
    return None


def events_of_person(
    session: Session, person_id: int, *, action_prefix: str = "", limit: int = 20
) -> list[AuditEvent]:
    """The newest entries a person caused, for their own history page."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.actor_person_id == person_id,
                AuditEvent.action.startswith(action_prefix),
            )
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )
