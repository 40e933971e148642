"""The OpenID Connect provider's HTTP surface. So far: the JWKS relying parties verify with.

The authorization, token and userinfo endpoints and the discovery document come next; the
discovery document is published only once every endpoint it names exists.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from qilu.identity.signing_keys import published_jwks
from qilu.routes import DbSession

router = APIRouter(prefix="/oidc", tags=["一号通行"])


@router.get("/jwks", summary="ID token 验签公钥（JWKS）")
def jwks(db: DbSession) -> JSONResponse:
    body: dict[str, Any] = published_jwks(db)
    # Short caching: a rotation shows within five minutes, and retired keys stay a day.
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


def install(app: FastAPI) -> None:
    app.include_router(router)
