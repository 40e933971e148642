"""The identity JSON API for department systems, called with an OIDC access token.

High-risk operations answer a token that is too weak or too old with an RFC 9470 step-up
challenge (`WWW-Authenticate: Bearer error="insufficient_user_authentication", acr_values="4"`):
the system sends its user back through /oidc/authorize with `acr_values=4` and retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Request
from pydantic import BaseModel, Field

from qilu.identity import enterprises
from qilu.identity.oidc_provider import Bearer, bearer_token
from qilu.routes import DbSession, RawBody, client_address, get_vault, json_body, parsed

router = APIRouter(prefix="/api/v1/enterprises", tags=["一号通行"])


def person_token(scope: str) -> Callable[..., Bearer]:
    """A dependency: the person's access token with `scope`, checked before the body is read."""

    def dependency(db: DbSession, authorization: Annotated[str, Header()] = "") -> Bearer:
        return bearer_token(db, authorization, scope=scope)

    return dependency


class SuccessorIn(BaseModel):
    name: str = Field(max_length=64, description="新法定代表人姓名")
    id_number: str = Field(max_length=40, description="新法定代表人公民身份号码")


class EnterpriseOut(BaseModel):
    uscc: str
    name: str
    legal_representative: str


@router.put(
    "/{uscc}/legal-representative",
    summary="变更法定代表人（高风险操作：需安全级别 4 且 10 分钟内认证）",
    response_model=EnterpriseOut,
    responses={401: {"description": "令牌无效，或需提升认证（RFC 9470）"}, 403: {}, 404: {}},
    openapi_extra=json_body(SuccessorIn),
)
def change_legal_representative(
    request: Request,
    db: DbSession,
    token: Annotated[Bearer, Depends(person_token("enterprise"))],
    uscc: Annotated[str, Path(max_length=18)],
    raw: RawBody,
) -> EnterpriseOut:
    successor = parsed(SuccessorIn, raw)
    entity = enterprises.entity_by_uscc(db, uscc)
    enterprises.change_legal_representative(
        db,
        get_vault(request),
        entity,
        by=token,
        name=successor.name,
        id_number=successor.id_number,
        client_address=client_address(request),
    )
    return EnterpriseOut(
        uscc=entity.uscc, name=entity.name, legal_representative=entity.legal_representative.name
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
