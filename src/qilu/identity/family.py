"""亲友代办: a resident authorises a family member (named by name and ID number, checked against
the population register) to apply for them, for up to a year; either of the two may end it. An
application made this way is the resident's own, with the family member recorded as who made it
(channel `family`); the family member reaches it only while the authorisation lives. Every
grant, use and end is audited, and both people are told in the message centre."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.errors import NotFound, QiluError
from qilu.identity.models import FamilyProxy, Person
from qilu.identity.service import matching_person
from qilu.messages import service as messages
from qilu.pii import Vault

RELATIONS = ("子女", "配偶", "父母", "兄弟姐妹", "其他亲属")
LONGEST = timedelta(days=366)


def grant(
    session: Session,
    vault: Vault,
    principal: Person,
    *,
    name: str,
    id_number: str,
    relation: str,
    days: int,
    now: datetime | None = None,
) -> FamilyProxy:
    moment = now or datetime.now(UTC)
    if relation not in RELATIONS:
        raise QiluError("family.relation", "请选择与您的关系", field="relation")
    if not 1 <= days <= LONGEST.days:
        raise QiluError("family.days", "授权期限为 1 天至 1 年", field="days")
    try:
        proxy = matching_person(session, vault, name, id_number)
    except QiluError:
        raise QiluError("family.id_number", "公民身份号码格式不正确", field="id_number") from None
    if proxy is None:
        raise QiluError("family.unknown", "姓名与公民身份号码不匹配", field="id_number")
    if proxy.id == principal.id:
        raise QiluError("family.self", "不能授权给自己", field="id_number")
    if live(session, principal.id, proxy.id, moment) is not None:
        raise QiluError(
            "family.exists", "已授权该亲友代办，如需延长请先解除再授权", field="id_number"
        )
    authorised = FamilyProxy(
        principal_person_id=principal.id,
        proxy_person_id=proxy.id,
        relation=relation,
        valid_until=moment + timedelta(days=days),
        granted_at=moment,
    )
    session.add(authorised)
    session.flush()
    record(
        session,
        "family.granted",
        actor_person_id=principal.id,
        subject=f"family:{authorised.id}",
        details={"proxy": proxy.id, "relation": relation, "days": days},
    )
    messages.send(
        session,
        proxy.id,
        title="亲友授权您代办",
        body=f"{principal.name}授权您代为办理政务服务，至 {authorised.valid_until:%Y-%m-%d}。",
        link="/account/family",
    )
    return authorised


def live(
    session: Session, principal_id: int, proxy_id: int, now: datetime | None = None
) -> FamilyProxy | None:
    moment = now or datetime.now(UTC)
    found = session.scalars(
        select(FamilyProxy).where(
            FamilyProxy.principal_person_id == principal_id,
            FamilyProxy.proxy_person_id == proxy_id,
            FamilyProxy.revoked_at.is_(None),
        )
    )
    return next((f for f in found if f.is_live(moment)), None)


def usable(session: Session, grant_id: int, proxy_id: int) -> FamilyProxy:
    """The authorisation `proxy_id` holds under this id, if it still lives; 404 otherwise."""
    found = session.get(FamilyProxy, grant_id)
    if found is None or found.proxy_person_id != proxy_id or not found.is_live(datetime.now(UTC)):
        raise NotFound("family.not_found", "没有该代办授权或已失效", field="grant")
    return found


def revoke(session: Session, grant_id: int, person_id: int) -> FamilyProxy:
    """Either side ends it."""
    found = session.get(FamilyProxy, grant_id)
    if found is None or person_id not in (found.principal_person_id, found.proxy_person_id):
        raise NotFound("family.not_found", "没有该代办授权", field="grant")
    if found.revoked_at is not None:
        raise QiluError("family.revoked", "该授权已解除", field="grant")
    found.revoked_at = datetime.now(UTC)
    found.revoked_by_person_id = person_id
    record(session, "family.revoked", actor_person_id=person_id, subject=f"family:{found.id}")
    other = (
        found.proxy_person_id
        if person_id == found.principal_person_id
        else found.principal_person_id
    )
    messages.send(
        session,
        other,
        title="代办授权已解除",
        body=f"{found.principal.name}与{found.proxy.name}之间的代办授权已解除。",
        link="/account/family",
    )
    return found


def granted_by(session: Session, principal_id: int) -> list[FamilyProxy]:
    return list(
        session.scalars(
            select(FamilyProxy)
            .where(FamilyProxy.principal_person_id == principal_id)
            .order_by(FamilyProxy.id.desc())
        )
    )


def granted_to(session: Session, proxy_id: int) -> list[FamilyProxy]:
    now = datetime.now(UTC)
    rows = session.scalars(
        select(FamilyProxy)
        .where(FamilyProxy.proxy_person_id == proxy_id, FamilyProxy.revoked_at.is_(None))
        .order_by(FamilyProxy.id.desc())
    )
    return [r for r in rows if r.is_live(now)]
