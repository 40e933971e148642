from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from qilu.codes.divisions import SHANDONG, divisions
from qilu.codes.idcard import parse_id_number
from qilu.codes.uscc import parse_uscc
from qilu.db import make_engine
from qilu.demo import population
from qilu.demo.seed import SeedPlan, reset_synthetic, seed_shandong
from qilu.demo.service import generate
from qilu.errors import QiluError
from qilu.identity.models import Department, LegalEntity, Person, StaffMember
from qilu.identity.service import id_number_of, phone_of, register_counts
from qilu.pii import Vault
from qilu.settings import Settings

from ..conftest import make_settings

PLAN = SeedPlan(seed=7, residents=400, entities=120)


@pytest.fixture
def seeded(connection: Connection, vault: Vault) -> Connection:
    seed_shandong(connection, vault, PLAN)
    return connection


def test_counts_match_the_plan(seeded: Connection, session: Session) -> None:
    counts = register_counts(session)
    assert (counts.residents, counts.entities) == (400, 120)
    assert counts.departments > 4000  # every kind at every level the list names
    assert counts.staff == 100  # a quarter of the residents at this small scale


def test_residents_have_valid_consistent_identities(
    seeded: Connection, session: Session, vault: Vault
) -> None:
    shandong_counties = {d.code for d in divisions().current("county", within=SHANDONG)}
    numbers = []
    for person in session.scalars(select(Person)):
        number = id_number_of(vault, person)
        parsed = parse_id_number(number)
        numbers.append(number)
        assert parsed.birth_date == person.birth_date
        assert parsed.sex == person.sex
        assert parsed.division_code == person.birth_division_code
        assert person.household_division_code in shandong_counties
        assert person.address.startswith(divisions().full_name(person.household_division_code))
        assert 2 <= len(person.name) <= 4
        assert person.birth_date <= date(2024, 12, 31)
        phone = phone_of(vault, person)
        assert phone is None or (len(phone) == 11 and phone.startswith("1"))
    assert len(set(numbers)) == len(numbers) == 400
    assert 0.35 < Counter(p.sex for p in session.scalars(select(Person))).get("M", 0) / 400 < 0.65


def test_entities_have_valid_usccs_and_adult_representatives(
    seeded: Connection, session: Session
) -> None:
    entities = session.scalars(select(LegalEntity)).all()
    assert len({e.uscc for e in entities}) == 120
    for entity in entities:
        parsed = parse_uscc(entity.uscc)
        assert parsed.warnings == ()
        assert parsed.division_code == entity.division_code
        representative = entity.legal_representative
        assert representative.birth_date.year <= 2024 - 18
        assert entity.name


def test_departments_form_a_hierarchy_with_staff(seeded: Connection, session: Session) -> None:
    bigdata = session.scalars(select(Department).where(Department.code == "370000-bigdata")).one()
    assert bigdata.name == "山东省大数据局" and bigdata.level == "province"
    city = session.scalars(select(Department).where(Department.code == "370100-bigdata")).one()
    county = session.scalars(select(Department).where(Department.code == "370102-bigdata")).one()
    assert city.parent_id == bigdata.id and county.parent_id == city.id
    kinds = set(session.scalars(select(Department.kind).where(Department.level == "province")))
    named = {
        "bigdata",
        "public_security",
        "market_regulation",
        "human_resources",
        "health",
        "civil_affairs",
        "natural_resources",
        "ecology",
        "emergency",
        "transport",
        "water",
        "education",
        "medical_security",
    }
    assert named <= kinds
    for department in session.scalars(select(Department).limit(50)):
        assert parse_uscc(department.uscc).organisation_type == "机关"
    staff = session.scalars(select(StaffMember)).all()
    assert len({s.person_id for s in staff}) == len(staff)
    assert all(1964 <= s.person.birth_date.year <= 2002 for s in staff)
    assert staff[0].department.code == "370000-bigdata"


