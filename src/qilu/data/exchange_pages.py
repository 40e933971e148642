"""Workbench page of the exchange's monitoring (共享调用监测): a department's stewards and
leaders see who uses their data and how much, what their own systems call, and how far their
change subscriptions lag (`monitoring`)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from qilu.data import monitoring
from qilu.identity import roles
from qilu.identity.access import AnyStaff
from qilu.routes import DbSession, render

router = APIRouter(prefix="/workbench/exchange", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def exchange_page(request: Request, db: DbSession, actor: AnyStaff) -> HTMLResponse:
    departments = sorted(
        {
            *roles.departments_for(actor, "data.publish"),
            *roles.departments_for(actor, "data.request_sharing"),
        }
    )
    return render(
        request,
        "data/exchange.html",
        usage=monitoring.usage(db, departments) if departments else [],
        subscriptions=monitoring.subscriptions_touching(db, departments) if departments else [],
        hours=int(monitoring.WINDOW.total_seconds() // 3600),
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
