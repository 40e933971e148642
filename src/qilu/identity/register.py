"""The identity register as the population (人口) and legal-entity (法人) libraries say it.

The data platform's base libraries are the one source of truth: a load or a push into them calls
these functions in the same transaction, so the residents and enterprises sign-in, registration,
prefill and services know are exactly what the libraries hold. The register tables stay as a
derived, indexed copy for speed (a sign-in looks a person up by blind index, not in a library
record).

What a change means is decided here: a death closes the resident's account (every session
ended) and ends the authorisations they gave or held; an enterprise struck off or revoked loses
its agents; a new legal representative takes over the enterprise's identity. Each is audited
with the load that brought it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.db import Base, copy_rows
from qilu.identity.models import (
    Account,
    EnterpriseAgent,
    FamilyProxy,
    LegalEntity,
    Person,
)
from qilu.identity.sessions import revoke_all
from qilu.messages import service as messages
from qilu.pii import Vault


@dataclass(frozen=True)
class PersonEntry:
    """One resident as the population library holds them (values already checked)."""

    id_number: str
    name: str
    sex: str  # M | F
    birth_date: date
    household_division: str
    address: str
    ethnicity: str
    phone: str | None
    status: str = "active"
    status_on: date | None = None


@dataclass(frozen=True)
class EntityEntry:
    """One organisation as the legal-entity library holds it."""

    row: int
    uscc: str
    name: str
    industry: str
    division: str
    address: str
    registered_capital: Decimal
    established_on: date | None
    status: str
    representative_id_number: str | None


@dataclass
class Applied:
    """What a batch did to the register, and the rows it could not apply (row, field, reason)."""

    added: int = 0
    changed: int = 0
    warnings: list[tuple[int, str, str]] = field(default_factory=list)
    # Residents whose household moved: (person id, from division, to division).
    moved: list[tuple[int, str, str]] = field(default_factory=list)


def apply_persons(
    session: Session,
    vault: Vault,
    entries: list[PersonEntry],
    *,
    load_id: int,
    rows: list[dict[str, Any]] | None = None,
) -> Applied:
    """Add the residents the register lacks and bring the others up to date; a resident who
    died is closed. `rows` are the entries' `person_row`s when a load's worker processes have
    made them already (their encryption is most of the work)."""
    applied = Applied()
    prepared = rows if rows is not None else [person_row(vault, e) for e in entries]
    pairs = zip(entries, prepared, strict=True)
    by_index = {row["id_number_index"]: (entry, row) for entry, row in pairs}
    known = {
        current: person
        for current, person in _people_indexed(
            session, vault, {i: e.id_number for i, (e, _) in by_index.items()}
        )
    }
    new = [row for index, (_, row) in by_index.items() if index not in known]
    if new:
        _insert_persons(session, new)
        applied.added = len(new)
    for index, person in known.items():
        entry, row = by_index[index]
        wanted = dict(row)
        # The same number: only its ciphertext, or during an index-key rotation its index,
        # would differ (the rotation re-indexes a person together with their licences).
        wanted.pop("id_number_cipher")
        wanted.pop("id_number_index")
        if entry.phone and person.phone_index in vault.blind_indexes(entry.phone, "phone"):
            wanted.pop("phone_cipher")
            wanted.pop("phone_index")
        changed = [k for k, v in wanted.items() if getattr(person, k) != v]
        if not changed:
            continue
        was, home = person.status, person.household_division_code
        for name in changed:
            setattr(person, name, wanted[name])
        applied.changed += 1
        fields = sorted({"phone" if k.startswith("phone") else k for k in changed})
        record(
            session,
            "register.person_changed",
            subject=f"person:{person.id}",
            details={"fields": fields, "load": load_id},
        )
        if person.status == "deceased" and was != "deceased":
            _close_person(session, person, load_id)
        elif person.household_division_code != home:
            applied.moved.append((person.id, home, person.household_division_code))
    return applied


def _people_indexed(
    session: Session, vault: Vault, numbers: dict[bytes, str]
) -> list[tuple[bytes, Person]]:
    """The residents already in the register among `numbers` (current index → ID number),
    each with the current index of their number, whichever key theirs was stored under."""
    if not vault.index_rotating:
        found = session.scalars(select(Person).where(Person.id_number_index.in_(numbers)))
        return [(p.id_number_index, p) for p in found]
    current_of = {
        index: current
        for current, number in numbers.items()
        for index in vault.blind_indexes(number, "id_number")
    }
    found = session.scalars(select(Person).where(Person.id_number_index.in_(current_of)))
    return [(current_of[p.id_number_index], p) for p in found]


def _insert_persons(session: Session, rows: list[dict[str, Any]]) -> None:
    """New residents in bulk: binary COPY on PostgreSQL, one executemany on SQLite (the ORM's
    per-row bookkeeping doubled a 人口 load's time)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        columns = list(rows[0])
        copy_rows(connection, "persons", columns, ([row[c] for c in columns] for row in rows))
    else:
        connection.execute(insert(Base.metadata.tables["persons"]), rows)


def person_row(vault: Vault, entry: PersonEntry) -> dict[str, Any]:
    """The register's row for an entry, encrypted and indexed (pure: runs in a load's workers)."""
    return {
        "id_number_cipher": vault.encrypt(entry.id_number, "id_number"),
        "id_number_index": vault.blind_index(entry.id_number, "id_number"),
        "name": entry.name,
        "sex": entry.sex,
        "birth_date": entry.birth_date,
        "birth_division_code": entry.id_number[:6],
        "household_division_code": entry.household_division,
        "address": entry.address,
        "ethnicity_code": entry.ethnicity,
        "phone_cipher": vault.encrypt(entry.phone, "phone") if entry.phone else None,
        "phone_index": vault.blind_index(entry.phone, "phone") if entry.phone else None,
        "status": entry.status,
        "status_on": entry.status_on,
    }


def _close_person(session: Session, person: Person, load_id: int) -> None:
    """A resident the register says died: the account is closed and signed out everywhere,
    and every authorisation they gave or held (亲友代办, enterprise agents) ends."""
    now = datetime.now(UTC)
    account = session.scalars(select(Account).where(Account.person_id == person.id)).first()
    sessions = 0
    if account is not None:
        account.status = "disabled"
        sessions = revoke_all(session, account.id)
    family = session.scalars(
        update(FamilyProxy)
        .where(
            or_(
                FamilyProxy.principal_person_id == person.id,
                FamilyProxy.proxy_person_id == person.id,
            ),
            FamilyProxy.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(FamilyProxy.principal_person_id, FamilyProxy.proxy_person_id)
    ).all()
    agents = session.scalars(
        update(EnterpriseAgent)
        .where(EnterpriseAgent.agent_person_id == person.id, EnterpriseAgent.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(EnterpriseAgent.id)
    ).all()
    led = session.scalars(
        select(LegalEntity.uscc).where(
            LegalEntity.legal_representative_id == person.id, LegalEntity.status == "active"
        )
    ).all()
    record(
        session,
        "register.person_closed",
        subject=f"person:{person.id}",
        details={
            "status": person.status,
            "load": load_id,
            "account": account.id if account else None,
            "sessions": sessions,
            "family_grants": len(family),
            "agent_grants": len(agents),
            # Enterprises they represented: the 法人 library must name a successor.
            "represented": list(led),
        },
    )


def apply_entities(
    session: Session, vault: Vault, entries: list[EntityEntry], *, load_id: int
) -> Applied:
    """Add the enterprises the register lacks (when their legal representative is a known
    resident) and bring the others up to date."""
    applied = Applied()
    numbers = {e.representative_id_number for e in entries if e.representative_id_number}
    indexes = {n: vault.blind_index(n, "id_number") for n in numbers}
    people = {
        index: person.id
        for index, person in _people_indexed(session, vault, {i: n for n, i in indexes.items()})
    }
    known = {
        e.uscc: e
        for e in session.scalars(
            select(LegalEntity).where(LegalEntity.uscc.in_([e.uscc for e in entries]))
        )
    }
    new: list[dict[str, object]] = []
    for entry in entries:
        number = entry.representative_id_number
        representative = people.get(indexes[number]) if number else None
        entity = known.get(entry.uscc)
        if representative is None and (entity is None or number):
            reason = (
                "法定代表人不在人口库中，企业身份暂不可用"
                if number
                else "未提供法定代表人公民身份号码，企业身份暂不可用"
            )
            applied.warnings.append((entry.row, "legal_representative_id_number", reason))
            if entity is None:
                continue
        if entity is None and entry.established_on is None:
            reason = "未提供成立日期，企业身份暂不可用"
            applied.warnings.append((entry.row, "established_on", reason))
            continue
        values = {
            "name": entry.name,
            "industry_code": entry.industry,
            "division_code": entry.division,
            "address": entry.address,
            "registered_capital": entry.registered_capital,
            "established_on": entry.established_on or (entity and entity.established_on),
            "status": entry.status,
        }
        if entity is None:
            new.append({"uscc": entry.uscc, "legal_representative_id": representative, **values})
            continue
        if representative is not None:
            values["legal_representative_id"] = representative
        _update_entity(session, entity, values, load_id, applied)
    if new:
        session.execute(insert(LegalEntity), new)
        applied.added = len(new)
    return applied


def _update_entity(
    session: Session,
    entity: LegalEntity,
    values: dict[str, object],
    load_id: int,
    applied: Applied,
) -> None:
    changed = [k for k, v in values.items() if getattr(entity, k) != v]
    if not changed:
        return
    was_status, was_representative = entity.status, entity.legal_representative_id
    for name in changed:
        setattr(entity, name, values[name])
    applied.changed += 1
    record(
        session,
        "register.entity_changed",
        actor_entity_uscc=entity.uscc,
        subject=f"entity:{entity.uscc}",
        details={"fields": sorted(changed), "load": load_id},
    )
    if entity.legal_representative_id != was_representative:
        _hand_over(session, entity, was_representative, load_id)
    if entity.status != "active" and was_status == "active":
        _close_entity(session, entity, load_id)


def _hand_over(session: Session, entity: LegalEntity, previous: int, load_id: int) -> None:
    """A new legal representative per the register: they now act for the enterprise, the
    previous one no longer does; agents keep their grants (given by the enterprise)."""
    record(
        session,
        "register.representative_changed",
        actor_entity_uscc=entity.uscc,
        subject=f"person:{entity.legal_representative_id}",
        details={"from": previous, "to": entity.legal_representative_id, "load": load_id},
    )
    for person_id, text in (
        (entity.legal_representative_id, f"根据法人库登记，您已成为{entity.name}的法定代表人。"),
        (previous, f"根据法人库登记，您不再是{entity.name}的法定代表人。"),
    ):
        messages.send(session, person_id, title="法定代表人变更", body=text)


def _close_entity(session: Session, entity: LegalEntity, load_id: int) -> None:
    """An enterprise struck off (注销) or revoked (吊销): nobody acts for it any more."""
    ended = session.scalars(
        update(EnterpriseAgent)
        .where(EnterpriseAgent.entity_id == entity.id, EnterpriseAgent.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(EnterpriseAgent.agent_person_id)
    ).all()
    record(
        session,
        "register.entity_closed",
        actor_entity_uscc=entity.uscc,
        subject=f"entity:{entity.uscc}",
        details={"status": entity.status, "agents": len(ended), "load": load_id},
    )
    what = "注销" if entity.status == "deregistered" else "被吊销营业执照"
    for person_id in {entity.legal_representative_id, *ended}:
        messages.send(
            session,
            person_id,
            title="企业登记状态变更",
            body=f"根据法人库登记，{entity.name}已{what}，不能再以该企业身份办事。",
        )
