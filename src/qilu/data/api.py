"""The data platform's API for department systems (共享交换接口), called with a token the system
got with its own credentials (`POST /oidc/token`, `grant_type=client_credentials`).

- `POST /api/v1/data/{code}/lookup` reads one record by its key (scope `data.read`); the key
  travels in the body, so ID numbers stay out of URLs and access logs.
- `GET /api/v1/data/{code}/records?field=value…` lists records matching a filter, a page at a
  time (scope `data.read`).
- `POST /api/v1/data/{code}/records` pushes records into a resource the department provides
  (scope `data.push`): all or nothing, every bad row reported with its field and reason.
- `POST /api/v1/data/{code}/disputes` disputes fields of a record the department may read
  (数据异议, `qilu.data.disputes`); a record under dispute comes with `disputed` naming them.
- `GET /api/v1/data/{code}/quality` gives a resource's quality figures (scope `data.read`);
  `GET /api/v1/data/{code}/contract` the caller's data contract (`qilu.data.contracts`).
- `GET /api/v1/data/{code}/changes?after=N` pulls the resource's changes after sequence number
  N, in order, a page at a time (scope `data.read`, a grant that allows listing); `next_after`
  is the cursor to keep. `POST /api/v1/data/{code}/subscriptions` has them pushed to a webhook
  instead (`qilu.data.subscriptions`); `/api/v1/data/subscriptions/{id}` shows, replays from a
  cursor, or cancels one.

Every answer to a shared call carries its evidence (`Qilu-Call-Id`, `Qilu-Signed-At`, the SM3
digests of request and answer, `Qilu-Key-Id` and an SM2 `Qilu-Signature`, see
`qilu.data.evidence`); `GET /api/v1/data/evidence/{call_id}` gives it again to the consumer or the
provider.

Errors are `{"error": {"code", "message", "field", "details"}}`; the codes a system acts on are
`sharing.no_grant`, `sharing.grant_expired`, `sharing.grant_revoked`, `sharing.field_not_granted`,
`sharing.consent_missing`, `sharing.record_not_found`, `token.invalid`, `token.scope` and
`rate_limited` (429 with `Retry-After`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from qilu.data import contracts, disputes, evidence, feed, reading, subscriptions
from qilu.data.loading import push_rows
from qilu.data.models import DeadLetter, Subscription
from qilu.identity.oidc_provider import ServiceCaller, service_caller
from qilu.identity.signing_keys import SigningKeyCache, sm2_key
from qilu.ratelimit import RateLimits
from qilu.routes import MAX_ID, DbSession, RawBody, get_vault, json_body, parsed

router = APIRouter(prefix="/api/v1/data", tags=["一体化大数据平台"])
LONGEST_PUSH = 10_000
RESERVED = frozenset({"limit", "after", "fields"})
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "请求有误：主键格式、筛选字段、推送的记录（字段与原因逐条列出）"},
    401: {"description": "令牌无效或已过期（token.invalid）"},
    403: {"description": "无共享授权、授权过期或撤销、字段未授权、本人未授权（sharing.*）"},
    404: {"description": "资源或记录不存在"},
    413: {"description": "请求体超过大小上限（request.too_large）"},
    429: {"description": "超过每秒请求上限（rate_limited），见 Retry-After"},
}
ResourceCode = Annotated[
    str, Path(max_length=32, description="资源代码", examples=["JC-FR-001", "JC-RK-001"])
]


# The official using the calling system (a staff number or name), kept in the audit entry.
Operator = Annotated[
    str | None, Header(max_length=64, description="调用系统中的经办人（工号或姓名）")
]


class LookupIn(BaseModel):
    key: str = Field(max_length=200, description="主键值，如公民身份号码；多个主键字段用 | 分隔")
    fields: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=200, description="只取这些字段（默认：授权的全部字段）"
    )


class PushIn(BaseModel):
    records: list[dict[str, Any]] = Field(
        min_length=1, max_length=LONGEST_PUSH, description="按资源字段名给出的记录"
    )


class _Caller:
    """A dependency: the department system behind the bearer token, within its rate. Routes
    declare it before the body, so a stranger's body is never read."""

    def __init__(self, scope: str):
        self.scope = scope

    def __call__(
        self, request: Request, db: DbSession, authorization: Annotated[str, Header()] = ""
    ) -> ServiceCaller:
        caller = service_caller(db, authorization, scope=self.scope)
        limits: RateLimits = request.app.state.rate_limits
        limits.hit(caller.client_id, caller.rate_per_second)
        return caller


