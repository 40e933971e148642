"""Writing effects into the outbox, and sweeping it: each due effect runs with its handler in a
transaction of its own, after the change that caused it has committed. A failed effect is tried
again later (1 s, 2 s, 4 s … up to an hour apart) and never rolls back what caused it; handlers
must be idempotent, since a crash between an effect and its row being marked done runs it again.

A handler that calls another system (an HTTP POST) returns that call instead of making it: the
sweep makes it after its transaction, so no lock is held while a receiver takes its time. The
call may return what to record of the answer (a function of a session), run in the short
transaction that marks the effect done.

Handlers are named by kind and given by the composition layer (`qilu.workers`), so this module
imports no domain (the lower module offers the hook, DESIGN.md)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from qilu.outbox.models import OutboxEffect, SweeperBeat

log = structlog.get_logger("qilu.outbox")
# A handler does its work in the sweep's transaction; one that must wait on another system
# returns the waiting part, which runs after that transaction, with none open (`_send`).
Recorder = Callable[[Session], None]
Handler = Callable[[Session, dict[str, Any]], Callable[[], Recorder | None] | None]
LONGEST_WAIT = timedelta(hours=1)
LEASE = timedelta(minutes=2)  # an effect being sent is not due again before this


def enqueue(session: Session, kind: str, key: str, payload: dict[str, Any]) -> None:
    """Write an effect in the caller's transaction; an effect with the same key is kept once."""
    now = datetime.now(UTC)
    table = OutboxEffect.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(table)
        .values(
            kind=kind,
            key=f"{kind}:{key}"[:120],
            payload=payload,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=[table.c.key])
    )


def due(bind: Engine | Connection, *, limit: int = 100, now: datetime | None = None) -> list[int]:
    """Ids of effects waiting to run, oldest first. On an engine the question is asked outside
    any transaction, so polling takes no lock (SQLite would otherwise take its write lock)."""
    moment = now or datetime.now(UTC)
    query = (
        select(OutboxEffect.id)
        .where(OutboxEffect.done_at.is_(None), OutboxEffect.next_attempt_at <= moment)
        .order_by(OutboxEffect.id)
        .limit(limit)
    )
    if isinstance(bind, Connection):
        return list(bind.scalars(query))
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return list(connection.scalars(query))


def sweep(
    sessions: sessionmaker[Session], handlers: Mapping[str, Handler], *, limit: int = 100
) -> int:
    """Run the due effects once; returns how many succeeded."""
    done = 0
    for effect_id in due(sessions.kw["bind"], limit=limit):
        with sessions() as session, session.begin():
            effect = session.get(OutboxEffect, effect_id, with_for_update={"skip_locked": True})
            if effect is None or effect.done_at is not None:
                continue  # another sweeper took it
            outcome = _run(session, effect, handlers)
            if callable(outcome):  # leased while it goes out, so no other sweeper sends it too
                effect.next_attempt_at = datetime.now(UTC) + LEASE
        if callable(outcome):
            outcome = _send(sessions, effect_id, outcome)
        done += outcome
    return done


def _run(
    session: Session, effect: OutboxEffect, handlers: Mapping[str, Handler]
) -> int | Callable[[], Recorder | None]:
    handler = handlers.get(effect.kind)
    try:
        if handler is None:
            raise LookupError(f"no handler for {effect.kind}")
        with session.begin_nested():
            send = handler(session, dict(effect.payload))
    except Exception as error:
        _failed(effect, error)
        return 0
    if send is not None:
        return send
    effect.done_at = datetime.now(UTC)
    return 1


def _send(
    sessions: sessionmaker[Session], effect_id: int, send: Callable[[], Recorder | None]
) -> int:
    """The part of an effect that waits on another system (an HTTP call), run with no
    transaction open: on SQLite a transaction holds the store's one write lock, and a slow
    receiver must not stop the platform. The outcome is written in a short transaction after."""
    recorder: Recorder | None = None
    try:
        recorder = send()
        error: Exception | None = None
    except Exception as failure:
        error = failure
    with sessions() as session, session.begin():
        effect = session.get_one(OutboxEffect, effect_id)
        if error is not None:
            _failed(effect, error)
            return 0
        if recorder is not None:
            recorder(session)
        effect.done_at = datetime.now(UTC)
        return 1


def _failed(effect: OutboxEffect, error: Exception) -> None:
    # Not hidden: logged with its traceback, kept on the row and tried again later; what
    # caused the effect has committed and must not be undone by it.
    effect.attempts += 1
    effect.last_error = f"{type(error).__name__}: {error}"[:2000]
    wait = min(timedelta(seconds=2 ** (effect.attempts - 1)), LONGEST_WAIT)
    effect.next_attempt_at = datetime.now(UTC) + wait
    log.error(
        "outbox.failed",
        kind=effect.kind,
        key=effect.key,
        attempts=effect.attempts,
        exc_info=error,
    )


BEAT_EVERY = 15.0  # seconds between a sweeper's heartbeats
ALIVE_WITHIN = timedelta(minutes=1)  # a sweeper silent longer than this is shown as lost


def sweeper_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def beat(sessions: sessionmaker[Session], name: str, kind: str, done: int) -> None:
    """Record that sweeper `name` finished a sweep now, having run `done` more effects."""
    now = datetime.now(UTC)
    with sessions.begin() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        table = SweeperBeat.__table__
        statement = dialect.insert(table).values(
            name=name, kind=kind, started_at=now, beat_at=now, done=done
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.name],
                set_={"beat_at": now, "done": table.c.done + done},
            )
        )
