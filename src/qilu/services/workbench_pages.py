"""The workbench's 办件 pages (the 山东通 role): a queue per department and role with time-limit
clocks, a case with everything needed to act on it, the post-check queue, applying at the
window for a walk-in (一窗受理), and rectification tasks from bad ratings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from qilu.errors import NotFound, QiluError, Refused
from qilu.filestore import file_store
from qilu.identity import roles
from qilu.identity.access import SignedIn
from qilu.identity.models import Person
from qilu.identity.service import find_person
from qilu.routes import DbSession, PostedForm, check_csrf, get_vault, render, settle_refusal
from qilu.services import applications, archive, cases, catalog, queues, ratings
from qilu.services.models import ApplicationMaterial
from qilu.services.portal_pages import answers_from
from qilu.services.workdays import beijing_today, clock

router = APIRouter(prefix="/workbench", include_in_schema=False)
Posted = [Depends(check_csrf)]
DESK_ROLES = frozenset({"window_clerk", "approver"})
ACTION_STYLES = {"not_accept", "refuse", "correct"}  # shown as secondary, need a reason


def _desk(db: DbSession, viewer: SignedIn) -> list[roles.RoleGrant]:
    """The viewer's roles at a service desk; nobody else sees cases."""
    grants = roles.roles_of(db, viewer.account.person_id)
    if not any(g.role in DESK_ROLES for g in grants):
        raise Refused("workbench.desk_only", "办件工作台仅供窗口受理和审批人员使用")
    return grants


def _departments(grants: list[roles.RoleGrant]) -> list[int]:
    return sorted({g.department_id for g in grants if g.role in DESK_ROLES})


@router.get("/cases", response_class=HTMLResponse)
def queue(request: Request, db: DbSession, viewer: SignedIn, tab: str = "accept") -> HTMLResponse:
    grants = _desk(db, viewer)
    tabs = {key: name for key, (name, _) in queues.QUEUES.items()}
    tabs |= {"received": "代收（全省通办）", "postcheck": "容缺后核"}
    tab = tab if tab in tabs else "accept"
    rows = queues.queue(db, _departments(grants), tab)
    return render(
        request,
        "services/queue.html",
        rows=rows,
        tab=tab,
        tabs=tabs,
        states=cases.STATE_NAMES,
        today=beijing_today(),
        clock=clock,
        departments=sorted({g.department_name for g in grants if g.role in DESK_ROLES}),
    )


def _names(db: DbSession, person_ids: list[int]) -> dict[int, str]:
    if not person_ids:
        return {}
    rows = db.execute(select(Person.id, Person.name).where(Person.id.in_(set(person_ids))))
    return dict(rows.tuples().all())


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, db: DbSession, viewer: SignedIn, case_id: int) -> HTMLResponse:
    return _case(request, db, viewer, case_id, error=None)


def _case(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    case_id: int,
    *,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    grants = _desk(db, viewer)
    case = cases.get_case(db, case_id)
    if not {case.department_id, case.receiving_department_id} & set(_departments(grants)):
        raise NotFound("case.not_found", "办件不存在", field="case")
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
        people=_names(db, [s.actor_person_id for s in steps if s.actor_person_id]),
        applicant=db.get(Person, application.applicant_person_id),
        actions=queues.actions_for(case, grants),
        labels={name: spec.label for name, spec in cases.ACTIONS.items()},
        styles=ACTION_STYLES,
        states=cases.STATE_NAMES,
        today=beijing_today(),
        clock=clock,
        error=error,
        can_post_check=case.post_check == "pending"
        and any(g.role == "window_clerk" and g.department_id == case.department_id for g in grants),
    )


@router.post("/cases/{case_id}/act", dependencies=Posted)
def act(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    case_id: int,
    action: Annotated[str, Form()],
    version: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
    promise: Annotated[str, Form()] = "",
) -> Response:
    try:
        case = cases.act(
            db,
            get_vault(request),
            case_id,
            action,
            actor_person_id=viewer.account.person_id,
            expected_version=version,
            reason=reason,
            promise_missing=promise == "yes",
        )
    except QiluError as error:
        settle_refusal(db, error)
        return _case(
            request,
            db,
            viewer,
            case_id,
            error=error,
            status=409 if error.code == "case.conflict" else 400,
        )
    archive.archive_if_finished(
        db, get_vault(request), request.app.state.settings.data_dir, case.application
    )
    return RedirectResponse(f"/workbench/cases/{case_id}?done={action}", status_code=303)


