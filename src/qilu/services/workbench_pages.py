"""The workbench's 办件 pages (the 山东通 role): a queue per department and role with time-limit
clocks, a case with everything needed to act on it, the post-check queue, applying at the
window for a walk-in (一窗受理), and rectification tasks from bad ratings."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.errors import QiluError, Refused
from qilu.filestore import file_store
from qilu.identity import roles
from qilu.identity.access import AnyStaff, require
from qilu.identity.models import Person
from qilu.identity.service import find_person
from qilu.routes import (
    MAX_ID,
    DbSession,
    PostedForm,
    RowId,
    check_csrf,
    get_vault,
    redraw_on_refusal,
    render,
)
from qilu.services import (
    applications,
    archive,
    bookings,
    cases,
    catalog,
    documents,
    licences,
    queues,
    ratings,
    showing,
)
from qilu.services.document_pages import pdf_response
from qilu.services.portal_pages import answers_from
from qilu.services.specs import shipped_catalog
from qilu.workdays import beijing_today, clock

router = APIRouter(prefix="/workbench", include_in_schema=False)
Posted = [Depends(check_csrf)]
Desk = Annotated[roles.Staff, Depends(require("applications.view"))]
Window = Annotated[roles.Staff, Depends(require("applications.accept"))]
Issuer = Annotated[roles.Staff, Depends(require("licences.manage"))]
ACTION_STYLES = {"not_accept", "refuse", "correct"}  # shown as secondary, need a reason


@router.get("/cases", response_class=HTMLResponse)
def queue(
    request: Request,
    db: DbSession,
    actor: Desk,
    tab: str = "",
    q: Annotated[str, Query(max_length=60)] = "",
    due: Annotated[str, Query(max_length=8)] = "",
    department: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """The queues in tabs with their counts, the nearest limit first; a search across them,
    filtered by time limit and by department (one of the viewer's own: a department they do
    not work in is not a filter, it is ignored)."""
    tabs = {key: name for key, (name, _) in queues.QUEUES.items()}
    tabs |= {"received": "代收（全省通办）", "postcheck": "容缺后核"}
    mine = queues.desk_departments(actor)
    departments = [d for d in mine if str(d) == department] or mine
    tab = tab if tab in tabs else queues.first_tab(actor, mine)
    return render(
        request,
        "services/queue.html",
        rows=queues.queue(db, departments, tab, search=q, due=due),
        counts=queues.counts(db, departments, list(tabs)),
        q=q,
        due=due if due in queues.DUE_FILTERS else "",
        due_filters=queues.DUE_FILTERS,
        department=department if len(departments) == 1 and len(mine) > 1 else "",
        choices=sorted(
            {(g.department_id, g.department_name) for g in actor.grants if g.department_id in mine},
            key=lambda pair: pair[1],
        ),
        tab=tab,
        tabs=tabs,
        states=cases.STATE_NAMES,
        today=beijing_today(),
        clock=clock,
        can_manage_licences=roles.allows(actor, "licences.manage"),
        departments=sorted(
            {g.department_name for g in actor.grants if g.department_id in departments}
        ),
    )


@router.get("/bookings", response_class=HTMLResponse)
def day_bookings(
    request: Request, db: DbSession, actor: Desk, day: Annotated[str, Query(max_length=10)] = ""
) -> HTMLResponse:
    """The day's bookings at the windows this person works (today by default)."""
    try:
        chosen = date.fromisoformat(day) if day else beijing_today()
    except ValueError:
        chosen = beijing_today()
    windows = roles.departments_for(actor, "applications.accept")
    return render(
        request,
        "services/day_bookings.html",
        rows=bookings.day_list(db, windows, chosen),
        day=chosen,
        periods=bookings.PERIODS,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, db: DbSession, actor: Desk, case_id: RowId) -> HTMLResponse:
    return _case(request, db, actor, case_id, error=None)