Reader = Annotated[ServiceCaller, Depends(_Caller("data.read"))]
Pusher = Annotated[ServiceCaller, Depends(_Caller("data.push"))]


def _evidenced(
    db: Session,
    request: Request,
    caller: ServiceCaller,
    code: str,
    body: bytes,
    payload: dict[str, Any],
) -> Response:
    """A shared call's answer, its evidence signed and kept (`evidence`)."""
    content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return evidence.answered(db, request, caller, code, body, content)


def _answer(answer: reading.Answer) -> dict[str, Any]:
    return {
        "resource": answer.resource,
        "grant": {
            "id": answer.grant.id,
            "purpose": answer.grant.purpose,
            "valid_until": answer.grant.valid_until.isoformat(),
        },
        "records": [
            {
                "data": r.data,
                "masked": r.masked,
                "version": r.version,
                "updated_at": r.updated_at.isoformat(),
                "disputed": r.disputed,
            }
            for r in answer.records
        ],
        "withheld": answer.withheld,
        "next_after": answer.next_after,
    }


@router.post(
    "/{code}/lookup",
    summary="按主键查询一条记录（共享调用）",
    responses=ERRORS,
    openapi_extra=json_body(LookupIn),
)
def lookup(
    request: Request,
    db: DbSession,
    caller: Reader,
    code: ResourceCode,
    raw: RawBody,
    x_operator: Operator = None,
) -> Response:
    body = parsed(LookupIn, raw)
    answer = reading.lookup(
        db, get_vault(request), caller, code, body.key, fields=body.fields, operator=x_operator
    )
    return _evidenced(db, request, caller, code, raw, _answer(answer))


@router.get("/{code}/records", summary="按条件列出记录（分页）", responses=ERRORS)
def records(
    request: Request,
    db: DbSession,
    caller: Reader,
    code: ResourceCode,
    limit: Annotated[int, Query(ge=1, le=reading.LONGEST_PAGE)] = reading.PAGE,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="上一页返回的 next_after")] = 0,
    fields: Annotated[str | None, Query(max_length=4000, description="逗号分隔的字段名")] = None,
    x_operator: Operator = None,
) -> Response:
    where = {k: v for k, v in request.query_params.items() if k not in RESERVED}
    answer = reading.listing(
        db,
        get_vault(request),
        caller,
        code,
        where,
        fields=[f for f in fields.split(",") if f] if fields else None,
        limit=limit,
        after=after,
        operator=x_operator,
    )
    return _evidenced(db, request, caller, code, b"", _answer(answer))


@router.post(
    "/{code}/records",
    summary="推送记录（全部有效才写入）",
    responses=ERRORS,
    openapi_extra=json_body(PushIn),
)
def push(
    request: Request, db: DbSession, caller: Pusher, code: ResourceCode, raw: RawBody
) -> Response:
    body = parsed(PushIn, raw)
    load = push_rows(
        db,
        get_vault(request),
        code,
        body.records,
        actor=caller.actor,
        source=f"api:{caller.client_id}",
    )
    return _evidenced(
        db,
        request,
        caller,
        code,
        raw,
        {
            "load": load.id,
            "total": load.total,
            "inserted": load.inserted,
            "updated": load.updated,
            "unchanged": load.unchanged,
            "warnings": load.warnings,
        },
    )


