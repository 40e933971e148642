"""Pages of 扫码登录: the computer shows a QR code and waits; the phone confirms."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, FastAPI, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from qilu.errors import QiluError
from qilu.identity import cross_device
from qilu.identity.access import SignedIn
from qilu.identity.pages import safe_next, signed_in
from qilu.routes import (
    DbSession,
    check_csrf,
    client_address,
    get_settings,
    redraw_on_refusal,
    render,
)

router = APIRouter(prefix="/account/qr", include_in_schema=False)
Posted = [Depends(check_csrf)]
POLL_COOKIE = "qilu_qr"
Reference = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
STOP_POLLING = 286  # htmx stops an `every` trigger on this status


@router.get("", response_class=HTMLResponse)
def waiting_page(request: Request, next: str = "/account") -> HTMLResponse:
    """Without a code just made (a reload, a bookmark): offer to make one."""
    return render(request, "identity/qr_sign_in.html", qr=None, next=safe_next(next), poll=None)


@router.post("", response_class=HTMLResponse, dependencies=Posted)
def start(
    request: Request, db: DbSession, next: Annotated[str, Form(max_length=512)] = "/account"
) -> Response:
    """A new QR code for this computer, and the secret it waits with (its cookie)."""
    started = cross_device.start(
        db, client_address=client_address(request), user_agent=request.headers.get("user-agent")
    )
    settings = get_settings(request)
    address = f"{settings.issuer}/account/qr/confirm/{started.reference}"
    qr = segno.make(address, error="m").svg_inline(scale=5, title="用已登录的手机扫码")
    response = render(
        request,
        "identity/qr_sign_in.html",
        qr=qr,
        address=address,
        check_code=started.check_code,
        seconds=int(cross_device.LIFETIME.total_seconds()),
        next=safe_next(next),
        poll=None,
    )
    response.set_cookie(
        POLL_COOKIE,
        started.poll,
        max_age=int(cross_device.LIFETIME.total_seconds()),
        path="/account/qr",
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    return response


@router.post("/status", dependencies=Posted)
def status(
    request: Request, db: DbSession, next: Annotated[str, Form(max_length=512)] = "/account"
) -> Response:
    """The computer asks whether the phone has confirmed (every two seconds by htmx, or by the
    button without scripts). Confirmed: signed in here, once."""
    answer = cross_device.poll(db, request.cookies.get(POLL_COOKIE))
    partial = request.headers.get("HX-Request") == "true"
    if answer.outcome == "confirmed" and answer.account is not None:
        response = signed_in(request, db, answer.account, next, level=answer.assurance)
        response.delete_cookie(POLL_COOKIE, path="/account/qr")
        if partial:  # htmx follows HX-Redirect; the cookies of this answer are already set
            response.headers["HX-Redirect"] = response.headers["location"]
            response.status_code = 200
        return response
    seconds = 0
    if answer.expires_at is not None:
        seconds = max(0, math.ceil((answer.expires_at - datetime.now(UTC)).total_seconds()))
    template = "identity/qr_status.html" if partial else "identity/qr_sign_in.html"
    code = 200 if answer.outcome == "waiting" or not partial else STOP_POLLING
    return render(
        request, template, code, poll=answer, seconds=seconds, next=safe_next(next), qr=None
    )


@router.get("/confirm/{reference}", response_class=HTMLResponse)
def confirm_page(
    request: Request, db: DbSession, viewer: SignedIn, reference: Reference
) -> HTMLResponse:
    """On the phone: which computer asks, from where, with which check code."""
    try:
        row = cross_device.waiting(db, reference)
    except QiluError as error:
        return render(request, "identity/qr_confirm.html", 400, row=None, error=error, done=None)
    return render(
        request, "identity/qr_confirm.html", row=row, reference=reference, error=None, done=None
    )


@router.post("/confirm/{reference}", response_class=HTMLResponse, dependencies=Posted)
def confirm(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    reference: Reference,
    decision: Annotated[str, Form(pattern="^(allow|deny)$")],
) -> Response:
    with redraw_on_refusal(
        db,
        lambda error: render(
            request, "identity/qr_confirm.html", 400, row=None, error=error, done=None
        ),
    ):
        row = cross_device.decide(
            db,
            reference,
            viewer,
            approve=decision == "allow",
            client_address=client_address(request),
        )
    return render(request, "identity/qr_confirm.html", row=row, error=None, done=decision)


def install(app: FastAPI) -> None:
    app.include_router(router)
