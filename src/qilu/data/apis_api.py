"""Department APIs through the exchange, for department systems (scope `data.read`):

- `GET /api/v1/apis` lists the APIs in the catalog; `GET /api/v1/apis/{code}` one API's
  operations and which of them the caller's department may call (X-Road's `listMethods` and
  `allowedMethods`); `GET /api/v1/apis/{code}/openapi` its OpenAPI document (`getOpenAPI`).
- `GET|POST /api/v1/apis/{code}/call/{path}` calls an operation through Qilu (`apis.call`); the
  answer is the department system's own, with the evidence headers (`evidence`).

Errors: `api.not_found`, `api.operation`, `sharing.no_grant`, `sharing.grant_expired`,
`sharing.grant_revoked`, `api.operation_not_granted` (403), `rate_limited` (429),
`api.unreachable` (502), `api.timeout` (504).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from qilu.data import apis, evidence
from qilu.data.api import ERRORS, Operator, Reader
from qilu.identity.oidc_provider import ServiceCaller
from qilu.routes import DbSession, RawBody, get_vault

router = APIRouter(prefix="/api/v1/apis", tags=["一体化大数据平台"])
ApiCode = Annotated[str, Path(max_length=40, description="接口资源代码", examples=["JK-GA-001"])]
PROXY_ERRORS = {
    **ERRORS,
    502: {"description": "无法连接提供部门的系统（api.unreachable）"},
    504: {"description": "提供部门的系统未在规定时间内应答（api.timeout）"},
}


def _summary(api: Any) -> dict[str, Any]:
    resource = api.resource
    return {
        "code": resource.code,
        "name": resource.name,
        "provider": resource.provider.code,
        "provider_name": resource.provider.name,
        "sharing": resource.sharing,
        "rate_per_second": api.rate_per_second,
        "timeout_ms": api.timeout_ms,
    }


@router.get("", summary="目录中的部门接口", responses=ERRORS)
def api_list(db: DbSession, caller: Reader) -> JSONResponse:
    return JSONResponse({"apis": [_summary(api) for api in apis.list_apis(db)]})


@router.get("/{code}", summary="接口的操作及本部门可调用的操作", responses=ERRORS)
def api_detail(db: DbSession, caller: Reader, code: ApiCode) -> JSONResponse:
    api = apis.get_api(db, code)
    granted = apis.granted_operations(db, api, caller)
    return JSONResponse(
        {
            **_summary(api),
            "operations": [
                {
                    "name": o.name,
                    "method": o.method,
                    "path": o.path,
                    "summary": o.summary,
                    "allowed": o.name in granted,
                }
                for o in apis.operations(api)
            ],
        }
    )


@router.get("/{code}/openapi", summary="接口的 OpenAPI 文档", responses=ERRORS)
def api_document(db: DbSession, caller: Reader, code: ApiCode) -> JSONResponse:
    return JSONResponse(apis.get_api(db, code).openapi)


CALL = "/{code}/call/{path:path}"
CALL_SUMMARY = "经平台调用部门接口（校验授权、限流、存证）"


@router.get(CALL, summary=CALL_SUMMARY, responses=PROXY_ERRORS)
def api_call_get(
    request: Request,
    db: DbSession,
    caller: Reader,
    code: ApiCode,
    path: str,
    x_operator: Operator = None,
) -> Response:
    return _forward(request, db, caller, code, path, b"", x_operator)


@router.post(CALL, summary=CALL_SUMMARY, responses=PROXY_ERRORS)
def api_call_post(
    request: Request,
    db: DbSession,
    caller: Reader,
    code: ApiCode,
    path: str,
    raw: RawBody,
    x_operator: Operator = None,
) -> Response:
    return _forward(request, db, caller, code, path, raw, x_operator)


def _forward(
    request: Request,
    db: Session,
    caller: ServiceCaller,
    code: str,
    path: str,
    body: bytes,
    operator: str | None,
) -> Response:
    forwarded = apis.call(
        db,
        get_vault(request),
        caller,
        code,
        method=request.method,
        path=f"/{path}",
        query=request.url.query,
        body=body,
        media_type=request.headers.get("content-type"),
        operator=operator,
        limits=request.app.state.rate_limits,
        client=request.app.state.api_client,
        routes=request.app.state.api_routes,
        signer=request.app.state.sm2_keys.current(db, get_vault(request)),
    )
    return Response(
        forwarded.content,
        forwarded.status,
        headers=evidence.headers(forwarded.evidence),
        media_type=forwarded.media_type,
    )


def install(app: FastAPI) -> None:
    app.state.api_routes = apis.Routes()
    app.state.api_client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=50))
    app.include_router(router)
