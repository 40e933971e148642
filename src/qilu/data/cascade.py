"""The city-to-province cascade (目录级联): a city's platform exports its own catalog (`qilu data
catalog export`), and the province registers it under its catalog (`qilu data catalog cascade
FILE --origin 济南市`), so a department anywhere in the province finds a city's resources beside
the province's. Each entry keeps its origin; the data stays with the city, whose platform
answers for it.

An export holds every resource the platform itself registered (not those it cascaded from
below), as the same description `qilu data catalog publish` reads. A cascade checks every entry
before writing any; every provider must be a department of one and the same city; a code the
province already uses for a resource of its own, or of another origin, is refused. Cascading the
same city again updates the entries it brought (descriptions, conditions, compatible new fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.catalog import (
    ResourceSpec,
    SharingRules,
    breaking_changes,
    change_schema,
    parse_spec,
    register_resource,
    schema_of,
)
from qilu.data.models import DataResource
from qilu.errors import QiluError
from qilu.identity import roles
from qilu.identity.models import Department

# What a cascade may change on an entry it brought before (besides compatible new fields).
UPDATED = (
    "name", "description", "topic", "sharing", "sharing_conditions", "opening", "update_cycle",
    "legal_basis", "classification", "format", "related", "quality_threshold", "retention_days",
)  # fmt: skip


def export(session: Session) -> list[dict[str, Any]]:
    """The platform's own resources, each as a description `parse_spec` reads."""
    resources = session.scalars(
        select(DataResource).where(DataResource.origin == "").order_by(DataResource.code)
    )
    return [
        ResourceSpec.model_validate(
            dict(
                code=r.code,
                name=r.name,
                description=r.description,
                provider=r.provider.code,
                library=r.library,
                topic=r.topic,
                sharing=r.sharing,
                sharing_conditions=r.sharing_conditions,
                sharing_rules=SharingRules.model_validate(r.sharing_rules or {}),
                opening=r.opening,
                share_mode=r.share_mode,
                update_cycle=r.update_cycle,
                legal_basis=r.legal_basis,
                fields=schema_of(session, r),
                classification=r.classification,
                format=r.format,
                related=list(r.related or []),
                quality_rules=r.quality_rules or [],
                quality_threshold=r.quality_threshold,
                retention_days=r.retention_days,
            )
        ).model_dump(mode="json")
        for r in resources
    ]


@dataclass
class Cascaded:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def cascade(
    session: Session,
    entries: list[Any],
    *,
    origin: str,
    actor: roles.Actor = roles.OPERATOR,
    now: datetime | None = None,
) -> Cascaded:
    """Register a city's exported catalog under the province's (see the module's rules)."""
    origin = origin.strip()
    if not 2 <= len(origin) <= 200:
        raise QiluError("cascade.origin", "请写明来源目录（如 济南市）", field="origin")
    specs = [parse_spec(entry) for entry in entries]  # all checked before any is written
    _one_city(session, specs)
    moment = now or datetime.now(UTC)
    done = Cascaded()
    for spec in specs:
        found = session.scalars(
            select(DataResource).where(DataResource.code == spec.code)
        ).one_or_none()
        if found is None:
            register_resource(session, spec, actor=actor, now=moment, origin=origin)
            done.added.append(spec.code)
        elif found.origin != origin:
            owner = found.origin or "本级目录"
            raise QiluError(
                "cascade.conflict", f"资源代码 {spec.code} 已被{owner}使用", field=spec.code
            )
        else:
            _update(session, found, spec, actor, moment)
            done.updated.append(spec.code)
    record(
        session,
        "data.catalog_cascaded",
        actor_person_id=roles.person_of(actor),
        subject=f"catalog:{origin}",
        at=moment,
        details={"origin": origin, "added": done.added, "updated": done.updated},
    )
    return done


def _one_city(session: Session, specs: list[ResourceSpec]) -> None:
    codes = sorted({spec.provider for spec in specs})
    departments = {
        d.code: d for d in session.scalars(select(Department).where(Department.code.in_(codes)))
    }
    unknown = [code for code in codes if code not in departments]
    if unknown:
        raise QiluError(
            "cascade.provider", f"没有这些提供部门：{'、'.join(unknown)}", field="provider"
        )
    cities = {departments[code].division_code[:4] for code in codes}
    if len(cities) != 1 or next(iter(cities)).endswith("00"):
        raise QiluError(
            "cascade.city",
            "级联的目录须来自同一个设区市，提供部门均须为该市（含所辖县区）的部门",
            field="provider",
        )


def _update(
    session: Session, found: DataResource, spec: ResourceSpec, actor: roles.Actor, moment: datetime
) -> None:
    for name in UPDATED:
        setattr(found, name, getattr(spec, name) or getattr(found, name))
    found.sharing_rules = spec.sharing_rules.model_dump()
    found.quality_rules = [rule.model_dump(mode="json") for rule in spec.quality_rules]
    found.updated_at = moment
    current = schema_of(session, found)
    if [f.model_dump() for f in current] != [f.model_dump() for f in spec.fields]:
        if breaking_changes(current, spec.fields):
            raise QiluError(
                "cascade.schema",
                f"{spec.code} 的字段变化会破坏已有数据或调用方，未级联",
                field=spec.code,
            )
        change_schema(session, spec.code, spec.fields, note="随市级目录级联更新", actor=actor)
