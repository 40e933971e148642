"""公共数据开放 in the portal: the open resources, each with its public fields, licence, format
and update cycle, and its CSV download — no sign-in (`opening`)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from qilu.data import metadata, opening
from qilu.data.pages import NAMES
from qilu.routes import DbSession, render

router = APIRouter(prefix="/open-data", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def open_catalog(request: Request, db: DbSession) -> HTMLResponse:
    return render(
        request,
        "data/open_catalog.html",
        published=opening.open_resources(db),
        names=NAMES,
        licence=opening.LICENCE,
    )


@router.get("/dcat.jsonld")
def open_dcat(request: Request, db: DbSession) -> JSONResponse:
    """The open resources as DCAT-AP, for portals that harvest (data.gov.cn, the EU's)."""
    return JSONResponse(
        metadata.dcat_catalog(
            opening.open_catalog(db),
            base_url=request.app.state.settings.issuer,
            path=request.url.path,
            title="山东省公共数据开放目录",
            publisher="山东省大数据局",
        ),
        media_type="application/ld+json",
    )


@router.get("/{code}.csv")
def open_download(request: Request, db: DbSession, code: str) -> StreamingResponse:
    published = opening.open_resource(db, code)
    opening.count_download(db, published)
    names = [f.name for f in published.fields]
    filename = quote(f"{published.resource.name}.csv")
    return StreamingResponse(
        opening.csv_chunks(request.app.state.readers, published.resource.id, names),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )


@router.get("/{code}", response_class=HTMLResponse)
def open_detail(request: Request, db: DbSession, code: str) -> HTMLResponse:
    return render(
        request,
        "data/open_resource.html",
        published=opening.open_resource(db, code),
        names=NAMES,
        licence=opening.LICENCE,
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
