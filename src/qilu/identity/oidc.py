"""The OpenID Connect provider's HTTP endpoints: discovery, JWKS, authorize (with consent and
pushed requests), token, introspection, revocation, userinfo and RP-initiated logout. The
protocol rules live in `oidc_provider`, consent in `oidc_consents`, sign-out in `oidc_logout`."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import delete, select

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.identity import oidc_consents, oidc_logout, sessions
from qilu.identity.access import SESSION_COOKIE, optional_viewer
from qilu.identity.models import OidcClient, OidcPushedRequest, Person, WebSession
from qilu.identity.oidc_provider import (
    AUTH_METHODS,
    REAL_NAME_SCOPES,
    SCOPE_LABELS,
    SCOPES,
    SERVICE_SCOPES,
    CapturedRequest,
    InvalidToken,
    QiluAuthorizationServer,
    Signer,
    authentication_demand,
    bearer_token,
    real_name_claims,
    user_claims,
)
from qilu.identity.signing_keys import (
    JWKS_MAX_AGE,
    SM2,
    SigningKeyCache,
    current_key,
    ensure_key,
    published_jwks,
    sm2_key,
)
from qilu.routes import (
    CSRF_FIELD,
    DbSession,
    check_csrf,
    client_address,
    get_vault,
    render,
)
from qilu.settings import Settings

router = APIRouter(tags=["一号通行"])
Viewer = Annotated[WebSession | None, Depends(optional_viewer)]
PAR_PREFIX = "urn:ietf:params:oauth:request_uri:"
PAR_LIFETIME = timedelta(seconds=90)  # to start (RFC 9126 §2.2); 10 minutes once in use
PAR_IN_USE = timedelta(minutes=10)  # signing in and agreeing take longer than the first hop


def issuer(request: Request) -> str:
    """From the settings, never from the request's Host header (a forged Host would otherwise
    name the issuer in ID tokens and discovery)."""
    settings: Settings = request.app.state.settings
    return settings.issuer


def _server(request: Request, db: DbSession) -> QiluAuthorizationServer:
    return QiluAuthorizationServer(
        Signer(
            db,
            get_vault(request),
            issuer(request),
            client_address(request),
            request.app.state.signing_keys,
        )
    )


async def _capture(request: Request) -> CapturedRequest:
    """The request read in full on the event loop, so the protocol work (which touches the
    database) can run as a plain function in a worker thread, never blocking the loop."""
    form = await request.form() if request.method == "POST" else {}
    return CapturedRequest(
        request.method,
        str(request.url),
        request.headers,
        request.query_params,
        {k: str(v) for k, v in form.items()},
    )


Captured = Annotated[CapturedRequest, Depends(_capture)]


def _respond(result: tuple[int, Any, Any]) -> Response:
    status, body, headers = result
    headers = dict(headers or [])
    if isinstance(body, dict):
        return JSONResponse(body, status_code=status, headers=headers)
    return Response(body or "", status_code=status, headers=headers)


def _to_client(request: Request, result: tuple[int, Any, Any]) -> Response:
    """An authorization response, success or error, sent back to the client's redirect URI
    with `iss` (RFC 9207 §2) so a client using several providers knows which one answered."""
    status, body, headers = result
    headers = [
        (name, add_params_to_uri(value, {"iss": issuer(request)}) if name == "Location" else value)
        for name, value in headers or []
    ]
    return _respond((status, body, headers))


@router.get("/.well-known/openid-configuration", summary="OIDC 发现文档")
def discovery(request: Request) -> JSONResponse:
    base = issuer(request)
    return JSONResponse(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/oidc/authorize",
            "pushed_authorization_request_endpoint": f"{base}/oidc/par",
            "token_endpoint": f"{base}/oidc/token",
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "jwks_uri": f"{base}/oidc/jwks",
            "end_session_endpoint": f"{base}/oidc/logout",
            "revocation_endpoint": f"{base}/oidc/revoke",
            "introspection_endpoint": f"{base}/oidc/introspect",
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS[:3],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256", SM2],
            "sm2_jwks_uri": f"{base}/oidc/jwks/sm2",  # Qilu's own: SM2 keys, apart
            "scopes_supported": [*SCOPES, *REAL_NAME_SCOPES, *SERVICE_SCOPES],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "PS256"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "name",
                "acr",
                "amr",
                "auth_time",
                "sid",
                "identity_type",
                "enterprise",
                "id_number",
                "phone_number",
                "realname_level",
            ],
            "claims_parameter_supported": False,
            # Request objects are not taken (Core §6): say so, and answer them with an error.
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "require_pushed_authorization_requests": False,
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": True,
            "frontchannel_logout_session_supported": True,
            "prompt_values_supported": ["none", "login", "consent"],
            "acr_values_supported": ["2", "3", "4", "5"],
            "ui_locales_supported": ["zh-CN"],
        }
    )


@router.get("/oidc/jwks", summary="验签公钥（JWKS）")
def jwks(db: DbSession, request: Request) -> JSONResponse:
    ensure_key(db, get_vault(request))  # never empty, even before anyone signed in
    return JSONResponse(
        published_jwks(db), headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"}
    )


@router.get("/oidc/jwks/sm2", summary="SM2 验签公钥（国密，供选择 SM2 ID 令牌的接入系统）")
def jwks_sm2(db: DbSession, request: Request) -> JSONResponse:
    sm2_key(db, get_vault(request))  # never empty
    return JSONResponse(
        published_jwks(db, algorithm=SM2),
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )


class RequestNotSupported(OAuth2Error):  # type: ignore[misc]
    error = "request_not_supported"  # OIDC Core §3.1.2.6


class RequestUriNotSupported(OAuth2Error):  # type: ignore[misc]
    error = "request_uri_not_supported"


def _pushed(db: DbSession, captured: CapturedRequest, *, first_use: bool) -> CapturedRequest:
    """The request as the client pushed it (RFC 9126 §4): only the pushed parameters count,
    for the client that pushed them, while the reference lives."""
    reference = captured.payload.data.get("request_uri", "")
    if not reference.startswith(PAR_PREFIX):
        return captured
    row = db.scalars(
        select(OidcPushedRequest).where(
            OidcPushedRequest.reference_hash == secret_digest(reference.removeprefix(PAR_PREFIX))
        )
    ).first()
    now = datetime.now(UTC)
    if row is None or row.expires_at <= now or row.client_id != captured.payload.client_id:
        raise InvalidRequestError("request_uri is unknown, used or expired")
    if first_use:
        row.expires_at = max(row.expires_at, now + PAR_IN_USE)
    decision = {k: v for k, v in captured.form.items() if k == "decision"}
    return CapturedRequest(
        captured.method,
        captured.uri,
        captured.headers,
        {**row.params, "_par": reference},
        decision,
    )


def _refused_objects(captured: CapturedRequest, redirect_uri: str) -> None:
    """Request objects by value or by a reference other than a pushed request: refused with the
    error OIDC Core §6 names, at the client's redirect URI."""
    data = captured.payload.data
    if "request" in data:
        raise RequestNotSupported(redirect_uri=redirect_uri)
    if "request_uri" in data and "_par" not in data:
        raise RequestUriNotSupported(redirect_uri=redirect_uri)


