"""Pages of one login: register, sign in and out, and the account page with its history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.audit.service import events_of_person
from qilu.codes.idcard import mask_id_number
from qilu.errors import QiluError
from qilu.identity import (
    accounts,
    assurance,
    events,
    oidc_consents,
    passwords,
    recovery,
    roles,
    second_factor,
    sessions,
    sms_codes,
)
from qilu.identity.access import SESSION_COOKIE, HalfSignedIn, SettingUp, SignedIn
from qilu.identity.models import Account
from qilu.identity.oidc import signed_out
from qilu.identity.service import id_number_of
from qilu.routes import (
    CSRF_COOKIE,
    DbSession,
    check_csrf,
    client_address,
    get_settings,
    get_vault,
    new_csrf_token,
    redraw_on_refusal,
    render,
    settle_refusal,
)

router = APIRouter(prefix="/account", include_in_schema=False)
Posted = [Depends(check_csrf)]


def safe_next(target: str | None) -> str:
    """Only paths on this site: an open redirect would help phishing."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/account"
    parts = urlsplit(target)
    return "/account" if parts.scheme or parts.netloc else target


def signed_in(
    request: Request,
    db: DbSession,
    account: Account,
    target: str,
    *,
    pending: bool = False,
    level: int | None = None,
) -> Response:
    """Start a session (at the account's level, or `level`) and go on to `target`, with the
    session cookie and a fresh CSRF token."""
    settings = get_settings(request)
    token, _ = sessions.start_session(
        db,
        account,
        assurance=level or account.assurance,
        profile=settings.security_profile,
        client_address=client_address(request),
        user_agent=request.headers.get("user-agent"),
        second_factor_pending=pending,
    )
    if pending:
        target = f"/account/two-factor?next={quote(safe_next(target), safe='/')}"
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        max_age=int(sessions.TIMEOUTS[settings.security_profile].absolute.total_seconds()),
    )
    # A new CSRF token with the new session: one planted before sign-in is worth nothing after.
    response.set_cookie(
        CSRF_COOKIE,
        new_csrf_token(),
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    return response


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request) -> HTMLResponse:
    return render(request, "identity/register.html", form={}, error=None)


@router.post("/register", dependencies=Posted)
def register(
    request: Request,
    db: DbSession,
    name: Annotated[str, Form(max_length=64)],
    id_number: Annotated[str, Form(max_length=40)],
    password: Annotated[str, Form(max_length=256)],
    password_again: Annotated[str, Form(max_length=256)],
) -> Response:
    form = {"name": name, "id_number": id_number}
    with redraw_on_refusal(
        db, lambda error: render(request, "identity/register.html", 400, form=form, error=error)
    ):
        if password != password_again:
            raise QiluError("password.mismatch", "两次输入的密码不一致", field="password_again")
        account = accounts.register_resident(
            db,
            get_vault(request),
            name=name,
            id_number=id_number,
            password=password,
            profile=get_settings(request).security_profile,
            client_address=client_address(request),
        )
    return signed_in(request, db, account, "/account")


@router.get("/forgot", response_class=HTMLResponse)
def forgot_form(request: Request) -> HTMLResponse:
    return render(request, "identity/forgot.html", form={}, error=None, sent=None)


@router.post("/forgot/code", dependencies=Posted)
def forgot_code(
    request: Request,
    db: DbSession,
    name: Annotated[str, Form(max_length=64)] = "",
    id_number: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Step one: a code to the registered phone (the answer is the same for anyone)."""
    form = {"name": name, "id_number": id_number}
    with redraw_on_refusal(
        db,
        lambda error: render(
            request, "identity/forgot.html", 400, form=form, error=error, sent=None
        ),
    ):
        sent = recovery.send_code(
            db,
            get_vault(request),
            name=name,
            id_number=id_number,
            client_address=client_address(request),
        )
    return render(request, "identity/forgot.html", form=form, error=None, sent=sent)


@router.post("/forgot", dependencies=Posted)
def forgot(
    request: Request,
    db: DbSession,
    name: Annotated[str, Form(max_length=64)] = "",
    id_number: Annotated[str, Form(max_length=40)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    password_again: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Step two: the code and the new password; then signing in with it."""
    form = {"name": name, "id_number": id_number, "code": code}
    with redraw_on_refusal(
        db,
        lambda error: render(
            request, "identity/forgot.html", 400, form=form, error=error, sent=recovery.SENT
        ),
    ):
        recovery.reset(
            db,
            get_vault(request),
            name=name,
            id_number=id_number,
            code=code,
            password=password,
            password_again=password_again,
            profile=get_settings(request).security_profile,
            client_address=client_address(request),
        )
    return RedirectResponse("/account/sign-in?reset=1", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str = "/account") -> HTMLResponse:
    return render(request, "identity/sign_in.html", form={"next": next}, error=None)


@router.post("/sign-in", dependencies=Posted)
def sign_in(
    request: Request,
    db: DbSession,
    id_number: Annotated[str, Form(max_length=40)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=512)] = "/account",
) -> Response:
    try:
        result = accounts.authenticate(
            db,
            get_vault(request),
            id_number=id_number,
            password=password,
            profile=get_settings(request).security_profile,
            client_address=client_address(request),
        )
    except QiluError as error:
        settle_refusal(db, error)
        form = {"id_number": id_number, "next": next}
        status = error.status_code if error.status_code < 500 else 400
        return render(request, "identity/sign_in.html", status, form=form, error=error)
    if not result.needs_second_factor and roles.is_civil_servant(db, result.account.person_id):
        # Civil servants must use a second factor: they set it up before anything else.
        response = signed_in(request, db, result.account, next, pending=True)
        response.headers["location"] = "/account/two-factor/setup"
        return response
    return signed_in(request, db, result.account, next, pending=result.needs_second_factor)


