"""Fill the standard catalog's libraries from the synthetic province (`qilu seed`, `qilu demo`).

The base libraries copy the registers (人口 from the residents, 法人 from the legal entities,
行政区划 from the division table); the theme, special-topic and business libraries get synthetic
facts about those same residents and entities, drawn from the seed so that a run can be repeated:
social insurance, credit red and black lists, health records, epidemic-control records and real
estate. Every row goes through the platform's loader, checks and all. The e-licence library
(电子证照) stays empty: the services module issues into it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.codes.divisions import SHANDONG, divisions
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.identity import roles
from qilu.identity.models import LegalEntity, Person
from qilu.pii import Vault

SOURCE = "synthetic"
STATUS = {"active": "存续", "deregistered": "注销", "revoked": "吊销"}
CONDITIONS = ["", "", "", "高血压", "糖尿病", "高血压、糖尿病", "冠心病", "慢性阻塞性肺疾病"]
ALLERGIES = ["", "", "", "", "青霉素", "磺胺类药物", "花粉", "海鲜"]
DOCTORS = ["王建华", "李秀英", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "孙立"]
BLACK_REASONS = ["失信被执行人", "拖欠农民工工资", "违法违规经营被列入严重失信名单"]
RED_REASONS = ["纳税信用 A 级", "守合同重信用企业", "优秀志愿者"]


# The libraries filled, in loading order.
LIBRARIES = (
    "JC-KJ-001",
    "JC-RK-001",
    "JC-FR-001",
    "ZT-SB-001",
    "ZT-XY-001",
    "ZT-YL-001",
    "ZX-YQ-001",
    "YW-BDC-001",
)


def fill_libraries(
    session: Session,
    vault: Vault,
    *,
    seed: int,
    today: date,
    workers: int = 1,
    progress: Callable[[str, int], None] | None = None,
    loaded_already: frozenset[str] = frozenset(),
) -> dict[str, int]:
    """Load every library but 电子证照 (and those `loaded_already`, from the seed's files);
    returns the rows loaded per resource code."""
    install_standard_catalog(session)
    sources: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {
        "JC-KJ-001": _divisions,
        "JC-RK-001": lambda: _population(session, vault),
        "JC-FR-001": lambda: _entities(session, vault),
        "ZT-SB-001": lambda: _insurance(session, vault, seed, today),
        "ZT-XY-001": lambda: _credit(session, vault, seed, today),
        "ZT-YL-001": lambda: _health(session, vault, seed, today),
        "ZX-YQ-001": lambda: _epidemic(session, vault, seed),
        "YW-BDC-001": lambda: _real_estate(session, vault, seed, today),
    }
    loaded: dict[str, int] = {}
    for code in LIBRARIES:
        if code in loaded_already:
            continue
        rows = sources[code]
        load = load_rows(
            session, vault, code, enumerate(rows(), start=1), source=SOURCE, actor=roles.OPERATOR,
            workers=workers,
        )  # fmt: skip
        loaded[code] = load.inserted + load.updated + load.unchanged
        if progress is not None:
            progress(code, loaded[code])
    return loaded


def _residents(session: Session, vault: Vault) -> Iterator[tuple[Person, str]]:
    people = session.scalars(select(Person).order_by(Person.id).execution_options(yield_per=2_000))
    for person in people:
        yield person, vault.decrypt(person.id_number_cipher, "id_number")


def _adults(session: Session, vault: Vault, today: date) -> Iterator[tuple[Person, str]]:
    adult = today.replace(year=today.year - 18)
    return ((p, n) for p, n in _residents(session, vault) if p.birth_date <= adult)


def _divisions() -> Iterator[dict[str, Any]]:
    table = divisions()
    yield {"code": SHANDONG, "name": table.by_code[SHANDONG].name, "level": "province"}
    for level in ("city", "county"):
        for division in table.current(level, within=SHANDONG):
            yield {
                "code": division.code,
                "name": division.name,
                "level": level,
                "parent": division.parent,
            }


def _population(session: Session, vault: Vault) -> Iterator[dict[str, Any]]:
    for person, number in _residents(session, vault):
        yield {
            "id_number": number,
            "name": person.name,
            "sex": "1" if person.sex == "M" else "2",
            "birth_date": person.birth_date,
            "ethnicity": person.ethnicity_code,
            "household_division": person.household_division_code,
            "address": person.address,
            "phone": vault.decrypt(person.phone_cipher, "phone") if person.phone_cipher else None,
        }


def _entities(session: Session, vault: Vault) -> Iterator[dict[str, Any]]:
    entities = session.scalars(
        select(LegalEntity).order_by(LegalEntity.id).execution_options(yield_per=2_000)
    )
    for entity in entities:
        representative = entity.legal_representative
        yield {
            "uscc": entity.uscc,
            "name": entity.name,
            "industry": entity.industry_code,
            "division": entity.division_code,
            "address": entity.address,
            "legal_representative": representative.name,
            "legal_representative_id_number": vault.decrypt(
                representative.id_number_cipher, "id_number"
            ),
            "registered_capital": entity.registered_capital,
            "established_on": entity.established_on,
            "status": STATUS[entity.status],
        }


def _insurance(session: Session, vault: Vault, seed: int, today: date) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:insurance")
    for person, number in _adults(session, vault, today):
        working_months = max(0, (today.year - person.birth_date.year - 20) * 12)
        insured = rng.random() < 0.9
        yield {
            "id_number": number,
            "insurance": "养老",
            "insured": insured,
            "months_paid": rng.randint(0, working_months) if insured else 0,
            "division": person.household_division_code,
        }


def _credit(session: Session, vault: Vault, seed: int, today: date) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:credit")
    for person, number in _adults(session, vault, today):
        if rng.random() < 0.004:
            yield _listing(rng, number, person.name, "黑名单", today)
    entities = session.scalars(
        select(LegalEntity).order_by(LegalEntity.id).execution_options(yield_per=2_000)
    )
    for entity in entities:
        draw = rng.random()
        if draw < 0.02:
            yield _listing(rng, entity.uscc, entity.name, "黑名单", today)
        elif draw < 0.05:
            yield _listing(rng, entity.uscc, entity.name, "红名单", today)


def _listing(rng: random.Random, code: str, name: str, kind: str, today: date) -> dict[str, Any]:
    return {
        "subject_code": code,
        "subject_name": name,
        "list_type": kind,
        "reason": rng.choice(BLACK_REASONS if kind == "黑名单" else RED_REASONS),
        "listed_on": today - timedelta(days=rng.randint(30, 900)),
    }


def _health(session: Session, vault: Vault, seed: int, today: date) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:health")
    for person, number in _residents(session, vault):
        if rng.random() < 0.6:
            older = today.year - person.birth_date.year >= 50
            yield {
                "id_number": number,
                "chronic_conditions": rng.choice(CONDITIONS) if older else "",
                "allergies": rng.choice(ALLERGIES),
                "family_doctor": rng.choice(DOCTORS) if older or rng.random() < 0.3 else "",
                "updated_on": today - timedelta(days=rng.randint(0, 365)),
            }


def _epidemic(session: Session, vault: Vault, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(f"{seed}:epidemic")
    for _person, number in _residents(session, vault):
        if rng.random() < 0.3:
            yield {
                "id_number": number,
                "test_result": "阳性" if rng.random() < 0.01 else "阴性",
                "tested_on": date(2022, 12, 1) - timedelta(days=rng.randint(0, 300)),
                "vaccine_doses": rng.choice([0, 1, 2, 2, 3, 3, 3]),
            }


def _real_estate(
    session: Session, vault: Vault, seed: int, today: date
) -> Iterator[dict[str, Any]]:
    """Units numbered as GB/T 37346 lays them out: county, cadastral zone, parcel, building."""
    rng = random.Random(f"{seed}:real_estate")
    table = divisions()
    for n, (person, number) in enumerate(_adults(session, vault, today)):
        if rng.random() < 0.4:
            county = person.household_division_code
            yield {
                "unit_number": f"{county}{rng.randint(1, 999999):06d}GB{n % 100000:05d}"
                f"F{rng.randint(1, 99999999):08d}",
                "owner_id": number,
                "owner_name": person.name,
                "location": f"{table.full_name(county)}幸福路{rng.randint(1, 999)}号",
                "area": f"{rng.uniform(45, 180):.2f}",
                "status": rng.choice(["现势", "现势", "现势", "抵押", "查封"]),
            }