def test_generation_is_deterministic() -> None:
    vault = Vault(b"k" * 16, b"i" * 32)
    first = population.resident_rows(7, 0, 300, vault, with_plain_ids=True)
    again = population.resident_rows(7, 0, 300, vault, with_plain_ids=True)
    other = population.resident_rows(8, 0, 300, vault, with_plain_ids=True)

    def plain(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        return [(r[-1], r[3], r[5], r[7], r[8]) for r in rows]

    assert plain(first) == plain(again)
    assert plain(first) != plain(other)


def test_worker_processes_produce_the_same_residents(
    connection: Connection, vault: Vault, session: Session
) -> None:
    plan = SeedPlan(seed=3, residents=population.BATCH + 7, entities=0)
    seed_shandong(connection, vault, plan, workers=2)
    stored = [
        (p.id, p.name, id_number_of(vault, p))
        for p in session.scalars(select(Person).where(Person.id > population.BATCH - 3))
    ]
    expected = [
        (r[0], r[3], r[-1])
        for r in population.resident_rows(3, population.BATCH, plan.residents, vault, True)
    ]
    assert stored[3:] == expected
    assert len(stored) == 10


def test_seeding_twice_is_refused_until_reset(seeded: Connection, vault: Vault) -> None:
    with pytest.raises(QiluError) as caught:
        seed_shandong(seeded, vault, PLAN)
    assert caught.value.code == "seed.not_empty"
    reset_synthetic(seeded)
    assert seeded.execute(select(func.count()).select_from(Person)).scalar_one() == 0
    seed_shandong(seeded, vault, SeedPlan(seed=9, residents=50, entities=5))
    assert seeded.execute(select(func.count()).select_from(Person)).scalar_one() == 50


@pytest.mark.parametrize("residents", [0, -1, population.MAX_RESIDENTS + 1])
def test_scale_out_of_range_is_refused(residents: int) -> None:
    with pytest.raises(QiluError) as caught:
        SeedPlan(seed=1, residents=residents, entities=0)
    assert caught.value.code == "seed.scale"
    assert caught.value.field == "scale"


class _FailAfterResidents:
    def start(self, stage: str, total: int) -> None:
        if stage == "部门":
            raise RuntimeError("interrupted")

    def advance(self, stage: str, amount: int) -> None:
        pass


def test_an_interrupted_seed_leaves_nothing(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path)
    engine = make_engine(settings)
    with pytest.raises(RuntimeError):
        generate(engine, settings, scale=200, seed=1, progress=_FailAfterResidents())
    with Session(engine) as session:
        assert register_counts(session).residents == 0


def test_demo_identities_on_every_backend(
    seeded: Connection, session: Session, vault: Vault
) -> None:
    from qilu.demo.service import demo_identities

    identities = demo_identities(session, vault)
    assert identities[0].role == "居民"
    assert all(parse_id_number(i.id_number) for i in identities)


def test_seeding_fills_the_libraries_from_the_registers(tmp_path: Path) -> None:
    from qilu.data.loading import find_record
    from qilu.data.models import DataLoad
    from qilu.pii import load_vault

    settings: Settings = make_settings(tmp_path)
    engine = make_engine(settings)
    report = generate(engine, settings, scale=300, seed=5, entities=40)
    vault = load_vault(settings)
    with Session(engine) as session:
        loads = {load.resource.code: load for load in session.scalars(select(DataLoad))}
        assert loads["JC-RK-001"].inserted == 300 and loads["JC-FR-001"].inserted == 40
        assert all(load.rejected == 0 for load in loads.values())  # the loader accepts them all
        assert "JC-ZZ-001" not in loads  # e-licences come from the services module
        assert report.library_records == sum(load.inserted for load in loads.values())
        person = session.scalars(select(Person).limit(1)).one()
        number = id_number_of(vault, person)
        record = find_record(session, vault, "JC-RK-001", [number])
        assert record is not None and record["name"] == person.name
        assert record["household_division"] == person.household_division_code
        county = find_record(session, vault, "JC-KJ-001", ["370102"])
        assert county is not None and county["name"] == "历下区" and county["parent"] == "370100"
        insured = loads["ZT-SB-001"].inserted
        adults = sum(1 for p in session.scalars(select(Person)) if p.birth_date.year <= 2008)
        assert 0 < insured <= adults
    again = generate(engine, settings, scale=100, seed=6, entities=10, reset=True)
    with Session(engine) as session:
        population = session.scalars(
            select(DataLoad).where(DataLoad.resource.has(code="JC-RK-001"))
        ).one()
        assert population.inserted == 100 and again.library_records > 0
