"""Operational monitoring of the exchange (共享调用监测): per consumer and resource (a data
resource or a department API), how many shared calls, how many failed, how many bytes, how long
the proxied ones took (median and 95th percentile), and how far each change subscription lags.
Read from the calls' evidence (`evidence`), which every answered call leaves, so the figures are
the same in every process; refusals are in the audit log, not here."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from qilu.data.models import CallEvidence, DataResource, Subscription
from qilu.identity.models import Department

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Usage:
    consumer_code: str
    consumer: str
    resource_code: str
    resource: str
    provider: str
    calls: int
    failures: int
    bytes: int
    p50_ms: float | None  # of the calls whose round trip was timed (proxied APIs)
    p95_ms: float | None
    last_at: datetime


def usage(
    session: Session, departments: list[int] | None, *, now: datetime | None = None
) -> list[Usage]:
    """The last `WINDOW` of shared calls touching `departments` as consumer or as provider
    (None: every department), busiest first."""
    since = (now or datetime.now(UTC)) - WINDOW
    scope = [CallEvidence.signed_at >= since]
    if departments is not None:
        codes = select(Department.code).where(Department.id.in_(departments))
        provided = select(DataResource.code).where(DataResource.provider_id.in_(departments))
        scope.append(
            or_(CallEvidence.department_code.in_(codes), CallEvidence.resource.in_(provided))
        )
    group = (CallEvidence.department_code, CallEvidence.resource)
    rows = session.execute(
        select(
            *group,
            func.count(),
            func.sum(case((CallEvidence.status >= 400, 1), else_=0)),
            func.sum(CallEvidence.answer_bytes),
            func.max(CallEvidence.signed_at),
        )
        .where(*scope)
        .group_by(*group)
        .order_by(func.count().desc())
    ).all()
    timed: dict[tuple[str, str], list[float]] = {}
    for row in session.execute(
        select(*group, CallEvidence.duration_ms).where(
            *scope, CallEvidence.duration_ms.is_not(None)
        )
    ):
        timed.setdefault((row.department_code, row.resource), []).append(row.duration_ms or 0.0)
    names = {
        row.code: row.name for row in session.execute(select(Department.code, Department.name))
    }
    resources = {
        r.code: r
        for r in session.scalars(
            select(DataResource).where(DataResource.code.in_({row[1] for row in rows}))
        )
    }
    found = []
    for consumer, code, calls, failures, size, last in rows:
        durations = timed.get((consumer, code), [])
        found_resource = resources.get(code)
        found.append(
            Usage(
                consumer,
                names.get(consumer, consumer),
                code,
                found_resource.name if found_resource else code,
                found_resource.provider.name if found_resource else "",
                int(calls),
                int(failures or 0),
                int(size or 0),
                _percentile(durations, 50),
                _percentile(durations, 95),
                last,
            )
        )
    return found


def _percentile(values: list[float], point: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[point - 1]


def subscriptions_touching(session: Session, departments: list[int] | None) -> list[Subscription]:
    """The change subscriptions of `departments` or on their resources, most behind first."""
    statement = select(Subscription).join(DataResource).where(Subscription.status != "cancelled")
    if departments is not None:
        statement = statement.where(
            or_(
                Subscription.department_id.in_(departments),
                DataResource.provider_id.in_(departments),
            )
        )
    found = list(session.scalars(statement))
    return sorted(found, key=lambda s: s.cursor - s.resource.change_seq)
