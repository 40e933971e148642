"""Code checks and divisions over the JSON API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from qilu.codes.check import CheckResult, check_code
from qilu.codes.divisions import divisions
from qilu.codes.pages import MAX_VALUES


class CodeErrorOut(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class CodeCheckOut(BaseModel):
    value: str
    valid: bool
    kind: Literal["id_number", "uscc"]
    summary: str
    parsed: dict[str, Any] | None
    warnings: list[str]
    error: CodeErrorOut | None


class DivisionOut(BaseModel):
    code: str
    name: str
    full_name: str
    level: Literal["province", "city", "county"]
    parent: str | None
    abolished_in: int | None
    successor: str | None


def _out(result: CheckResult) -> CodeCheckOut:
    error = result.error
    return CodeCheckOut(
        value=result.value,
        valid=result.is_valid,
        kind=result.kind,
        summary=result.describe(),
        parsed=result.parsed._asdict() if result.parsed is not None else None,
        warnings=list(result.warnings),
        error=CodeErrorOut(code=error.code, message=error.message, details=error.details)
        if error
        else None,
    )


router = APIRouter(prefix="/api/v1", tags=["代码"])


@router.get("/codes/check", summary="核验身份号码或统一社会信用代码")
def check(
    value: Annotated[list[str], Query(min_length=1, max_length=MAX_VALUES)],
) -> list[CodeCheckOut]:
    """Check up to 100 values (repeat `value`); an invalid code is a result, not an HTTP error."""
    return [_out(check_code(v)) for v in value]


@router.get("/divisions", summary="行政区划（GB/T 2260）")
def list_divisions(
    level: Literal["province", "city", "county"] | None = None,
    within: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    include_abolished: bool = False,
) -> list[DivisionOut]:
    table = divisions()
    found = [
        d
        for d in table.by_code.values()
        if (level is None or d.level == level)
        and (include_abolished or d.is_current)
        and (within is None or table.is_within(d.code, within))
    ]
    return [
        DivisionOut(full_name=table.full_name(d.code), **d._asdict())
        for d in sorted(found, key=lambda d: d.code)
    ]


def install(app: FastAPI) -> None:
    app.include_router(router)
