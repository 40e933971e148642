"""Workbench pages of the data platform: the resource catalog, searchable in Chinese."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.data import catalog
from qilu.data.files import read_rows
from qilu.data.loading import Layout, error_report, get_load, load_rows
from qilu.data.quality import overdue, quality_of
from qilu.errors import QiluError, Refused
from qilu.identity import roles
from qilu.identity.access import SignedIn
from qilu.routes import DbSession, check_csrf, get_vault, render, settle_refusal

router = APIRouter(prefix="/workbench/data", include_in_schema=False)
NAMES = {
    "libraries": catalog.LIBRARIES,
    "sharing": catalog.SHARING,
    "opening": catalog.OPENING,
    "cycles": catalog.UPDATE_CYCLES,
    "sensitivity": catalog.SENSITIVITY_NAMES,
    "types": catalog.TYPE_NAMES,
}


def require_staff(db: DbSession, viewer: SignedIn) -> None:
    if not roles.is_civil_servant(db, viewer.account.person_id):
        raise Refused("workbench.staff_only", "工作台仅供公职人员使用")


@router.get("", response_class=HTMLResponse)
def catalog_page(
    request: Request, db: DbSession, viewer: SignedIn, q: str = "", library: str = ""
) -> HTMLResponse:
    require_staff(db, viewer)
    found = catalog.search(db, q, library=library if library in catalog.LIBRARIES else None)
    return render(
        request,
        "data/catalog.html",
        resources=found,
        q=q,
        library=library,
        names=NAMES,
        late=overdue(db),
    )


@router.get("/{code}", response_class=HTMLResponse)
def resource_page(request: Request, db: DbSession, viewer: SignedIn, code: str) -> HTMLResponse:
    require_staff(db, viewer)
    return _resource_page(request, db, viewer, code, error=None)


def _resource_page(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    code: str,
    *,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    resource = catalog.get_resource(db, code)
    grants = roles.roles_of(db, viewer.account.person_id)
    return render(
        request,
        "data/resource.html",
        status,
        resource=resource,
        fields=catalog.schema_of(db, resource),
        versions=catalog.versions_of(db, resource),
        names=NAMES,
        may_load=roles.can(grants, "data.publish", resource.provider.division_code),
        quality=quality_of(db, get_vault(request), code),
        now=datetime.now(UTC),
        error=error,
    )


@router.post("/{code}/loads", dependencies=[Depends(check_csrf)])
def upload(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    code: str,
    file: Annotated[UploadFile, File()],
) -> Response:
    """A steward loads a file in the browser (large files: `qilu data load`)."""
    person = viewer.account.person_id
    try:
        fields = Layout.of(db, catalog.get_resource(db, code)).fields
        rows = read_rows(file.file, file.filename or "upload", fields)
        source = file.filename or "upload"
        load = load_rows(db, get_vault(request), code, rows, source=source, by=person)
    except QiluError as error:
        settle_refusal(db, error)
        return _resource_page(request, db, viewer, code, error=error, status=error.status_code)
    return RedirectResponse(f"/workbench/data/loads/{load.id}", status_code=303)


@router.get("/loads/{load_id}", response_class=HTMLResponse)
def load_page(request: Request, db: DbSession, viewer: SignedIn, load_id: int) -> HTMLResponse:
    require_staff(db, viewer)
    load = get_load(db, load_id)
    return render(request, "data/load.html", load=load, problems=load.problems[:200])


@router.get("/loads/{load_id}/errors.csv")
def load_errors(db: DbSession, viewer: SignedIn, load_id: int) -> Response:
    require_staff(db, viewer)
    load = get_load(db, load_id)
    return Response(
        error_report(load),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="load-{load.id}-errors.csv"'},
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
