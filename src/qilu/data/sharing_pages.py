"""Workbench pages for sharing: ask for a resource's fields, and (stewards) approve, refuse or
revoke what others asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.data import catalog, sharing
from qilu.data.pages import NAMES
from qilu.errors import QiluError, Refused
from qilu.identity import roles
from qilu.identity.access import AnyStaff, require
from qilu.identity.service import departments_of
from qilu.routes import (
    DbSession,
    RowId,
    check_csrf,
    end_of_day,
    redraw_on_refusal,
    render,
)
from qilu.workdays import beijing_today

router = APIRouter(prefix="/workbench/sharing", include_in_schema=False)
Posted = [Depends(check_csrf)]
Requester = Annotated[roles.Staff, Depends(require("data.request_sharing"))]
Steward = Annotated[roles.Staff, Depends(require("data.approve_sharing"))]
STATUS = {"pending": "待审批", "granted": "已批准", "refused": "未批准", "revoked": "已撤销"}


@router.get("", response_class=HTMLResponse)
def sharing_page(request: Request, db: DbSession, actor: AnyStaff) -> HTMLResponse:
    return _sharing_page(request, db, actor)


def _sharing_page(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    *,
    error: QiluError | None = None,
    typed: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The page; after a refused decision, with the error beside the request it was about and
    what was typed kept (`typed`: grant, rule, reason)."""
    requests = sharing.requests_of(db, actor)
    pending = sharing.pending_for(db, actor)
    schemas: dict[int, dict[str, str]] = {}
    for grant in [*requests, *pending]:
        if grant.resource_id not in schemas:
            fields = catalog.schema_of(db, grant.resource)
            schemas[grant.resource_id] = {f.name: f.label for f in fields}
    now = datetime.now(UTC)
    return render(
        request,
        "data/sharing.html",
        status,
        requests=requests,
        pending=pending,
        labels={
            g.id: [
                schemas[g.resource_id].get(n, n) + ("（明文）" if n in g.clear_fields else "")
                for n in g.fields
            ]
            for g in [*requests, *pending]
        },
        field_labels=schemas,
        status_names=STATUS,
        rules=sharing.REFUSAL_RULES,
        today=beijing_today(now),
        now=now,
        error=error,
        typed=typed or {},
    )


@router.post("/requests/{code}", dependencies=Posted)
def ask(
    request: Request,
    db: DbSession,
    actor: Requester,
    code: str,
    consumer: Annotated[str, Form(max_length=32)] = "",
    purpose: Annotated[str, Form(max_length=500)] = "",
    legal_basis: Annotated[str, Form(max_length=500)] = "",
    valid_until: Annotated[str, Form(max_length=10)] = "",
    fields: Annotated[list[str] | None, Form()] = None,
    clear_fields: Annotated[list[str] | None, Form()] = None,
    may_list: Annotated[str, Form(max_length=8)] = "",
    row_field: Annotated[str, Form(max_length=64)] = "",
    row_value: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    typed = {
        "consumer": consumer,
        "purpose": purpose,
        "legal_basis": legal_basis,
        "valid_until": valid_until,
        "fields": fields or [],
        "clear_fields": clear_fields or [],
        "may_list": may_list,
        "row_field": row_field,
        "row_value": row_value,
    }
    with redraw_on_refusal(
        db, lambda error: _ask_form(request, db, actor, code, error=error, form=typed, status=400)
    ):
        until = end_of_day(
            valid_until,
            code="sharing.valid_until",
            field="valid_until",
            message="请按 年-月-日 填写使用期限",
        )
        sharing.request_access(
            db,
            code,
            consumer=consumer,
            fields=fields or [],
            clear_fields=clear_fields or [],
            purpose=purpose,
            legal_basis=legal_basis,
            valid_until=until,
            may_list=may_list == "yes",
            row_conditions={row_field: row_value} if row_field else {},
            actor=actor,
        )
    return RedirectResponse("/workbench/sharing", status_code=303)


@router.get("/requests/{code}", response_class=HTMLResponse)
def ask_form(request: Request, db: DbSession, actor: Requester, code: str) -> HTMLResponse:
    return _ask_form(request, db, actor, code, error=None)


def _ask_form(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    code: str,
    *,
    error: QiluError | None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    resource = catalog.get_resource(db, code)
    return render(
        request,
        "data/sharing_form.html",
        status,
        resource=resource,
        fields=catalog.schema_of(db, resource),
        departments=departments_of(db, roles.departments_for(actor, "data.request_sharing")),
        names=NAMES,
        error=error,
        form=form or {},
    )


@router.post("/{grant_id}/decision", dependencies=Posted)
def decide(
    request: Request,
    db: DbSession,
    actor: Steward,
    grant_id: RowId,
    decision: Annotated[str, Form(pattern="^(approve|refuse)$")],
    rule: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    typed = {"grant": grant_id, "rule": rule, "reason": reason}

    def again(error: QiluError) -> Response:
        if isinstance(error, Refused):  # not this steward's to decide: no form to fix
            raise error
        return _sharing_page(request, db, actor, error=error, typed=typed, status=400)

    with redraw_on_refusal(db, again):
        sharing.decide(
            db, grant_id, approve=decision == "approve", rule=rule, reason=reason, actor=actor
        )
    return RedirectResponse("/workbench/sharing", status_code=303)


@router.post("/{grant_id}/revoke", dependencies=Posted)
def revoke(
    db: DbSession,
    actor: Steward,
    grant_id: RowId,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    sharing.revoke(db, grant_id, reason=reason, actor=actor)
    return RedirectResponse("/workbench/sharing", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