def _used_up(db: DbSession, captured: CapturedRequest) -> None:
    """A pushed request answered (a code, or a refusal) is gone (RFC 9126 §4: one-time use)."""
    reference = captured.payload.data.get("_par")
    if reference:
        digest = secret_digest(reference.removeprefix(PAR_PREFIX))
        db.execute(delete(OidcPushedRequest).where(OidcPushedRequest.reference_hash == digest))


@router.get("/oidc/authorize", include_in_schema=False)
def authorize(request: Request, db: DbSession, viewer: Viewer, captured: Captured) -> Response:
    server = _server(request, db)
    signed_in = viewer if viewer is not None and not viewer.second_factor_pending else None
    try:
        captured = _pushed(db, captured, first_use=True)
        grant = server.get_consent_grant(captured, end_user=signed_in)
        _refused_objects(captured, grant.redirect_uri)
        level = authentication_demand(
            captured.payload.data, signed_in, redirect_uri=grant.redirect_uri
        )
    except OAuth2Error as error:
        return _authorize_error(request, db, server, captured, error)
    if level is not None:
        # Come back without prompt and max_age: by then the authentication is fresh.
        retry = {k: v for k, v in request.query_params.items() if k not in ("prompt", "max_age")}
        back = f"{request.url.path}?{urlencode(retry)}"
        if signed_in is None:
            return RedirectResponse(f"/account/sign-in?next={quote(back, safe='')}", 303)
        query = urlencode({"level": max(level, signed_in.assurance), "next": back})
        return RedirectResponse(f"/account/confirm?{query}", status_code=303)
    assert signed_in is not None
    client: OidcClient = grant.client.row
    scope = grant.request.scope or ""
    prompts = captured.payload.data.get("prompt", "").split()
    to_agree = oidc_consents.missing(db, client, signed_in.account_id, scope)
    if not to_agree and "consent" not in prompts:  # silent SSO: nothing to show
        _used_up(db, captured)
        return _to_client(request, server.create_authorization_response(captured, signed_in, grant))
    if "none" in prompts:  # MUST NOT display UI (Core §3.1.2.1)
        required = ConsentRequiredError(redirect_uri=grant.redirect_uri)
        return _authorize_error(request, db, server, captured, required)
    return render(
        request,
        "identity/consent.html",
        client=client,
        params=dict(request.query_params),
        scopes=[(s, SCOPE_LABELS[s]) for s in scope.split() if s in SCOPE_LABELS],
        new=set(to_agree),
        real_name=REAL_NAME_SCOPES,
        viewer=signed_in,
    )


