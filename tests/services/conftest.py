"""A province ready to serve: departments, the data libraries' catalog, the service catalog,
a resident with a library record, and civil servants with roles in the departments cases go to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.codes.idcard import make_id_number
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.filestore import LocalFileStore
from qilu.identity.models import Department, LegalEntity, Person
from qilu.identity.roles import OPERATOR, grant_role
from qilu.pii import Vault
from qilu.services.catalog import install_catalog

from ..factories import make_entity, make_person


@dataclass
class Province:
    session: Session
    vault: Vault
    resident: Person
    resident_id_number: str

    def department(self, code: str) -> Department:
        return self.session.scalars(select(Department).where(Department.code == code)).one()

    def official(self, department: str, role: str, name: str = "李科员") -> Person:
        person = make_person(self.session, self.vault, name=name, phone=None)
        grant_role(
            self.session,
            person_id=person.id,
            department_code=department,
            role=role,
            profile="standard",
            actor=OPERATOR,
        )
        return person

    def library(self, code: str, rows: list[dict[str, Any]]) -> None:
        load_rows(self.session, self.vault, code, enumerate(rows, 1), source="t", actor=OPERATOR)

    def enterprise(self, representative: Person) -> LegalEntity:
        entity = make_entity(self.session, representative)
        self.library(
            "JC-FR-001",
            [
                {
                    "uscc": entity.uscc,
                    "name": entity.name,
                    "industry": entity.industry_code,
                    "division": entity.division_code,
                    "address": entity.address,
                    "legal_representative": representative.name,
                    "registered_capital": str(entity.registered_capital),
                    "established_on": entity.established_on.isoformat(),
                    "status": "存续",
                }
            ],
        )
        return entity


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


@pytest.fixture
def province(session: Session, vault: Vault, departments: None) -> Province:
    install_standard_catalog(session)
    install_catalog(session)
    number = make_id_number("370102", date(1992, 5, 17), 35)
    resident = make_person(session, vault, name="王丽", id_number=number, household="370102")
    place = Province(session, vault, resident, number)
    place.library(
        "JC-RK-001",
        [
            {
                "id_number": number,
                "name": "王丽",
                "sex": "2",
                "birth_date": "1992-05-17",
                "household_division": "370102",
                "address": "山东省济南市历下区泉城路8号",
                "phone": "13900001111",
            }
        ],
    )
    return place
