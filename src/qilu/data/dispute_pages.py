"""Workbench pages for 数据异议: a providing department's stewards see the disputes of their
resources, oldest deadline first, and answer each — 核实无误, 已更正 (with the corrected values)
or 不予受理 — with the reason (`disputes`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.data import disputes
from qilu.data.pages import Steward
from qilu.errors import QiluError
from qilu.routes import (
    DbSession,
    PostedForm,
    RowId,
    check_csrf,
    get_vault,
    redraw_on_refusal,
    render,
)
from qilu.workdays import beijing_today, clock

router = APIRouter(prefix="/workbench/disputes", include_in_schema=False)
CORRECTION = "c."  # the form names a corrected value c.<field>


@router.get("", response_class=HTMLResponse)
def disputes_page(request: Request, db: DbSession, actor: Steward) -> HTMLResponse:
    return _page(request, db, actor, error=None)


def _page(
    request: Request,
    db: DbSession,
    actor: Any,
    *,
    error: QiluError | None,
    status: int = 200,
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    today = beijing_today()
    waiting = disputes.waiting_for(db, get_vault(request), actor)
    return render(
        request,
        "data/disputes.html",
        status,
        waiting=waiting,
        clocks={s.dispute.id: clock(s.dispute.due_on, today) for s in waiting},
        outcomes=[(o.value, o.label) for o in disputes.Outcome],
        error=error,
        typed=typed or {},
    )


@router.post("/{dispute_id}", dependencies=[Depends(check_csrf)])
def answer_dispute(
    request: Request, db: DbSession, actor: Steward, dispute_id: RowId, form: PostedForm
) -> Response:
    typed = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    with redraw_on_refusal(
        db,
        lambda error: _page(
            request, db, actor, error=error, status=400, typed={"id": dispute_id, **typed}
        ),
    ):
        disputes.answer(
            db,
            get_vault(request),
            dispute_id,
            outcome=typed.get("outcome", ""),
            reason=typed.get("reason", ""),
            corrections={
                k.removeprefix(CORRECTION): v for k, v in typed.items() if k.startswith(CORRECTION)
            },
            actor=actor,
        )
    return RedirectResponse("/workbench/disputes?answered=1", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
