"""Time limits that speak up: when an open case's clock turns yellow (≤ 2 working days left) or
red (overdue), the department's approvers get a message, once per colour. The web process's
sweeper and the worker run `warn` once an hour; `qilu cases clocks` runs it by hand or cron."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from qilu.identity import roles
from qilu.messages import service as messages
from qilu.services.models import Case
from qilu.workdays import YELLOW_DAYS, add_working_days, beijing_today, clock

RUNNING = ("accepted", "reviewing", "granted", "refused")  # the clock runs, not paused
NOTICES = {
    "yellow": ("办件即将超期", "“{item}”（{number}）将于 {due} 到期，请抓紧办理。"),
    "red": ("办件已超期", "“{item}”（{number}）已于 {due} 超过办理时限，请立即办理并说明原因。"),
}


def warn(session: Session, today: date | None = None) -> int:
    """Message the approvers of every case whose clock changed colour since the last warning;
    returns how many cases were warned about."""
    today = today or beijing_today()
    due_soon = select(Case).where(
        Case.state.in_(RUNNING),
        Case.paused_since.is_(None),
        Case.due_on <= add_working_days(today, YELLOW_DAYS),
    )
    warned = 0
    approvers: dict[int, list[int]] = {}  # per department, looked up once a run
    for case in session.scalars(due_soon.options(joinedload(Case.item))):
        colour = clock(case.due_on, today)
        if colour not in NOTICES or case.clock_warned == colour:
            continue
        title, body = NOTICES[colour]
        text = body.format(item=case.item.name, number=case.number, due=case.due_on)
        if case.department_id not in approvers:
            approvers[case.department_id] = roles.holders(
                session, "applications.decide", case.department_id
            )
        for person_id in approvers[case.department_id]:
            messages.send(
                session, person_id, title=title, body=text, link=f"/workbench/cases/{case.id}"
            )
        case.clock_warned = colour
        warned += 1
    session.flush()
    return warned
