"""Synthetic residents: valid, unique ID numbers born in real divisions, names, addresses.

Who a resident is (household county, birth division, birth year) follows from a stateless hash
of (seed, index), so any index can be asked about (an adult to be a legal representative, a
resident of a county to staff its departments) without generating the others. The rest comes
from a per-batch random stream, so batches can be made in parallel and come out the same.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import NamedTuple

from qilu.codes.divisions import divisions
from qilu.codes.idcard import make_id_number
from qilu.demo import reference
from qilu.demo.sampling import Weighted, mix
from qilu.pii import Vault

BATCH = 5_000
# ID numbers are unique by construction: within a batch, the k-th resident with a given birth
# division and year gets slot n = batch·SLOTS + k, mapped one-to-one onto (day, order code) of
# that year by n·STRIDE + offset mod YEAR_SLOTS. That is injective while n < YEAR_SLOTS.
SLOTS = 32
ORDER_CODES = 998  # 001..998, odd for men and even for women
YEAR_SLOTS = 365 * ORDER_CODES
STRIDE = 7919  # prime, coprime with YEAR_SLOTS = 2·5·73·499·…
MAX_RESIDENTS = (YEAR_SLOTS // SLOTS) * BATCH  # about 56 million

_SALT_WHO, _SALT_BATCH, _SALT_OFFSET = 1, 2, 3


class Who(NamedTuple):
    household: str
    birth_division: str
    birth_year: int


@dataclass(frozen=True)
class PopulationModel:
    """Weighted tables derived from the shipped reference data, built once per process."""

    counties: Weighted[str]
    outside: tuple[str, ...]
    years: Weighted[int]
    ethnicities: Weighted[str]
    surnames: Weighted[str]
    county_names: dict[str, str]
    own_county: float
    elsewhere_in_shandong: float


@cache
def model() -> PopulationModel:
    ref = reference.people()
    table = divisions()
    county_weights: dict[str, float] = {}
    for city, population in ref.city_population.items():
        counties = table.current("county", within=city)
        for county in counties:
            county_weights[county.code] = population / len(counties)
    years, year_weights = [], []
    for band, share in enumerate(ref.age_bands):
        for age in range(band * 5, band * 5 + 5):
            years.append(ref.reference_year - age)
            year_weights.append(share / 5)
    return PopulationModel(
        counties=Weighted(list(county_weights), list(county_weights.values())),
        outside=tuple(ref.born_outside_shandong),
        years=Weighted(years, year_weights),
        ethnicities=Weighted(list(ref.ethnicities), list(ref.ethnicities.values())),
        surnames=Weighted(list(ref.surnames), list(ref.surnames.values())),
        county_names={code: table.full_name(code) for code in county_weights},
        own_county=ref.born_in_own_county,
        elsewhere_in_shandong=ref.born_elsewhere_in_shandong,
    )


def who(seed: int, index: int) -> Who:
    """Household county, birth division and birth year of resident `index`, in O(1)."""
    m = model()
    bits = mix(seed, index, _SALT_WHO)
    household = m.counties.pick_bits(bits & 0xFFFFFFFF)
    year = m.years.pick_bits((bits >> 32) & 0xFFFFFFFF)
    where = mix(seed, index, _SALT_WHO + 100) / 2.0**64
    if where < m.own_county:
        birth = household
    elif where < m.own_county + m.elsewhere_in_shandong:
        birth = m.counties.pick((where - m.own_county) / m.elsewhere_in_shandong)
    else:
        birth = m.outside[int(where * 1_000_003) % len(m.outside)]
    return Who(household, birth, year)


def is_adult(seed: int, index: int, year: int, minimum_age: int = 18) -> bool:
    return who(seed, index).birth_year <= year - minimum_age


# persons columns, in the order rows are produced and written.
COLUMNS = (
    "id",
    "id_number_cipher",
    "id_number_index",
    "name",
    "sex",
    "birth_date",
    "birth_division_code",
    "household_division_code",
    "address",
    "ethnicity_code",
    "phone_cipher",
    "phone_index",
)


def resident_rows(
    seed: int, start: int, stop: int, vault: Vault, with_plain_ids: bool = False
) -> list[tuple[object, ...]]:
    """Rows for residents start..stop-1 (start on a batch boundary); id = index + 1.

    With `with_plain_ids`, each row ends with the plain ID number (tests and benchmarks only).
    """
    if start % BATCH:
        raise ValueError("batches start on a multiple of BATCH")
    batch = _Batch(seed, start // BATCH, vault)
    with collector_paused():
        if with_plain_ids:
            return [(*row, number) for row, number in map(batch.resident, range(start, stop))]
        return [batch.resident(index)[0] for index in range(start, stop)]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Rows are acyclic: the cycle collector's passes over a growing batch only cost time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Batch:
    """The random stream and the per-(division, year) slot counters of one batch."""

    def __init__(self, seed: int, number: int, vault: Vault | None):
        self.seed, self.number, self.vault = seed, number, vault
        self.rng = random.Random(mix(seed, number, _SALT_BATCH))
        self.used: dict[tuple[str, int], int] = {}
        self.model, self.ref = model(), reference.people()

    def resident(self, index: int) -> tuple[tuple[object, ...], str]:
        """The row of resident `index`, and its plain ID number."""
        plain, vault = self.plain(index), self.vault
        assert vault is not None, "rows to store are made with the store's vault"
        row = (
            index + 1,
            vault.encrypt(plain.id_number, "id_number"),
            vault.blind_index(plain.id_number, "id_number"),
            plain.name,
            plain.sex,
            plain.birth_date,
            plain.id_number[:6],
            plain.household,
            plain.address,
            plain.ethnicity,
            vault.encrypt(plain.phone, "phone") if plain.phone else None,
            vault.blind_index(plain.phone, "phone") if plain.phone else None,
        )
        return row, plain.id_number

    def plain(self, index: int) -> Resident:
        """Resident `index` in clear (residents of a batch are drawn in order)."""
        m, ref, rng = self.model, self.ref, self.rng
        household, birth_division, year = who(self.seed, index)
        key = (birth_division, year)
        while self.used.get(key, 0) >= SLOTS:  # a crowded year in this batch: the year before
            key = (birth_division, key[1] - 1)
        k = self.used[key] = self.used.get(key, 0) + 1
        slot = ((self.number * SLOTS + k - 1) * STRIDE + _offset(self.seed, key)) % YEAR_SLOTS
        day, order = divmod(slot, ORDER_CODES)
        birth = date(key[1], 1, 1) + timedelta(days=day)
        id_number = make_id_number(birth_division, birth, order + 1)
        is_male = (order + 1) % 2 == 1
        given = ref.given_male if is_male else ref.given_female
        bits = rng.getrandbits(64)  # one draw, sliced, for the small choices below
        name = m.surnames.pick(rng.random()) + given[(bits & 0xFF) % len(given)]
        if bits & 0x300:  # three in four given names have two characters
            name += given[((bits >> 10) & 0xFF) % len(given)]
        phone = None
        if key[1] <= ref.reference_year - 12:
            prefix = ref.phone_prefixes[((bits >> 18) & 0xFF) % len(ref.phone_prefixes)]
            phone = f"{prefix}{(bits >> 26) % 100_000_000:08d}"
        address = _address(rng, m.county_names[household], ref)
        ethnicity = m.ethnicities.pick(rng.random())
        sex = "M" if is_male else "F"
        return Resident(id_number, name, sex, birth, household, address, ethnicity, phone)


class Resident(NamedTuple):
    id_number: str
    name: str
    sex: str  # M | F
    birth_date: date
    household: str
    address: str
    ethnicity: str
    phone: str | None


def plain_residents(seed: int, start: int, stop: int) -> list[Resident]:
    """Residents start..stop-1 in clear (start on a batch boundary), as `resident_rows` makes
    them: the synthetic 人口 file's rows."""
    if start % BATCH:
        raise ValueError("batches start on a multiple of BATCH")
    batch = _Batch(seed, start // BATCH, None)
    with collector_paused():
        return [batch.plain(index) for index in range(start, stop)]


@cache
def _offset_base(seed: int) -> int:
    return mix(seed, 0, _SALT_OFFSET)


def _offset(seed: int, key: tuple[str, int]) -> int:
    return (_offset_base(seed) ^ mix(int(key[0]), key[1], _SALT_OFFSET)) % YEAR_SLOTS


def _address(rng: random.Random, county_name: str, ref: reference.PeopleReference) -> str:
    bits = rng.getrandbits(64)
    if county_name.endswith("区"):
        road = ref.roads[bits % len(ref.roads)] + ref.road_kinds[(bits >> 8) % len(ref.road_kinds)]
        number, building = (bits >> 12) % 999 + 1, (bits >> 22) % 30 + 1
        unit, floor, room = (bits >> 28) % 6 + 1, (bits >> 32) % 18 + 1, (bits >> 38) % 4 + 1
        return f"{county_name}{road}{number}号{building}号楼{unit}单元{floor}{room:02d}室"
    town = ref.places[bits % len(ref.places)]
    village = ref.places[(bits >> 8) % len(ref.places)]
    return f"{county_name}{town}镇{village}村{(bits >> 16) % 300 + 1}号"
