"""A department's API protected by Qilu's tokens: the resource server beside a department system.

A person signs in to the department system through Qilu; the system calls this API with the
person's access token. The API checks the token one of two ways:

- `introspection` (RFC 7662): it asks Qilu whether the token is live, authenticating with its
  own credentials (a department system registered with `qilu clients add-service`); a revoked
  token or a signed-out session fails at once;
- `jwt` (RFC 9068): for clients registered with `--jwt-access-tokens`, it verifies the token
  offline against Qilu's JWKS (`typ` at+jwt, issuer, expiry, audience) — no call per request,
  revocation seen only when the token expires (10 minutes).

    python examples/department_api.py --verify introspection \\
        --client-id API_ID --client-secret API_SECRET
    curl -H "Authorization: Bearer ACCESS_TOKEN" http://127.0.0.1:8002/api/me
"""

from __future__ import annotations

import argparse
from typing import Any, Literal

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Verify = Literal["introspection", "jwt"]


def create_app(
    qilu_url: str,
    *,
    verify: Verify,
    client_id: str | None = None,
    client_secret: str | None = None,
    audience: str | None = None,
) -> Starlette:
    metadata = httpx.get(f"{qilu_url}/.well-known/openid-configuration", timeout=10).json()

    async def claims_of(token: str) -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=10) as client:
            if verify == "introspection":
                answer = await client.post(
                    metadata["introspection_endpoint"],
                    data={"token": token, "token_type_hint": "access_token"},
                    auth=(client_id or "", client_secret or ""),
                )
                body: dict[str, Any] = answer.json()
                return body if answer.status_code == 200 and body.get("active") else None
            keys = KeySet.import_key_set((await client.get(metadata["jwks_uri"])).json())
        try:
            decoded = jwt.decode(token, keys)
            rules: dict[str, Any] = {
                "iss": {"essential": True, "value": metadata["issuer"]},
                "exp": {"essential": True},
                "sub": {"essential": True},
            }
            if audience:
                rules["aud"] = {"essential": True, "value": audience}
            jwt.JWTClaimsRegistry(**rules).validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        return dict(decoded.claims) if decoded.header.get("typ") == "at+jwt" else None

    async def me(request: Request) -> JSONResponse:
        header = request.headers.get("authorization", "")
        claims = await claims_of(header[7:]) if header.lower().startswith("bearer ") else None
        if claims is None:
            challenge = 'Bearer error="invalid_token"'
            return JSONResponse(
                {"error": "invalid_token"}, status_code=401, headers={"WWW-Authenticate": challenge}
            )
        return JSONResponse(
            {"sub": claims["sub"], "scope": claims.get("scope", ""), "checked_by": verify}
        )

    return Starlette(routes=[Route("/api/me", me)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="An example department API behind Qilu tokens")
    parser.add_argument("--qilu", default="http://127.0.0.1:8000")
    parser.add_argument("--verify", choices=["introspection", "jwt"], default="introspection")
    parser.add_argument("--client-id", help="the API's own credentials (introspection)")
    parser.add_argument("--client-secret")
    parser.add_argument("--audience", help="the client_id the JWT access tokens were issued to")
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    app = create_app(
        args.qilu,
        verify=args.verify,
        client_id=args.client_id,
        client_secret=args.client_secret,
        audience=args.audience,
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
