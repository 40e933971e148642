"""Enterprise agents act within the scopes their legal representative gave them, only while the
grant holds, and the enterprise (its representative) sees what they did for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from qilu.errors import NotFound, Refused
from qilu.identity import enterprises
from qilu.identity.models import LegalEntity, Person
from qilu.services import applications
from qilu.services.applications import Applicant
from qilu.services.models import ServiceChain

from ..factories import make_account, make_person
from .conftest import Province

ANSWERS = {"area": "big", "scope": "no", "signboard": "yes"}


def as_agent(province: Province, entity: LegalEntity, agent: Person) -> Applicant:
    """The agent as the portal sees them at this request (None once the grant is gone)."""
    found = [
        i for i in enterprises.identities_of(province.session, agent.id) if i.entity.id == entity.id
    ]
    return Applicant(agent, found[0] if found else None)


def authorise(province: Province, entity: LegalEntity, agent: Person, *scopes: str) -> int:
    grant = enterprises.authorise_agent(
        province.session,
        province.vault,
        entity,
        granted_by=entity.legal_representative_id,
        agent_name=agent.name,
        agent_id_number=province.vault.decrypt(agent.id_number_cipher, "id_number"),
        scopes=list(scopes),
        valid_until=datetime.now(UTC) + timedelta(days=30),
    )
    return grant.id


@pytest.fixture
def restaurant_code(province: Province) -> str:
    return province.session.scalars(
        select(ServiceChain.code).where(ServiceChain.name == "开办餐饮店", ServiceChain.is_current)
    ).one()


def test_a_view_only_agent_cannot_apply(province: Province, restaurant_code: str) -> None:
    """Found: a "view only" agent started an application."""
    entity = province.enterprise(province.resident)
    agent = make_person(province.session, province.vault, name="赵经办")
    make_account(province.session, province.vault, agent)
    authorise(province, entity, agent, "view")
    with pytest.raises(Refused) as refused:
        applications.start_as(
            province.session, province.vault, as_agent(province, entity, agent),
            chain_code=restaurant_code, answers=ANSWERS,
        )  # fmt: skip
    assert refused.value.code == "agent.scope"


def test_the_representative_sees_what_an_agent_did_and_a_revoked_agent_nothing(
    province: Province, restaurant_code: str
) -> None:
    """Found: a revoked agent kept reading the enterprise's data and submitted after the
    revocation; the legal representative could not see the agent's application."""
    representative = province.resident
    entity = province.enterprise(representative)
    agent = make_person(province.session, province.vault, name="赵经办")
    make_account(province.session, province.vault, agent)
    grant = authorise(province, entity, agent, "apply", "view")
    started = applications.start_as(
        province.session, province.vault, as_agent(province, entity, agent),
        chain_code=restaurant_code, answers=ANSWERS,
    )  # fmt: skip
    application = started.application
    boss = Applicant(representative, as_agent(province, entity, representative).identity)
    assert applications.owned(province.session, application.id, boss, "apply") is application
    assert application in applications.applications_of(province.session, boss)
    enterprises.revoke_agent(province.session, entity, grant, by=representative.id)
    revoked = as_agent(province, entity, agent)
    assert revoked.identity is None
    with pytest.raises(NotFound):
        applications.owned(province.session, application.id, revoked, "apply")
    with pytest.raises(NotFound):
        applications.owned(province.session, application.id, revoked, "view")
    assert applications.applications_of(province.session, revoked) == []
