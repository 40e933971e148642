"""The resident's side of the data platform in the portal (我的数据): the data-use record
(who read my data, when, why), consent to sensitive data (授权), given and withdrawn here, and
disputes of their own records (信息有误, `disputes`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.data import consent, disputes, reading
from qilu.errors import QiluError
from qilu.identity.access import Confirmed, SignedIn
from qilu.identity.models import Person
from qilu.identity.oidc_provider import CLAIM_LABELS
from qilu.identity.service import person_subject
from qilu.routes import (
    DbSession,
    RowId,
    check_csrf,
    end_of_day,
    get_vault,
    redraw_on_refusal,
    render,
)

router = APIRouter(prefix="/account/data", include_in_schema=False)
Posted = [Depends(check_csrf)]
REFUSALS = {
    "sharing.consent_missing": "未经您授权，已拒绝",
    "sharing.no_grant": "该部门无共享授权，已拒绝",
    "sharing.grant_expired": "共享授权已过期，已拒绝",
    "sharing.grant_revoked": "共享授权已撤销，已拒绝",
    "sharing.field_not_granted": "超出授权字段，已拒绝",
}


@router.get("", response_class=HTMLResponse)
def my_data(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    return _page(request, db, viewer.account.person, error=None)


def _page(
    request: Request,
    db: DbSession,
    person: Person,
    *,
    error: QiluError | None,
    status: int = 200,
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    vault = get_vault(request)
    record = reading.data_use_record(db, person_subject(vault, person))
    return render(
        request,
        "data/my_data.html",
        status,
        uses=record.uses,
        resources=record.resources,
        labels=record.labels,
        department_names=record.department_names,
        refusals=REFUSALS,
        claim_labels=CLAIM_LABELS,
        options=consent.options_for(db, person),
        consents=consent.consents_of(db, person),
        now=datetime.now(UTC),
        error=error,
        disputable=disputes.disputable_by(db, vault, person),
        my_disputes=disputes.disputes_of(db, vault, person),
        outcome_names=disputes.OUTCOME_NAMES,
        typed=typed or {},
    )


@router.post("/consents", dependencies=Posted)
def give_consent(
    request: Request,
    db: DbSession,
    viewer: Confirmed,
    resource: Annotated[str, Form(max_length=40)],
    consumer: Annotated[str, Form(max_length=32)],
    purpose: Annotated[str, Form(max_length=500)],
    valid_until: Annotated[str, Form(max_length=10)],
) -> Response:
    person = viewer.account.person
    with redraw_on_refusal(db, lambda error: _page(request, db, person, error=error, status=400)):
        until = end_of_day(
            valid_until,
            code="consent.valid_until",
            field="valid_until",
            message="请选择授权期限（年-月-日）",
        )
        consent.give(
            db, get_vault(request), person, resource_code=resource, consumer_code=consumer,
            purpose=purpose, valid_until=until,
        )  # fmt: skip
    return RedirectResponse("/account/data?given=1", status_code=303)


@router.post("/consents/{consent_id}/withdraw", dependencies=Posted)
def withdraw_consent(
    request: Request, db: DbSession, viewer: SignedIn, consent_id: RowId
) -> Response:
    consent.withdraw(db, get_vault(request), viewer.account.person, consent_id)
    return RedirectResponse("/account/data?withdrawn=1", status_code=303)


@router.post("/disputes", dependencies=Posted)
def raise_dispute(
    request: Request,
    db: DbSession,
    viewer: Confirmed,
    resource: Annotated[str, Form(max_length=40)],
    claim: Annotated[str, Form(max_length=2000)] = "",
    fields: Annotated[list[str] | None, Form(max_length=50)] = None,
) -> Response:
    """信息有误: the person disputes fields of their own record."""
    person = viewer.account.person
    typed = {"resource": resource, "claim": claim, "fields": fields or []}
    with redraw_on_refusal(
        db, lambda error: _page(request, db, person, error=error, status=400, typed=typed)
    ):
        disputes.raise_by_person(db, get_vault(request), person, resource, fields or [], claim)
    return RedirectResponse("/account/data?disputed=1#disputes", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
