"""Department APIs shared through the exchange (共享方式：接口), as X-Road shares a member's
services: the providing department registers its system's OpenAPI document; the API becomes a
catalog resource whose "fields" are its operations, so consumers ask for operations through the
same request, approval and grant as for data (`sharing`); and every call goes through Qilu, which
checks the grant, keeps the API's rate and timeout, forwards the call with the consumer's identity
signed, and keeps the evidence of both sides (`evidence`) with an audit entry.

The provider's system sees who calls in `Qilu-Consumer` (the department), `Qilu-Client` (its
system), `Qilu-Operator` (the official, if the system says; percent-encoded UTF-8) and
`Qilu-Call-Id`, and can check that
the call came through Qilu: `Qilu-Signature` is SM2 over the lines call id, consumer, client,
"METHOD target" and the request's SM3 digest (`evidence.request_digest`), under `Qilu-Key-Id`
published at `/oidc/jwks/sm2`.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from qilu.audit.service import record
from qilu.data import evidence
from qilu.data.catalog import FIELD_NAME, parse_spec, register_resource
from qilu.data.models import CallEvidence, DataApi, DataResource, ShareGrant
from qilu.data.reading import authorise, begin_read
from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.signing_keys import sm2_key
from qilu.pii import Vault
from qilu.ratelimit import RateLimits
from qilu.seals import SealKey

METHODS = ("get", "post", "put", "patch", "delete")
CALLED, FAILED = "api.called", "api.failed"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class ApiSpec(BaseModel):
    """An API as its provider registers it (a YAML file)."""

    code: str
    name: str = Field(min_length=2, max_length=100)
    description: str = ""
    provider: str
    topic: str = Field(min_length=1, max_length=50)
    sharing: Literal["unconditional", "conditional"]
    sharing_conditions: str = ""
    legal_basis: str = Field(min_length=2)
    base_url: str = Field(max_length=500)
    timeout_ms: int = Field(default=5_000, ge=100, le=60_000)
    rate_per_second: int = Field(default=50, ge=1, le=10_000)
    openapi: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    name: str  # the operationId, snake_case: what a grant names
    method: str  # upper case
    path: str  # the template, /persons/{id}
    summary: str
    pattern: re.Pattern[str]


def operations_of(openapi: dict[str, Any]) -> list[Operation]:
    """The operations an OpenAPI 3 document declares, each with an operationId."""
    if not str(openapi.get("openapi", "")).startswith("3"):
        raise QiluError("api.openapi", "接口描述须为 OpenAPI 3 文档", field="openapi")
    found: list[Operation] = []
    paths = openapi.get("paths")
    for path, methods in (paths or {}).items() if isinstance(paths, dict) else []:
        for method, operation in (methods or {}).items():
            if method not in METHODS or not isinstance(operation, dict):
                continue
            name = _CAMEL.sub("_", str(operation.get("operationId", ""))).lower()
            if not FIELD_NAME.match(name):
                raise QiluError(
                    "api.operation_id",
                    f"{method.upper()} {path} 须有 operationId（英文字母开头，40 个字符以内）",
                    field="openapi",
                )
            summary = str(operation.get("summary") or name)[:50]
            template = "".join(
                f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", str(path))
            )
            found.append(
                Operation(name, method.upper(), str(path), summary, re.compile(f"^{template}$"))
            )
    names = [o.name for o in found]
    if not found or len(set(names)) != len(names):
        raise QiluError(
            "api.operations", "接口描述须至少有一个操作，且 operationId 不重复", field="openapi"
        )
    return found


def register_api(
    session: Session, data: object, *, actor: roles.Actor, now: datetime | None = None
) -> DataApi:
    """Register a department's API: a catalog resource (its operations as fields) and the
    system behind it. Only a data steward of the providing department registers it."""
    try:
        spec = ApiSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "api"
        raise QiluError(
            "api.invalid", f"接口定义有误：{where}：{first['msg']}", field=where
        ) from None
    parts = urlsplit(spec.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise QiluError(
            "api.base_url", "接口地址须为 http 或 https 开头的完整网址", field="base_url"
        )
    operations = operations_of(spec.openapi)
    resource = register_resource(
        session,
        parse_spec(
            {
                **spec.model_dump(include={"code", "name", "description", "provider", "topic"}),
                **spec.model_dump(include={"sharing", "sharing_conditions", "legal_basis"}),
                "library": "business",
                "share_mode": "api",
                "update_cycle": "realtime",
                "fields": [
                    {"name": o.name, "label": o.summary, "type": "string"} for o in operations
                ],
            }
        ),
        actor=actor,
        now=now,
    )
    api = DataApi(
        resource_id=resource.id,
        base_url=spec.base_url.rstrip("/"),
        openapi=spec.openapi,
        timeout_ms=spec.timeout_ms,
        rate_per_second=spec.rate_per_second,
    )
    session.add(api)
    session.flush()
    return api


def get_api(session: Session, code: str) -> DataApi:
    found = session.scalars(
        select(DataApi)
        .join(DataApi.resource)
        .options(contains_eager(DataApi.resource))
        .where(DataResource.code == code)
    ).one_or_none()
    if found is None:
        raise NotFound("api.not_found", f"目录中没有接口 {code}", field="api")
    return found


@dataclass(frozen=True)
class _Route:
    """What a call needs of an API (`Routes`)."""

    name: str
    base_url: str
    timeout: float
    rate_per_second: int
    operations: list[Operation]
    until: float


class Routes:
    """The APIs' routes as this application last read them, each for `ttl` seconds (a changed
    address or limit reaches every process within it); one per application (`app.state`)."""

    def __init__(self, ttl: float = 10.0):
        self.ttl = ttl
        self._held: dict[str, _Route] = {}

    def get(self, session: Session, code: str) -> _Route:
        held = self._held.get(code)
        if held is None or held.until < time.monotonic():
            api = get_api(session, code)
            held = self._held[code] = _Route(
                api.resource.name,
                api.base_url,
                api.timeout_ms / 1000,
                api.rate_per_second,
                operations(api),
                time.monotonic() + self.ttl,
            )
        return held


def list_apis(session: Session) -> list[DataApi]:
    """Every API in the catalog (what a consumer may ask for), by code."""
    return list(session.scalars(select(DataApi).join(DataResource).order_by(DataResource.code)))


def granted_operations(session: Session, api: DataApi, caller: ServiceCaller) -> set[str]:
    """The operations the caller's department holds a live grant for."""
    now = datetime.now(UTC)
    grants = session.scalars(
        select(ShareGrant).where(
            ShareGrant.resource_id == api.resource_id,
            ShareGrant.consumer_id == caller.department_id,
            ShareGrant.status == "granted",
        )
    )
    return {name for grant in grants if grant.is_live(now) for name in grant.fields}


