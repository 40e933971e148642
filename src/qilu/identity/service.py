"""Use cases over the registers: counts, look-ups by identifier, disclosure of identifiers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from qilu.codes.idcard import validate_id_number
from qilu.errors import NotFound
from qilu.identity.models import Department, LegalEntity, Person, StaffMember
from qilu.pii import Vault


@dataclass(frozen=True)
class RegisterCounts:
    residents: int
    entities: int
    departments: int
    staff: int


def register_counts(session: Session) -> RegisterCounts:
    """How many rows each register holds (one round trip)."""
    counts = session.execute(
        select(
            select(func.count()).select_from(Person).scalar_subquery(),
            select(func.count()).select_from(LegalEntity).scalar_subquery(),
            select(func.count()).select_from(Department).scalar_subquery(),
            select(func.count()).select_from(StaffMember).scalar_subquery(),
        )
    ).one()
    return RegisterCounts(*counts)


def has_number(vault: Vault, number: str) -> ColumnElement[bool]:
    """The person whose ID number this is: its blind index under every key a rotation holds."""
    return Person.id_number_index.in_(vault.blind_indexes(number, "id_number"))


def find_person(session: Session, vault: Vault, id_number: str) -> Person:
    """The resident with this ID number (as typed), found through the blind index."""
    number = validate_id_number(id_number)
    person = session.scalars(select(Person).where(has_number(vault, number))).one_or_none()
    if person is None:
        raise NotFound("person.not_found", "人口库中没有该身份号码的居民", field="id_number")
    return person


def matching_person(session: Session, vault: Vault, name: str, id_number: str) -> Person | None:
    """The resident with this ID number if the name matches too (spaces ignored) and the
    register has them active, else None: one answer for every miss, so the register cannot be
    probed through a form."""
    number = validate_id_number(id_number)
    person = session.scalars(select(Person).where(has_number(vault, number))).one_or_none()
    if person is None or "".join(person.name.split()) != "".join(name.split()):
        return None
    if person.status != "active":  # died or left the province: no new account, grant or role
        return None
    return person


def id_number_of(vault: Vault, person: Person) -> str:
    return vault.decrypt(person.id_number_cipher, "id_number")


def audit_subject(vault: Vault, id_number: str) -> str:
    """The audit subject naming a person by their ID number, keyed under the subject key: how
    a person's data-use record finds the reads about them without the number being stored.
    It outlives an index-key rotation (the subject key is the first index key, so subjects
    written before the two keys were told apart are the same)."""
    return f"person:{vault.subject(id_number, 'id_number').hex()}"


def person_subject(vault: Vault, person: Person) -> str:
    return audit_subject(vault, id_number_of(vault, person))


def phone_of(vault: Vault, person: Person) -> str | None:
    return vault.decrypt(person.phone_cipher, "phone") if person.phone_cipher else None


def departments_of(session: Session, ids: list[int]) -> list[Department]:
    """Departments by id, in id order."""
    if not ids:
        return []
    return list(session.scalars(select(Department).where(Department.id.in_(ids)).order_by("id")))
