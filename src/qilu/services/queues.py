"""The workbench's view of cases: each department's queues, the most urgent first, and the
steps a civil servant may take on a case."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from qilu.identity import roles
from qilu.services import cases
from qilu.services.models import Case

# The workbench queues: which cases each tab shows, by state (or the post-check queue).
QUEUES = {
    "accept": ("待受理", ("submitted",)),
    "review": ("审查中", ("accepted", "reviewing")),
    "correcting": ("补正中", ("correcting",)),
    "finish": ("待办结", ("granted", "refused")),
    "done": ("已办结", ("done", "not_accepted", "cancelled")),
}


def queue(
    session: Session,
    department_ids: list[int],
    tab: str,
    *,
    limit: int = 50,
) -> list[Case]:
    """A department's cases on one tab, the most urgent first (the nearest limit)."""
    statement = select(Case)
    if tab == "received":
        statement = statement.where(
            Case.receiving_department_id.in_(department_ids), Case.state.not_in(cases.FINAL)
        )
    elif tab == "postcheck":
        statement = statement.where(
            Case.department_id.in_(department_ids), Case.post_check == "pending"
        )
    else:
        statement = statement.where(
            Case.department_id.in_(department_ids), Case.state.in_(QUEUES[tab][1])
        )
    # The nearest limit first; cases without one (not accepted yet) after, oldest first. The
    # plain column order lets PostgreSQL read the queue index in order instead of sorting.
    ordered = statement.order_by(Case.due_on.asc().nulls_last(), Case.id).limit(limit)
    # The page shows each case's item and applicant: load them with the page, not row by row.
    loaded = ordered.options(selectinload(Case.application), selectinload(Case.item))
    return list(session.scalars(loaded))


def actions_for(case: Case, grants: list[roles.RoleGrant]) -> list[str]:
    """The steps this person may take on this case now."""
    return [
        name
        for name, spec in cases.ACTIONS.items()
        if case.state in spec.from_states and cases.may(grants, case, spec)
    ]
