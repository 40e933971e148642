"""The shipped reference data for the synthetic Shandong, validated once when first used."""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from pydantic import BaseModel, Field, model_validator


class PeopleReference(BaseModel):
    city_population: dict[str, int]
    born_in_own_county: float = Field(gt=0, le=1)
    born_elsewhere_in_shandong: float = Field(ge=0, le=1)
    born_outside_shandong: list[str] = Field(min_length=1)
    reference_year: int
    age_bands: list[float] = Field(min_length=1)
    ethnicities: dict[str, float]
    surnames: dict[str, float]
    given_male: list[str] = Field(min_length=10)
    given_female: list[str] = Field(min_length=10)
    phone_prefixes: list[str]
    roads: list[str]
    road_kinds: list[str]
    places: list[str]


class Industry(BaseModel):
    name: str
    words: list[str] = Field(min_length=1)


class EntityKind(BaseModel):
    share: float = Field(gt=0)
    industries: dict[str, float]
    suffixes: list[str] = Field(min_length=1)


class OrganisationReference(BaseModel):
    industries: dict[str, Industry]
    kinds: dict[str, EntityKind]
    brand_characters: list[str] = Field(min_length=10)
    ma_codes_since: date

    @model_validator(mode="after")
    def industries_exist(self) -> OrganisationReference:
        for code, kind in self.kinds.items():
            unknown = set(kind.industries) - set(self.industries)
            if unknown:
                raise ValueError(f"kind {code} names unknown industries {sorted(unknown)}")
        return self


class DepartmentKind(BaseModel):
    kind: str
    province: str | None = None
    city: str | None = None
    county: str | None = None


def _load(name: str) -> Any:
    return yaml.safe_load(files("qilu.demo").joinpath(f"data/{name}").read_text(encoding="utf-8"))


@cache
def people() -> PeopleReference:
    return PeopleReference.model_validate(_load("people.yaml"))


@cache
def organisations() -> OrganisationReference:
    return OrganisationReference.model_validate(_load("organisations.yaml"))


@cache
def department_kinds() -> tuple[DepartmentKind, ...]:
    return tuple(DepartmentKind.model_validate(item) for item in _load("departments.yaml"))
