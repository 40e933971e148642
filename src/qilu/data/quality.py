"""Data quality of a resource: completeness per field, validity of loaded rows, duplicate keys
offered, and freshness against the update cycle the provider promised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.data.catalog import get_resource
from qilu.data.loading import Layout, values_of
from qilu.data.models import DataLoad, DataRecord, DataResource
from qilu.pii import Vault

# How long after its last load a resource is still fresh, by its promised update cycle.
CYCLES = {
    "realtime": timedelta(days=1),
    "daily": timedelta(days=2),
    "weekly": timedelta(days=8),
    "monthly": timedelta(days=32),
    "quarterly": timedelta(days=93),
    "yearly": timedelta(days=367),
}
SAMPLE = 2_000  # completeness is measured on the newest records: opening sealed fields costs


@dataclass(frozen=True)
class Quality:
    resource: DataResource
    records: int
    sampled: int
    completeness: dict[str, float]  # field name → share of sampled records that have a value
    rows_loaded: int
    rows_rejected: int
    duplicate_rows: int
    last_loaded_at: datetime | None
    fresh_until: datetime | None

    @property
    def validity(self) -> float | None:
        if not self.rows_loaded:
            return None
        return (self.rows_loaded - self.rows_rejected) / self.rows_loaded

    def is_overdue(self, now: datetime) -> bool:
        """No load yet, or the last one is older than the update cycle allows."""
        return self.fresh_until is None or self.fresh_until < now


def quality_of(session: Session, vault: Vault, code: str) -> Quality:
    resource = get_resource(session, code)
    layout = Layout.of(session, resource)
    records = session.scalar(
        select(func.count()).select_from(DataRecord).where(DataRecord.resource_id == resource.id)
    )
    sample = list(
        session.scalars(
            select(DataRecord)
            .where(DataRecord.resource_id == resource.id)
            .order_by(DataRecord.id.desc())
            .limit(SAMPLE)
        )
    )
    filled = dict.fromkeys((f.name for f in layout.fields), 0)
    for row in sample:
        for name, value in values_of(vault, layout, row).items():
            if value not in (None, "") and name in filled:
                filled[name] += 1
    # One aggregate over the loads: their problem lists can be long and are not read here.
    loaded, rejected, duplicates, last = session.execute(
        select(
            func.coalesce(func.sum(DataLoad.total), 0),
            func.coalesce(func.sum(DataLoad.rejected), 0),
            func.coalesce(func.sum(DataLoad.duplicates), 0),
            func.max(DataLoad.finished_at),
        ).where(DataLoad.resource_id == resource.id, DataLoad.status == "done")
    ).one()
    return Quality(
        resource=resource,
        records=records or 0,
        sampled=len(sample),
        completeness={n: (c / len(sample) if sample else 0.0) for n, c in filled.items()},
        rows_loaded=int(loaded),
        rows_rejected=int(rejected),
        duplicate_rows=int(duplicates),
        last_loaded_at=last,
        fresh_until=last + CYCLES[resource.update_cycle] if last else None,
    )


def overdue(session: Session, now: datetime | None = None) -> set[str]:
    """Codes of the resources that missed their update cycle (or were never loaded)."""
    moment = now or datetime.now(UTC)
    last_loads = dict(
        session.execute(
            select(DataLoad.resource_id, func.max(DataLoad.finished_at))
            .where(DataLoad.status == "done")
            .group_by(DataLoad.resource_id)
        ).all()
    )
    late: set[str] = set()
    for resource in session.scalars(select(DataResource)):
        last = last_loads.get(resource.id)
        if last is None or last + CYCLES[resource.update_cycle] < moment:
            late.add(resource.code)
    return late
