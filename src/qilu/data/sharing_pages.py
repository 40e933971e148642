"""Workbench pages for sharing: ask for a resource's fields, and (stewards) approve, refuse or
revoke what others asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from qilu.data import catalog, sharing
from qilu.data.models import ShareGrant
from qilu.data.pages import NAMES, require_staff
from qilu.errors import QiluError
from qilu.identity import roles
from qilu.identity.access import SignedIn
from qilu.identity.models import Department
from qilu.routes import DbSession, check_csrf, end_of_day, render, settle_refusal

router = APIRouter(prefix="/workbench/sharing", include_in_schema=False)
Posted = [Depends(check_csrf)]
STATUS = {"pending": "待审批", "granted": "已批准", "refused": "未批准", "revoked": "已撤销"}


def requesting_departments(db: DbSession, person_id: int) -> list[Department]:
    """The departments this person may ask for data on behalf of."""
    grants = roles.roles_of(db, person_id)
    ids = {g.department_id for g in grants if roles.can([g], "data.request_sharing")}
    return list(db.scalars(select(Department).where(Department.id.in_(ids)))) if ids else []


@router.get("", response_class=HTMLResponse)
def sharing_page(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    require_staff(db, viewer)
    person = viewer.account.person_id
    mine = [d.id for d in requesting_departments(db, person)]
    requests = list(
        db.scalars(
            select(ShareGrant)
            .where(ShareGrant.consumer_id.in_(mine))
            .order_by(ShareGrant.requested_at.desc())
        )
    )
    pending = sharing.pending_for(db, person)
    schemas: dict[int, dict[str, str]] = {}
    for grant in [*requests, *pending]:
        if grant.resource_id not in schemas:
            fields = catalog.schema_of(db, grant.resource)
            schemas[grant.resource_id] = {f.name: f.label for f in fields}
    return render(
        request,
        "data/sharing.html",
        requests=requests,
        pending=pending,
        labels={
            g.id: [
                schemas[g.resource_id].get(n, n) + ("（明文）" if n in g.clear_fields else "")
                for n in g.fields
            ]
            for g in [*requests, *pending]
        },
        status_names=STATUS,
        now=datetime.now(UTC),
    )


@router.post("/requests/{code}", dependencies=Posted)
def ask(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    code: str,
    consumer: Annotated[str, Form(max_length=32)],
    purpose: Annotated[str, Form(max_length=500)],
    legal_basis: Annotated[str, Form(max_length=500)],
    valid_until: Annotated[str, Form(max_length=10)],
    fields: Annotated[list[str] | None, Form()] = None,
    clear_fields: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
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
            by=viewer.account.person_id,
        )
    except QiluError as error:
        settle_refusal(db, error)
        resource = catalog.get_resource(db, code)
        return render(
            request,
            "data/sharing_form.html",
            400,
            resource=resource,
            fields=catalog.schema_of(db, resource),
            departments=requesting_departments(db, viewer.account.person_id),
            names=NAMES,
            error=error,
        )
    return RedirectResponse("/workbench/sharing", status_code=303)


@router.get("/requests/{code}", response_class=HTMLResponse)
def ask_form(request: Request, db: DbSession, viewer: SignedIn, code: str) -> HTMLResponse:
    require_staff(db, viewer)
    resource = catalog.get_resource(db, code)
    return render(
        request,
        "data/sharing_form.html",
        resource=resource,
        fields=catalog.schema_of(db, resource),
        departments=requesting_departments(db, viewer.account.person_id),
        names=NAMES,
        error=None,
    )


@router.post("/{grant_id}/decision", dependencies=Posted)
def decide(
    db: DbSession,
    viewer: SignedIn,
    grant_id: int,
    decision: Annotated[str, Form(pattern="^(approve|refuse)$")],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    sharing.decide(
        db, grant_id, approve=decision == "approve", reason=reason, by=viewer.account.person_id
    )
    return RedirectResponse("/workbench/sharing", status_code=303)


@router.post("/{grant_id}/revoke", dependencies=Posted)
def revoke(
    db: DbSession,
    viewer: SignedIn,
    grant_id: int,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    sharing.revoke(db, grant_id, reason=reason, by=viewer.account.person_id)
    return RedirectResponse("/workbench/sharing", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