@router.post("/cases/{case_id}/post-check", dependencies=Posted)
def post_check(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    case_id: int,
    outcome: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        cases.post_check(
            db,
            case_id,
            actor_person_id=viewer.account.person_id,
            passed=outcome == "passed",
            note=reason,
        )
    except QiluError as error:
        settle_refusal(db, error)
        return _case(request, db, viewer, case_id, error=error, status=400)
    return RedirectResponse(f"/workbench/cases/{case_id}?done=post_check", status_code=303)


@router.get("/cases/{case_id}/materials/{material_id}")
def material_file(
    request: Request, db: DbSession, viewer: SignedIn, case_id: int, material_id: int
) -> Response:
    grants = _desk(db, viewer)
    case = cases.get_case(db, case_id)
    material = db.get(ApplicationMaterial, material_id)
    allowed = {case.department_id, case.receiving_department_id} & set(_departments(grants))
    if (
        not allowed
        or material is None
        or material.application_id != case.application_id
        or not material.digest
    ):
        raise NotFound("file.not_found", "文件不存在", field="material")
    content = file_store(request.app.state.settings.data_dir).get(material.digest)
    return Response(
        content,
        media_type=material.content_type or "application/octet-stream",
        headers={"Content-Disposition": "attachment"},
    )


def _window_of(grants: list[roles.RoleGrant], department_id: int) -> None:
    """Only a window clerk of that department receives applications at its window."""
    if not any(g.role == "window_clerk" and g.department_id == department_id for g in grants):
        raise Refused("workbench.window_only", "一窗受理仅供窗口受理人员使用")


@router.get("/window", response_class=HTMLResponse)
def window_page(request: Request, db: DbSession, viewer: SignedIn, q: str = "") -> HTMLResponse:
    return _window(request, db, viewer, q=q, error=None)


def _window(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    *,
    q: str,
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    grants = _desk(db, viewer)
    if not any(g.role == "window_clerk" for g in grants):
        raise Refused("workbench.window_only", "一窗受理仅供窗口受理人员使用")
    hits = catalog.search(db, q, subject="person") if q.strip() else []
    return render(
        request,
        "services/window.html",
        status_code=status,
        q=q,
        hits=hits,
        error=error,
        windows=[g for g in grants if g.role == "window_clerk"],
    )


@router.post("/window", dependencies=Posted)
def window_start(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    id_number: Annotated[str, Form()],
    target: Annotated[str, Form()],
    department_id: Annotated[int, Form()],
    q: Annotated[str, Form()] = "",
) -> Response:
    """一窗受理: the clerk starts an application for a walk-in resident; the chain's
    questionnaire is answered with them on the next page, or the item's form directly."""
    grants = _desk(db, viewer)
    _window_of(grants, department_id)
    try:
        person = find_person(db, get_vault(request), id_number)
        kind, _, code = target.partition(":")
        if kind == "chain":
            return RedirectResponse(
                f"/workbench/window/chains/{code}?person={person.id}&department={department_id}",
                status_code=303,
            )
        started = applications.start(
            db,
            get_vault(request),
            applicant=person,
            item_code=code,
            channel="window",
            clerk_person_id=viewer.account.person_id,
            receiving_department_id=department_id,
        )
    except QiluError as error:
        settle_refusal(db, error)
        return _window(request, db, viewer, q=q, error=error, status=400)
    return RedirectResponse(f"/services/applications/{started.application.id}", status_code=303)


@router.get("/window/chains/{code}", response_class=HTMLResponse)
def window_chain(
    request: Request, db: DbSession, viewer: SignedIn, code: str, person: int, department: int
) -> HTMLResponse:
    _desk(db, viewer)
    chain = catalog.current_chain(db, code)
    applicant = db.get(Person, person)
    if applicant is None:
        raise NotFound("person.not_found", "居民不存在", field="person")
    return render(
        request,
        "services/window_chain.html",
        chain=chain,
        spec=chain.spec,
        applicant=applicant,
        department=department,
        error=None,
    )


@router.post("/window/chains/{code}", dependencies=Posted)
def window_chain_start(
    request: Request, db: DbSession, viewer: SignedIn, code: str, form: PostedForm
) -> Response:
    grants = _desk(db, viewer)
    department_id = int(str(form.get("department", "0")) or 0)
    _window_of(grants, department_id)
    applicant = db.get(Person, int(str(form.get("person", "0")) or 0))
    if applicant is None:
        raise NotFound("person.not_found", "居民不存在", field="person")
    answers = answers_from(form)
    try:
        started = applications.start(
            db,
            get_vault(request),
            applicant=applicant,
            chain_code=code,
            answers=answers,
            channel="window",
            clerk_person_id=viewer.account.person_id,
            receiving_department_id=department_id,
        )
    except QiluError as error:
        settle_refusal(db, error)
        chain = catalog.current_chain(db, code)
        return render(
            request,
            "services/window_chain.html",
            status_code=400,
            chain=chain,
            spec=chain.spec,
            applicant=applicant,
            department=department_id,
            error=error,
        )
    return RedirectResponse(f"/services/applications/{started.application.id}", status_code=303)


@router.get("/rectifications", response_class=HTMLResponse)
def rectifications(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    grants = roles.roles_of(db, viewer.account.person_id)
    departments = sorted({g.department_id for g in grants})
    is_admin = roles.can(grants, "ratings.appeals")
    if not departments:
        raise Refused("workbench.staff_only", "工作台仅供公职人员使用")
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
    db: DbSession, viewer: SignedIn, task_id: int, posted: PostedForm
) -> Response:
    form = {k: str(v) for k, v in posted.items()}
    person, version = viewer.account.person_id, int(form.get("version", "0") or 0)
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
