"""免申即享: a scan over the population register finds residents a benefit's 秒批 rule approves
and offers it in their portal; accepting is one click (the application is made and decided with
what the platform already knows)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.errors import NotFound, QiluError
from qilu.identity.models import Person
from qilu.pii import Vault
from qilu.services import applications
from qilu.services.facts import Facts
from qilu.services.models import Application, Offer, ServiceItem
from qilu.services.rules import decide
from qilu.services.specs import shipped_catalog
from qilu.workdays import beijing_today

BATCH = 2_000


def scan(session: Session, vault: Vault, *, limit: int | None = None) -> int:
    """Offer every proactive item to the residents its rule approves and who have not been
    offered it; returns how many offers were made."""
    today = beijing_today()
    items = session.scalars(select(ServiceItem).where(ServiceItem.is_current.is_(True))).all()
    proactive = [i for i in items if i.spec.get("proactive")]
    made = 0
    for item in proactive:
        rule = shipped_catalog().rules[item.spec["instant"]]
        offered = select(Offer.person_id).where(Offer.item_code == item.code)
        people = session.scalars(
            select(Person)
            .where(Person.household_division_code.like("37%"), Person.id.not_in(offered))
            .order_by(Person.id)
            .execution_options(yield_per=BATCH)
        )
        now = datetime.now(UTC)
        for person in people:
            probe = Application(applicant_person_id=person.id, answers={}, form={}, number="")
            if decide(rule, Facts(session, vault, probe, today, person)).approved:
                session.add(
                    Offer(
                        person_id=person.id, item_code=item.code, status="offered", created_at=now
                    )
                )
                made += 1
                if limit is not None and made >= limit:
                    session.flush()
                    return made
    session.flush()
    return made


def offers_of(session: Session, person_id: int) -> list[tuple[Offer, ServiceItem]]:
    rows = session.execute(
        select(Offer, ServiceItem)
        .join(ServiceItem, (ServiceItem.code == Offer.item_code) & ServiceItem.is_current.is_(True))
        .where(Offer.person_id == person_id, Offer.status == "offered")
        .order_by(Offer.id)
    ).all()
    return [(offer, item) for offer, item in rows]


def _own(session: Session, offer_id: int, person_id: int) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None or offer.person_id != person_id:
        raise NotFound("offer.not_found", "该服务不存在", field="offer")
    if offer.status != "offered":
        raise QiluError("offer.answered", "该服务已处理", field="offer")
    return offer


def accept(session: Session, vault: Vault, offer_id: int, person: Person) -> Application:
    """One click: the application is made from what the platform knows and submitted."""
    offer = _own(session, offer_id, person.id)
    started = applications.start(session, vault, applicant=person, item_code=offer.item_code)
    application = applications.submit(
        session, vault, started.application, actor_person_id=person.id
    )
    offer.status, offer.application_id = "accepted", application.id
    offer.answered_at = datetime.now(UTC)
    record(
        session,
        "services.offer_accepted",
        actor_person_id=person.id,
        subject=f"application:{application.number}",
        details={"item": offer.item_code},
    )
    return application


def decline(session: Session, offer_id: int, person: Person) -> None:
    offer = _own(session, offer_id, person.id)
    offer.status, offer.answered_at = "declined", datetime.now(UTC)
