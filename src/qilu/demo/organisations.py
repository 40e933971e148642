"""Synthetic organisations: departments at every level with staff, and legal entities with USCCs.

Organisation codes are unique by construction: departments use the 00xxxxxx range, entities
registered before the 2015 reform an 8-digit code from a bijection of their index, later ones a
market-regulation "MA" code from another.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

from qilu.codes.divisions import SHANDONG, divisions
from qilu.codes.uscc import ALPHABET, make_uscc
from qilu.demo import reference
from qilu.demo.population import BATCH, is_adult, who
from qilu.demo.sampling import Weighted, mix

_SALT_ENTITY = 11
_NUMERIC_CODES = 90_000_000  # bodies 10000000..99999999
_MA_CODES = 31**6
_EPOCH = date(1990, 1, 1)
_ESTABLISHED_SPAN = (date(2024, 12, 31) - _EPOCH).days

LEVEL_TITLES = {
    "province": ("一级主任科员", "处长", "副处长", "四级调研员", "科员", "科员"),
    "city": ("科长", "副科长", "一级科员", "科员"),
    "county": ("股长", "科员"),
}


@dataclass(frozen=True)
class DepartmentRow:
    id: int
    code: str
    kind: str
    name: str
    level: str
    division_code: str
    parent_id: int | None
    uscc: str


def department_rows() -> list[DepartmentRow]:
    """Every department the shipped list names, province first so parents precede children."""
    table = divisions()
    rows: list[DepartmentRow] = []
    by_place: dict[tuple[str, str], int] = {}
    places = [("province", table.by_code[SHANDONG])]
    places += [("city", city) for city in table.current("city", within=SHANDONG)]
    places += [("county", county) for county in table.current("county", within=SHANDONG)]
    for level, place in places:
        city = table.by_code[place.parent] if level == "county" and place.parent else place
        for kind in reference.department_kinds():
            template = getattr(kind, level)
            if template is None:
                continue
            parent_division = SHANDONG if level == "city" else city.code
            parent_id = by_place.get((parent_division, kind.kind)) if level != "province" else None
            number = len(rows) + 1
            rows.append(
                DepartmentRow(
                    id=number,
                    code=f"{place.code}-{kind.kind}",
                    kind=kind.kind,
                    name=template.format(city=city.name, county=place.name),
                    level=level,
                    division_code=place.code,
                    parent_id=parent_id,
                    uscc=make_uscc("1", "1", place.code, f"00{number:06d}"),
                )
            )
            by_place[(place.code, kind.kind)] = number
    return rows


STAFF_SAMPLE = 200_000  # residents looked at to find staff: plenty for every county's posts


def staff_rows(
    seed: int, residents: int, departments: list[DepartmentRow]
) -> Iterator[tuple[int, int, int, str]]:
    """(id, department_id, person_id, title): residents aged 22-60 who live where they work.

    A quarter of the residents at most become staff, so small scales still leave residents. Every
    department gets its first post before any gets a second, province first.
    """
    budget = residents // 4
    rng = random.Random(mix(seed, 0, _SALT_ENTITY + 1))
    pools = _working_age_by_county(seed, min(residents, STAFF_SAMPLE), rng)
    taken: set[int] = set()
    posts = [
        (department, title)
        for rank in range(max(len(titles) for titles in LEVEL_TITLES.values()))
        for department in departments
        for title in LEVEL_TITLES[department.level][rank : rank + 1]
    ]
    for number, (department, title) in enumerate(posts[:budget], start=1):
        person = _pick_staff(department.division_code, pools, rng, taken, residents)
        taken.add(person)
        yield (number, department.id, person + 1, title)


def _working_age_by_county(seed: int, sample: int, rng: random.Random) -> dict[str, list[int]]:
    """Residents 0..sample-1 aged 22-60 in the reference year, by household county, shuffled."""
    pools: dict[str, list[int]] = {}
    for index in range(sample):
        person = who(seed, index)
        if 1964 <= person.birth_year <= 2002:
            pools.setdefault(person.household, []).append(index)
    for pool in pools.values():
        rng.shuffle(pool)
    return pools


def _pick_staff(
    division_code: str,
    pools: dict[str, list[int]],
    rng: random.Random,
    taken: set[int],
    residents: int,
) -> int:
    """Someone from the division's counties if any is left, else from anywhere, else anyone."""
    if division_code == SHANDONG:
        counties = list(pools)
    elif division_code.endswith("00"):
        counties = [code for code in pools if code[:4] == division_code[:4]]
    else:
        counties = [division_code]
    for candidates in (counties, list(pools)):
        nonempty = [code for code in candidates if pools.get(code)]
        if nonempty:
            return pools[rng.choice(nonempty)].pop()
    return next(index for index in range(residents) if index not in taken)


