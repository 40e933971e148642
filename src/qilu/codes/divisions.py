"""GB/T 2260 administrative divisions: every province-level code, and Shandong down to counties.

The table ships as `data/divisions.csv` (the Ministry of Civil Affairs' current list). Codes that
were abolished stay in it with the year and their successor, because people keep the ID numbers
they were issued: a 莱芜市 (371200) number is still a valid number today.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files
from typing import Literal, NamedTuple

Level = Literal["province", "city", "county"]

SHANDONG = "370000"


class Division(NamedTuple):
    code: str
    name: str
    level: Level
    parent: str | None
    abolished_in: int | None
    successor: str | None

    @property
    def is_current(self) -> bool:
        return self.abolished_in is None


class DivisionTable:
    """The table with the look-ups validation needs on its hot path precomputed."""

    def __init__(self, rows: list[Division]):
        self.by_code = {division.code: division for division in rows}
        self.provinces = {d.code[:2]: d for d in rows if d.level == "province"}
        self.full_names = {code: self._compose_name(code) for code in self.by_code}

    def get(self, code: str) -> Division | None:
        return self.by_code.get(code)

    def province_of(self, code: str) -> Division | None:
        return self.provinces.get(code[:2])

    def full_name(self, code: str) -> str:
        """山东省济南市历下区 for 370102; the province alone for codes outside the table."""
        name = self.full_names.get(code)
        if name is not None:
            return name
        province = self.province_of(code)
        return province.name if province else ""

    def _compose_name(self, code: str) -> str:
        parts: list[str] = []
        division = self.by_code.get(code)
        while division is not None:
            parts.append(division.name)
            division = self.by_code.get(division.parent) if division.parent else None
        return "".join(reversed(parts))

    def current(self, level: Level, within: str | None = None) -> list[Division]:
        """Current divisions of a level, optionally under a province or city code."""
        found = [d for d in self.by_code.values() if d.level == level and d.is_current]
        if within is not None:
            found = [d for d in found if self.is_within(d.code, within)]
        return sorted(found, key=lambda d: d.code)

    def is_within(self, code: str, ancestor: str) -> bool:
        """True if `ancestor` is a parent, grandparent, … of `code` in the table."""
        division = self.by_code.get(code)
        parent = division.parent if division else None
        while parent is not None:
            if parent == ancestor:
                return True
            node = self.by_code.get(parent)
            parent = node.parent if node else None
        return False


@cache
def divisions() -> DivisionTable:
    """The shipped table, read once per process (immutable afterwards)."""
    text = files("qilu.codes").joinpath("data/divisions.csv").read_text(encoding="utf-8")
    rows = [
        Division(
            code=row["code"],
            name=row["name"],
            level=row["level"],  # type: ignore[arg-type]
            parent=row["parent"] or None,
            abolished_in=int(row["abolished_in"]) if row["abolished_in"] else None,
            successor=row["successor"] or None,
        )
        for row in csv.DictReader(text.splitlines())
    ]
    return DivisionTable(rows)


def code_prefix(code: str) -> str:
    """The leading digits every division inside `code` shares (GB/T 2260: two for a province,
    four for a city, all six for a county): `37` for 370000, `3701` for 370100."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


def covers(scope: str, code: str) -> bool:
    """True if `code` is `scope` or lies inside it (a county inside its city or province)."""
    return code.startswith(code_prefix(scope))