@router.get("/{code}/changes", summary="增量：某序号之后的变更（按序、分页）", responses=ERRORS)
def changes(
    request: Request,
    db: DbSession,
    caller: Reader,
    code: ResourceCode,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="已处理到的变更序号")] = 0,
    limit: Annotated[int, Query(ge=1, le=feed.LONGEST_PAGE)] = feed.PAGE,
    x_operator: Operator = None,
) -> Response:
    page = feed.read_changes(
        db, get_vault(request), caller, code, after=after, limit=limit, operator=x_operator
    )
    feed.log_page(page, db)
    return _evidenced(db, request, caller, code, b"", feed.page_json(page))


class DisputeIn(BaseModel):
    key: str = Field(max_length=200, description="记录的主键值（多个主键字段用 | 分隔）")
    fields: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=50, description="有误的字段"
    )
    claim: str = Field(max_length=500, description="哪里有误、应为什么")


@router.post(
    "/{code}/disputes",
    summary="对一条记录提出数据异议（提供部门限期核实）",
    status_code=201,
    responses=ERRORS,
    openapi_extra=json_body(DisputeIn),
)
def dispute(
    request: Request, db: DbSession, caller: Reader, code: ResourceCode, raw: RawBody
) -> JSONResponse:
    body = parsed(DisputeIn, raw)
    made = disputes.raise_by_department(
        db, get_vault(request), caller, code, body.key, body.fields, body.claim
    )
    return JSONResponse(
        {
            "dispute": made.id,
            "status": made.status,
            "fields": made.fields,
            "due_on": made.due_on.isoformat(),
        },
        status_code=201,
    )


class SubscribeIn(BaseModel):
    url: str = Field(max_length=500, description="接收推送的地址（http 或 https）")
    after: int | None = Field(
        default=None, ge=0, le=MAX_ID, description="从此序号之后开始（默认：从现在起）"
    )


class ReplayIn(BaseModel):
    after: int | None = Field(
        default=None, ge=0, le=MAX_ID, description="从此序号之后重放（默认：从停下处继续）"
    )


class DeadLetterOut(BaseModel):
    after: int = Field(description="这一页从此序号之后开始")
    to: int
    attempts: int
    error: str
    failed_at: datetime
    resolved: bool

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        return cls(
            after=letter.after_seq,
            to=letter.last_seq,
            attempts=letter.attempts,
            error=letter.error,
            failed_at=letter.failed_at,
            resolved=letter.resolved_at is not None,
        )


class SubscriptionOut(BaseModel):
    id: int
    resource: str
    url: str
    status: str = Field(description="active、suspended 或 cancelled")
    cursor: int = Field(description="已确认送达的最后序号")
    latest: int = Field(description="资源变更的最新序号")
    delivered: int
    attempts: int
    last_error: str | None
    last_delivered_at: datetime | None
    dead_letters: list[DeadLetterOut] | None = None

    @classmethod
    def of(
        cls, subscription: Subscription, letters: list[DeadLetter] | None = None
    ) -> SubscriptionOut:
        return cls(
            id=subscription.id,
            resource=subscription.resource.code,
            url=subscription.url,
            status=subscription.status,
            cursor=subscription.cursor,
            latest=subscription.resource.change_seq,
            delivered=subscription.delivered,
            attempts=subscription.attempts,
            last_error=subscription.last_error or None,
            last_delivered_at=subscription.last_delivered_at,
            dead_letters=None if letters is None else [DeadLetterOut.of(d) for d in letters],
        )


def _subscription(
    subscription: Subscription, letters: list[DeadLetter] | None = None
) -> dict[str, Any]:
    shown = SubscriptionOut.of(subscription, letters)
    return shown.model_dump(mode="json", exclude={"dead_letters"} if letters is None else None)


@router.post(
    "/{code}/subscriptions",
    summary="订阅变更推送（Webhook，SM2 签名）",
    status_code=201,
    responses=ERRORS,
    openapi_extra=json_body(SubscribeIn),
)
def subscribe(
    request: Request, db: DbSession, caller: Reader, code: ResourceCode, raw: RawBody
) -> JSONResponse:
    body = parsed(SubscribeIn, raw)
    made = subscriptions.subscribe(db, get_vault(request), caller, code, body.url, after=body.after)
    return JSONResponse(_subscription(made), status_code=201)


