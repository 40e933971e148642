"""How the running platform is doing, for the operations team (系统运行): the database, the
outbox and its workers, the work waiting in queues, the audit chain's last verification, the
data folder's disk, and the last backup. Every figure is one cheap query (counts on indexed
columns, the newest audit entry of a kind), so the page can be opened at any time."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditChainHead, AuditEvent
from qilu.db import check_database, current_revision, head_revision
from qilu.outbox.models import OutboxEffect, SweeperBeat
from qilu.outbox.service import ALIVE_WITHIN
from qilu.services.cases import STATE_NAMES
from qilu.services.models import Case

# The states in which a case waits for someone (staff, or the applicant's 补正).
OPEN_STATES = ("submitted", "accepted", "reviewing", "correcting")


@dataclass(frozen=True)
class Outbox:
    pending: int  # not done yet
    overdue: int  # due now and not taken
    retrying: int  # failed at least once and not done
    lag_seconds: float  # how long the oldest due effect has waited (0: none waits)
    last_error: str | None
    last_done_at: datetime | None  # when a sweeper last finished an effect


@dataclass(frozen=True)
class Sweeper:
    """A process sweeping the outbox, as its last heartbeat says."""

    name: str
    kind: str  # web | worker
    beat_at: datetime
    done: int
    alive: bool


@dataclass(frozen=True)
class Disk:
    path: Path
    total: int
    free: int

    @property
    def used_share(self) -> float:
        return 1 - self.free / self.total if self.total else 0.0


@dataclass(frozen=True)
class Recorded:
    """The newest audit entry of a kind (a backup, a verification), if any."""

    at: datetime
    subject: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class SystemStatus:
    database_reachable: bool
    backend: str
    revision: str | None
    head: str | None
    outbox: Outbox
    sweepers: list[Sweeper]
    queues: list[tuple[str, str, int]]  # (state, its name, cases in it)
    audit_entries: int
    last_verification: Recorded | None
    last_backup: Recorded | None
    disk: Disk

    @property
    def schema_current(self) -> bool:
        return self.revision == self.head


def outbox_figures(session: Session, now: datetime | None = None) -> Outbox:
    now = now or datetime.now(UTC)
    waiting = OutboxEffect.done_at.is_(None)
    pending, retrying, oldest = session.execute(
        select(
            func.count(),
            func.count().filter(OutboxEffect.attempts > 0),
            func.min(OutboxEffect.next_attempt_at).filter(OutboxEffect.next_attempt_at <= now),
        ).where(waiting)
    ).one()
    overdue = session.scalar(
        select(func.count()).where(waiting, OutboxEffect.next_attempt_at <= now)
    )
    last_error = session.scalar(
        select(OutboxEffect.last_error)
        .where(waiting, OutboxEffect.attempts > 0)
        .order_by(OutboxEffect.next_attempt_at.desc())
        .limit(1)
    )
    last_done = session.scalar(select(func.max(OutboxEffect.done_at)))
    started = _utc(oldest)
    lag = (now - started).total_seconds() if started is not None else 0.0
    return Outbox(pending, overdue or 0, retrying, max(lag, 0.0), last_error, _utc(last_done))


def sweepers(session: Session, now: datetime | None = None) -> list[Sweeper]:
    """The sweepers heard from in the last day, the most recent first."""
    now = now or datetime.now(UTC)
    found = session.scalars(
        select(SweeperBeat)
        .where(SweeperBeat.beat_at >= now - timedelta(days=1))
        .order_by(SweeperBeat.beat_at.desc())
    )
    listed = []
    for found_beat in found:
        at = _utc(found_beat.beat_at) or now
        alive = now - at <= ALIVE_WITHIN
        listed.append(Sweeper(found_beat.name, found_beat.kind, at, found_beat.done, alive))
    return listed


def case_queues(session: Session) -> list[tuple[str, str, int]]:
    grouped = session.execute(
        select(Case.state, func.count()).where(Case.state.in_(OPEN_STATES)).group_by(Case.state)
    )
    counts: dict[str, int] = {state: count for state, count in grouped}
    return [(state, STATE_NAMES[state], counts.get(state, 0)) for state in OPEN_STATES]


def last_recorded(session: Session, action: str) -> Recorded | None:
    entry = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == action)
        .order_by(AuditEvent.occurred_at.desc())
        .limit(1)
    ).first()
    if entry is None:
        return None
    return Recorded(_utc(entry.occurred_at) or entry.occurred_at, entry.subject, entry.details)


def system_status(session: Session, engine: Engine, data_dir: Path) -> SystemStatus:
    database = check_database(engine)
    usage = shutil.disk_usage(data_dir if data_dir.exists() else Path.cwd())
    return SystemStatus(
        database_reachable=database.reachable,
        backend=database.backend,
        revision=current_revision(engine),
        head=head_revision(),
        outbox=outbox_figures(session),
        sweepers=sweepers(session),
        queues=case_queues(session),
        audit_entries=session.scalar(select(func.sum(AuditChainHead.seq))) or 0,  # no scan
        last_verification=last_recorded(session, "system.audit_verified"),
        last_backup=last_recorded(session, "system.backup_made"),
        disk=Disk(data_dir, usage.total, usage.free),
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
