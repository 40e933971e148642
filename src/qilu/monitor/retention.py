"""How long raw frames and readings are kept (QILU_MONITOR_RETENTION_DAYS), by the day they were
received.

On PostgreSQL both tables are partitioned by that day (migration 0037): `maintain` makes the
partitions of today and the next two days ahead of the data, and drops whole partitions once
past the retention, which costs nothing like deleting rows. A DEFAULT partition takes rows no
day's partition holds yet (those of the very first day); its old rows are deleted. On SQLite
old rows are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

TABLES = ("monitor_frames", "monitor_readings")
SCHEMA = "monitor_partitions"
AHEAD_DAYS = 2


@dataclass
class Kept:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    deleted: int = 0


def maintain(session: Session, now: datetime, keep_days: int) -> Kept:
    cutoff = datetime.combine((now - timedelta(days=keep_days)).date(), time(), tzinfo=UTC)
    kept = Kept()
    if session.get_bind().dialect.name != "postgresql":
        for table in TABLES:
            result = session.execute(
                text(f"DELETE FROM {table} WHERE received_at < :cutoff"), {"cutoff": cutoff}
            )
            kept.deleted += result.rowcount  # type: ignore[attr-defined]
        return kept
    for table in TABLES:
        days = _partitions(session, table)
        for ahead in range(AHEAD_DAYS + 1):
            day = (now + timedelta(days=ahead)).date()
            name = f"{table}_{day:%Y%m%d}"
            if name in days:
                continue
            start = datetime.combine(day, time(), tzinfo=UTC)
            try:
                with session.begin_nested():
                    session.execute(
                        text(
                            f"CREATE TABLE {SCHEMA}.{name} PARTITION OF {table} "
                            f"FOR VALUES FROM ('{start.isoformat()}') "
                            f"TO ('{(start + timedelta(days=1)).isoformat()}')"
                        )
                    )
                kept.created.append(name)
            except DBAPIError:  # the DEFAULT partition already holds rows of that day
                continue
        for name in days:
            if name.endswith("_default"):
                continue
            day_end = datetime.strptime(name[-8:], "%Y%m%d").replace(tzinfo=UTC) + timedelta(1)
            if day_end <= cutoff:
                session.execute(text(f"DROP TABLE {SCHEMA}.{name}"))
                kept.dropped.append(name)
        result = session.execute(
            text(f"DELETE FROM {SCHEMA}.{table}_default WHERE received_at < :cutoff"),
            {"cutoff": cutoff},
        )
        kept.deleted += result.rowcount  # type: ignore[attr-defined]
    return kept


def _partitions(session: Session, table: str) -> list[str]:
    """The names of the table's partitions."""
    return list(
        session.scalars(
            text(
                "SELECT child.relname FROM pg_inherits "
                "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
                "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
                "WHERE parent.relname = :table ORDER BY child.relname"
            ),
            {"table": table},
        )
    )
