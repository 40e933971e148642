"""Acting for an enterprise: its legal representative, and the agents (经办人) they authorise.

The legal representative holds the enterprise's identity and may authorise other residents with
an account, for named scopes and until a date, and revoke them. A resident switches the identity
their browser acts as; every request re-checks that the right still holds, so a revocation takes
effect at once. Every grant, revocation and switch is audited with both person and enterprise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import assurance
from qilu.identity.models import Account, EnterpriseAgent, LegalEntity, WebSession
from qilu.identity.service import matching_person
from qilu.pii import Vault

SCOPES = {"apply": "办理业务", "view": "查看办件与证照", "licence": "使用电子证照"}
LONGEST_GRANT = timedelta(days=366)
Role = Literal["legal_representative", "agent"]


class Authentication(Protocol):
    """What a high-risk action needs to know of how its caller signed in: a web session or an
    access token (both say who, the level reached and when)."""

    @property
    def person_id(self) -> int: ...

    @property
    def assurance(self) -> int: ...

    @property
    def authenticated_at(self) -> datetime: ...


@dataclass(frozen=True)
class Identity:
    entity: LegalEntity
    role: Role
    scopes: tuple[str, ...]
    valid_until: datetime | None


def identities_of(session: Session, person_id: int, now: datetime | None = None) -> list[Identity]:
    """The enterprises a person may act for right now, and as what."""
    moment = now or datetime.now(UTC)
    led = session.scalars(
        select(LegalEntity)
        .where(LegalEntity.legal_representative_id == person_id, LegalEntity.status == "active")
        .order_by(LegalEntity.id)
    )
    found = [Identity(entity, "legal_representative", tuple(SCOPES), None) for entity in led]
    grants = session.scalars(
        select(EnterpriseAgent)
        .where(
            EnterpriseAgent.agent_person_id == person_id,
            EnterpriseAgent.revoked_at.is_(None),
            EnterpriseAgent.valid_until > moment,
        )
        .order_by(EnterpriseAgent.id)
    )
    found += [Identity(g.entity, "agent", tuple(g.scopes), g.valid_until) for g in grants]
    return found


def entity_by_uscc(session: Session, uscc: str) -> LegalEntity:
    entity = session.scalars(select(LegalEntity).where(LegalEntity.uscc == uscc)).one_or_none()
    if entity is None:
        raise NotFound("enterprise.not_found", "法人库中没有该统一社会信用代码", field="uscc")
    return entity


def led_entity(session: Session, person_id: int, uscc: str) -> LegalEntity:
    """The enterprise this person is the legal representative of, or a refusal."""
    entity = session.scalars(select(LegalEntity).where(LegalEntity.uscc == uscc)).one_or_none()
    if entity is None or entity.legal_representative_id != person_id:
        raise Refused("enterprise.not_representative", "只有该企业的法定代表人可以管理经办人")
    return entity


def agents_of(session: Session, entity: LegalEntity) -> list[EnterpriseAgent]:
    return list(
        session.scalars(
            select(EnterpriseAgent)
            .where(EnterpriseAgent.entity_id == entity.id)
            .order_by(EnterpriseAgent.granted_at.desc())
        )
    )


def authorise_agent(
    session: Session,
    vault: Vault,
    entity: LegalEntity,
    *,
    granted_by: int,
    agent_name: str,
    agent_id_number: str,
    scopes: list[str],
    valid_until: datetime,
    now: datetime | None = None,
) -> EnterpriseAgent:
    """The legal representative authorises a resident who has an account."""
    moment = now or datetime.now(UTC)
    if entity.legal_representative_id != granted_by:
        raise Refused("enterprise.not_representative", "只有该企业的法定代表人可以授权经办人")
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise QiluError("agent.scopes", "请至少选择一项授权范围", field="scopes", unknown=unknown)
    if not moment < valid_until <= moment + LONGEST_GRANT:
        raise QiluError(
            "agent.valid_until", "授权截止日期须在今天之后、一年之内", field="valid_until"
        )
    agent = matching_person(session, vault, agent_name, agent_id_number)
    if agent is None:
        raise QiluError(
            "agent.identity_mismatch", "经办人姓名与身份号码不匹配", field="agent_id_number"
        )
    if agent.id == granted_by:
        raise QiluError("agent.self", "法定代表人无需授权自己", field="agent_id_number")
    if session.scalars(select(Account.id).where(Account.person_id == agent.id)).first() is None:
        raise QiluError("agent.no_account", "经办人须先实名注册账号", field="agent_id_number")
    for grant in agents_of(session, entity):
        if grant.agent_person_id == agent.id and grant.is_live(moment):
            raise QiluError(
                "agent.duplicate", "该经办人已有有效授权：如需调整请先撤销", field="agent_id_number"
            )
    grant = EnterpriseAgent(
        entity_id=entity.id,
        agent_person_id=agent.id,
        scopes=sorted(set(scopes)),
        valid_until=valid_until,
        granted_by_person_id=granted_by,
        granted_at=moment,
    )
    session.add(grant)
    session.flush()
    record(
        session,
        "agent.authorised",
        actor_person_id=granted_by,
        actor_entity_uscc=entity.uscc,
        subject=f"person:{agent.id}",
        at=moment,
        details={"grant": grant.id, "scopes": grant.scopes, "valid_until": valid_until.isoformat()},
    )
    return grant


def revoke_agent(
    session: Session, entity: LegalEntity, grant_id: int, *, by: int, now: datetime | None = None
) -> EnterpriseAgent:
    moment = now or datetime.now(UTC)
    grant = session.get(EnterpriseAgent, grant_id)
    if grant is None or grant.entity_id != entity.id:
        raise NotFound("agent.not_found", "没有这项授权")
    if entity.legal_representative_id != by:
        raise Refused("enterprise.not_representative", "只有该企业的法定代表人可以撤销授权")
    if grant.revoked_at is None:
        grant.revoked_at, grant.revoked_by_person_id = moment, by
        record(
            session,
            "agent.revoked",
            actor_person_id=by,
            actor_entity_uscc=entity.uscc,
            subject=f"person:{grant.agent_person_id}",
            at=moment,
            details={"grant": grant.id},
        )
    return grant


def change_legal_representative(
    session: Session,
    vault: Vault,
    entity: LegalEntity,
    *,
    by: WebSession | Authentication,
    name: str,
    id_number: str,
    client_address: str | None = None,
    now: datetime | None = None,
) -> None:
    """The legal representative hands the enterprise's identity to another resident.

    High risk: it needs a recent level-4 authentication (`assurance.StepUpRequired` otherwise).
    The new representative must be an adult with an account. Agents keep their grants: they were
    given by the enterprise, and the new representative can revoke them.
    """
    moment = now or datetime.now(UTC)
    person_id = by.person_id
    if entity.legal_representative_id != person_id:
        raise Refused("enterprise.not_representative", "只有该企业的法定代表人可以办理此项变更")
    assurance.require(
        assurance.HIGH_RISK,
        assurance=by.assurance,
        authenticated_at=by.authenticated_at,
        now=moment,
    )
    successor = matching_person(session, vault, name, id_number)
    if successor is None:
        raise QiluError(
            "representative.identity_mismatch",
            "新法定代表人姓名与身份号码不匹配",
            field="id_number",
        )
    if successor.id == person_id:
        raise QiluError("representative.same", "新法定代表人与现任相同", field="id_number")
    if not _is_adult(successor.birth_date, moment):
        raise QiluError("representative.minor", "法定代表人须年满十八周岁", field="id_number")
    if session.scalars(select(Account.id).where(Account.person_id == successor.id)).first() is None:
        raise QiluError(
            "representative.no_account", "新法定代表人须先实名注册账号", field="id_number"
        )
    entity.legal_representative_id = successor.id
    record(
        session,
        "enterprise.representative_changed",
        actor_person_id=person_id,
        actor_entity_uscc=entity.uscc,
        subject=f"person:{successor.id}",
        client_address=client_address,
        at=moment,
        details={"from": person_id, "to": successor.id, "acr": by.assurance},
    )


def _is_adult(birth: date, moment: datetime) -> bool:
    today = (moment + timedelta(hours=8)).date()  # Beijing's calendar day
    return (today.year - birth.year) - ((today.month, today.day) < (birth.month, birth.day)) >= 18


def act_as(
    session: Session,
    web_session: WebSession,
    uscc: str | None,
    *,
    client_address: str | None,
    now: datetime | None = None,
) -> Identity | None:
    """Switch the browser to act for an enterprise (or back to the person, with None)."""
    person_id = web_session.account.person_id
    if not uscc:
        web_session.acting_for_entity_id = None
        record(
            session,
            "identity.switched",
            actor_person_id=person_id,
            client_address=client_address,
            details={"to": "person"},
        )
        return None
    identity = _identity_for(session, person_id, uscc, now)
    web_session.acting_for_entity_id = identity.entity.id
    record(
        session,
        "identity.switched",
        actor_person_id=person_id,
        actor_entity_uscc=uscc,
        client_address=client_address,
        details={"to": "enterprise", "role": identity.role},
    )
    return identity


def acting_identity(
    session: Session,
    web_session: WebSession,
    *,
    client_address: str | None,
    now: datetime | None = None,
) -> Identity | None:
    """The enterprise identity of this browser, if it still holds; dropped (and audited) if not."""
    entity = web_session.acting_for
    if entity is None:
        return None
    try:
        return _identity_for(session, web_session.account.person_id, entity.uscc, now)
    except Refused:
        web_session.acting_for_entity_id = None
        record(
            session,
            "identity.dropped",
            actor_person_id=web_session.account.person_id,
            actor_entity_uscc=entity.uscc,
            client_address=client_address,
            details={"reason": "authorisation no longer holds"},
        )
        return None


def _identity_for(session: Session, person_id: int, uscc: str, now: datetime | None) -> Identity:
    for identity in identities_of(session, person_id, now):
        if identity.entity.uscc == uscc:
            return identity
    raise Refused(
        "enterprise.not_authorised", "您没有以该企业身份办事的授权（可能已被撤销或已过期）"
    )
