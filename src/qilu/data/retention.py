"""Retention periods per resource (保存期限): a record not changed for longer than its resource's
`retention_days` is removed, with its history and its entries in the change feed, a batch at a
time from the hourly work; each batch is one audit entry naming the resource, how many records
went and the cut-off. A record under an open 数据异议 is kept until the dispute is answered.

The feed's consumers learn of removals the way the law has them learn the period: it is part
of the resource's metadata and of each grant's contract (`contract`), not a feed event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.models import DataChange, DataRecord, DataResource, Dispute, RecordChange

BATCH = 10_000  # records a resource loses per run at most: a long backlog goes over hours


def expire_records(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Remove the records kept past their resource's period; returns {resource code: count}."""
    moment = now or datetime.now(UTC)
    removed: dict[str, int] = {}
    for resource in session.scalars(
        select(DataResource).where(DataResource.retention_days.is_not(None))
    ):
        assert resource.retention_days is not None
        cut_off = moment - timedelta(days=resource.retention_days)
        disputed = select(Dispute.record_id).where(
            Dispute.resource_id == resource.id, Dispute.status == "open"
        )
        old = list(
            session.scalars(
                select(DataRecord.id)
                .where(
                    DataRecord.resource_id == resource.id,
                    DataRecord.updated_at < cut_off,
                    DataRecord.id.not_in(disputed),
                )
                .order_by(DataRecord.id)
                .limit(BATCH)
            )
        )
        if not old:
            continue
        session.execute(delete(RecordChange).where(RecordChange.record_id.in_(old)))
        session.execute(
            delete(DataChange).where(
                DataChange.resource_id == resource.id, DataChange.record_id.in_(old)
            )
        )
        session.execute(delete(DataRecord).where(DataRecord.id.in_(old)))
        record(
            session,
            "data.retention_expired",
            subject=f"resource:{resource.code}",
            at=moment,
            details={
                "records": len(old),
                "retention_days": resource.retention_days,
                "changed_before": cut_off.isoformat(),
            },
        )
        removed[resource.code] = len(old)
    return removed
