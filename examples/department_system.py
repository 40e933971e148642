"""A department's own system that signs its users in through Qilu (OpenID Connect).

It is a relying party written with Authlib's client, not with Qilu's code: it discovers Qilu's
endpoints, sends people to sign in with PKCE, checks the ID token against Qilu's JWKS, reads
userinfo, and signs out through Qilu. Run it beside `qilu demo`:

    qilu clients add 示例部门系统 --redirect-uri http://127.0.0.1:8001/callback \\
        --post-logout-redirect-uri http://127.0.0.1:8001/
    python examples/department_system.py --client-id ID --client-secret SECRET

then open http://127.0.0.1:8001/ and sign in with a demo identity registered at Qilu.
"""

from __future__ import annotations

import argparse
import html
import secrets
from urllib.parse import urlencode

from authlib.integrations.starlette_client import OAuth
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route


def create_app(
    qilu_url: str, client_id: str, client_secret: str | None, base_url: str
) -> Starlette:
    oauth = OAuth()
    oauth.register(
        "qilu",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{qilu_url}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic" if client_secret else "none",
        },
    )

    async def home(request: Request) -> HTMLResponse:
        user = request.session.get("user")
        if not user:
            return HTMLResponse('<h1>示例部门系统</h1><p><a href="/login">用齐鲁账号登录</a></p>')
        who = html.escape(user.get("name", user["sub"]))
        enterprise = user.get("enterprise")
        acting = f"（代表 {html.escape(enterprise['name'])}）" if enterprise else ""
        return HTMLResponse(
            f"<h1>示例部门系统</h1><p data-user>您好，{who}{acting}</p>"
            f'<p>认证等级 {html.escape(user["acr"])}</p><p><a href="/logout">退出</a></p>'
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
        request.session["user"] = dict(profile)
        request.session["id_token"] = token["id_token"]
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> RedirectResponse:
        id_token = request.session.pop("id_token", "")
        request.session.clear()
        metadata = await oauth.qilu.load_server_metadata()
        query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": f"{base_url}/"})
        return RedirectResponse(f"{metadata['end_session_endpoint']}?{query}", status_code=303)

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout),
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
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    uvicorn.run(
        create_app(args.qilu, args.client_id, args.client_secret, base),
        host="127.0.0.1",
        port=args.port,
    )


if __name__ == "__main__":
    main()
