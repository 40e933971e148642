"""Workbench pages of the data platform: the resource catalog, searchable in Chinese."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from qilu.data import catalog
from qilu.errors import Refused
from qilu.identity import roles
from qilu.identity.access import SignedIn
from qilu.routes import DbSession, render

router = APIRouter(prefix="/workbench/data", include_in_schema=False)
NAMES = {
    "libraries": catalog.LIBRARIES,
    "sharing": catalog.SHARING,
    "opening": catalog.OPENING,
    "cycles": catalog.UPDATE_CYCLES,
    "sensitivity": catalog.SENSITIVITY_NAMES,
}


def _require_staff(db: DbSession, viewer: SignedIn) -> None:
    if not roles.is_civil_servant(db, viewer.account.person_id):
        raise Refused("workbench.staff_only", "工作台仅供公职人员使用")


@router.get("", response_class=HTMLResponse)
def catalog_page(
    request: Request, db: DbSession, viewer: SignedIn, q: str = "", library: str = ""
) -> HTMLResponse:
    _require_staff(db, viewer)
    found = catalog.search(db, q, library=library if library in catalog.LIBRARIES else None)
    return render(request, "data/catalog.html", resources=found, q=q, library=library, names=NAMES)


@router.get("/{code}", response_class=HTMLResponse)
def resource_page(request: Request, db: DbSession, viewer: SignedIn, code: str) -> HTMLResponse:
    _require_staff(db, viewer)
    resource = catalog.get_resource(db, code)
    return render(
        request,
        "data/resource.html",
        resource=resource,
        fields=catalog.schema_of(db, resource),
        versions=catalog.versions_of(db, resource),
        names=NAMES,
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
