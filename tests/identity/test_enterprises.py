from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.errors import QiluError, Refused
from qilu.identity import enterprises
from qilu.identity.assurance import StepUpRequired
from qilu.identity.models import Account, LegalEntity, Person, WebSession
from qilu.identity.sessions import start_session
from qilu.pii import Vault

from ..factories import make_account, make_entity, make_person

T0 = datetime.now(UTC)
BOSS_ID, AGENT_ID = "11010519491231002X", "370102199003073516"


@pytest.fixture
def people(session: Session, vault: Vault) -> tuple[Person, Person, LegalEntity]:
    boss = make_person(session, vault, name="王芳", id_number=BOSS_ID)
    agent = make_person(session, vault, name="李强", id_number=AGENT_ID)
    make_account(session, vault, boss)
    make_account(session, vault, agent)
    return boss, agent, make_entity(session, boss)


def grant(session: Session, vault: Vault, entity: LegalEntity, boss: Person, **changes: object):
    arguments: dict[str, object] = {
        "granted_by": boss.id,
        "agent_name": "李强",
        "agent_id_number": AGENT_ID,
        "scopes": ["apply"],
        "valid_until": T0 + timedelta(days=30),
        "now": T0,
        **changes,
    }
    return enterprises.authorise_agent(session, vault, entity, **arguments)  # type: ignore[arg-type]


def test_the_legal_representative_holds_the_identity(
    session: Session, people: tuple[Person, Person, LegalEntity]
) -> None:
    boss, agent, entity = people
    [identity] = enterprises.identities_of(session, boss.id)
    assert identity.entity.uscc == entity.uscc and identity.role == "legal_representative"
    assert enterprises.identities_of(session, agent.id) == []


def test_an_authorised_agent_can_act_until_revoked(
    session: Session, vault: Vault, people: tuple[Person, Person, LegalEntity]
) -> None:
    boss, agent, entity = people
    record = grant(session, vault, entity, boss, scopes=["apply", "view"])
    [identity] = enterprises.identities_of(session, agent.id, T0)
    assert identity.role == "agent" and identity.scopes == ("apply", "view")
    _, web = start_session(
        session,
        _account(session, agent),
        assurance=3,
        profile="standard",
        client_address=None,
        user_agent=None,
    )
    assert enterprises.act_as(session, web, entity.uscc, client_address="10.0.0.2")
    assert enterprises.acting_identity(session, web, client_address=None) is not None
    enterprises.revoke_agent(session, entity, record.id, by=boss.id)
    assert enterprises.acting_identity(session, web, client_address=None) is None
    assert web.acting_for_entity_id is None
    with pytest.raises(Refused):
        enterprises.act_as(session, web, entity.uscc, client_address=None)
    audit = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    by_action = {event.action: event for event in audit}
    assert by_action["agent.authorised"].actor_entity_uscc == entity.uscc
    assert by_action["agent.revoked"].actor_person_id == boss.id
    assert by_action["identity.switched"].actor_person_id == agent.id
    assert by_action["identity.dropped"].actor_entity_uscc == entity.uscc


def _account(session: Session, person: Person) -> Account:
    return session.scalars(select(Account).where(Account.person_id == person.id)).one()


def test_grants_expire(
    session: Session, vault: Vault, people: tuple[Person, Person, LegalEntity]
) -> None:
    boss, agent, entity = people
    grant(session, vault, entity, boss, valid_until=T0 + timedelta(days=1))
    assert enterprises.identities_of(session, agent.id, T0 + timedelta(days=2)) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"agent_name": "李四"}, "agent.identity_mismatch"),
        ({"scopes": []}, "agent.scopes"),
        ({"scopes": ["everything"]}, "agent.scopes"),
        ({"valid_until": T0 - timedelta(days=1)}, "agent.valid_until"),
        ({"valid_until": T0 + timedelta(days=400)}, "agent.valid_until"),
        ({"agent_name": "王芳", "agent_id_number": BOSS_ID}, "agent.self"),
        ({"agent_id_number": "370102199003073510"}, "id_number.check_digit"),
    ],
)
def test_bad_grants_are_refused_with_the_field(
    session: Session,
    vault: Vault,
    people: tuple[Person, Person, LegalEntity],
    changes: dict[str, object],
    code: str,
) -> None:
    boss, _, entity = people
    with pytest.raises(QiluError) as caught:
        grant(session, vault, entity, boss, **changes)
    assert caught.value.code == code


