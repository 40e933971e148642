"""Bulk extracts over the API (`qilu.data.extracts`), for a department system with a grant that
allows listing (scope `data.read`):

- `POST /api/v1/data/{code}/extracts {"format": "csv"|"jsonl", "since": N?}` asks for one (202);
- `GET /api/v1/data/extracts/{id}` tells how it stands (`ready` with its size and SHA-256);
- `GET /api/v1/data/extracts/{id}/file` downloads it (gzip), `Range: bytes=N-` resuming a
  broken transfer; `Repr-Digest` carries the whole file's checksum.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Header, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from qilu.data import extracts
from qilu.data.api import ERRORS, Reader, ResourceCode
from qilu.data.models import DataExtract
from qilu.routes import MAX_ID, DbSession, RawBody, get_vault, json_body, parsed

router = APIRouter(prefix="/api/v1/data", tags=["一体化大数据平台"])
ExtractId = Annotated[int, Path(ge=1, le=MAX_ID)]


class ExtractIn(BaseModel):
    format: Literal["csv", "jsonl"] = Field(default="csv", description="CSV 或 JSON Lines")
    since: int | None = Field(
        default=None, ge=0, le=MAX_ID, description="只导出此变更序号之后变化的记录（默认：全量）"
    )


class ExtractOut(BaseModel):
    id: int
    resource: str
    format: str
    since: int | None
    to_seq: int = Field(description="申请时变更序号：之后的增量从此接续")
    status: str = Field(description="pending、running、ready、failed 或 expired")
    records: int
    withheld: int = Field(description="因本人未授权而未导出的记录数")
    size: int = Field(description="压缩文件字节数")
    sha256: str
    error: str | None
    created_at: datetime
    ready_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, extract: DataExtract) -> ExtractOut:
        return cls(
            id=extract.id,
            resource=extract.resource.code,
            format=extract.format,
            since=extract.since_seq,
            to_seq=extract.to_seq,
            status=extract.status,
            records=extract.records,
            withheld=extract.withheld,
            size=extract.size,
            sha256=extract.sha256,
            error=extract.error or None,
            created_at=extract.created_at,
            ready_at=extract.ready_at,
            expires_at=extract.expires_at,
        )


def _json(extract: DataExtract, status_code: int = 200) -> JSONResponse:
    return JSONResponse(ExtractOut.of(extract).model_dump(mode="json"), status_code=status_code)


@router.post(
    "/{code}/extracts",
    summary="申请批量导出（全量或增量，压缩、带校验和）",
    status_code=202,
    responses=ERRORS,
    openapi_extra=json_body(ExtractIn),
)
def ask(
    request: Request, db: DbSession, caller: Reader, code: ResourceCode, raw: RawBody
) -> JSONResponse:
    body = parsed(ExtractIn, raw)
    made = extracts.request_extract(
        db, get_vault(request), caller, code, format=body.format, since=body.since
    )
    return _json(made, 202)


@router.get("/extracts/{extract_id}", summary="导出任务的状态", responses=ERRORS)
def show(db: DbSession, caller: Reader, extract_id: ExtractId) -> JSONResponse:
    return _json(extracts.own_extract(db, caller, extract_id))


@router.get(
    "/extracts/{extract_id}/file",
    summary="下载导出文件（gzip，支持 Range 断点续传）",
    responses=ERRORS,
)
def file(
    request: Request,
    db: DbSession,
    caller: Reader,
    extract_id: ExtractId,
    range: Annotated[str | None, Header(max_length=200)] = None,
) -> FileResponse:
    found = extracts.download(
        db, get_vault(request), caller, request.app.state.settings.data_dir, extract_id,
        range_header=range,
    )  # fmt: skip
    return FileResponse(
        found.path,
        media_type=found.media_type,
        filename=found.name,
        headers={"Repr-Digest": found.digest_header, "ETag": f'"{found.sha256}"'},
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
