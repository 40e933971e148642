from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent, AuditSubject
from qilu.audit.service import (
    GENESIS,
    LISTED_SUBJECTS,
    entry_hash,
    record,
    subjects_digest,
    verify,
)
from qilu.errors import QiluError


def _three(session: Session) -> list[AuditEvent]:
    return [
        record(session, "auth.login_ok", actor_person_id=7, client_address="10.0.0.1", chain=0),
        record(
            session,
            "auth.login_failed",
            subject="person:8",
            details={"reason": "密码错误"},
            chain=0,
        ),
        record(
            session,
            "agent.authorised",
            actor_entity_uscc="91350100M000100Y43",
            details={"scopes": ["apply"], "until": "2027-01-01"},
            chain=0,
        ),
    ]


def test_entries_are_chained(session: Session) -> None:
    first, second, third = _three(session)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.previous_hash == GENESIS
    assert second.previous_hash == first.hash and third.previous_hash == second.hash
    assert len(first.hash) == 32 and first.hash == entry_hash(first)
    result = verify(session)
    assert result.is_intact and result.entries == 3


def test_appends_spread_over_the_chains_and_verify_walks_them_all(session: Session) -> None:
    from qilu.audit.service import CHAINS

    events = []
    for n in range(200):  # each its own transaction
        events.append(record(session, "test.spread", details={"n": n}))
        session.commit()
    chains = {event.chain for event in events}
    assert len(chains) > CHAINS // 2 and max(chains) < CHAINS
    for chain in chains:
        linked = [e for e in events if e.chain == chain]
        assert [e.seq for e in linked] == list(range(1, len(linked) + 1))
        assert all(b.previous_hash == a.hash for a, b in pairwise(linked))
    result = verify(session)
    assert result.is_intact and result.entries == 200


def test_stored_entries_hash_as_they_did_when_written(session: Session) -> None:
    _three(session)
    session.flush()
    session.expire_all()
    for event in session.scalars(select(AuditEvent)):
        assert entry_hash(event) == event.hash


def test_the_database_refuses_edits(session: Session) -> None:
    _three(session)
    session.flush()
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(text("UPDATE audit_events SET action = 'x' WHERE seq = 2"))
    with pytest.raises(DBAPIError), session.begin_nested():
        session.execute(text("DELETE FROM audit_events WHERE seq = 3"))


def _bypass_triggers(connection: Connection) -> None:
    """What someone with the database owner's rights can do behind the log's back."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
    else:
        connection.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        connection.exec_driver_sql("DROP TRIGGER audit_events_no_delete")


def test_an_edited_entry_is_caught(session: Session, connection: Connection) -> None:
    _three(session)
    session.flush()
    _bypass_triggers(connection)
    connection.exec_driver_sql("UPDATE audit_events SET client_address = '10.9.9.9' WHERE seq = 1")
    session.expire_all()
    result = verify(session)
    assert not result.is_intact and result.broken is not None
    assert result.broken.seq == 1 and "被改动" in result.broken.reason
    assert result.entries == 0


def test_a_deleted_entry_is_caught(session: Session, connection: Connection) -> None:
    _three(session)
    session.flush()
    _bypass_triggers(connection)
    connection.exec_driver_sql("DELETE FROM audit_events WHERE seq = 2")
    session.expire_all()
    result = verify(session)
    assert result.broken is not None and result.broken.seq == 2 and "缺失" in result.broken.reason
    assert result.entries == 1


def test_a_removed_tail_is_caught(session: Session, connection: Connection) -> None:
    _three(session)
    session.flush()
    _bypass_triggers(connection)
    connection.exec_driver_sql("DELETE FROM audit_events WHERE seq = 3")
    session.expire_all()
    result = verify(session)
    assert result.broken is not None and "尾部" in result.broken.reason


def test_timestamps_survive_the_round_trip(session: Session) -> None:
    moment = datetime(2026, 11, 28, 23, 59, 59, 123456, tzinfo=UTC)
    record(session, "test.moment", at=moment)
    session.flush()
    session.expire_all()
    assert verify(session).is_intact


def test_details_must_be_json(session: Session) -> None:
    with pytest.raises(QiluError) as caught:
        record(session, "test.bad", details={"when": datetime.now(UTC)})
    assert caught.value.code == "audit.details"
    assert verify(session).entries == 0


def test_one_transaction_appends_to_one_chain(session: Session) -> None:
    """A transaction holding two head locks could deadlock with one taking them the other way."""
    events = [record(session, "test.same", details={"n": n}) for n in range(20)]
    assert len({event.chain for event in events}) == 1
    session.commit()
    later = [record(session, "test.same", details={"n": n}) for n in range(20)]
    session.commit()
    assert len({event.chain for event in later}) == 1


def test_an_entry_naming_many_people_keeps_their_digest_and_indexes_each(
    session: Session,
) -> None:
    few = [f"p{n:04d}" for n in range(3)]
    many = [f"p{n:05d}" for n in range(LISTED_SUBJECTS + 1)]
    listed = record(session, "data.read", subject="resource:A", subjects=[*few, few[0]])
    digested = record(session, "data.read", subject="resource:B", subjects=list(reversed(many)))
    assert listed.details["subjects"] == few  # sorted, each once
    assert "subjects" not in digested.details
    assert digested.details["subjects_count"] == len(many)
    indexed = session.scalars(
        select(AuditSubject.subject)
        .where(AuditSubject.chain == digested.chain, AuditSubject.seq == digested.seq)
        .order_by(AuditSubject.subject)
    ).all()
    assert subjects_digest(list(indexed)) == {
        "subjects_count": len(many),
        "subjects_sm3": digested.details["subjects_sm3"],
    }
    assert verify(session).is_intact


def test_subjects_that_text_copy_would_escape_are_indexed_as_they_are(
    session: Session,
) -> None:
    """PostgreSQL takes an entry's index rows as one text when nothing needs escaping; a tab,
    a backslash or a line break in a subject sends them row by row instead, unchanged."""
    odd = ["person:a\tb", "person:c\\d", "person:e\nf", "person:plain"]
    entry = record(session, "data.read", subject="resource:C", subjects=odd)
    plain = record(session, "data.read", subject="resource:D", subjects=["person:x", "person:y"])
    for written, expected in ((entry, sorted(odd)), (plain, ["person:x", "person:y"])):
        indexed = session.scalars(
            select(AuditSubject.subject)
            .where(AuditSubject.chain == written.chain, AuditSubject.seq == written.seq)
            .order_by(AuditSubject.subject)
        ).all()
        assert list(indexed) == sorted(expected)
    assert verify(session).is_intact
