"""Who is asking: the signed-in viewer of a page, as route dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from qilu.errors import QiluError
from qilu.identity import assurance
from qilu.identity.models import WebSession
from qilu.identity.sessions import SessionEnded, resume_session
from qilu.routes import DbSession, get_settings

SESSION_COOKIE = "qilu_session"


def optional_viewer(request: Request, session: DbSession) -> WebSession | None:
    """The signed-in session of this browser, if any (an ended one counts as none)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return resume_session(session, token, profile=get_settings(request).security_profile)
    except SessionEnded:
        return None


class SignInRequired(QiluError):
    """Raised by pages that need a viewer; the web layer answers with a redirect."""

    status_code = 401


def required_viewer(
    request: Request, viewer: Annotated[WebSession | None, Depends(optional_viewer)]
) -> WebSession:
    if viewer is None or viewer.second_factor_pending:
        raise SignInRequired("session.required", "请先登录", next=request.url.path)
    return viewer


def pending_viewer(
    request: Request, viewer: Annotated[WebSession | None, Depends(optional_viewer)]
) -> WebSession:
    """A session that has passed the password and owes its second factor."""
    if viewer is None or not viewer.second_factor_pending:
        raise SignInRequired("session.required", "请先登录", next="/account")
    return viewer


Viewer = Annotated[WebSession | None, Depends(optional_viewer)]


def setup_viewer(
    request: Request, viewer: Annotated[WebSession | None, Depends(optional_viewer)]
) -> WebSession:
    """Signed in, or half signed in by someone who must first set up a second factor."""
    if viewer is None or (viewer.second_factor_pending and viewer.account.has_second_factor):
        raise SignInRequired("session.required", "请先登录", next=request.url.path)
    return viewer


SignedIn = Annotated[WebSession, Depends(required_viewer)]
SettingUp = Annotated[WebSession, Depends(setup_viewer)]
HalfSignedIn = Annotated[WebSession, Depends(pending_viewer)]


def confirmed(level: int) -> Callable[[WebSession], WebSession]:
    """A dependency for sensitive pages: the viewer signed in or confirmed their identity within
    `assurance.FRESH_FOR`, at `level` or above; otherwise `StepUpRequired` (the web layer sends
    the browser to the confirmation page and back)."""

    def dependency(viewer: SignedIn) -> WebSession:
        assurance.require(
            level, assurance=viewer.assurance, authenticated_at=viewer.authenticated_at
        )
        return viewer

    return dependency


Confirmed = Annotated[WebSession, Depends(confirmed(3))]
ConfirmedStrongly = Annotated[WebSession, Depends(confirmed(assurance.HIGH_RISK))]
