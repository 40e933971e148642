"""The OpenID Connect provider's HTTP endpoints: discovery, JWKS, authorize (with consent),
token, userinfo and RP-initiated logout. The protocol rules live in `oidc_provider`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from qilu.audit.service import record
from qilu.identity import sessions
from qilu.identity.access import SESSION_COOKIE, optional_viewer
from qilu.identity.models import OidcClient, WebSession
from qilu.identity.oidc_provider import (
    SCOPES,
    SERVICE_SCOPES,
    CapturedRequest,
    InvalidToken,
    QiluAuthorizationServer,
    Signer,
    authentication_demand,
    bearer_token,
    user_claims,
)
from qilu.identity.signing_keys import SigningKeyCache, published_jwks
from qilu.routes import (
    CSRF_FIELD,
    DbSession,
    ReadSession,
    check_csrf,
    client_address,
    get_vault,
    render,
)

router = APIRouter(tags=["一号通行"])
Viewer = Annotated[WebSession | None, Depends(optional_viewer)]


def issuer(request: Request) -> str:
    return str(request.base_url).rstrip("/")


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


@router.get("/.well-known/openid-configuration", summary="OIDC 发现文档")
def discovery(request: Request) -> JSONResponse:
    base = issuer(request)
    return JSONResponse(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/oidc/authorize",
            "token_endpoint": f"{base}/oidc/token",
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "jwks_uri": f"{base}/oidc/jwks",
            "end_session_endpoint": f"{base}/oidc/logout",
            "revocation_endpoint": f"{base}/oidc/revoke",
            "revocation_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": [*SCOPES, *SERVICE_SCOPES],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "name", "acr", "identity_type", "enterprise", "auth_time"],
            "claims_parameter_supported": False,
            "prompt_values_supported": ["none", "login", "consent"],
            "acr_values_supported": ["2", "3", "4", "5"],
        }
    )


@router.get("/oidc/jwks", summary="ID token 验签公钥（JWKS）")
def jwks(db: DbSession) -> JSONResponse:
    # Short caching: a rotation shows within five minutes, and retired keys stay a day.
    return JSONResponse(published_jwks(db), headers={"Cache-Control": "public, max-age=300"})


@router.get("/oidc/authorize", include_in_schema=False)
def authorize(request: Request, db: DbSession, viewer: Viewer, captured: Captured) -> Response:
    server = _server(request, db)
    signed_in = viewer if viewer is not None and not viewer.second_factor_pending else None
    try:
        grant = server.get_consent_grant(captured, end_user=signed_in)
        level = authentication_demand(
            captured.payload.data, signed_in, redirect_uri=grant.redirect_uri
        )
    except OAuth2Error as error:
        return _authorize_error(request, server, captured, error)
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
    if client.is_first_party and "consent" not in captured.payload.data.get("prompt", ""):
        return _respond(server.create_authorization_response(captured, signed_in, grant))
    return render(
        request,
        "identity/consent.html",
        client=client,
        params=dict(request.query_params),
        scopes=(grant.request.payload.scope or "").split(),
        viewer=signed_in,
    )


@router.post("/oidc/authorize", include_in_schema=False, dependencies=[Depends(check_csrf)])
def consent(request: Request, db: DbSession, viewer: Viewer, captured: Captured) -> Response:
    server = _server(request, db)
    if viewer is None or viewer.second_factor_pending:
        return RedirectResponse("/account/sign-in", status_code=303)
    allowed = captured.form.get("decision") == "allow"
    record(
        db,
        "oidc.consent_given" if allowed else "oidc.consent_refused",
        actor_person_id=viewer.account.person_id,
        client_address=client_address(request),
        subject=f"client:{captured.payload.client_id}",
    )
    try:
        grant = server.get_consent_grant(captured, end_user=viewer)
        level = authentication_demand(
            captured.payload.data, viewer, redirect_uri=grant.redirect_uri
        )
    except OAuth2Error as error:
        return _authorize_error(request, server, captured, error)
    if level is not None:  # the session changed since the consent page: start over
        params = {k: v for k, v in captured.form.items() if k not in ("decision", CSRF_FIELD)}
        return RedirectResponse(f"{request.url.path}?{urlencode(params)}", status_code=303)
    return _respond(
        server.create_authorization_response(captured, viewer if allowed else None, grant)
    )


def _authorize_error(
    request: Request, server: QiluAuthorizationServer, captured: CapturedRequest, error: OAuth2Error
) -> Response:
    if getattr(error, "redirect_uri", None):  # a registered redirect: tell the client there
        return _respond(server.handle_error_response(captured, error))
    body = {
        "code": f"oidc.{error.error}",
        "message": f"接入请求无效：{error.description or error.error}",
    }
    return render(request, "error.html", 400, status=400, title="接入请求无效", error=body)


def _form(properties: dict[str, str], required: list[str]) -> dict[str, object]:
    """`openapi_extra` for an OAuth endpoint's form body (Authlib reads it, FastAPI cannot)."""
    schema = {
        "type": "object",
        "properties": {name: {"type": "string", "description": text}
                       for name, text in properties.items()},
        "required": required,
    }  # fmt: skip
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
def userinfo(request: Request, db: ReadSession) -> JSONResponse:
    try:
        bearer = bearer_token(db, request.headers.get("authorization", ""))
    except InvalidToken as refusal:  # answered the RFC 6750 way, not as a Qilu API error
        body = {"error": "invalid_token", "error_description": refusal.description}
        return JSONResponse(body, status_code=401, headers=refusal.headers())
    return JSONResponse(
        user_claims(
            get_vault(request),
            sector=bearer.sector,
            person_id=bearer.person_id,
            name=bearer.name,
            scope=bearer.scope,
            acr=bearer.assurance,
            enterprise=bearer.enterprise,
        )
    )


@router.get("/oidc/logout", include_in_schema=False)
def logout(
    request: Request,
    db: DbSession,
    viewer: Viewer,
    id_token_hint: str = "",
    post_logout_redirect_uri: str = "",
    state: str = "",
) -> Response:
    """RP-initiated logout: end the browser's session; go back only to a registered address."""
    target = "/"
    if id_token_hint and post_logout_redirect_uri:
        try:
            claims = jwt.decode(id_token_hint, KeySet.import_key_set(published_jwks(db))).claims  # type: ignore[arg-type]
        except (JoseError, ValueError):
            claims = {}
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else audiences
        client = db.scalars(select(OidcClient).where(OidcClient.client_id.in_(audiences))).first()
        if client is not None and post_logout_redirect_uri in client.post_logout_redirect_uris:
            target = post_logout_redirect_uri + (f"?{urlencode({'state': state})}" if state else "")
    if viewer is not None:
        sessions.end_session(db, viewer, client_address=client_address(request))
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def install(app: FastAPI) -> None:
    app.state.signing_keys = SigningKeyCache()
    app.include_router(router)
