"""Applications in the demo's queues, so a clerk signing in finds work: enterprises of 历下区
opening restaurants (their cases go to the 行政审批服务局 and the 应急管理局) and residents asking
for temporary relief, made through the services module like any other."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.identity.models import LegalEntity, Person
from qilu.pii import Vault
from qilu.services import applications
from qilu.services.models import ServiceChain, ServiceItem

HOME = "370102"
RESTAURANT = {
    "business_premises": "泉城路100号",
    "premises_area": "120",
    "business_scope": "热食类食品制售",
    "seats": "60",
    "signboard_text": "泉城小馆",
    "signboard_size": "5x1",
    "reason": "增加餐饮服务",
}
RELIEF = {
    "reason": "家中突发火灾，生活困难",
    "amount": "3000",
    "bank_account": "6222020200112233445",
}


def sample_applications(session: Session, vault: Vault, *, count: int = 3) -> int:
    """Submit `count` restaurant chains and as many relief applications; returns how many."""
    chain = session.scalars(
        select(ServiceChain).where(ServiceChain.name == "开办餐饮店", ServiceChain.is_current)
    ).one()
    relief = session.scalars(
        select(ServiceItem).where(ServiceItem.name == "临时救助申请", ServiceItem.is_current)
    ).one()
    entities = session.scalars(
        select(LegalEntity)
        .where(LegalEntity.division_code == HOME, LegalEntity.status == "active")
        .order_by(LegalEntity.id)
        .limit(count)
    ).all()
    residents = session.scalars(
        select(Person)
        .where(Person.household_division_code == HOME)
        .order_by(Person.id.desc())
        .limit(count)
    ).all()
    made = 0
    for entity in entities:
        started = applications.start(
            session,
            vault,
            applicant=entity.legal_representative,
            entity=entity,
            chain_code=chain.code,
            answers={"area": "big", "scope": "no", "signboard": "yes"},
        )
        made += _submit(session, vault, started, RESTAURANT, entity.legal_representative)
    for person in residents:
        started = applications.start(session, vault, applicant=person, item_code=relief.code)
        made += _submit(session, vault, started, RELIEF, person)
    return made


def _submit(
    session: Session,
    vault: Vault,
    started: applications.Started,
    values: dict[str, str],
    person: Person,
) -> int:
    application = started.application
    typed = dict(values)
    if not application.form.get("phone"):  # not every register record has one
        typed["phone"] = "13800000000"
    applications.save_draft(session, application, typed)
    applications.promise_missing(session, vault, application)  # the demo has no files to upload
    applications.submit(session, vault, application, actor_person_id=person.id)
    return 1
