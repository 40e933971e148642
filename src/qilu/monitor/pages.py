"""应急指挥 in the workbench: the alarm wall (those of one's divisions on duty, and those sent to
one), and an alarm's page with its readings, its history and the step one may take next."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.access import AnyStaff
from qilu.monitor import dispatch
from qilu.monitor.devices import KIND_NAMES
from qilu.monitor.models import LEVELS, Alarm, Device, Reading, Rule
from qilu.routes import DbSession, RowId, check_csrf, redraw_on_refusal, render

router = APIRouter(prefix="/monitor/alarms", include_in_schema=False)
Posted = [Depends(check_csrf)]


@router.get("", response_class=HTMLResponse)
def wall(request: Request, db: DbSession, actor: AnyStaff, closed: bool = False) -> HTMLResponse:
    alarms = dispatch.visible(db, actor, closed=closed)
    ids = {a.device_id for a in alarms}
    devices = {d.id: d for d in db.scalars(select(Device).where(Device.id.in_(ids)))}
    rule_ids = {a.rule_id for a in alarms}
    rules = {r.id: r for r in db.scalars(select(Rule).where(Rule.id.in_(rule_ids)))}
    return render(
        request,
        "monitor/alarms.html",
        alarms=alarms,
        devices=devices,
        rules=rules,
        closed=closed,
        levels=LEVELS,
        states=dispatch.STATES,
    )


@router.get("/{alarm_id}", response_class=HTMLResponse)
def alarm_page(request: Request, db: DbSession, actor: AnyStaff, alarm_id: RowId) -> HTMLResponse:
    return _page(request, db, actor, alarm_id, error=None)


@router.post("/{alarm_id}/{action}", dependencies=Posted)
def take_step(
    request: Request,
    db: DbSession,
    actor: AnyStaff,
    alarm_id: RowId,
    action: str,
    note: Annotated[str, Form(max_length=500)] = "",
    reason: Annotated[str, Form(max_length=20)] = "",
    assignee: Annotated[str, Form(max_length=60)] = "",
    due_minutes: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    typed = {"note": note, "reason": reason, "assignee": assignee, "due_minutes": due_minutes}
    department, _, person = assignee.partition(":")

    def page(error: QiluError) -> Response:
        return _page(request, db, actor, alarm_id, error=error, typed=typed, status=400)

    with redraw_on_refusal(db, page):
        if due_minutes and not due_minutes.isdigit():
            raise QiluError("alarm.due", "处置时限须为分钟数", field="due_minutes")
        dispatch.act(
            db,
            actor,
            alarm_id,
            action,
            note=note,
            reason=reason or None,
            department_code=department or None,
            assignee_person_id=int(person) if person.isdigit() else None,
            due_minutes=int(due_minutes) if due_minutes else None,
        )
    return RedirectResponse(f"/monitor/alarms/{alarm_id}", status_code=303)


def _page(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    alarm_id: int,
    *,
    error: QiluError | None,
    typed: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    alarm = db.get(Alarm, alarm_id)
    if alarm is None or not dispatch.may_see(actor, alarm):
        raise NotFound("alarm.not_found", f"没有编号为 {alarm_id} 的报警", field="alarm")
    device = db.get_one(Device, alarm.device_id)
    rule = db.get_one(Rule, alarm.rule_id)
    readings = db.scalars(
        select(Reading)
        .where(Reading.device_id == device.id, Reading.metric == rule.metric)
        .order_by(Reading.observed_at.desc())
        .limit(20)
    ).all()
    on_duty = roles.allows(actor, "alarms.dispatch", roles.Target(alarm.division_code))
    return render(
        request,
        "monitor/alarm.html",
        status,
        alarm=alarm,
        device=device,
        kind_name=KIND_NAMES.get(device.kind, device.kind),
        rule=rule,
        readings=readings,
        history=dispatch.history(db, alarm),
        candidates=dispatch.candidates(db, alarm) if on_duty else [],
        on_duty=on_duty,
        assigned=alarm.assignee_person_id == actor.person_id,
        levels=LEVELS,
        states=dispatch.STATES,
        steps=dispatch.STEPS,
        reasons=dispatch.CLOSE_REASONS,
        error=error,
        problems={error.field: error.message} if error and error.field else {},
        typed=typed or {},
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