@dataclass(frozen=True)
class EntityModel:
    kinds: Weighted[str]
    industries: dict[str, Weighted[str]]


@cache
def _entity_model() -> EntityModel:
    ref = reference.organisations()
    return EntityModel(
        kinds=Weighted(list(ref.kinds), [k.share for k in ref.kinds.values()]),
        industries={
            code: Weighted(list(kind.industries), list(kind.industries.values()))
            for code, kind in ref.kinds.items()
        },
    )


ENTITY_COLUMNS = (
    "id",
    "uscc",
    "name",
    "industry_code",
    "division_code",
    "address",
    "legal_representative_id",
    "registered_capital",
    "established_on",
    "status",
)


def entity_rows(seed: int, residents: int, start: int, stop: int) -> list[tuple[object, ...]]:
    """Rows for entities start..stop-1 (id = index + 1), each led by an adult resident."""
    if start % BATCH:
        raise ValueError("batches start on a multiple of BATCH")
    ref = reference.organisations()
    people = reference.people()
    model = _entity_model()
    table = divisions()
    rng = random.Random(mix(seed, start // BATCH, _SALT_ENTITY))
    rows: list[tuple[object, ...]] = []
    for index in range(start, stop):
        representative = rng.randrange(residents)
        for _ in range(50):  # someone of age, usually found at once
            if is_adult(seed, representative, people.reference_year):
                break
            representative = rng.randrange(residents)
        home = who(seed, representative).household
        kind = model.kinds.pick(rng.random())
        industry = model.industries[kind].pick(rng.random())
        established = _EPOCH + timedelta(days=rng.randrange(_ESTABLISHED_SPAN))
        body = _organisation_body(index, established >= ref.ma_codes_since)
        city = table.by_code[home[:4] + "00"]
        county = table.by_code[home]
        brand = "".join(rng.sample(ref.brand_characters, 2))
        suffix = rng.choice(ref.kinds[kind].suffixes)
        word = rng.choice(ref.industries[industry].words)
        if kind == "91":
            name = f"{city.name.removesuffix('市')}{brand}{word}{suffix}"
        elif kind in ("51", "53"):
            name = f"{city.name}{brand}{suffix}"
        else:
            name = f"{county.name}{brand}{suffix}"
        capital = Decimal(rng.choice((3, 5, 10, 50, 100, 200, 500, 1000, 5000)))
        status = "active" if rng.random() < 0.93 else rng.choice(("deregistered", "revoked"))
        rows.append(
            (
                index + 1,
                make_uscc(kind[0], kind[1], home, body),
                name,
                industry,
                home,
                f"{table.full_name(home)}{rng.choice(people.roads)}路{rng.randint(1, 999)}号",
                representative + 1,
                capital,
                established,
                status,
            )
        )
    return rows


def _organisation_body(index: int, is_ma: bool) -> str:
    if is_ma:
        value = (index * 48_271 + 12_345) % _MA_CODES
        tail = ""
        for _ in range(6):
            value, digit = divmod(value, 31)
            tail = ALPHABET[digit] + tail
        return "MA" + tail
    return f"{(index * 7_919 + 1_234_567) % _NUMERIC_CODES + 10_000_000:08d}"
