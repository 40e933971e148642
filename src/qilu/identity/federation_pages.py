"""Pages of signing in through the upstream provider (`identity.federation`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response

from qilu.errors import NotFound, QiluError
from qilu.identity import federation, roles
from qilu.identity.pages import safe_next, signed_in
from qilu.routes import DbSession, client_address, get_settings, get_vault, render

router = APIRouter(prefix="/account/federated", include_in_schema=False)
STATE_COOKIE = "qilu_upstream"
Text = Annotated[str | None, Query(max_length=2048)]
UPSTREAM_ERRORS = {
    "access_denied": "您在身份提供方拒绝了授权，未能登录",
    "login_required": "您尚未在身份提供方登录",
    "consent_required": "您尚未同意向齐鲁提供身份信息",
}


def _upstream(request: Request) -> federation.Upstream:
    upstream = federation.upstream_of(get_settings(request))
    if upstream is None:
        raise NotFound("federation.none", "本平台未接入上级统一身份认证")
    return upstream


def _refused(request: Request, error: QiluError) -> Response:
    body = {"code": error.code, "message": error.message}
    status = error.status_code if 400 <= error.status_code < 500 else 400
    return render(request, "error.html", status, status=status, title="登录未完成", error=body)


@router.get("")
def depart(request: Request, db: DbSession, next: str = "/account") -> Response:
    """Off to the upstream provider; this browser keeps the state to recognise the answer."""
    try:
        upstream = _upstream(request)
        departure = federation.depart(db, upstream, next_path=safe_next(next))
    except QiluError as error:
        return _refused(request, error)
    response = RedirectResponse(departure.url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        departure.state,
        max_age=int(federation.LIFETIME.total_seconds()),
        path="/account/federated",
        httponly=True,
        samesite="lax",  # sent on the upstream's redirect back, a top-level GET
        secure=get_settings(request).cookie_secure,
    )
    return response


@router.get("/callback")
def arrive(
    request: Request,
    db: DbSession,
    code: Text = None,
    state: Text = None,
    iss: Text = None,
    error: Text = None,
) -> Response:
    """The upstream's answer: checked, the person found in the register, signed in here."""
    try:
        upstream = _upstream(request)
        if error or not code or not state:
            message = UPSTREAM_ERRORS.get(error or "", f"{upstream.name}未能完成登录")
            raise federation.UpstreamRefused(f"federation.{error or 'no_code'}", message)
        pending = federation.take_state(db, state, request.cookies.get(STATE_COOKIE))
        db.commit()  # the state is used up; no transaction stays open while upstream answers
        asserted = federation.exchange(upstream, pending, code=code, iss=iss)
        account, level = federation.arrive(
            db, get_vault(request), upstream, asserted, client_address=client_address(request)
        )
    except QiluError as refusal:
        db.commit()  # the audit trail of a refusal stays
        return _refused(request, refusal)
    target = pending.next_path
    if roles.is_civil_servant(db, account.person_id) and level < 4:
        # Civil servants need their second factor here too, whatever the upstream checked.
        response = signed_in(request, db, account, target, pending=True, level=level)
        if not account.has_second_factor:
            response.headers["location"] = f"/account/two-factor/setup?next={quote(target)}"
    else:
        response = signed_in(request, db, account, target, level=level)
    response.delete_cookie(STATE_COOKIE, path="/account/federated")
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)
