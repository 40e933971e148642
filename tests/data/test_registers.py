"""The 人口 and 法人 libraries are the identity registers (issue 14): loading them is what makes
a resident or an enterprise known, and their changes (a death, a move, a new legal
representative, an enterprise struck off) reach everything that depends on them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data.catalog import (
    FieldSpec,
    get_resource,
    install_standard_catalog,
    parse_spec,
    register_resource,
    schema_of,
    standard_catalog,
)
from qilu.data.loading import load_rows
from qilu.errors import QiluError
from qilu.identity import family, sessions
from qilu.identity.accounts import register_resident
from qilu.identity.models import Account, EnterpriseAgent, LegalEntity, Person, WebSession
from qilu.identity.roles import OPERATOR
from qilu.identity.service import find_person, matching_person
from qilu.messages.models import Message
from qilu.pii import Vault

WANG, LI, ZHAO = "11010519491231002X", "370102199003073516", "370102198001010015"
USCC = "91370102MA3C5X7L4C"
PASSWORD = "Register-Pass-2026"


def person_row(number: str, name: str, **more: Any) -> dict[str, Any]:
    born = f"{number[6:10]}-{number[10:12]}-{number[12:14]}"
    sex = "1" if int(number[16]) % 2 else "2"
    return {
        "id_number": number,
        "name": name,
        "sex": sex,
        "birth_date": born,
        "household_division": "370102",
        "address": "济南市历下区泉城路1号",
        **more,
    }


def load(session: Session, vault: Vault, code: str, rows: list[dict[str, Any]]) -> Any:
    return load_rows(session, vault, code, enumerate(rows, 1), source="t", actor=OPERATOR)


def actions(session: Session, name: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == name)))


@pytest.fixture
def people(session: Session, vault: Vault, departments: None) -> None:
    install_standard_catalog(session)
    load(
        session,
        vault,
        "JC-RK-001",
        [
            person_row(WANG, "王芳", phone="13800138000"),
            person_row(LI, "李强"),
            person_row(ZHAO, "赵磊"),
        ],
    )


def an_agent(
    session: Session, entity: LegalEntity, agent: Person, *, granted_by: Person
) -> EnterpriseAgent:
    """A 30-day view grant for `agent` to act for the enterprise."""
    now = datetime.now(UTC)
    grant = EnterpriseAgent(
        entity_id=entity.id, agent_person_id=agent.id, scopes=["view"],
        valid_until=now + timedelta(days=30), granted_by_person_id=granted_by.id, granted_at=now,
    )  # fmt: skip
    session.add(grant)
    session.flush()
    return grant


def test_a_load_into_the_population_library_is_what_makes_a_resident_known(
    session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)
    assert session.scalar(select(func.count()).select_from(Person)) == 0
    with pytest.raises(QiluError):
        register_resident(
            session, vault, name="李强", id_number=LI, password=PASSWORD, profile="standard"
        )
    loaded = load(session, vault, "JC-RK-001", [person_row(LI, "李强", phone="13900001111")])
    assert loaded.inserted == 1
    person = find_person(session, vault, LI)
    assert (person.name, person.sex, person.household_division_code) == ("李强", "M", "370102")
    assert person.birth_division_code == "370102" and person.status == "active"
    account = register_resident(
        session, vault, name="李强", id_number=LI, password=PASSWORD, profile="standard"
    )
    assert account.person_id == person.id
    again = load(session, vault, "JC-RK-001", [person_row(LI, "李强", phone="13900001111")])
    assert again.unchanged == 1 and actions(session, "register.person_changed") == []


def test_a_move_and_a_new_name_update_the_resident_and_are_audited(
    session: Session, vault: Vault, people: None
) -> None:
    before = find_person(session, vault, LI)
    load(
        session,
        vault,
        "JC-RK-001",
        [person_row(LI, "李强强", household_division="370203", phone="13700000000")],
    )
    after = find_person(session, vault, LI)
    assert after.id == before.id  # the same resident, not a second copy
    assert (after.name, after.household_division_code) == ("李强强", "370203")
    assert after.phone_index == vault.blind_index("13700000000", "phone")
    [changed] = actions(session, "register.person_changed")
    assert changed.subject == f"person:{after.id}"
    assert changed.details["fields"] == ["household_division_code", "name", "phone"]
    assert "李强强" not in str(changed.details)  # the log names fields, not personal values


def test_a_death_closes_the_account_and_ends_every_authorisation(
    session: Session, vault: Vault, people: None
) -> None:
    wang = find_person(session, vault, WANG)
    li = find_person(session, vault, LI)
    account = register_resident(
        session, vault, name="王芳", id_number=WANG, password=PASSWORD, profile="standard"
    )
    sessions.start_session(
        session, account, assurance=3, profile="standard", client_address="t", user_agent="t"
    )
    register_resident(
        session, vault, name="李强", id_number=LI, password=PASSWORD, profile="standard"
    )
    grant = family.grant(session, vault, wang, name="李强", id_number=LI, relation="子女", days=30)
    entity = LegalEntity(
        uscc=USCC, name="济南泉水商贸有限公司", industry_code="F", division_code="370102",
        address="济南", legal_representative_id=li.id, registered_capital=100,
        established_on=datetime(2020, 1, 1).date(),
    )  # fmt: skip
    session.add(entity)
    session.flush()
    agent = an_agent(session, entity, wang, granted_by=li)

    load(
        session,
        vault,
        "JC-RK-001",
        [person_row(WANG, "王芳", phone="13800138000", status="死亡", status_date="2026-12-01")],
    )
    session.refresh(account)
    assert wang.status == "deceased" and str(wang.status_on) == "2026-12-01"
    assert account.status == "disabled"
    assert (
        session.scalars(select(WebSession).where(WebSession.account_id == account.id))
        .one()
        .revoked_at
        is not None
    )
    session.refresh(grant)
    session.refresh(agent)
    assert grant.revoked_at is not None and agent.revoked_at is not None
    [closed] = actions(session, "register.person_closed")
    assert closed.details["sessions"] == 1 and closed.details["family_grants"] == 1
    assert closed.details["agent_grants"] == 1
    assert matching_person(session, vault, "王芳", WANG) is None  # no new account or grant


def test_the_legal_entity_library_makes_enterprises_known_by_their_representative(
    session: Session, vault: Vault, people: None
) -> None:
    base = {"industry": "F", "division": "370102", "established_on": "2020-05-01"}
    loaded = load(
        session,
        vault,
        "JC-FR-001",
        [
            {"uscc": USCC, "name": "济南泉水商贸有限公司", "status": "存续",
             "legal_representative_id_number": LI, **base},
            {"uscc": "91370102MA3C5X8E1J", "name": "无名商店", "status": "存续", **base},
        ],
    )  # fmt: skip
    assert loaded.problems == [] and loaded.inserted == 2
    [unknown] = [w for w in loaded.warnings if w["field"] == "legal_representative_id_number"]
    assert unknown["row"] == 2 and "法定代表人" in unknown["reason"]
    entity = session.scalars(select(LegalEntity).where(LegalEntity.uscc == USCC)).one()
    li, zhao = find_person(session, vault, LI), find_person(session, vault, ZHAO)
    assert entity.legal_representative_id == li.id and entity.status == "active"
    assert session.scalar(select(func.count()).select_from(LegalEntity)) == 1

    agent = an_agent(session, entity, zhao, granted_by=li)
    load(
        session,
        vault,
        "JC-FR-001",
        [{"uscc": USCC, "name": "济南泉水商贸有限公司", "status": "存续",
          "legal_representative_id_number": ZHAO, **base}],
    )  # fmt: skip
    assert entity.legal_representative_id == zhao.id
    [handed] = actions(session, "register.representative_changed")
    assert handed.details["from"] == li.id and handed.details["to"] == zhao.id
    told = session.scalars(select(Message.person_id).where(Message.title == "法定代表人变更"))
    assert set(told) == {li.id, zhao.id}
    assert agent.revoked_at is None  # agents keep grants the enterprise gave

    load(
        session,
        vault,
        "JC-FR-001",
        [{"uscc": USCC, "name": "济南泉水商贸有限公司", "status": "注销",
          "legal_representative_id_number": ZHAO, **base}],
    )  # fmt: skip
    session.refresh(agent)
    assert entity.status == "deregistered" and agent.revoked_at is not None
    [closed] = actions(session, "register.entity_closed")
    assert closed.details["agents"] == 1


def test_a_store_registered_before_gets_the_new_register_fields(
    session: Session, vault: Vault, departments: None
) -> None:
    shipped = next(s for s in standard_catalog() if s.code == "JC-RK-001")
    older = shipped.model_copy(
        update={"fields": [f for f in shipped.fields if f.name not in ("status", "status_date")]}
    )
    register_resource(session, parse_spec(older.model_dump(mode="json")), actor=OPERATOR)
    install_standard_catalog(session)
    resource = get_resource(session, "JC-RK-001")
    names = [f.name for f in schema_of(session, resource)]
    assert resource.version == 2 and names[-2:] == ["status", "status_date"]
    install_standard_catalog(session)  # twice: nothing more
    assert get_resource(session, "JC-RK-001").version == 2
    assert all(isinstance(f, FieldSpec) for f in schema_of(session, resource))
    assert session.scalar(select(func.count()).select_from(Account)) == 0
