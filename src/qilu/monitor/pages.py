"""应急指挥 in the workbench: the alarm wall (those of one's divisions on duty, and those sent to
one), and an alarm's page with its readings, its history and the step one may take next."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from qilu.codes.divisions import divisions
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import enterprises, roles
from qilu.identity.access import AnyStaff, SignedIn
from qilu.monitor import dispatch
from qilu.monitor.devices import KIND_NAMES
from qilu.monitor.models import LEVELS
from qilu.routes import (
    DbSession,
    RowId,
    check_csrf,
    client_address,
    redraw_on_refusal,
    render,
)

router = APIRouter(prefix="/monitor", include_in_schema=False)
Posted = [Depends(check_csrf)]
WATCH_SECONDS = 2.0


@router.get("/alarms", response_class=HTMLResponse)
def wall(request: Request, db: DbSession, actor: AnyStaff, closed: bool = False) -> HTMLResponse:
    shown = dispatch.wall(db, actor, closed=closed)
    return render(
        request,
        "monitor/alarms.html",
        alarms=shown.alarms,
        devices=shown.devices,
        rules=shown.rules,
        closed=closed,
        levels=LEVELS,
        states=dispatch.STATES,
    )


@router.get("/alarms/events")
def wall_events(request: Request, db: DbSession, actor: AnyStaff) -> StreamingResponse:
    """Server-sent events for the live wall: `wall` whenever what it shows changes (checked
    every `WATCH_SECONDS`), a comment now and then to keep proxies from closing it; the stream
    ends after QILU_MONITOR_EVENTS_SECONDS and the browser opens the next."""
    readers = request.app.state.readers
    ends = time.monotonic() + request.app.state.settings.monitor_events_seconds
    first = dispatch.wall_mark(db, actor)

    async def stream() -> AsyncIterator[str]:
        last, quiet, mark = "", 0, first
        yield "retry: 2000\n\n"  # the browser comes back 2 s after a stream ends
        while True:
            if mark != last:
                last, quiet = mark, 0
                yield f"event: wall\ndata: {mark}\n\n"
            elif (quiet := quiet + 1) % 8 == 0:
                yield ": 保持连接\n\n"
            await asyncio.sleep(max(0.0, min(WATCH_SECONDS, ends - time.monotonic())))
            if time.monotonic() >= ends:  # (a closed tab: Starlette cancels the stream)
                return
            mark = await asyncio.to_thread(dispatch.fresh_wall_mark, readers, actor)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/enterprise", response_class=HTMLResponse)
def enterprise_alarms(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    """企业: the alarms on the devices of the enterprise one acts for."""
    return _enterprise(request, db, viewer, error=None)


@router.post("/enterprise/{alarm_id}/reply", dependencies=Posted)
def enterprise_reply(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    alarm_id: RowId,
    note: Annotated[str, Form()] = "",
) -> Response:
    identity = enterprises.acting_identity(db, viewer, client_address=client_address(request))
    with redraw_on_refusal(
        db,
        lambda error: _enterprise(
            request,
            db,
            viewer,
            error=error,
            status=error.status_code if isinstance(error, Refused | NotFound) else 400,
            typed={"alarm": alarm_id, "note": note},
        ),
    ):
        if identity is None or "apply" not in identity.scopes:
            raise Refused(
                "alarm.enterprise_scope", "请以企业法定代表人或有办理授权的经办人身份说明"
            )
        dispatch.reply(db, viewer.account.person_id, identity.entity.id, alarm_id, note)
        return RedirectResponse(f"/monitor/enterprise#alarm-{alarm_id}", status_code=303)


def _enterprise(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    *,
    error: QiluError | None,
    status: int = 200,
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    identity = enterprises.acting_identity(db, viewer, client_address=client_address(request))
    return render(
        request,
        "monitor/enterprise.html",
        status,
        identity=identity,
        alarms=dispatch.owned(db, identity.entity.id) if identity else [],
        may_reply=identity is not None and "apply" in identity.scopes,
        levels=LEVELS,
        states=dispatch.STATES,
        kinds=KIND_NAMES,
        error=error,
        problems={error.field: error.message} if error and error.field else {},
        typed=typed or {},
    )


@router.get("/map", response_class=HTMLResponse)
def situation_map(request: Request, db: DbSession, actor: AnyStaff) -> HTMLResponse:
    seen = dispatch.situation(db, actor)
    return render(
        request,
        "monitor/map.html",
        places=[
            {**p.as_json(), "kind_name": KIND_NAMES[p.kind], "level_name": LEVELS.get(p.level or 0)}
            for p in seen.places
        ],
        counties=[
            {"code": code, "level": level, "level_name": LEVELS[level], "alarms": count}
            for code, (level, count) in seen.counties.items()
        ],
        alarmed=[p for p in seen.places if p.level is not None],
        kinds=KIND_NAMES,
        levels=LEVELS,
    )


@router.get("/alarms/{alarm_id}", response_class=HTMLResponse)
def alarm_page(request: Request, db: DbSession, actor: AnyStaff, alarm_id: RowId) -> HTMLResponse:
    return _page(request, db, actor, alarm_id, error=None)


@router.post("/alarms/{alarm_id}/{action}", dependencies=Posted)
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
    shown = dispatch.view(db, actor, alarm_id)
    return render(
        request,
        "monitor/alarm.html",
        status,
        alarm=shown.alarm,
        device=shown.device,
        kind_name=KIND_NAMES.get(shown.device.kind, shown.device.kind),
        place=divisions().full_name(shown.alarm.division_code),
        rule=shown.rule,
        readings=shown.readings[:20],
        chart=dispatch.chart(shown),
        history=shown.history,
        candidates=shown.candidates,
        on_duty=shown.on_duty,
        assigned=shown.assigned,
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
