"""The workbench's view of cases: each department's queues, the most urgent first, and the
steps a civil servant may take on a case."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from qilu.identity import roles
from qilu.identity.models import Person
from qilu.services import cases
from qilu.services.models import Application, Case, ServiceItem

# The workbench queues: which cases each tab shows, by state (or the post-check queue).
QUEUES = {
    "accept": ("待受理", ("submitted",)),
    "review": ("审查中", ("accepted", "reviewing")),
    "correcting": ("补正中", ("correcting",)),
    "finish": ("待办结", ("granted", "refused")),
    "done": ("已办结", ("done", "not_accepted", "cancelled")),
}


# What a queue row shows: one query, plain rows (no ORM objects: a page of them is the
# workbench's most frequent read).
ROW_COLUMNS = (
    Case.id,
    Case.number,
    Case.state,
    Case.due_on,
    Case.flags,
    Case.findings,
    Case.instant,
    Case.department_id,
    Case.receiving_department_id,
    ServiceItem.name.label("item_name"),
    Application.applicant_person_id,
    Application.channel,
    Person.name.label("applicant_name"),
)


def queue(
    session: Session,
    department_ids: list[int],
    tab: str,
    *,
    limit: int = 50,
) -> list[Row[Any]]:
    """A department's cases on one tab, the most urgent first (the nearest limit)."""
    chosen = select(Case.id)
    if tab == "received":
        chosen = chosen.where(
            Case.receiving_department_id.in_(department_ids), Case.state.not_in(cases.FINAL)
        )
    elif tab == "postcheck":
        chosen = chosen.where(Case.department_id.in_(department_ids), Case.post_check == "pending")
    else:
        chosen = chosen.where(
            Case.department_id.in_(department_ids), Case.state.in_(QUEUES[tab][1])
        )
    # The nearest limit first; cases without one (not accepted yet) after, oldest first. The
    # page's ids come first from the queue index alone (read in order, no sort of the whole
    # queue); only those fifty are joined to what the rows show.
    order = (Case.due_on.asc().nulls_last(), Case.id)
    page = chosen.order_by(*order).limit(limit).subquery()
    statement = (
        select(*ROW_COLUMNS)
        .join(page, page.c.id == Case.id)
        .join(ServiceItem, ServiceItem.id == Case.item_id)
        .join(Application, Application.id == Case.application_id)
        .join(Person, Person.id == Application.applicant_person_id)
        .order_by(*order)
    )
    return list(session.execute(statement).all())


def actions_for(case: Case, grants: list[roles.RoleGrant]) -> list[str]:
    """The steps this person may take on this case now."""
    return [
        name
        for name, spec in cases.ACTIONS.items()
        if case.state in spec.from_states and cases.may(grants, case, spec)
    ]