@router.post("/oidc/authorize", include_in_schema=False, dependencies=[Depends(check_csrf)])
def consent(request: Request, db: DbSession, viewer: Viewer, captured: Captured) -> Response:
    server = _server(request, db)
    if viewer is None or viewer.second_factor_pending:
        return RedirectResponse("/account/sign-in", status_code=303)
    allowed = captured.form.get("decision") == "allow"
    carried = _carried(captured)  # as the form sent them (a pushed request: its reference)
    try:
        captured = _pushed(db, captured, first_use=False)
        grant = server.get_consent_grant(captured, end_user=viewer)
        _refused_objects(captured, grant.redirect_uri)
        level = authentication_demand(
            captured.payload.data, viewer, redirect_uri=grant.redirect_uri
        )
    except OAuth2Error as error:
        return _authorize_error(request, db, server, captured, error)
    if level is not None:  # the session changed since the consent page: start over
        return RedirectResponse(f"{request.url.path}?{urlencode(carried)}", status_code=303)
    scope = grant.request.scope or ""
    if allowed:
        oidc_consents.remember(
            db,
            viewer.account,
            grant.client.get_client_id(),
            scope,
            client_address=client_address(request),
        )
    else:
        record(
            db,
            "oidc.consent_refused",
            actor_person_id=viewer.account.person_id,
            client_address=client_address(request),
            subject=f"client:{grant.client.get_client_id()}",
        )
    _used_up(db, captured)
    return _to_client(
        request, server.create_authorization_response(captured, viewer if allowed else None, grant)
    )


def _carried(captured: CapturedRequest) -> dict[str, str]:
    """The authorization parameters a consent form carried back."""
    return {k: v for k, v in captured.form.items() if k not in ("decision", CSRF_FIELD)}


def _authorize_error(
    request: Request,
    db: DbSession,
    server: QiluAuthorizationServer,
    captured: CapturedRequest,
    error: OAuth2Error,
) -> Response:
    if getattr(error, "redirect_uri", None):  # a registered redirect: tell the client there
        # RFC 6749 §4.1.2.1: `state` goes back with every error, whichever check failed.
        error.state = error.state or captured.payload.state
        _used_up(db, captured)
        return _to_client(request, server.handle_error_response(captured, error))
    body = {
        "code": f"oidc.{error.error}",
        "message": f"接入请求无效：{error.description or error.error}",
    }
    return render(request, "error.html", 400, status=400, title="接入请求无效", error=body)


def _form(properties: dict[str, str], required: list[str]) -> dict[str, object]:
    """`openapi_extra` for an OAuth endpoint's form body (Authlib reads it, FastAPI cannot)."""
    schema = {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": text} for name, text in properties.items()
        },
        "required": required,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


OAUTH_ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"},
                },
                "required": ["error"],
            }
        }
    }
}
TOKEN_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "令牌（RFC 6749 §5.1）",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"type": "string"},
                        "expires_in": {"type": "integer"},
                        "refresh_token": {"type": "string"},
                        "id_token": {"type": "string"},
                        "scope": {"type": "string"},
                    },
                    "required": ["access_token", "token_type"],
                }
            }
        },
    },
    400: {
        "description": "请求无效（RFC 6749 §5.2：invalid_request、invalid_grant …）",
        **OAUTH_ERROR,
    },
    401: {"description": "客户端认证失败（invalid_client）", **OAUTH_ERROR},
}