@router.get("/subscriptions", summary="本部门的变更订阅", responses=ERRORS)
def subscription_list(db: DbSession, caller: Reader) -> JSONResponse:
    return JSONResponse(
        {"subscriptions": [_subscription(s) for s in subscriptions.subscriptions_of(db, caller)]}
    )


SubscriptionId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/subscriptions/{subscription_id}", summary="一项订阅及其死信", responses=ERRORS)
def subscription_detail(
    db: DbSession, caller: Reader, subscription_id: SubscriptionId
) -> JSONResponse:
    found = subscriptions.own_subscription(db, caller, subscription_id)
    return JSONResponse(_subscription(found, subscriptions.dead_letters(db, found.id)))


@router.post(
    "/subscriptions/{subscription_id}/replay",
    summary="从某序号起重放、恢复推送",
    responses=ERRORS,
    openapi_extra=json_body(ReplayIn),
)
def subscription_replay(
    db: DbSession, caller: Reader, subscription_id: SubscriptionId, raw: RawBody
) -> JSONResponse:
    body = parsed(ReplayIn, raw)
    return JSONResponse(
        _subscription(subscriptions.replay(db, caller, subscription_id, after=body.after))
    )


@router.delete("/subscriptions/{subscription_id}", summary="取消订阅", responses=ERRORS)
def subscription_cancel(
    db: DbSession, caller: Reader, subscription_id: SubscriptionId
) -> JSONResponse:
    return JSONResponse(_subscription(subscriptions.cancel(db, caller, subscription_id)))


@router.get("/evidence/{call_id}", summary="一次共享调用的存证（SM2 签名）", responses=ERRORS)
def call_evidence(
    db: DbSession,
    caller: Reader,
    call_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="应答头 Qilu-Call-Id")],
) -> JSONResponse:
    found = evidence.visible_to(db, caller, call_id)
    checked = evidence.check(db, found.call_id)
    return JSONResponse(
        {
            "call_id": found.call_id,
            "client": found.client_id,
            "department": found.department_code,
            "resource": found.resource,
            "endpoint": found.endpoint,
            "status": found.status,
            "bytes": found.answer_bytes,
            "headers": evidence.headers(found),
            "statement": evidence.statement(found).decode(),
            "signature_holds": checked.signature_holds,
        }
    )


@router.get("/{code}/quality", summary="资源数据质量", responses=ERRORS)
def quality_figures(
    request: Request, db: DbSession, caller: Reader, code: ResourceCode
) -> Response:
    figures = reading.quality_for(db, get_vault(request), caller, code)
    now = datetime.now(UTC)
    return _evidenced(
        db,
        request,
        caller,
        code,
        b"",
        {
            "resource": code,
            "records": figures.records,
            "completeness": figures.completeness,
            "sampled": figures.sampled,
            "validity": figures.validity,
            "rows_loaded": figures.rows_loaded,
            "rows_rejected": figures.rows_rejected,
            "duplicate_rows": figures.duplicate_rows,
            "last_loaded_at": figures.last_loaded_at.isoformat()
            if figures.last_loaded_at
            else None,
            "fresh_until": figures.fresh_until.isoformat() if figures.fresh_until else None,
            "overdue": figures.is_overdue(now),
        },
    )


@router.get(
    "/{code}/contract",
    summary="本部门授权的数据契约（字段、时效、质量、保存期限）",
    responses=ERRORS,
)
def contract(request: Request, db: DbSession, caller: Reader, code: ResourceCode) -> Response:
    made = contracts.contract_for(db, get_vault(request), caller, code)
    return _evidenced(db, request, caller, code, b"", made)


def install(app: FastAPI) -> None:
    settings = app.state.settings
    app.state.rate_limits = RateLimits(settings.rate_limit_storage, settings.api_rate_per_second)
    app.state.sm2_keys = SigningKeyCache(sm2_key)  # what signs shared calls' evidence
    app.include_router(router)
