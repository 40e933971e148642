"""The outbox: an effect runs after its cause commits, once, and a failing effect is tried again
later without undoing anything."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from qilu.audit.models import AuditEvent
from qilu.audit.service import record
from qilu.outbox.models import OutboxEffect
from qilu.outbox.service import enqueue, sweep


@pytest.fixture
def sessions(connection: Connection) -> sessionmaker[Session]:
    """Sessions of the sweeper, each a savepoint of the test's transaction."""
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint")


def test_an_effect_is_kept_once_and_runs_once(
    session: Session, sessions: sessionmaker[Session]
) -> None:
    enqueue(session, "test.note", "42", {"n": 42})
    enqueue(session, "test.note", "42", {"n": 42})  # a double submit, say
    session.commit()
    seen: list[dict[str, Any]] = []
    assert sweep(sessions, {"test.note": lambda _, payload: seen.append(payload)}) == 1
    assert sweep(sessions, {"test.note": lambda _, payload: seen.append(payload)}) == 0
    assert seen == [{"n": 42}]
    effect = session.scalars(select(OutboxEffect)).one()
    session.refresh(effect)
    assert effect.done_at is not None and effect.attempts == 0


def test_a_failing_effect_waits_and_undoes_only_itself(
    session: Session, sessions: sessionmaker[Session]
) -> None:
    record(session, "test.cause", subject="cause")  # what caused the effect: committed
    enqueue(session, "test.flaky", "1", {})
    session.commit()

    def flaky(effect_session: Session, _: dict[str, Any]) -> None:
        record(effect_session, "test.half_done", subject="effect")  # rolled back with it
        raise OSError("disk full")

    assert sweep(sessions, {"test.flaky": flaky}) == 0
    effect = session.scalars(select(OutboxEffect)).one()
    session.refresh(effect)
    assert effect.attempts == 1 and effect.done_at is None
    assert effect.last_error == "OSError: disk full"
    assert effect.next_attempt_at > datetime.now(UTC)
    assert sweep(sessions, {"test.flaky": flaky}) == 0  # not due yet: not tried
    actions = set(session.scalars(select(AuditEvent.action)))
    assert "test.cause" in actions and "test.half_done" not in actions


def test_an_effect_without_a_handler_is_kept_for_later(
    session: Session, sessions: sessionmaker[Session]
) -> None:
    enqueue(session, "test.unknown", "1", {})
    session.commit()
    assert sweep(sessions, {}) == 0
    effect = session.scalars(select(OutboxEffect)).one()
    session.refresh(effect)
    assert effect.last_error == "LookupError: no handler for test.unknown"


def test_a_web_process_sweeps_after_the_cause_commits(tmp_path: Path) -> None:
    """The sweeper a served process runs beside its requests (`QILU_OUTBOX_INTERVAL`): an
    effect written and committed elsewhere is run within a few intervals."""
    import time

    from fastapi.testclient import TestClient

    from qilu.db import make_engine, make_sessionmaker, upgrade
    from qilu.web import create_app

    from ..conftest import make_settings

    settings = make_settings(tmp_path).model_copy(update={"outbox_interval": 0.05})
    engine = make_engine(settings)
    upgrade(engine)
    with make_sessionmaker(engine)() as session, session.begin():
        enqueue(session, "test.unknown", "1", {})  # no handler: the try is what is recorded
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with make_sessionmaker(engine)() as session:
                effect = session.scalars(select(OutboxEffect)).one()
                if effect.attempts:
                    break
            time.sleep(0.05)
    assert effect.attempts >= 1 and effect.last_error == "LookupError: no handler for test.unknown"
    engine.dispose()


def test_a_call_to_another_system_waits_for_no_transaction(tmp_path: Path) -> None:
    """A handler that calls out (a back-channel logout POST) returns the call; the sweep makes
    it after its own transaction committed, so on SQLite, where a transaction holds the one
    write lock, others write meanwhile; a failed call is tried again later, a good one is done."""
    from qilu.db import make_engine, make_sessionmaker, upgrade

    from ..conftest import make_settings

    engine = make_engine(make_settings(tmp_path))
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as session, session.begin():
        enqueue(session, "test.call", "ok", {"fail": False})
        enqueue(session, "test.call", "bad", {"fail": True})
    written: list[str] = []

    def handler(_: Session, payload: dict[str, Any]) -> Any:
        def call() -> None:
            with sessions() as other, other.begin():  # would wait on a held write lock
                record(other, "test.during_call", subject="another request")
            written.append("during")
            if payload["fail"]:
                raise ConnectionError("receiver down")

        return call

    assert sweep(sessions, {"test.call": handler}) == 1
    assert written == ["during", "during"]
    with sessions() as session:
        effects = {e.key: e for e in session.scalars(select(OutboxEffect))}
        assert effects["test.call:ok"].done_at is not None
        failed = effects["test.call:bad"]
        assert failed.done_at is None and failed.attempts == 1
        assert failed.last_error == "ConnectionError: receiver down"
        assert failed.next_attempt_at > datetime.now(UTC)
    engine.dispose()