# Operations parsed once per registration (its resource id and schema version).
_PARSED: dict[tuple[int, int], list[Operation]] = {}


def operations(api: DataApi) -> list[Operation]:
    key = (api.resource_id, api.resource.version)
    if key not in _PARSED:
        _PARSED[key] = operations_of(api.openapi)
    return _PARSED[key]


def _operation(route: _Route, method: str, path: str) -> Operation:
    for operation in route.operations:
        if operation.method == method and operation.pattern.match(path):
            return operation
    raise NotFound("api.operation", f"接口中没有 {method} {path} 这项操作", field="path")


class UpstreamFailed(QiluError):
    """The department's system did not answer in time, or could not be reached (kept in the
    log and the evidence)."""

    keeps_trail = True

    def __init__(self, code: str, message: str, status: int, **details: Any):
        super().__init__(code, message, **details)
        self.status_code = status


@dataclass(frozen=True)
class Forwarded:
    status: int
    content: bytes
    media_type: str
    evidence: CallEvidence


def call(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    *,
    method: str,
    path: str,
    query: str,
    body: bytes,
    media_type: str | None,
    operator: str | None,
    limits: RateLimits,
    client: httpx.Client,
    routes: Routes,
    signer: tuple[str, SealKey] | None = None,
) -> Forwarded:
    """Forward one call to a department's API under the consumer's grant. The session's work
    so far is committed before the call leaves, so no transaction waits on the other system;
    the evidence and the log entry are written after it answers."""
    route = routes.get(session, code)
    operation = _operation(route, method, path)
    begun = begin_read(session, vault, caller, code, None, operator=operator)
    grant = authorise(begun.read, begun.grants, None, None)
    if operation.name not in grant.fields:
        raise begun.read.refuse(
            "api.operation_not_granted",
            f"本部门未获授权调用“{operation.summary}”，请先申请",
            None,
            operation=operation.name,
        )
    limits.hit(f"api:{code}", route.rate_per_second)
    target = path + (f"?{query}" if query else "")
    asked = evidence.request_digest(method, target, body)
    call_id, signer = secrets.token_hex(16), signer or sm2_key(session, vault)
    statement = f"{call_id}\n{caller.department_code}\n{caller.client_id}\n{method} {target}\n"
    headers = {
        "Qilu-Consumer": caller.department_code,
        "Qilu-Client": caller.client_id,
        "Qilu-Call-Id": call_id,
        "Qilu-Key-Id": signer[0],
        "Qilu-Signature": signer[1].sign(f"{statement}{asked.hex()}".encode()).hex(),
        **({"Qilu-Operator": quote(operator, safe="")} if operator else {}),
        **({"Content-Type": media_type} if media_type else {}),
    }
    url, timeout = f"{route.base_url}{target}", route.timeout
    session.commit()  # nothing held while the department's system answers
    started = time.perf_counter()
    failure: UpstreamFailed | None = None
    try:
        response = client.request(method, url, content=body, headers=headers, timeout=timeout)
        status, content = response.status_code, response.content
        answered_type = response.headers.get("content-type", "application/octet-stream")
    except httpx.TimeoutException:
        status, content, answered_type = 504, b"", ""
        failure = UpstreamFailed("api.timeout", f"{route.name}未在规定时间内应答", 504)
    except httpx.HTTPError as error:
        status, content, answered_type = 502, b"", ""
        failure = UpstreamFailed(
            "api.unreachable", f"无法连接{route.name}（{type(error).__name__}）", 502
        )
    duration = (time.perf_counter() - started) * 1000
    kept = evidence.seal(
        session, vault, caller, resource=code, endpoint=f"{method} {target}", asked=asked,
        answer=content, status=status, call_id=call_id, duration_ms=duration, signer=signer,
    )  # fmt: skip
    record(
        session,
        FAILED if failure else CALLED,
        subject=f"resource:{code}",
        at=datetime.now(UTC),
        details={
            "resource": code,
            "department": caller.department_code,
            "client": caller.client_id,
            **({"operator": operator} if operator else {}),
            "grant": grant.id,
            "purpose": grant.purpose,
            "operation": operation.name,
            "status": status,
            "ms": round(duration, 1),
            "bytes": len(content),
            "call": call_id,
        },
    )
    if failure is not None:
        raise failure
    return Forwarded(status, content, answered_type, kept)