def _case(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    case_id: RowId,
    *,
    error: QiluError | None,
    status: int = 200,
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The case page; after a refusal, with what was typed back in its field."""
    case = queues.case_for(db, case_id, actor)
    application = case.application
    plan = applications.plan_of(db, application)
    steps = cases.steps_of(db, case.id)
    own_fields = set(case.item.spec["fields"]) | {f.key for f in plan.fields[:5]}
    return render(
        request,
        "services/case.html",
        status_code=status,
        case=case,
        application=application,
        fields=[f for f in plan.fields if f.key in own_fields],
        materials=applications.materials_of(db, application),
        needed=case.item.spec["materials"],
        steps=steps,
        people=queues.names_of(
            db,
            [application.applicant_person_id]
            + [s.actor_person_id for s in steps if s.actor_person_id],
        ),
        applicant_id=application.applicant_person_id,
        actions=queues.actions_for(case, actor),
        redo_choices=cases.redo_choices(case),
        issued=documents.of_cases(db, [case.id])[case.id],
        correction_days=cases.CORRECTION_DAYS,
        labels={name: spec.label for name, spec in cases.ACTIONS.items()},
        styles=ACTION_STYLES,
        states=cases.STATE_NAMES,
        today=beijing_today(),
        clock=clock,
        error=error,
        typed=typed or {},
        can_post_check=case.post_check == "pending"
        and roles.allows(actor, "applications.accept", roles.Target.of(case.department)),
    )


@router.post("/cases/{case_id}/act", dependencies=Posted)
def act(
    request: Request,
    db: DbSession,
    actor: Desk,
    case_id: RowId,
    action: Annotated[str, Form(max_length=32)],
    version: Annotated[int, Form(ge=0, le=MAX_ID)],
    reason: Annotated[str, Form(max_length=2000)] = "",
    promise: Annotated[str, Form(max_length=8)] = "",
    redo: Annotated[list[str] | None, Form(max_length=60)] = None,
) -> Response:
    with redraw_on_refusal(
        db,
        lambda error: _case(
            request,
            db,
            actor,
            case_id,
            error=error,
            status=409 if error.code == "case.conflict" else 400,
            typed={"reason": reason, "action": action, "redo": redo or []},
        ),
    ):
        case = cases.act(
            db,
            get_vault(request),
            case_id,
            action,
            actor_person_id=actor.person_id,
            expected_version=version,
            reason=reason,
            promise_missing=promise == "yes",
            redo=redo,
        )
    archive.archive_when_finished(db, case.application)
    return RedirectResponse(f"/workbench/cases/{case_id}?done={action}", status_code=303)


@router.post("/cases/{case_id}/post-check", dependencies=Posted)
def post_check(
    request: Request,
    db: DbSession,
    actor: Window,
    case_id: RowId,
    outcome: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    with redraw_on_refusal(
        db,
        lambda error: _case(
            request, db, actor, case_id, error=error, status=400, typed={"check": reason}
        ),
    ):
        cases.post_check(
            db,
            case_id,
            actor_person_id=actor.person_id,
            passed=outcome == "passed",
            note=reason,
        )
    return RedirectResponse(f"/workbench/cases/{case_id}?done=post_check", status_code=303)


@router.get("/cases/{case_id}/materials/{material_id}")
def material_file(
    request: Request, db: DbSession, actor: Desk, case_id: RowId, material_id: RowId
) -> Response:
    material = queues.case_material(db, case_id, material_id, actor)
    assert material.digest is not None
    content = file_store(request.app.state.settings.data_dir).get(material.digest)
    return Response(
        content,
        media_type=material.content_type or "application/octet-stream",
        headers={"Content-Disposition": "attachment"},
    )


@router.get("/cases/{case_id}/documents/{number}.pdf")
def document_pdf(
    request: Request, db: DbSession, actor: Desk, case_id: RowId, number: str
) -> Response:
    """A document issued on the case, to print for someone at the window."""
    case = queues.case_for(db, case_id, actor)
    return pdf_response(request, documents.on_case(db, case, number))


@router.get("/window", response_class=HTMLResponse)
def window_page(request: Request, db: DbSession, actor: Window, q: str = "") -> HTMLResponse:
    return _window(request, db, actor, q=q[:100], error=None)


def _window(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    *,
    q: str,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    hits = catalog.search(db, q, subject="person") if q.strip() else []
    accepting = set(roles.departments_for(actor, "applications.accept"))
    return render(
        request,
        "services/window.html",
        status_code=status,
        q=q,
        hits=hits,
        error=error,
        windows=[g for g in actor.grants if g.department_id in accepting],
    )


@router.post("/window", dependencies=Posted)
def window_start(
    request: Request,
    db: DbSession,
    actor: Window,
    id_number: Annotated[str, Form(max_length=40)],
    target: Annotated[str, Form(max_length=80)],
    department_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    q: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """一窗受理: the clerk starts an application for a walk-in resident, who is found by the ID
    number they present; a chain's questionnaire is answered with them on the next page (which
    carries that number, never a row id a clerk could change), an item's form directly."""
    with redraw_on_refusal(
        db, lambda error: _window(request, db, actor, q=q, error=error, status=400)
    ):
        department = queues.window_of(db, actor, department_id)
        person = find_person(db, get_vault(request), id_number)
        kind, _, code = target.partition(":")
        if kind == "chain":
            return _window_chain(request, db, code, person, id_number, department.id, error=None)
        started = applications.start(
            db,
            get_vault(request),
            applicant=person,
            item_code=code,
            channel="window",
            clerk_person_id=actor.person_id,
            receiving_department_id=department.id,
        )
    return RedirectResponse(f"/services/applications/{started.application.id}", status_code=303)


