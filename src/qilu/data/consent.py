"""Consent (授权) for sensitive personal data: a grant lets a department read a resource, but a
record with sensitive personal fields (health, say) is read only while the person it is about
has authorised that department, for a purpose, until a date. The person gives and withdraws
consent in the portal; both are audited, and a withdrawal stops reads at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.catalog import FieldSpec, schema_of
from qilu.data.models import Consent, DataResource, ShareGrant
from qilu.errors import NotFound, QiluError
from qilu.identity.models import Department, Person
from qilu.identity.service import person_subject
from qilu.pii import Vault

LONGEST_CONSENT = timedelta(days=366)


def needs_consent(fields: list[FieldSpec], names: list[str]) -> bool:
    """Whether reading `names` of a resource with these fields touches sensitive personal data."""
    wanted = set(names)
    return any(f.sensitivity == "sensitive_personal" and f.name in wanted for f in fields)


@dataclass(frozen=True)
class Option:
    """A department that may ask this person's consent: it holds a live grant on sensitive
    fields of the resource."""

    grant: ShareGrant
    consent: Consent | None  # the person's live consent for it, if any


def options_for(session: Session, person: Person, now: datetime | None = None) -> list[Option]:
    moment = now or datetime.now(UTC)
    grants = session.scalars(
        select(ShareGrant)
        .where(ShareGrant.status == "granted", ShareGrant.valid_until > moment)
        .order_by(ShareGrant.resource_id, ShareGrant.consumer_id, ShareGrant.id)
    ).all()
    live = {
        (c.resource_id, c.consumer_id): c for c in consents_of(session, person) if c.is_live(moment)
    }
    options: dict[tuple[int, int], Option] = {}
    schemas: dict[int, list[FieldSpec]] = {}
    for grant in grants:
        if grant.resource_id not in schemas:
            schemas[grant.resource_id] = schema_of(session, grant.resource)
        pair = (grant.resource_id, grant.consumer_id)
        if needs_consent(schemas[grant.resource_id], grant.fields) and pair not in options:
            options[pair] = Option(grant, live.get(pair))
    return list(options.values())


def give(
    session: Session,
    vault: Vault,
    person: Person,
    *,
    resource_code: str,
    consumer_code: str,
    purpose: str,
    valid_until: datetime,
    now: datetime | None = None,
) -> Consent:
    """The person authorises the department to read their records of the resource."""
    moment = now or datetime.now(UTC)
    resource = session.scalars(
        select(DataResource).where(DataResource.code == resource_code)
    ).one_or_none()
    consumer = session.scalars(
        select(Department).where(Department.code == consumer_code)
    ).one_or_none()
    if resource is None or consumer is None:
        raise NotFound("consent.unknown", "没有这项可授权的数据使用", field="resource")
    fields = schema_of(session, resource)
    if not needs_consent(fields, [f.name for f in fields]):
        raise QiluError(
            "consent.not_needed", f"{resource.name}不含敏感个人信息，无需授权", field="resource"
        )
    if len(purpose.strip()) < 4:
        raise QiluError("consent.purpose", "请写明授权的用途（至少 4 个字）", field="purpose")
    if not moment < valid_until <= moment + LONGEST_CONSENT:
        raise QiluError(
            "consent.valid_until", "授权期限须在今天之后、一年之内", field="valid_until"
        )
    for earlier in _live(session, person, resource.id, consumer.id, moment):
        earlier.revoked_at = moment  # the new consent replaces it
    consent = Consent(
        person_id=person.id,
        subject_index=person.id_number_index,
        resource_id=resource.id,
        consumer_id=consumer.id,
        purpose=purpose.strip(),
        granted_at=moment,
        valid_until=valid_until,
    )
    session.add(consent)
    session.flush()
    _audit(session, vault, "consent.given", consent, person, moment)
    return consent


def withdraw(
    session: Session, vault: Vault, person: Person, consent_id: int, now: datetime | None = None
) -> Consent:
    """The person ends a consent: from now on the department's reads are refused."""
    moment = now or datetime.now(UTC)
    consent = session.get(Consent, consent_id)
    if consent is None or consent.person_id != person.id:
        raise NotFound("consent.not_found", "没有这项授权", field="consent")
    if not consent.is_live(moment):
        raise QiluError("consent.ended", "这项授权已撤销或已到期", field="consent")
    consent.revoked_at = moment
    _audit(session, vault, "consent.withdrawn", consent, person, moment)
    return consent


def consents_of(session: Session, person: Person) -> list[Consent]:
    return list(
        session.scalars(
            select(Consent)
            .where(Consent.person_id == person.id)
            .order_by(Consent.granted_at.desc(), Consent.id.desc())
        )
    )


def live_consent(
    session: Session,
    subject_indexes: tuple[bytes, ...],
    resource_id: int,
    consumer_id: int,
    now: datetime,
) -> int | None:
    """The id of a live consent of the person with this ID number's index (under any key an
    index-key rotation holds), if any."""
    return session.scalars(
        select(Consent.id)
        .where(
            Consent.subject_index.in_(subject_indexes),
            Consent.resource_id == resource_id,
            Consent.consumer_id == consumer_id,
            Consent.revoked_at.is_(None),
            Consent.valid_until > now,
        )
        .limit(1)
    ).first()


def consenting(
    session: Session, resource_id: int, consumer_id: int, now: datetime
) -> frozenset[bytes]:
    """The ID-number indexes of everyone with a live consent for this department to read this
    resource (a bulk read checks each record against it, not one question a record)."""
    return frozenset(
        session.scalars(
            select(Consent.subject_index).where(
                Consent.resource_id == resource_id,
                Consent.consumer_id == consumer_id,
                Consent.revoked_at.is_(None),
                Consent.valid_until > now,
            )
        )
    )


def _live(
    session: Session, person: Person, resource_id: int, consumer_id: int, moment: datetime
) -> list[Consent]:
    return [
        c
        for c in consents_of(session, person)
        if c.resource_id == resource_id and c.consumer_id == consumer_id and c.is_live(moment)
    ]


def _audit(
    session: Session,
    vault: Vault,
    action: str,
    consent: Consent,
    person: Person,
    moment: datetime,
) -> None:
    record(
        session,
        action,
        actor_person_id=person.id,
        subject=person_subject(vault, person),
        at=moment,
        details={
            "consent": consent.id,
            "resource": consent.resource.code,
            "consumer": consent.consumer.code,
            "purpose": consent.purpose,
            "until": consent.valid_until.isoformat(),
        },
    )
