"""A department's own system that signs its users in through Qilu (OpenID Connect).

It is a relying party written with Authlib's client, not with Qilu's code: it discovers Qilu's
endpoints, sends people to sign in with PKCE, checks the ID token against Qilu's JWKS, reads
userinfo, signs out through Qilu, and ends its own session when Qilu says the person signed out
there (back-channel logout, with front-channel as the fallback). It authenticates with a client
secret or, with `--private-key`, with private_key_jwt (no shared secret). Run it beside
`qilu demo` (README, "How a department integrates"):

    qilu clients add 示例部门系统 --redirect-uri http://127.0.0.1:8001/callback \\
        --post-logout-redirect-uri http://127.0.0.1:8001/ \\
        --backchannel-logout-uri http://127.0.0.1:8001/backchannel-logout
    python examples/department_system.py --client-id ID --client-secret SECRET

then open http://127.0.0.1:8001/ and sign in with a demo identity registered at Qilu.
"""

from __future__ import annotations

import argparse
import html
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.starlette_client import OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def create_app(
    qilu_url: str,
    client_id: str,
    client_secret: str | None,
    base_url: str,
    *,
    private_key: RSAKey | None = None,
    scope: str = "openid profile",
    api_url: str | None = None,
) -> Starlette:
    metadata = httpx.get(f"{qilu_url}/.well-known/openid-configuration", timeout=10).json()
    if private_key is not None:
        method = "private_key_jwt"
    else:
        method = "client_secret_basic" if client_secret else "none"
    oauth = OAuth()
    oauth.register(
        "qilu",
        client_id=client_id,
        client_secret=private_key if private_key is not None else client_secret,
        server_metadata_url=f"{qilu_url}/.well-known/openid-configuration",
        client_auth_methods=[PrivateKeyJWT(metadata["token_endpoint"])] if private_key else None,
        client_kwargs={
            "scope": scope,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": method,
        },
    )
    # This system's own sessions, server-side, so that Qilu's logout can end them: the browser's
    # cookie holds only a key; `by_sid` finds the sessions a Qilu session (sid) opened.
    sessions: dict[str, dict[str, Any]] = {}
    by_sid: dict[str, set[str]] = {}

    def current(request: Request) -> dict[str, Any] | None:
        return sessions.get(request.session.get("key", ""))

    def end_sid(sid: str) -> None:
        for key in by_sid.pop(sid, set()):
            sessions.pop(key, None)

    async def home(request: Request) -> HTMLResponse:
        user = current(request)
        if not user:
            return HTMLResponse('<h1>示例部门系统</h1><p><a href="/login">用齐鲁账号登录</a></p>')
        who = html.escape(user.get("name", user["sub"]))
        enterprise = user.get("enterprise")
        acting = f"（代表 {html.escape(enterprise['name'])}）" if enterprise else ""
        api = '<p><a href="/api-call">调用部门接口</a></p>' if api_url else ""
        return HTMLResponse(
            f"<h1>示例部门系统</h1><p data-user>您好，{who}{acting}</p>"
            f'<p>认证等级 {html.escape(user["acr"])}</p>{api}<p><a href="/logout">退出</a></p>'
        )

    async def api_call(request: Request) -> Response:
        """Call the department's API (examples/department_api.py) with the person's token."""
        user = current(request)
        if not user or not api_url:
            return RedirectResponse("/", status_code=303)
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(
                api_url, headers={"Authorization": f"Bearer {user['access_token']}"}
            )
        return HTMLResponse(
            f"<h1>部门接口的回答</h1><p>HTTP {answer.status_code}</p>"
            f"<pre data-api-answer>{html.escape(answer.text)}</pre><p><a href='/'>返回</a></p>"
        )

    async def login(request: Request) -> RedirectResponse:
        nonce = secrets.token_urlsafe(16)
        request.session["nonce"] = nonce
        response: RedirectResponse = await oauth.qilu.authorize_redirect(
            request, f"{base_url}/callback", nonce=nonce
        )
        return response

    async def callback(request: Request) -> RedirectResponse:
        token = await oauth.qilu.authorize_access_token(request)  # checks the ID token and nonce
        claims = token["userinfo"]
        profile = await oauth.qilu.userinfo(token=token)
        if profile["sub"] != claims["sub"]:
            raise RuntimeError("userinfo is about someone else")
        key = secrets.token_urlsafe(16)
        sessions[key] = {
            **profile,
            "id_token": token["id_token"],
            "access_token": token["access_token"],
        }
        by_sid.setdefault(claims.get("sid", ""), set()).add(key)
        request.session["key"] = key
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> RedirectResponse:
        user = sessions.pop(request.session.pop("key", ""), None) or {}
        query = urlencode(
            {"id_token_hint": user.get("id_token", ""), "post_logout_redirect_uri": f"{base_url}/"}
        )
        return RedirectResponse(f"{metadata['end_session_endpoint']}?{query}", status_code=303)

    async def backchannel_logout(request: Request) -> Response:
        """OIDC Back-Channel Logout 1.0 §2.6: validate the logout token, end the sessions of
        its `sid`, answer 200 (400 for a token that does not validate)."""
        form = await request.form()
        async with httpx.AsyncClient() as client:
            keys = KeySet.import_key_set((await client.get(metadata["jwks_uri"])).json())
        try:
            claims = jwt.decode(str(form.get("logout_token", "")), keys).claims
            registry = jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": metadata["issuer"]},
                aud={"essential": True, "value": client_id},
                iat={"essential": True},
            )
            registry.validate(claims)
        except (JoseError, ValueError) as error:
            return PlainTextResponse(f"invalid logout token: {error}", status_code=400)
        if LOGOUT_EVENT not in claims.get("events", {}) or "nonce" in claims:
            return PlainTextResponse("not a logout token", status_code=400)
        end_sid(str(claims.get("sid", "")))
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    async def frontchannel_logout(request: Request) -> Response:
        """OIDC Front-Channel Logout 1.0 §2: loaded in a hidden frame with `iss` and `sid`."""
        if request.query_params.get("iss") == metadata["issuer"]:
            end_sid(request.query_params.get("sid", ""))
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout),
            Route("/api-call", api_call),
            Route("/backchannel-logout", backchannel_logout, methods=["POST"]),
            Route("/frontchannel-logout", frontchannel_logout),
        ]
    )
    app.add_middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(32))
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="An example department system using Qilu SSO")
    parser.add_argument("--qilu", default="http://127.0.0.1:8000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret")
    parser.add_argument(
        "--private-key", type=Path, help="JWK (JSON) of the key registered for private_key_jwt"
    )
    parser.add_argument("--scope", default="openid profile")
    parser.add_argument("--api", help="a department API to call with the person's token")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    key = RSAKey.import_key(json.loads(args.private_key.read_text())) if args.private_key else None
    app = create_app(
        args.qilu,
        args.client_id,
        args.client_secret,
        base,
        private_key=key,
        scope=args.scope,
        api_url=args.api,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
