"""The workbench's view of cases: each department's queues, the most urgent first, and the
steps a civil servant may take on a case."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, or_, select
from sqlalchemy.orm import Session

from qilu.errors import NotFound, Refused
from qilu.identity import roles
from qilu.identity.models import Department, LegalEntity, Person
from qilu.services import cases
from qilu.services.models import Application, ApplicationMaterial, Case, ServiceItem
from qilu.workdays import YELLOW_DAYS, add_working_days, beijing_today

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
    LegalEntity.name.label("entity_name"),  # an enterprise's item: the enterprise applies
)


# The time-limit filter: past the limit (red), or within YELLOW_DAYS working days (yellow).
DUE_FILTERS = {"late": "已超期", "soon": "即将到期"}


def queue(
    session: Session,
    department_ids: list[int],
    tab: str,
    *,
    search: str = "",
    due: str = "",
    today: date | None = None,
    limit: int = 50,
) -> list[Row[Any]]:
    """A department's cases on one tab, the most urgent first (the nearest limit); with
    `search`, those whose number, item or applicant (person or enterprise) contain it; with
    `due`, only those past their limit (`late`) or close to it (`soon`)."""
    chosen = select(Case.id).where(_on_tab(department_ids, tab))
    day = today or beijing_today()
    if due == "late":
        chosen = chosen.where(Case.due_on < day)
    elif due == "soon":
        chosen = chosen.where(Case.due_on.between(day, add_working_days(day, YELLOW_DAYS)))
    if search.strip():
        like = f"%{search.strip()}%"
        chosen = (
            chosen.join(Application, Application.id == Case.application_id)
            .join(ServiceItem, ServiceItem.id == Case.item_id)
            .join(Person, Person.id == Application.applicant_person_id)
            .outerjoin(LegalEntity, LegalEntity.id == Application.entity_id)
            .where(
                or_(
                    Case.number.like(like),
                    ServiceItem.name.like(like),
                    Person.name.like(like),
                    LegalEntity.name.like(like),
                )
            )
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
        .outerjoin(LegalEntity, LegalEntity.id == Application.entity_id)
        .order_by(*order)
    )
    return list(session.execute(statement).all())


def _on_tab(department_ids: list[int], tab: str) -> ColumnElement[bool]:
    if tab == "received":
        return and_(
            Case.receiving_department_id.in_(department_ids), Case.state.not_in(cases.FINAL)
        )
    if tab == "postcheck":
        return and_(Case.department_id.in_(department_ids), Case.post_check == "pending")
    return and_(Case.department_id.in_(department_ids), Case.state.in_(QUEUES[tab][1]))


def counts(session: Session, department_ids: list[int], tabs: list[str]) -> dict[str, int]:
    """How many cases each tab holds (the tabs show it), in one query."""
    columns = [func.count().filter(_on_tab(department_ids, tab)).label(tab) for tab in tabs]
    row = session.execute(
        select(*columns).where(
            or_(
                Case.department_id.in_(department_ids),
                Case.receiving_department_id.in_(department_ids),
            )
        )
    ).one()
    return {tab: int(row._mapping[tab] or 0) for tab in tabs}


def first_tab(actor: roles.Staff, department_ids: list[int]) -> str:
    """Where a person starts: the window's 待受理, an approver's 审查中."""
    accepts = any(d in department_ids for d in roles.departments_for(actor, "applications.accept"))
    return "accept" if accepts else "review"


def actions_for(case: Case, actor: roles.Actor) -> list[str]:
    """The steps this person may take on this case now."""
    return [
        name
        for name, spec in cases.ACTIONS.items()
        if case.state in spec.from_states and cases.may(actor, case, spec)
    ]


def desk_departments(actor: roles.Staff) -> list[int]:
    """The departments whose cases `actor` works on (as a window clerk or an approver)."""
    return roles.departments_for(actor, "applications.view")


def case_for(session: Session, case_id: int, actor: roles.Actor) -> Case:
    """A case, if `actor` works in its department or the one that received it; otherwise it
    does not exist for them (a case number says nothing to a stranger)."""
    case = cases.get_case(session, case_id)
    owners = [case.department, case.receiving_department]
    if not any(roles.allows(actor, "applications.view", roles.Target.of(d)) for d in owners if d):
        raise NotFound("case.not_found", "办件不存在", field="case")
    return case


def case_material(
    session: Session, case_id: int, material_id: int, actor: roles.Actor
) -> ApplicationMaterial:
    """An uploaded file of a case `actor` may see."""
    case = case_for(session, case_id, actor)
    material = session.get(ApplicationMaterial, material_id)
    if material is None or material.application_id != case.application_id or not material.digest:
        raise NotFound("file.not_found", "文件不存在", field="material")
    return material


def names_of(session: Session, person_ids: list[int]) -> dict[int, str]:
    """The names of the people who took a case's steps."""
    if not person_ids:
        return {}
    rows = session.execute(select(Person.id, Person.name).where(Person.id.in_(set(person_ids))))
    return {key: name for key, name in rows}


def window_of(session: Session, actor: roles.Actor, department_id: int) -> Department:
    """The department at whose window `actor` receives a walk-in: one where they accept."""
    department = session.get(Department, department_id)
    if department is None or not roles.allows(
        actor, "applications.accept", roles.Target.of(department)
    ):
        raise Refused(
            "workbench.window_only", "一窗受理仅供本窗口的受理人员使用", field="department_id"
        )
    return department