@router.get("/two-factor", response_class=HTMLResponse)
def two_factor_form(request: Request, viewer: HalfSignedIn, next: str = "/account") -> HTMLResponse:
    return render(request, "identity/two_factor.html", form={"next": next}, error=None)


@router.post("/two-factor/sms", dependencies=Posted)
def two_factor_sms(
    request: Request,
    db: DbSession,
    viewer: HalfSignedIn,
    next: Annotated[str, Form(max_length=512)] = "/account",
) -> Response:
    """Send a one-time code by SMS to the phone in the register, instead of the app's code."""
    form = {"next": next}
    with redraw_on_refusal(
        db, lambda error: render(request, "identity/two_factor.html", 429, form=form, error=error)
    ):
        masked = sms_codes.send_code(
            db, get_vault(request), viewer.account, client_address=client_address(request)
        )
    return render(request, "identity/two_factor.html", form=form, error=None, sent_to=masked)


@router.post("/two-factor", dependencies=Posted)
def two_factor(
    request: Request,
    db: DbSession,
    viewer: HalfSignedIn,
    code: Annotated[str, Form(max_length=32)],
    next: Annotated[str, Form(max_length=512)] = "/account",
) -> Response:
    try:
        second_factor.verify(
            db,
            get_vault(request),
            viewer.account,
            code,
            profile=get_settings(request).security_profile,
            client_address=client_address(request),
        )
    except QiluError as error:
        settle_refusal(db, error)
        form = {"next": next}
        return render(request, "identity/two_factor.html", 403, form=form, error=error)
    sessions.complete_second_factor(viewer)
    return RedirectResponse(safe_next(next), status_code=303)


@router.get("/confirm", response_class=HTMLResponse)
def confirm_form(
    request: Request, viewer: SignedIn, next: str = "/account", level: int = 3
) -> HTMLResponse:
    return _confirm_page(request, viewer, safe_next(next), level, error=None)


def _confirm_page(
    request: Request,
    viewer: SignedIn,
    target: str,
    level: int,
    *,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "identity/confirm.html",
        status,
        form={"next": target, "level": level},
        level_name=assurance.LEVELS.get(level, str(level)),
        has_second_factor=viewer.account.has_second_factor,
        reachable=level <= assurance.HIGHEST_ONLINE,
        error=error,
    )


