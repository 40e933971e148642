"""消息中心 pages: the inbox, the header's unread badge (fetched by htmx after the page, so no
page waits on it), and the SMS preference."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response

from qilu.identity.access import SignedIn, Viewer
from qilu.messages import service
from qilu.routes import DbSession, check_csrf, render

router = APIRouter(prefix="/account/messages", include_in_schema=False)
Posted = [Depends(check_csrf)]


@router.get("", response_class=HTMLResponse)
def inbox(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    """Every message, the new ones marked; seen once shown."""
    person_id = viewer.account.person_id
    messages = service.inbox(db, person_id)
    unread = {m.id for m in messages if m.read_at is None}
    service.mark_read(db, person_id)
    return render(
        request,
        "messages/inbox.html",
        messages=messages,
        unread=unread,
        by_sms=service.wants_sms(db, person_id),
        viewer=viewer,
    )


@router.get("/badge", response_class=HTMLResponse)
def badge(request: Request, db: DbSession, viewer: Viewer) -> HTMLResponse:
    """The header's link text: 消息, with the unread count if there is any. (The session that
    found the viewer counts too: on SQLite a second one would wait on the first's lock.)"""
    count = service.unread_count(db, viewer.account.person_id) if viewer is not None else 0
    text = f'消息<span class="count" data-unread="{count}">{count}</span>' if count else "消息"
    return HTMLResponse(text, headers={"Cache-Control": "no-store"})


@router.post("/sms", dependencies=Posted)
def sms_preference(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    by_sms: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    service.set_sms(db, viewer.account.person_id, by_sms == "yes")
    return render(
        request,
        "messages/inbox.html",
        messages=service.inbox(db, viewer.account.person_id),
        unread=set(),
        by_sms=by_sms == "yes",
        viewer=viewer,
        saved=True,
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
