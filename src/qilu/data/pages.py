"""Workbench pages of the data platform: the resource catalog, searchable in Chinese."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.data import catalog
from qilu.data.files import read_rows
from qilu.data.loading import Layout, error_report, get_load, load_rows
from qilu.data.quality import latest_check, overdue, quality_of
from qilu.errors import QiluError
from qilu.identity import roles
from qilu.identity.access import AnyStaff, require
from qilu.routes import (
    DbSession,
    RowId,
    check_csrf,
    get_vault,
    redraw_on_refusal,
    render,
)

router = APIRouter(prefix="/workbench/data", include_in_schema=False)
NAMES = {
    "libraries": catalog.LIBRARIES,
    "sharing": catalog.SHARING,
    "opening": catalog.OPENING,
    "cycles": catalog.UPDATE_CYCLES,
    "sensitivity": catalog.SENSITIVITY_NAMES,
    "types": catalog.TYPE_NAMES,
    "formats": catalog.FORMATS,
    "modes": catalog.SHARE_MODES,
}


Steward = Annotated[roles.Staff, Depends(require("data.publish"))]


@router.get("", response_class=HTMLResponse)
def catalog_page(
    request: Request, db: DbSession, actor: AnyStaff, q: str = "", library: str = ""
) -> HTMLResponse:
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
def resource_page(request: Request, db: DbSession, actor: AnyStaff, code: str) -> HTMLResponse:
    return _resource_page(request, db, actor, code, error=None)


def _resource_page(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    code: str,
    *,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    resource = catalog.get_resource(db, code)
    return render(
        request,
        "data/resource.html",
        status,
        resource=resource,
        fields=catalog.schema_of(db, resource),
        versions=catalog.versions_of(db, resource),
        names=NAMES,
        may_load=roles.allows(actor, "data.publish", roles.Target.of(resource.provider)),
        quality=quality_of(db, get_vault(request), code),
        check=latest_check(db, resource.id),
        now=datetime.now(UTC),
        error=error,
    )


@router.post("/{code}/loads", dependencies=[Depends(check_csrf)])
def upload(
    request: Request,
    db: DbSession,
    actor: Steward,
    code: str,
    file: Annotated[UploadFile, File()],
) -> Response:
    """A steward of the provider loads a file in the browser (large files: `qilu data load`).
    Who may load is settled before the file is opened."""
    with redraw_on_refusal(
        db,
        lambda error: _resource_page(
            request, db, actor, code, error=error, status=error.status_code
        ),
    ):
        resource = catalog.get_resource(db, code)
        roles.authorize(actor, "data.publish", roles.Target.of(resource.provider))
        rows = read_rows(file.file, file.filename or "upload", Layout.of(db, resource).fields)
        source = file.filename or "upload"
        load = load_rows(db, get_vault(request), code, rows, source=source, actor=actor)
    return RedirectResponse(f"/workbench/data/loads/{load.id}", status_code=303)


@router.get("/loads/{load_id}", response_class=HTMLResponse)
def load_page(request: Request, db: DbSession, actor: Steward, load_id: RowId) -> HTMLResponse:
    load = get_load(db, load_id, actor)
    return render(request, "data/load.html", load=load, problems=load.problems[:200])


@router.get("/loads/{load_id}/errors.csv")
def load_errors(db: DbSession, actor: Steward, load_id: RowId) -> Response:
    load = get_load(db, load_id, actor)
    return Response(
        error_report(load),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="load-{load.id}-errors.csv"'},
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
