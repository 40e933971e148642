"""What every route uses: the request's database session and page rendering."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from qilu.errors import QiluError


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed if the route returns, rolled back if it raises,
    except that a refusal keeping its trail (see `QiluError.keeps_trail`) commits the trail."""
    with request.app.state.sessions() as session:
        try:
            yield session
        except QiluError as error:
            session.commit() if error.keeps_trail else session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
        session.commit()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, context, status_code=status_code)
