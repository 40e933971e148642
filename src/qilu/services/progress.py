"""办件进度: what happened to an application, dated and in order (submitted, accepted, review,
correction, decided, finished, result delivered); the tabs of 我的办件; a look-up by number for
someone who is not signed in; and what a person may undo — withdrawing an application no
department has accepted yet, deleting a draft. Each undo is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.errors import NotFound, QiluError
from qilu.identity.models import Person
from qilu.identity.service import has_number
from qilu.pii import Vault
from qilu.services import cases
from qilu.services.applications import Applicant, applications_of, status_counts
from qilu.services.models import Application, ApplicationMaterial, Case, CaseStep, Licence

# What each step is called on the timeline (CaseStep.action → label).
STEP_NAMES = {
    "accept": "已受理",
    "not_accept": "不予受理",
    "review": "开始审查",
    "correct": "要求补正",
    "resubmit": "已补正",
    "grant": "准予许可",
    "refuse": "不予许可",
    "finish": "办结",
    "release": "前置事项办结，开始办理",
    "cancel": "已终止",
    "transfer": "移交办理",
}
# 我的办件's tabs: key → (label, the application statuses it shows).
TABS: dict[str, tuple[str, tuple[str, ...]]] = {
    "doing": ("办理中", ("submitted", "in_progress")),
    "correcting": ("待补正", ("correcting",)),
    "done": ("已办结", ("done", "closed")),
    "draft": ("草稿", ("draft",)),
}
WITHDRAWN = "申请人撤回申请"
NOT_FOUND = "没有找到该办件：请核对申请编号和申请人身份证号码"


@dataclass(frozen=True)
class Event:
    at: datetime
    label: str
    detail: str = ""
    case_number: str | None = None
    # done (a step that happened) or the final result; the page marks them differently
    kind: str = "step"


def timeline(session: Session, application: Application) -> list[Event]:
    """Every dated event of the application and its cases, oldest first."""
    events: list[Event] = []
    if application.submitted_at is not None:
        events.append(Event(application.submitted_at, "提交申请", application.number))
    case_rows = {c.id: c for c in application.cases}
    if case_rows:
        steps = session.scalars(
            select(CaseStep).where(CaseStep.case_id.in_(case_rows)).order_by(CaseStep.at)
        )
        for step in steps:
            if step.action == "submit":  # the application's own 提交申请 says it once
                continue
            case = case_rows[step.case_id]
            who = "自动审核（秒批）" if step.actor_person_id is None and case.instant else ""
            detail = "，".join(x for x in (case.item.name, who, step.reason) if x)
            events.append(
                Event(step.at, STEP_NAMES.get(step.action, step.action), detail, case.number)
            )
        issued = session.scalars(select(Licence).where(Licence.case_id.in_(case_rows)))
        for licence in issued:
            events.append(
                Event(
                    licence.issued_at,
                    "结果已送达",
                    f"{licence.licence_type}已存入电子证照库",
                    case_rows[licence.case_id or 0].number,
                    kind="result",
                )
            )
    return sorted(events, key=lambda e: e.at)


def tab_counts(session: Session, applicant: Applicant) -> dict[str, int]:
    by_status = status_counts(session, applicant)
    return {key: sum(by_status.get(s, 0) for s in statuses) for key, (_, statuses) in TABS.items()}


def in_tab(session: Session, applicant: Applicant, tab: str) -> list[Application]:
    return applications_of(session, applicant, statuses=TABS[tab][1])


def may_withdraw(application: Application) -> bool:
    """Only before any department has accepted a case (after that, the department decides)."""
    return application.status in ("submitted", "in_progress") and all(
        c.state in ("submitted", "waiting") for c in application.cases
    )


def withdraw(session: Session, application: Application, *, actor_person_id: int) -> None:
    if not may_withdraw(application):
        raise QiluError(
            "services.not_withdrawable",
            "已有部门受理，不能撤回：如需终止请联系办理部门",
            field="application",
        )
    for case in application.cases:
        cases.cancel(session, case, WITHDRAWN)
    application.status = "closed"
    record(
        session,
        "services.application_withdrawn",
        actor_person_id=actor_person_id,
        subject=f"application:{application.number}",
    )
    session.flush()


def delete_draft(session: Session, application: Application, *, actor_person_id: int) -> None:
    """A draft and its uploads' records go; the files stay in the content-addressed store,
    which another application may share."""
    if application.status != "draft":
        raise QiluError("services.not_draft", "只能删除草稿", field="application")
    session.execute(
        delete(ApplicationMaterial).where(ApplicationMaterial.application_id == application.id)
    )
    number = application.number
    session.delete(application)
    record(
        session,
        "services.draft_deleted",
        actor_person_id=actor_person_id,
        subject=f"application:{number}",
    )
    session.flush()


def look_up(session: Session, vault: Vault, number: str, id_number: str) -> Application:
    """An application by its number, for whoever also knows its applicant's ID number. A wrong
    number and a wrong ID number answer alike, so the look-up tells nothing about either."""
    number, id_number = number.strip().upper(), id_number.strip().upper()
    if not number:
        raise QiluError("services.lookup_number", "请填写申请编号", field="number")
    if not id_number:
        raise QiluError("services.lookup_id", "请填写申请人身份证号码", field="id_number")
    found = session.scalar(
        select(Application)
        .join(Person, Person.id == Application.applicant_person_id)
        .where(
            Application.number == number,
            Application.status != "draft",
            has_number(vault, id_number),
        )
    )
    if found is None:
        raise NotFound("services.lookup_not_found", NOT_FOUND, field="number")
    return found


def due_label(case: Case) -> str:
    """The time limit in words, as every screen shows it."""
    if case.state in cases.FINAL:
        return "已办结"
    if case.state == "correcting":
        return "补正中，时限暂停"
    if case.due_on is not None:
        return f"{case.due_on:%Y年%m月%d日}前办结"
    if case.state == "waiting":
        return "等待前置事项办结"
    return f"受理后 {case.item.spec['promised_days']} 个工作日内办结"
