"""The catalog for department systems (scope `data.read`; `qilu.data.metadata`):

- `GET /api/v1/catalog?q=…&library=…` finds resources by words (名称、主题、提供部门、字段);
- `GET /api/v1/catalog/{code}` gives one resource's GB/T 21063 metadata and its fields;
- `GET /api/v1/catalog/dcat` gives the whole catalog as DCAT-AP (JSON-LD) for harvesting.

Metadata holds no data; the sharing API reads data, under a grant.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from qilu.data import catalog, metadata
from qilu.data.api import ERRORS, Reader, ResourceCode
from qilu.routes import DbSession

router = APIRouter(prefix="/api/v1/catalog", tags=["一体化大数据平台"])
TITLE = "山东省政务数据资源目录"
PUBLISHER = "山东省大数据局"


@router.get("", summary="检索资源目录", responses=ERRORS)
def find(
    db: DbSession,
    caller: Reader,
    q: Annotated[str, Query(max_length=100, description="检索词，空格分隔")] = "",
    library: Annotated[
        Literal["base", "theme", "special", "business"] | None, Query(description="所属库")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> JSONResponse:
    found = catalog.search(db, q, library=library, limit=limit)
    return JSONResponse(
        {"resources": [metadata.describe(db, resource, fields=False) for resource in found]}
    )


@router.get("/dcat", summary="资源目录（DCAT-AP，JSON-LD）", responses=ERRORS)
def dcat(request: Request, db: DbSession, caller: Reader) -> JSONResponse:
    everything = catalog.search(db, limit=10_000)
    return JSONResponse(
        metadata.dcat_catalog(
            everything,
            base_url=request.app.state.settings.issuer,
            path=request.url.path,
            title=TITLE,
            publisher=PUBLISHER,
        ),
        media_type="application/ld+json",
    )


@router.get("/{code}", summary="资源的元数据与信息项（GB/T 21063）", responses=ERRORS)
def describe(db: DbSession, caller: Reader, code: ResourceCode) -> JSONResponse:
    return JSONResponse(metadata.describe(db, catalog.get_resource(db, code)))


def install(app: FastAPI) -> None:
    app.include_router(router)
