"""Data quality of a resource: completeness per field, validity of loaded rows, duplicate keys
offered, freshness against the update cycle the provider promised, and the provider's own
quality rules (`catalog.QualityRule`: ranges, cross-field and cross-resource consistency)
checked on a sample of the newest records — the day's result kept, and the provider's stewards
alerted once a day when fewer pass than the threshold they set."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from qilu.data.catalog import FieldSpec, QualityRule, get_resource
from qilu.data.loading import Layout, values_of
from qilu.data.models import DataLoad, DataRecord, DataResource, QualityCheck
from qilu.identity import roles
from qilu.messages import service as messages
from qilu.pii import Vault
from qilu.workdays import beijing_today

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


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
EXAMPLES = 5  # record ids kept per rule, for the steward to look at


def check_rules(
    session: Session, vault: Vault, resource: DataResource, now: datetime | None = None
) -> QualityCheck | None:
    """Check the resource's quality rules on its newest records; the day's result is kept
    (one row a day, the latest). None if it has no rules."""
    rules = [QualityRule.model_validate(rule) for rule in resource.quality_rules or []]
    if not rules:
        return None
    moment = now or datetime.now(UTC)
    layout = Layout.of(session, resource)
    by_name = {f.name: f for f in layout.fields}
    sample = [
        (row.id, values_of(vault, layout, row))
        for row in session.scalars(
            select(DataRecord)
            .where(DataRecord.resource_id == resource.id)
            .order_by(DataRecord.id.desc())
            .limit(SAMPLE)
        )
    ]
    failing: set[int] = set()
    results = []
    for rule in rules:
        verdicts = _verdicts(session, vault, rule, by_name, sample)
        failed = [record_id for record_id, holds in verdicts if not holds]
        failing.update(failed)
        results.append(
            {
                "label": rule.label,
                "kind": rule.kind,
                "checked": len(verdicts),
                "failed": len(failed),
                "examples": failed[:EXAMPLES],
            }
        )
    passing = 1 - len(failing) / len(sample) if sample else 1.0
    return _keep(session, resource, moment, len(sample), passing, results)


def _verdicts(
    session: Session,
    vault: Vault,
    rule: QualityRule,
    fields: dict[str, FieldSpec],
    sample: list[tuple[int, dict[str, Any]]],
) -> list[tuple[int, bool]]:
    """(record id, whether it meets the rule) for each sampled record the rule applies to (a
    record without the value is not judged: completeness counts that)."""
    spec = fields[rule.field]
    present = [(rid, values) for rid, values in sample if values.get(rule.field) not in (None, "")]
    if rule.kind == "range":
        low, high = _typed(spec, rule.minimum), _typed(spec, rule.maximum)
        return [
            (rid, (low is None or low <= value) and (high is None or value <= high))
            for rid, values in present
            if (value := _typed(spec, values[rule.field])) is not None
        ]
    if rule.kind == "compare":
        other = fields[rule.other]
        compare = OPERATORS[rule.op]
        return [
            (rid, compare(_typed(spec, values[rule.field]), _typed(other, values[rule.other])))
            for rid, values in present
            if values.get(rule.other) not in (None, "")
        ]
    target = Layout.of(session, get_resource(session, rule.resource))
    keys = {rid: target.record_key(vault, [str(values[rule.field])]) for rid, values in present}
    known = set(
        session.scalars(
            select(DataRecord.record_key).where(
                DataRecord.resource_id == target.resource.id,
                DataRecord.record_key.in_(set(keys.values())),
            )
        )
    )
    return [(rid, key in known) for rid, key in keys.items()]


def _typed(spec: FieldSpec, value: Any) -> Any:
    """A value as its type compares: numbers as decimals, dates as their ISO text."""
    if value is None:
        return None
    if spec.type in ("integer", "decimal"):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return str(value)


def _keep(
    session: Session,
    resource: DataResource,
    moment: datetime,
    sampled: int,
    passing: float,
    results: list[dict[str, Any]],
) -> QualityCheck:
    table = QualityCheck.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"checked_at": moment, "sampled": sampled, "passing": passing, "results": results}
    session.execute(
        dialect.insert(table)
        .values(resource_id=resource.id, day=beijing_today(moment), **values)
        .on_conflict_do_update(index_elements=[table.c.resource_id, table.c.day], set_=values)
    )
    return session.get_one(
        QualityCheck, (resource.id, beijing_today(moment)), populate_existing=True
    )


def latest_check(session: Session, resource_id: int) -> QualityCheck | None:
    return session.scalars(
        select(QualityCheck)
        .where(QualityCheck.resource_id == resource_id)
        .order_by(QualityCheck.day.desc())
        .limit(1)
    ).first()


def watch(session: Session, vault: Vault, now: datetime | None = None) -> int:
    """The hourly check of every resource with rules; below its threshold, the provider's
    stewards are alerted (once a day). Returns how many were alerted."""
    moment = now or datetime.now(UTC)
    alerted = 0
    for resource in session.scalars(
        select(DataResource).where(DataResource.share_mode == "table").order_by(DataResource.id)
    ):
        check = check_rules(session, vault, resource, moment)
        if check is None or check.passing >= resource.quality_threshold or check.alerted_at:
            continue
        check.alerted_at = moment
        worst = max(check.results, key=lambda result: result["failed"])
        for person_id in roles.holders(session, "data.publish", resource.provider_id):
            messages.send(
                session,
                person_id,
                title=f"{resource.name}的数据质量低于阈值",
                body=(
                    f"抽查 {check.sampled} 条，符合全部规则的占 {check.passing:.1%}"
                    f"（阈值 {resource.quality_threshold:.0%}）；问题最多的规则：{worst['label']}"
                    f"（{worst['failed']} 条）。"
                ),
                link=f"/workbench/data/{resource.code}",
            )
        alerted += 1
    return alerted
