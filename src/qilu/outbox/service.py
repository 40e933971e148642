"""Writing effects into the outbox, and sweeping it: each due effect runs with its handler in a
transaction of its own, after the change that caused it has committed. A failed effect is tried
again later (1 s, 2 s, 4 s … up to an hour apart) and never rolls back what caused it; handlers
must be idempotent, since a crash between an effect and its row being marked done runs it again.

Handlers are named by kind and given by the composition layer (`qilu.workers`), so this module
imports no domain (the lower module offers the hook, DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from qilu.outbox.models import OutboxEffect

log = structlog.get_logger("qilu.outbox")
Handler = Callable[[Session, dict[str, Any]], None]
LONGEST_WAIT = timedelta(hours=1)


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
            done += _run(session, effect, handlers)
    return done


def _run(session: Session, effect: OutboxEffect, handlers: Mapping[str, Handler]) -> int:
    handler = handlers.get(effect.kind)
    now = datetime.now(UTC)
    try:
        if handler is None:
            raise LookupError(f"no handler for {effect.kind}")
        with session.begin_nested():
            handler(session, dict(effect.payload))
    except Exception as error:
        # Not hidden: logged with its traceback, kept on the row and tried again later; what
        # caused the effect has committed and must not be undone by it.
        effect.attempts += 1
        effect.last_error = f"{type(error).__name__}: {error}"[:2000]
        wait = min(timedelta(seconds=2 ** (effect.attempts - 1)), LONGEST_WAIT)
        effect.next_attempt_at = now + wait
        log.exception("outbox.failed", kind=effect.kind, key=effect.key, attempts=effect.attempts)
        return 0
    effect.done_at = now
    return 1