def _window_chain(
    request: Request,
    db: DbSession,
    code: str,
    applicant: Person,
    id_number: str,
    department_id: int,
    *,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    chain = catalog.current_chain(db, code)
    return render(
        request,
        "services/window_chain.html",
        status_code=status,
        chain=chain,
        spec=chain.spec,
        applicant=applicant,
        id_number=id_number,
        department=department_id,
        error=error,
        catalog_fields=shipped_catalog().fields,
    )


@router.post("/window/chains/{code}", dependencies=Posted)
def window_chain_start(
    request: Request,
    db: DbSession,
    actor: Window,
    code: str,
    form: PostedForm,
    id_number: Annotated[str, Form(max_length=40)],
    department: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> Response:
    window = queues.window_of(db, actor, department)
    applicant = find_person(db, get_vault(request), id_number)
    with redraw_on_refusal(
        db,
        lambda error: _window_chain(
            request, db, code, applicant, id_number, window.id, error=error, status=400
        ),
    ):
        started = applications.start(
            db,
            get_vault(request),
            applicant=applicant,
            chain_code=code,
            answers=answers_from(form),
            channel="window",
            clerk_person_id=actor.person_id,
            receiving_department_id=window.id,
        )
    return RedirectResponse(f"/services/applications/{started.application.id}", status_code=303)


@router.get("/licences", response_class=HTMLResponse)
def issued_licences(
    request: Request, db: DbSession, actor: Issuer, q: Annotated[str, Query(max_length=120)] = ""
) -> HTMLResponse:
    """The licences the actor's departments issued, to find one and act on it."""
    return render(
        request,
        "services/issued_licences.html",
        held=licences.issued_by(db, actor, q),
        q=q,
        names=licences.STATE_NAMES,
    )


@router.get("/licences/{number}", response_class=HTMLResponse)
def issued_licence(request: Request, db: DbSession, actor: Issuer, number: str) -> HTMLResponse:
    return _issued_licence(request, db, actor, number, error=None)


def _issued_licence(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    number: str,
    *,
    error: QiluError | None,
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    licence = licences.managed(db, actor, number[:64])
    events, uses = licences.history_of(db, licence)
    return render(
        request,
        "services/issued_licence.html",
        status_code=200 if error is None else 403 if isinstance(error, Refused) else 400,
        licence=licence,
        events=events,
        uses=uses,
        content=showing.labelled_content(licence),
        names=licences.STATE_NAMES,
        actions=licences.ACTION_NAMES,
        error=error,
        typed=typed or {},
    )


@router.post("/licences/{number}", dependencies=Posted)
def licence_step(
    request: Request,
    db: DbSession,
    actor: Issuer,
    number: str,
    form: PostedForm,
) -> Response:
    """暂扣, 恢复, 延续, 变更 or 注销 one licence (its content fields named `c.<key>`)."""
    action = str(form.get("action") or "")[:10]
    reason = str(form.get("reason") or "")[:500]
    typed = {k: str(v)[:200] for k, v in form.items()}
    with redraw_on_refusal(
        db, lambda error: _issued_licence(request, db, actor, number, error=error, typed=typed)
    ):
        years = str(form.get("years") or "").strip()
        if action == "renew" and not years.isdigit():
            raise QiluError("licence.years", "请填写延续年限（0 为长期）", field="years")
        content = {
            key[2:]: str(value).strip()[:200]
            for key, value in form.items()
            if key.startswith("c.") and str(value).strip()
        }
        licences.manage(
            db,
            get_vault(request),
            actor,
            number[:64],
            action,
            reason=reason,
            today=beijing_today(),
            years=int(years) if years.isdigit() else None,
            content=content,
        )
    return RedirectResponse(f"/workbench/licences/{number[:64]}?done={action}", status_code=303)


@router.get("/rectifications", response_class=HTMLResponse)
def rectifications(request: Request, db: DbSession, actor: AnyStaff) -> HTMLResponse:
    departments = sorted({g.department_id for g in actor.grants})
    is_admin = roles.allows(actor, "ratings.appeals", roles.PROVINCE)
    tasks = ratings.tasks_for(db, departments)
    appealed = ratings.appealed(db) if is_admin else []
    return render(
        request,
        "services/rectifications.html",
        tasks=tasks,
        appealed=appealed,
        today=beijing_today(),
        clock=clock,
        roll_up=ratings.roll_up(db),
    )


@router.post("/rectifications/{task_id}", dependencies=Posted)
def rectification_step(
    db: DbSession,
    actor: AnyStaff,
    task_id: RowId,
    posted: PostedForm,
    version: Annotated[int, Form(ge=0, le=MAX_ID)],
) -> Response:
    form = {k: str(v) for k, v in posted.items()}
    person = actor.person_id
    step = form.get("step")
    if step == "fix":
        ratings.fix(
            db,
            task_id,
            actor_person_id=person,
            expected_version=version,
            fix_note=form.get("fix_note", ""),
            callback_note=form.get("callback_note", ""),
        )
    elif step == "appeal":
        ratings.appeal(
            db,
            task_id,
            actor_person_id=person,
            expected_version=version,
            reason=form.get("reason", ""),
        )
    else:
        ratings.decide_appeal(
            db,
            task_id,
            actor_person_id=person,
            expected_version=version,
            upheld=step == "uphold",
            note=form.get("note", ""),
        )
    return RedirectResponse("/workbench/rectifications", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
