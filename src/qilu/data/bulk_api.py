"""Bulk and file exchange over the API (库表/文件).

Extracts (`qilu.data.extracts`), for a department system with a grant that allows listing:

- `POST /api/v1/data/{code}/extracts {"format": "csv"|"jsonl", "since": N?}` asks for one (202);
- `GET /api/v1/data/extracts/{id}` tells how it stands (`ready` with its size and SHA-256);
- `GET /api/v1/data/extracts/{id}/file` downloads it (gzip), `Range: bytes=N-` resuming a
  broken transfer; `Repr-Digest` carries the whole file's checksum.

Files of a resource shared as files (`qilu.data.shared_files`):

- `PUT /api/v1/data/{code}/files/{name}` (scope `data.push`, the provider's system) stores the
  body as the next version of that file;
- `GET /api/v1/data/{code}/files` lists the newest version of each, under a live grant;
- `GET /api/v1/data/{code}/files/{name}` downloads it, in ranges too.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Header, Path, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from qilu.data import evidence, extracts, shared_files
from qilu.data.api import ERRORS, Pusher, Reader, ResourceCode
from qilu.data.models import DataExtract, DataFile
from qilu.filestore import file_store
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


def digest_header(sha256: str) -> str:
    """`Repr-Digest` (RFC 9530): the checksum of the whole file, whatever range is sent."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"


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
    kept = evidence.file_headers(db, request, caller, found.resource, found.answer)
    return _served(found.path, found.name, found.media_type, found.sha256, kept)


class FileOut(BaseModel):
    name: str
    version: int
    size: int
    sha256: str
    uploaded_at: datetime

    @classmethod
    def of(cls, found: DataFile) -> FileOut:
        return cls(
            name=found.name,
            version=found.version,
            size=found.size,
            sha256=found.sha256,
            uploaded_at=found.uploaded_at,
        )


FileName = Annotated[str, Path(max_length=100, description="文件名")]


@router.put("/{code}/files/{name}", summary="上传共享文件（新版本）", responses=ERRORS)
def put_file(
    request: Request,
    db: DbSession,
    caller: Pusher,
    code: ResourceCode,
    name: FileName,
    raw: RawBody,
) -> JSONResponse:
    store = file_store(request.app.state.settings.data_dir)
    stored = shared_files.put_file(db, store, caller, code, name, raw)
    return JSONResponse(FileOut.of(stored).model_dump(mode="json"), status_code=201)


@router.get("/{code}/files", summary="共享文件列表（各文件的最新版本）", responses=ERRORS)
def list_files(request: Request, db: DbSession, caller: Reader, code: ResourceCode) -> JSONResponse:
    found = shared_files.files_for(db, get_vault(request), caller, code)
    return JSONResponse({"files": [FileOut.of(f).model_dump(mode="json") for f in found]})


@router.get("/{code}/files/{name}", summary="下载共享文件（支持 Range 断点续传）", responses=ERRORS)
def get_file(
    request: Request,
    db: DbSession,
    caller: Reader,
    code: ResourceCode,
    name: FileName,
    range: Annotated[str | None, Header(max_length=200)] = None,
) -> FileResponse:
    found = shared_files.download(
        db, get_vault(request), file_store(request.app.state.settings.data_dir), caller, code,
        name, range_header=range,
    )  # fmt: skip
    kept = evidence.file_headers(db, request, caller, code, found.answer)
    return _served(found.path, found.file.name, "application/octet-stream", found.file.sha256, kept)


def _served(
    path: FilePath, name: str, media_type: str, sha256: str, kept: dict[str, str]
) -> FileResponse:
    """A shared file or extract, whole or from a byte on (`Range`), with its checksum
    (`Repr-Digest`, `ETag`) and the download's signed evidence."""
    headers = {"Repr-Digest": digest_header(sha256), "ETag": f'"{sha256}"', **kept}
    return FileResponse(path, media_type=media_type, filename=name, headers=headers)


def install(app: FastAPI) -> None:
    app.include_router(router)