@router.post(
    "/oidc/token",
    summary="令牌端点",
    responses=TOKEN_RESPONSES,
    openapi_extra=_form(
        {
            "grant_type": "authorization_code、refresh_token 或 client_credentials",
            "code": "授权码",
            "redirect_uri": "与授权请求相同的回调地址",
            "code_verifier": "PKCE 验证码（RFC 7636）",
            "refresh_token": "刷新令牌",
            "scope": "申请的范围（client_credentials：data.read data.push）",
            "client_id": "公开客户端的标识",
        },
        ["grant_type"],
    ),
)
def token(request: Request, db: DbSession, captured: Captured) -> Response:
    server = _server(request, db)
    response = _respond(server.create_token_response(captured))
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post(
    "/oidc/revoke",
    summary="吊销令牌（RFC 7009）",
    responses={
        200: {"description": "已吊销，或令牌本就无效（RFC 7009 §2.2）"},
        400: {"description": "请求无效", **OAUTH_ERROR},
        401: {"description": "客户端认证失败", **OAUTH_ERROR},
    },
    openapi_extra=_form(
        {"token": "要吊销的令牌", "token_type_hint": "access_token 或 refresh_token"},
        ["token"],
    ),
)
def revoke(request: Request, db: DbSession, captured: Captured) -> Response:
    server = _server(request, db)
    return _respond(server.create_endpoint_response("revocation", captured))


USERINFO_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "用户信息（OIDC Core §5.3）"},
    401: {"description": "令牌无效（RFC 6750 §3.1）", **OAUTH_ERROR},
}


@router.get(
    "/oidc/userinfo", summary="用户信息", operation_id="userinfo_get", responses=USERINFO_RESPONSES
)
@router.post(
    "/oidc/userinfo",
    summary="用户信息（POST）",
    operation_id="userinfo_post",
    responses=USERINFO_RESPONSES,
)
def userinfo(request: Request, db: DbSession, captured: Captured) -> JSONResponse:
    authorization = request.headers.get("authorization", "")
    if not authorization and captured.form.get("access_token"):
        # RFC 6750 §2.2: a form-encoded body parameter, which OIDC Core §5.3.1 allows (and the
        # `oic` library sends by default); never a query parameter (§2.3).
        authorization = f"Bearer {captured.form['access_token']}"
    try:
        bearer = bearer_token(db, authorization)
    except InvalidToken as refusal:  # answered the RFC 6750 way, not as a Qilu API error
        body = {"error": "invalid_token", "error_description": refusal.description}
        return JSONResponse(body, status_code=401, headers=refusal.headers())
    vault = get_vault(request)
    claims = user_claims(
        vault,
        sector=bearer.sector,
        person_id=bearer.person_id,
        name=bearer.name,
        scope=bearer.scope,
        acr=bearer.assurance,
        enterprise=bearer.enterprise,
    )
    if set(bearer.scope.split()) & set(REAL_NAME_SCOPES):
        client = db.scalars(
            select(OidcClient).where(OidcClient.client_id == bearer.client_id)
        ).one()
        person = db.get_one(Person, bearer.person_id)
        claims |= real_name_claims(
            db,
            vault,
            person=person,
            account_assurance=bearer.account_assurance,
            scope=bearer.scope,
            client=client,
            client_address=client_address(request),
        )
    return JSONResponse(claims, headers={"Cache-Control": "no-store"})


INTROSPECTION_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "令牌状态（RFC 7662 §2.2）：active 为 false 即无效"},
    400: {"description": "请求无效", **OAUTH_ERROR},
    401: {"description": "客户端认证失败", **OAUTH_ERROR},
}


@router.post(
    "/oidc/introspect",
    summary="令牌自省（RFC 7662）",
    responses=INTROSPECTION_RESPONSES,
    openapi_extra=_form(
        {"token": "要查询的令牌", "token_type_hint": "access_token 或 refresh_token"},
        ["token"],
    ),
)
def introspect(request: Request, db: DbSession, captured: Captured) -> Response:
    server = _server(request, db)
    response = _respond(server.create_endpoint_response("introspection", captured))
    response.headers["Cache-Control"] = "no-store"
    return response


PAR_RESPONSES: dict[int | str, dict[str, object]] = {
    201: {"description": "已登记（RFC 9126 §2.2）：request_uri 与 expires_in"},
    400: {"description": "授权请求无效", **OAUTH_ERROR},
    401: {"description": "客户端认证失败", **OAUTH_ERROR},
}
CLIENT_AUTH_FIELDS = ("client_secret", "client_assertion", "client_assertion_type")