def test_only_the_representative_grants(
    session: Session, vault: Vault, people: tuple[Person, Person, LegalEntity]
) -> None:
    _, agent, entity = people
    with pytest.raises(Refused):
        grant(session, vault, entity, agent)


def test_agents_need_an_account(session: Session, vault: Vault) -> None:
    boss = make_person(session, vault, name="王芳", id_number=BOSS_ID)
    make_person(session, vault, name="李强", id_number=AGENT_ID)
    entity = make_entity(session, boss)
    with pytest.raises(QiluError) as caught:
        grant(session, vault, entity, boss)
    assert caught.value.code == "agent.no_account"


def _signed_in(session: Session, person: Person, assurance: int, at: datetime) -> WebSession:
    _, web = start_session(
        session,
        _account(session, person),
        assurance=assurance,
        profile="standard",
        client_address="10.0.0.1",
        user_agent=None,
        now=at,
    )
    return web


def test_changing_the_legal_representative_needs_a_recent_second_factor(
    session: Session, vault: Vault, people: tuple[Person, Person, LegalEntity]
) -> None:
    boss, agent, entity = people
    for assurance, at in ((3, T0), (4, T0 - timedelta(hours=1))):
        with pytest.raises(StepUpRequired) as raised:
            enterprises.change_legal_representative(
                session,
                vault,
                entity,
                by=_signed_in(session, boss, assurance, at),
                name="李强",
                id_number=AGENT_ID,
                now=T0,
            )
        assert raised.value.level == 4
    assert entity.legal_representative_id == boss.id
    enterprises.change_legal_representative(
        session,
        vault,
        entity,
        by=_signed_in(session, boss, 4, T0),
        name="李强",
        id_number=AGENT_ID,
        now=T0 + timedelta(minutes=1),
    )
    assert entity.legal_representative_id == agent.id
    assert [i.entity.uscc for i in enterprises.identities_of(session, agent.id)] == [entity.uscc]
    assert enterprises.identities_of(session, boss.id) == []
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "enterprise.representative_changed")
    ).one()
    assert event.actor_entity_uscc == entity.uscc and event.details["to"] == agent.id


@pytest.mark.parametrize(
    ("name", "id_number", "code"),
    [
        ("王五", AGENT_ID, "representative.identity_mismatch"),
        ("王芳", BOSS_ID, "representative.same"),
        ("小明", "370102201501010016", "representative.minor"),
        ("赵六", "370102198001010015", "representative.no_account"),
    ],
)
def test_a_bad_successor_is_refused_and_nothing_changes(
    session: Session,
    vault: Vault,
    people: tuple[Person, Person, LegalEntity],
    name: str,
    id_number: str,
    code: str,
) -> None:
    boss, _, entity = people
    child = make_person(session, vault, name="小明", id_number="370102201501010016")
    make_account(session, vault, child)
    make_person(session, vault, name="赵六", id_number="370102198001010015")
    with pytest.raises(QiluError) as raised:
        enterprises.change_legal_representative(
            session,
            vault,
            entity,
            by=_signed_in(session, boss, 4, T0),
            name=name,
            id_number=id_number,
            now=T0,
        )
    assert raised.value.code == code and raised.value.field == "id_number"
    assert entity.legal_representative_id == boss.id


def test_only_the_legal_representative_hands_over(
    session: Session, vault: Vault, people: tuple[Person, Person, LegalEntity]
) -> None:
    _, agent, entity = people
    with pytest.raises(Refused):
        enterprises.change_legal_representative(
            session,
            vault,
            entity,
            by=_signed_in(session, agent, 4, T0),
            name="李强",
            id_number=AGENT_ID,
            now=T0,
        )
