"""What every route uses: the unit of work, settings, page rendering, CSRF."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from qilu.errors import InvalidRequest, QiluError, validation_problems
from qilu.pii import Vault
from qilu.settings import Settings

# Row ids are 64-bit signed integers in the store: a larger number from a request is refused as
# bad input before it can reach the database (where it would overflow).
MAX_ID = 2**63 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
CHINA = timedelta(hours=8)  # dates typed in forms are Beijing calendar days
CSRF_COOKIE = "qilu_csrf"
CSRF_FIELD = "csrf_token"
LARGE_FONT = "qilu_large"  # the cookie of the large-font mode (适老化)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request: committed if the route returns, rolled back if it raises,
    except that a refusal keeping its trail (see `QiluError.keeps_trail`) commits the trail.

    Opening a session touches no database, so it happens on the event loop; the ending (commit
    or rollback, and returning the connection) is one trip to a worker thread."""
    session = request.app.state.sessions()
    try:
        yield session
    except BaseException as error:
        await to_thread.run_sync(_end, session, error, limiter=_endings(request))
        raise
    await to_thread.run_sync(_end, session, None, limiter=_endings(request))


def _endings(request: Request) -> CapacityLimiter:
    """Threads for ending units of work, apart from the ones routes run in. Were commits to queue
    behind routes, a transaction holding a row lock (an audit chain head) could wait for a thread
    while every thread waits for that lock. One per database connection, so none ever waits."""
    limiter: CapacityLimiter | None = getattr(request.app.state, "endings", None)
    if limiter is None:
        settings: Settings = request.app.state.settings
        limiter = request.app.state.endings = CapacityLimiter(settings.db_pool_size * 2)
    return limiter


def _end(session: Session, error: BaseException | None) -> None:
    try:
        if error is None:
            session.commit()
        elif isinstance(error, QiluError):
            settle_refusal(session, error)
        else:
            session.rollback()
    finally:
        session.close()


def settle_refusal(session: Session, error: QiluError) -> None:
    """Keep the trail a refusal left (see `QiluError.keeps_trail`); drop anything else.

    Pages that answer a refusal with the form again call this before rendering."""
    if error.keeps_trail:
        session.commit()
    else:
        session.rollback()


# "function" scope: the unit of work ends (commits) before the response leaves, so whatever the
# client does next (exchange the code it was just given, follow the redirect) sees it.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


async def get_reader(request: Request) -> AsyncIterator[Session]:
    """A session for routes that only read (see `db.make_readers`). With no transaction open,
    closing it does no I/O, so it stays on the event loop."""
    session = request.app.state.readers()
    try:
        yield session
    finally:
        session.close()


ReadSession = Annotated[Session, Depends(get_reader, scope="function")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def end_of_day(text: str, *, code: str, field: str, message: str) -> datetime:
    """The last moment of a YYYY-MM-DD day typed in a form (Beijing time), as UTC; a malformed
    date is refused with `code`, `field` and `message`."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as error:
        raise QiluError(code, message, field=field) from error
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC) - CHINA


def beijing(moment: datetime, pattern: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time as a resident reads it: Beijing time (a template filter)."""
    return (moment.astimezone(UTC) + CHINA).strftime(pattern)


def measured(value: float | None) -> str:
    """A measured value as people read it (a template filter): at most three decimals, no
    trailing zeros (27.168 km, 212 mg/m³); "—" for none."""
    if value is None:
        return "—"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop, for sync routes whose field names vary (the
    fields of a service's form). Starlette keeps it, so reading it twice costs nothing."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


async def raw_body(request: Request) -> bytes:
    """The request's body, read only when this dependency's turn comes: an API declares it
    after the dependency that authenticates the caller, so nothing a stranger sends is parsed
    (FastAPI reads a declared body model before any dependency runs)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]
Model = TypeVar("Model", bound=BaseModel)


def parsed(model: type[Model], raw: bytes) -> Model:
    """`raw` JSON as `model`, or `InvalidRequest` naming each field in Chinese."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as error:
        raise InvalidRequest(validation_problems(list(error.errors()))) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body read with `parsed` (FastAPI cannot see it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


class CsrfRejected(QiluError):
    status_code = 403


async def check_csrf(request: Request) -> None:
    """Double-submit check for every form post: the field must equal this browser's cookie."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.cookies.get(CSRF_COOKIE)
    if not (isinstance(sent, str) and expected and secrets.compare_digest(sent, expected)):
        raise CsrfRejected(
            "csrf.invalid", "表单已过期或来源不明：请刷新页面后重新提交", field=CSRF_FIELD
        )


class Redrawn(Exception):
    """A refusal answered with its page again (the form, what was typed, the error by its
    field); the web layer sends `response` as it is."""

    def __init__(self, response: Response):
        super().__init__("redrawn")
        self.response = response


@contextmanager
def redraw_on_refusal(db: Session, page: Callable[[QiluError], Response]) -> Iterator[None]:
    """The one shape of every form post: do the work; on a refusal keep its trail (and nothing
    else, `settle_refusal`) and answer with `page(error)`."""
    try:
        yield
    except QiluError as error:
        settle_refusal(db, error)
        raise Redrawn(page(error)) from None