@router.post(
    "/oidc/par",
    summary="推送授权请求（RFC 9126）",
    status_code=201,
    responses=PAR_RESPONSES,
    openapi_extra=_form(
        {
            "client_id": "客户端标识",
            "response_type": "code",
            "redirect_uri": "登记过的回调地址",
            "scope": "申请的范围",
            "state": "客户端状态",
            "code_challenge": "PKCE 挑战值",
            "code_challenge_method": "S256",
        },
        ["client_id", "response_type", "redirect_uri"],
    ),
)
def pushed_authorization_request(request: Request, db: DbSession, captured: Captured) -> Response:
    """The client sends its authorization request here, authenticated, and gets a reference the
    browser carries instead of the parameters (RFC 9126): nothing to tamper with on the way."""
    server = _server(request, db)
    try:
        client = server.authenticate_client(captured, AUTH_METHODS, "par")
        params = {k: v for k, v in captured.form.items() if k not in CLIENT_AUTH_FIELDS}
        if "request_uri" in params:  # §2.1: a pushed request never names another
            raise InvalidRequestError("request_uri is not allowed in a pushed request")
        if params.get("client_id", client.get_client_id()) != client.get_client_id():
            raise InvalidRequestError("client_id does not match the authenticated client")
        params["client_id"] = client.get_client_id()
        # Checked now as an authorization request would be (§2.1); prompt waits for the browser.
        probe = {k: v for k, v in params.items() if k != "prompt"}
        grant = server.get_consent_grant(
            CapturedRequest("GET", captured.uri, captured.headers, probe, {}), end_user=None
        )
        _refused_objects(CapturedRequest("GET", captured.uri, {}, params, {}), grant.redirect_uri)
    except OAuth2Error as error:
        status = 401 if error.error == "invalid_client" else 400
        body = {"error": error.error, "error_description": error.description or ""}
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    reference = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    db.execute(delete(OidcPushedRequest).where(OidcPushedRequest.expires_at < now))
    db.add(
        OidcPushedRequest(
            reference_hash=secret_digest(reference),
            client_id=client.get_client_id(),
            params=params,
            expires_at=now + PAR_LIFETIME,
        )
    )
    body = {"request_uri": PAR_PREFIX + reference, "expires_in": int(PAR_LIFETIME.total_seconds())}
    return JSONResponse(body, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("/oidc/logout", include_in_schema=False)
@router.post("/oidc/logout", include_in_schema=False)
def logout(request: Request, db: DbSession, viewer: Viewer, captured: Captured) -> Response:
    """RP-initiated logout (RP-Initiated Logout 1.0 §2–3, GET or POST). A hint naming the person
    signs them out at once; otherwise they are asked first."""
    params = captured.payload.data
    asked = oidc_logout.logout_request(db, get_vault(request), params, viewer)
    if viewer is not None and not asked.confirmed:
        return render(
            request,
            "identity/logout_confirm.html",
            client=asked.client,
            query=oidc_logout.query_of(params),
            viewer=viewer,
        )
    return signed_out(request, db, viewer, asked.redirect)


@router.post("/oidc/logout/confirm", include_in_schema=False, dependencies=[Depends(check_csrf)])
def logout_confirmed(
    request: Request, db: DbSession, viewer: Viewer, captured: Captured
) -> Response:
    """The person said yes (or no) to signing out on the confirmation page."""
    asked = oidc_logout.logout_request(db, get_vault(request), captured.args, viewer)
    if captured.form.get("decision") != "sign_out":
        return RedirectResponse(asked.redirect or "/", status_code=303)
    return signed_out(request, db, viewer, asked.redirect)


def signed_out(
    request: Request, db: DbSession, viewer: WebSession | None, redirect: str | None
) -> Response:
    """End the session (its tokens and the systems listening with it) and say so: hidden frames
    for front-channel logout, then on to where the system asked, or home."""
    frames: list[str] = []
    if viewer is not None:
        frames = oidc_logout.frontchannel_frames(
            db, get_vault(request), viewer.id, issuer=issuer(request)
        )
        sessions.end_session(db, viewer, client_address=client_address(request))
    target = redirect or "/"
    if frames:
        response: Response = render(
            request, "identity/signed_out.html", frames=frames, target=target, viewer=None
        )
        origins = " ".join(sorted({"{0.scheme}://{0.netloc}".format(urlsplit(f)) for f in frames}))
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; img-src 'self' data:; frame-src {origins}; frame-ancestors 'none'"
        )
    else:
        response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def install(app: FastAPI) -> None:
    app.state.signing_keys = SigningKeyCache(current_key)
    app.include_router(router)
