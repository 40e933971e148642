"""Who is asking, as route dependencies: the signed-in viewer of a page and, for staff pages,
the actor the one access rule (`roles.allows`) is asked about.

A route declares what it needs (`require("admin.clients")`); the dependency refuses anyone who
holds the permission nowhere, and the service checks the concrete target again (its department
and division), so a route cannot forget the object-level check by being written without it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from qilu.errors import QiluError, Refused
from qilu.identity import assurance, passwords, roles
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


class PasswordExpired(QiluError):
    """The 等保 profile's password age has passed: the web layer sends the browser to change it."""

    status_code = 403


# What a holder of an expired password may still do: change it, or leave.
_WHILE_EXPIRED = frozenset({"/account", "/account/password", "/account/sign-out"})


def came_from(request: Request) -> str:
    """Where to come back to after signing in: the page itself for a GET; for a form sent by
    someone not signed in, the page the form was on (its own address answers only POST, so
    going back there would end at "405"), else the account page."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/account"


def required_viewer(
    request: Request, viewer: Annotated[WebSession | None, Depends(optional_viewer)]
) -> WebSession:
    return require_signed_in(request, viewer, back=came_from(request))


def require_signed_in(request: Request, viewer: WebSession | None, *, back: str) -> WebSession:
    """The viewer, signed in in full; `SignInRequired` (sign in, then go to `back`) if not."""
    if viewer is None or viewer.second_factor_pending:
        raise SignInRequired("session.required", "请先登录", next=back)
    profile = get_settings(request).security_profile
    expired = passwords.is_expired(viewer.account.password_changed_at, datetime.now(UTC), profile)
    if expired and request.url.path not in _WHILE_EXPIRED:
        raise PasswordExpired("password.expired", "密码已使用超过 90 天，请先修改密码")
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


class require:
    """A dependency: the viewer as `roles.Staff` if they hold `permission` somewhere (checked
    first, so a stranger is told no rather than asked to confirm), then, for a change, a
    recent authentication at `level`. A route whose target is fixed (the province's catalog)
    names it; otherwise the service checks the target it loads. The matrix test reads
    `permission` off the route."""

    def __init__(
        self, permission: str, target: roles.Target | None = None, *, level: int | None = None
    ):
        roles.PERMISSIONS[permission]  # an unknown permission fails where the route is declared
        self.permission = permission
        self.target = target
        self.level = level

    def __call__(self, db: DbSession, viewer: SignedIn) -> roles.Staff:
        actor = roles.staff(db, viewer.account.person_id)
        roles.authorize(actor, self.permission, self.target)
        if self.level is not None:
            assurance.require(
                self.level, assurance=viewer.assurance, authenticated_at=viewer.authenticated_at
            )
        return actor


def staff_member(db: DbSession, viewer: SignedIn) -> roles.Staff:
    """Any civil servant (the workbench's shared pages); what they may do there is per action."""
    if not roles.is_civil_servant(db, viewer.account.person_id):
        raise Refused("workbench.staff_only", "工作台仅供公职人员使用")
    return roles.staff(db, viewer.account.person_id)


AnyStaff = Annotated[roles.Staff, Depends(staff_member)]
