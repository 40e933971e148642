"""Valid objects in one line, for tests that need a row or two rather than a seeded province."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from qilu.codes.idcard import make_id_number, parse_id_number
from qilu.codes.uscc import make_uscc
from qilu.identity.accounts import register_resident
from qilu.identity.models import Account, LegalEntity, Person
from qilu.identity.oidc_clients import NewClient, register_service_client
from qilu.identity.roles import OPERATOR, grant_role
from qilu.pii import Vault

_orders = count(1)


def make_person(
    session: Session,
    vault: Vault,
    *,
    name: str = "张三",
    id_number: str | None = None,
    phone: str | None = "13800138000",
    household: str = "370102",
) -> Person:
    number = id_number or make_id_number("370102", date(1990, 3, 7), next(_orders) % 999 + 1)
    parsed = parse_id_number(number)
    person = Person(
        id_number_cipher=vault.encrypt(parsed.number, "id_number"),
        id_number_index=vault.blind_index(parsed.number, "id_number"),
        name=name,
        sex=parsed.sex,
        birth_date=parsed.birth_date,
        birth_division_code=parsed.division_code,
        household_division_code=household,
        address="山东省济南市历下区经十路1号",
        phone_cipher=vault.encrypt(phone, "phone") if phone else None,
        phone_index=vault.blind_index(phone, "phone") if phone else None,
    )
    session.add(person)
    session.flush()
    return person


def make_account(session: Session, vault: Vault, person: Person) -> Account:
    return register_resident(
        session,
        vault,
        name=person.name,
        id_number=vault.decrypt(person.id_number_cipher, "id_number"),
        password="factory-Pass-2026",
        profile="standard",
    )


def make_entity(
    session: Session,
    representative: Person,
    *,
    name: str = "济南鑫华商贸有限公司",
    body: str | None = None,
) -> LegalEntity:
    entity = LegalEntity(
        uscc=make_uscc("9", "1", "370102", body or f"MA{next(_orders):06d}"),
        name=name,
        industry_code="F",
        division_code="370102",
        address="山东省济南市历下区经十路1号",
        legal_representative_id=representative.id,
        registered_capital=Decimal(100),
        established_on=date(2020, 1, 1),
        status="active",
    )
    session.add(entity)
    session.flush()
    return entity


def make_service_client(
    session: Session, department_code: str, *, rate_per_second: int | None = None
) -> NewClient:
    """A department system with its own credentials (client_credentials)."""
    return register_service_client(
        session,
        name=f"{department_code} 业务系统",
        department_code=department_code,
        rate_per_second=rate_per_second,
        actor=OPERATOR,
    )


def service_token(
    client: Any, session: Session, department_code: str, scope: str = "data.read"
) -> dict[str, str]:
    """The headers of a new system of the department, with a client-credentials token."""
    registered = make_service_client(session, department_code)
    answer = client.post(
        "/oidc/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(registered.client.client_id, registered.secret),
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def make_staff(session: Session, person: Person, department_code: str, role: str) -> Person:
    """`person` given `role` in a department, by the operator."""
    grant_role(
        session,
        person_id=person.id,
        department_code=department_code,
        role=role,
        profile="standard",
        actor=OPERATOR,
    )
    return person