@router.post("/confirm", dependencies=Posted)
def confirm(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    password: Annotated[str, Form(max_length=256)],
    code: Annotated[str, Form(max_length=32)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/account",
    level: Annotated[int, Form(ge=2, le=5)] = 3,
) -> Response:
    """Re-authentication before a sensitive action: the password, and the second factor when the
    account has one (which also steps the session up to level 4)."""
    target = safe_next(next)
    account = viewer.account
    settings = get_settings(request)
    with redraw_on_refusal(
        db, lambda error: _confirm_page(request, viewer, target, level, error=error, status=403)
    ):
        accounts.confirm_password(
            db,
            account,
            password,
            profile=settings.security_profile,
            client_address=client_address(request),
        )
        if account.has_second_factor:
            second_factor.verify(
                db,
                get_vault(request),
                account,
                code,
                profile=settings.security_profile,
                client_address=client_address(request),
            )
    sessions.reconfirm(viewer, assurance=4 if account.has_second_factor else account.assurance)
    if viewer.assurance < level:  # a password cannot reach what was asked: say so
        return _confirm_page(request, viewer, target, level, error=None, status=403)
    return RedirectResponse(target, status_code=303)


@router.get("/two-factor/setup", response_class=HTMLResponse)
def two_factor_setup_form(
    request: Request, db: DbSession, viewer: SettingUp, next: str = "/account"
) -> HTMLResponse:
    setup = second_factor.begin_setup(db, get_vault(request), viewer.account)
    return render(
        request,
        "identity/two_factor_setup.html",
        setup=setup,
        codes=None,
        error=None,
        required=viewer.second_factor_pending,
        next=safe_next(next),
    )


@router.post("/two-factor/setup", dependencies=Posted)
def two_factor_setup(
    request: Request,
    db: DbSession,
    viewer: SettingUp,
    code: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/account",
) -> Response:
    """Enrol a second factor. Inside an existing session the password is asked again: a new
    factor counts toward level 4 only once the password has been proven with it (otherwise a
    borrowed level-3 session could enrol its own factor and reach level 4)."""
    target = safe_next(next)
    settings = get_settings(request)
    try:
        if not viewer.second_factor_pending:
            accounts.confirm_password(
                db,
                viewer.account,
                password,
                profile=settings.security_profile,
                client_address=client_address(request),
            )
        codes = second_factor.confirm_setup(
            db, get_vault(request), viewer.account, code, client_address=client_address(request)
        )
    except QiluError as error:
        settle_refusal(db, error)
        setup = second_factor.begin_setup(db, get_vault(request), viewer.account)
        return render(
            request,
            "identity/two_factor_setup.html",
            400,
            setup=setup,
            codes=None,
            error=error,
            required=viewer.second_factor_pending,
            next=target,
        )
    sessions.complete_second_factor(viewer)
    return render(
        request,
        "identity/two_factor_setup.html",
        setup=None,
        codes=codes,
        error=None,
        next=target,
    )


@router.get("", response_class=HTMLResponse)
def account_page(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    return _account_page(request, db, viewer, message=None, error=None)


def _account_page(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    *,
    message: str | None,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    account = viewer.account
    profile = get_settings(request).security_profile
    actor = roles.staff(db, account.person_id)
    expired = passwords.is_expired(account.password_changed_at, datetime.now(UTC), profile)
    return render(
        request,
        "identity/account.html",
        status,
        person=account.person,
        masked_id=mask_id_number(id_number_of(get_vault(request), account.person)),
        viewer=viewer,
        live=sessions.live_sessions(db, account, profile=profile),
        consents=oidc_consents.consents_of(db, account.id),
        history=events_of_person(db, account.person_id, limit=20),
        event_name=events.event_name,
        device_name=events.device_name,
        address=events.shown_address,
        administers=roles.allows(actor, "admin.clients") or roles.allows(actor, "admin.roles"),
        is_staff=bool(actor.grants) or roles.is_civil_servant(db, account.person_id),
        message=message,
        error=error,
        password_expired=expired,
    )


@router.post("/password", dependencies=Posted)
def change_password(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    current: Annotated[str, Form(max_length=256)],
    password: Annotated[str, Form(max_length=256)],
    password_again: Annotated[str, Form(max_length=256)],
) -> Response:
    with redraw_on_refusal(
        db, lambda error: _account_page(request, db, viewer, message=None, error=error, status=400)
    ):
        if password != password_again:
            raise QiluError("password.mismatch", "两次输入的新密码不一致", field="password_again")
        accounts.change_password(
            db,
            get_vault(request),
            viewer.account,
            current=current,
            new=password,
            profile=get_settings(request).security_profile,
            client_address=client_address(request),
            keep_session_id=viewer.id,
        )
    return _account_page(
        request, db, viewer, message="密码已修改，其他设备上的登录已退出", error=None
    )


@router.post("/consents/withdraw", dependencies=Posted)
def withdraw_consent(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    client_id: Annotated[str, Form(max_length=64)],
) -> Response:
    """撤回授权: the system asks again next time, and its tokens for this person end now."""
    with redraw_on_refusal(
        db, lambda error: _account_page(request, db, viewer, message=None, error=error, status=404)
    ):
        oidc_consents.withdraw(
            db, viewer.account, client_id, client_address=client_address(request)
        )
    return _account_page(request, db, viewer, message="已撤回对该系统的授权", error=None)


@router.post("/sign-out", dependencies=Posted)
def sign_out(request: Request, db: DbSession, viewer: SignedIn) -> Response:
    return signed_out(request, db, viewer, None)


@router.post("/sign-out-everywhere", dependencies=Posted)
def sign_out_everywhere(request: Request, db: DbSession, viewer: SignedIn) -> Response:
    sessions.end_all_sessions(db, viewer.account, client_address=client_address(request))
    response = RedirectResponse("/account/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)
