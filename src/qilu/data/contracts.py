"""A consumer's data contract (数据契约): what its grant on a resource promises, in one answer —
the fields it gets (their types, which come masked), the rows and the purpose, how fresh the
data is against the provider's update cycle, how complete the granted fields are and how the
provider's quality rules stand, and how long records are kept. Asked under the grant and logged
like a read; it holds no record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from qilu.data.catalog import SENSITIVITY_NAMES, TYPE_NAMES, UPDATE_CYCLES
from qilu.data.quality import latest_check, quality_of
from qilu.data.reading import READ, authorise, begin_read
from qilu.identity.oidc_provider import ServiceCaller
from qilu.pii import Vault


def contract_for(
    session: Session, vault: Vault, caller: ServiceCaller, code: str, now: datetime | None = None
) -> dict[str, Any]:
    """The contract of the caller's live grant on resource `code` (refused and logged without
    one)."""
    begun = begin_read(session, vault, caller, code, now)
    read = begun.read
    grant = authorise(read, begun.grants, None, None)
    read.log(READ, None, {"contract": True})
    quality = quality_of(session, vault, code)
    resource = quality.resource
    check = latest_check(session, resource.id)
    moment = now or datetime.now(UTC)
    fields = [read.shape.by_name[name] for name in grant.fields if name in read.shape.by_name]
    return {
        "resource": {"code": resource.code, "name": resource.name, "version": resource.version},
        "grant": {
            "id": grant.id,
            "purpose": grant.purpose,
            "valid_until": grant.valid_until.isoformat(),
            "may_list": grant.may_list,
            "rows": grant.row_conditions,
        },
        "schema": [
            {
                "name": f.name,
                "label": f.label,
                "type": f.type,
                "type_name": TYPE_NAMES[f.type],
                "key": f.key,
                "sensitivity": SENSITIVITY_NAMES[f.sensitivity],
                "masked": f.name in read.shape.sealed and f.name not in grant.clear_fields,
            }
            for f in fields
        ],
        "freshness": {
            "update_cycle": UPDATE_CYCLES[resource.update_cycle],
            "last_loaded_at": quality.last_loaded_at.isoformat()
            if quality.last_loaded_at
            else None,
            "fresh_until": quality.fresh_until.isoformat() if quality.fresh_until else None,
            "overdue": quality.is_overdue(moment),
        },
        "quality": {
            "records": quality.records,
            "completeness": {f.name: quality.completeness.get(f.name, 0.0) for f in fields},
            "threshold": resource.quality_threshold,
            "rules": [
                {"label": r["label"], "checked": r["checked"], "failed": r["failed"]}
                for r in (check.results if check else [])
            ],
            "passing": check.passing if check else None,
            "checked_at": check.checked_at.isoformat() if check else None,
        },
        "retention_days": resource.retention_days,
    }
