"""Pages for acting as an enterprise: switch identity, and (legal representatives) manage agents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.errors import QiluError
from qilu.identity import enterprises
from qilu.identity.access import Confirmed, ConfirmedStrongly, SignedIn
from qilu.routes import (
    CHINA,
    DbSession,
    RowId,
    check_csrf,
    client_address,
    end_of_day,
    get_vault,
    redraw_on_refusal,
    render,
    settle_refusal,
)

router = APIRouter(prefix="/account/enterprises", include_in_schema=False)
Posted = [Depends(check_csrf)]


@router.get("", response_class=HTMLResponse)
def identities_page(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    return _identities(request, db, viewer, error=None)


def _identities(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    *,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    acting = enterprises.acting_identity(db, viewer, client_address=client_address(request))
    return render(
        request,
        "identity/enterprises.html",
        status,
        identities=enterprises.identities_of(db, viewer.account.person_id),
        acting=acting,
        scopes=enterprises.SCOPES,
        error=error,
    )


@router.post("/act-as", dependencies=Posted)
def act_as(
    request: Request, db: DbSession, viewer: SignedIn, uscc: Annotated[str, Form()] = ""
) -> Response:
    with redraw_on_refusal(
        db, lambda error: _identities(request, db, viewer, error=error, status=error.status_code)
    ):
        enterprises.act_as(db, viewer, uscc or None, client_address=client_address(request))
    return RedirectResponse("/account/enterprises", status_code=303)


@router.get("/{uscc}/agents", response_class=HTMLResponse)
def agents_page(request: Request, db: DbSession, viewer: SignedIn, uscc: str) -> HTMLResponse:
    return _agents(request, db, viewer, uscc, form={}, error=None)


def _agents(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    uscc: str,
    *,
    form: dict[str, object],
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    entity = enterprises.led_entity(db, viewer.account.person_id, uscc)
    now = datetime.now(UTC)
    return render(
        request,
        "identity/agents.html",
        status,
        entity=entity,
        grants=enterprises.agents_of(db, entity),
        now=now,
        scopes=enterprises.SCOPES,
        form=form,
        error=error,
        default_until=(now + CHINA + timedelta(days=90)).date().isoformat(),
    )


@router.post("/{uscc}/agents", dependencies=Posted)
def authorise(
    request: Request,
    db: DbSession,
    viewer: Confirmed,
    uscc: str,
    agent_name: Annotated[str, Form(max_length=64)],
    agent_id_number: Annotated[str, Form(max_length=40)],
    valid_until: Annotated[str, Form(max_length=10)],
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    form: dict[str, object] = {
        "agent_name": agent_name,
        "agent_id_number": agent_id_number,
        "valid_until": valid_until,
        "scopes": scopes or [],
    }
    with redraw_on_refusal(
        db, lambda error: _agents(request, db, viewer, uscc, form=form, error=error, status=400)
    ):
        entity = enterprises.led_entity(db, viewer.account.person_id, uscc)
        enterprises.authorise_agent(
            db,
            get_vault(request),
            entity,
            granted_by=viewer.account.person_id,
            agent_name=agent_name,
            agent_id_number=agent_id_number,
            scopes=scopes or [],
            valid_until=end_of_day(
                valid_until,
                code="agent.valid_until",
                field="valid_until",
                message="请按 年-月-日 填写授权截止日期",
            ),
        )
    return RedirectResponse(f"/account/enterprises/{uscc}/agents", status_code=303)


@router.post("/{uscc}/agents/{grant_id}/revoke", dependencies=Posted)
def revoke(
    request: Request, db: DbSession, viewer: SignedIn, uscc: str, grant_id: RowId
) -> Response:
    entity = enterprises.led_entity(db, viewer.account.person_id, uscc)
    enterprises.revoke_agent(db, entity, grant_id, by=viewer.account.person_id)
    return RedirectResponse(f"/account/enterprises/{uscc}/agents", status_code=303)


@router.get("/{uscc}/representative", response_class=HTMLResponse)
def representative_page(
    request: Request, db: DbSession, viewer: ConfirmedStrongly, uscc: str
) -> HTMLResponse:
    entity = enterprises.led_entity(db, viewer.account.person_id, uscc)
    return render(request, "identity/representative.html", entity=entity, form={}, error=None)


@router.post("/{uscc}/representative", dependencies=Posted)
def change_representative(
    request: Request,
    db: DbSession,
    viewer: ConfirmedStrongly,
    uscc: str,
    name: Annotated[str, Form(max_length=64)],
    id_number: Annotated[str, Form(max_length=40)],
) -> Response:
    entity = enterprises.led_entity(db, viewer.account.person_id, uscc)
    try:
        enterprises.change_legal_representative(
            db,
            get_vault(request),
            entity,
            by=viewer,
            name=name,
            id_number=id_number,
            client_address=client_address(request),
        )
    except QiluError as error:
        settle_refusal(db, error)
        form = {"name": name, "id_number": id_number}
        return render(
            request, "identity/representative.html", 400, entity=entity, form=form, error=error
        )
    return RedirectResponse("/account/enterprises?changed=representative", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
