"""好差评: the applicant rates a finished application on the national online indicators; a bad
rating (1 or 2) opens a rectification in every department that handled it, due in 15 working
days, closed only with a call back to the applicant, or appealed as unfair."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.models import Department
from qilu.messages import service as messages
from qilu.services.models import Application, Case, Rating, Rectification, ServiceItem
from qilu.workdays import add_working_days, beijing_today

# 国办发〔2019〕51号: the indicators of an online rating (一事一评).
INDICATORS = {
    "overall": "总体满意度",
    "efficiency": "办事效率",
    "guidance": "办事指南准确性",
    "convenience": "办理便捷程度",
    "usability": "平台易用性",
}
SCORE_NAMES = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
BAD = 2
FIX_DAYS = 15


def rate(
    session: Session,
    application: Application,
    *,
    person_id: int,
    scores: dict[str, int],
    comment: str = "",
) -> Rating:
    if application.applicant_person_id != person_id:
        raise NotFound("services.application_not_found", "申请不存在", field="application")
    if application.status != "done":
        raise QiluError("rating.not_finished", "办结后才能评价", field="application")
    # One tap: the overall rating is all that is asked; the other indicators are optional,
    # and kept only where given.
    if scores.get("overall") not in SCORE_NAMES:
        raise QiluError("rating.score", "请先给总体满意度打分（1 至 5 分）", field="scores.overall")
    for key, label in INDICATORS.items():
        if key in scores and scores[key] not in SCORE_NAMES:
            raise QiluError("rating.score", f"“{label}”须为 1 至 5 分", field=f"scores.{key}")
    if scores["overall"] <= BAD and not comment.strip():
        raise QiluError("rating.comment", "差评请写明不满意的原因，以便整改", field="comment")
    rating = Rating(
        application_id=application.id,
        person_id=person_id,
        overall=scores["overall"],
        scores={k: scores[k] for k in INDICATORS if k in scores},
        comment=comment.strip()[:1000],
        excluded=False,
        created_at=datetime.now(UTC),
    )
    try:
        with session.begin_nested():
            session.add(rating)
    except IntegrityError:
        raise QiluError("rating.twice", "该申请已评价过", field="application") from None
    if rating.overall <= BAD:
        due = add_working_days(beijing_today(), FIX_DAYS)
        departments = sorted({c.department_id for c in application.cases})
        session.add_all(
            Rectification(
                rating_id=rating.id, department_id=d, due_on=due, status="open", version=1
            )
            for d in departments
        )
    record(
        session,
        "services.rated",
        actor_person_id=person_id,
        subject=f"application:{application.number}",
        details={"overall": rating.overall, "bad": rating.overall <= BAD},
    )
    session.flush()
    return rating


def _authorised(session: Session, person_id: int, department_id: int, permission: str) -> None:
    department = session.get_one(Department, department_id)
    roles.authorize(roles.staff(session, person_id), permission, roles.Target.of(department))


def _move(
    session: Session,
    task: Rectification,
    expected_version: int,
    from_states: set[str],
    **values: object,
) -> None:
    moved = session.execute(
        update(Rectification)
        .where(
            Rectification.id == task.id,
            Rectification.version == expected_version,
            Rectification.status.in_(from_states),
        )
        .values(version=Rectification.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise QiluError("rectification.conflict", "该整改任务已被处理，请刷新", field="version")
    session.refresh(task)


def get_rectification(session: Session, task_id: int) -> Rectification:
    found = session.get(Rectification, task_id)
    if found is None:
        raise NotFound("rectification.not_found", "整改任务不存在", field="rectification")
    return found


def fix(
    session: Session,
    task_id: int,
    *,
    actor_person_id: int,
    expected_version: int,
    fix_note: str,
    callback_note: str,
) -> Rectification:
    """Record what was done and the call back to the applicant (回访 is required)."""
    task = get_rectification(session, task_id)
    _authorised(session, actor_person_id, task.department_id, "applications.decide")
    if not fix_note.strip():
        raise QiluError("rectification.fix", "请写明整改措施", field="fix_note")
    if not callback_note.strip():
        raise QiluError("rectification.callback", "请记录回访情况", field="callback_note")
    _move(
        session,
        task,
        expected_version,
        {"open"},
        status="fixed",
        fix_note=fix_note.strip(),
        callback_note=callback_note.strip(),
        closed_at=datetime.now(UTC),
    )
    record(
        session,
        "services.rectification_fixed",
        actor_person_id=actor_person_id,
        subject=f"rectification:{task.id}",
        details={"department": task.department_id},
    )
    messages.send(
        session,
        task.rating.person_id,
        title="差评整改结果",
        body=f"{task.department.name}已就您的评价整改：{task.fix_note}",
        link=f"/services/applications/{task.rating.application_id}#rate-title",
    )
    return task


def appeal(
    session: Session, task_id: int, *, actor_person_id: int, expected_version: int, reason: str
) -> Rectification:
    task = get_rectification(session, task_id)
    _authorised(session, actor_person_id, task.department_id, "applications.decide")
    if not reason.strip():
        raise QiluError("rectification.appeal", "请写明申诉理由", field="reason")
    _move(
        session, task, expected_version, {"open"}, status="appealed", appeal_reason=reason.strip()
    )
    record(
        session,
        "services.rating_appealed",
        actor_person_id=actor_person_id,
        subject=f"rectification:{task.id}",
        details={"reason": reason.strip()},
    )
    return task


def decide_appeal(
    session: Session,
    task_id: int,
    *,
    actor_person_id: int,
    expected_version: int,
    upheld: bool,
    note: str,
) -> Rectification:
    """The platform's administrator decides: an upheld appeal takes the rating out of the
    statistics; a rejected one sends the task back to be fixed."""
    roles.authorize(roles.staff(session, actor_person_id), "ratings.appeals", roles.PROVINCE)
    task = get_rectification(session, task_id)
    if not note.strip():
        raise QiluError("rectification.note", "请写明审核意见", field="note")
    if upheld:
        _move(
            session,
            task,
            expected_version,
            {"appealed"},
            status="appeal_upheld",
            decided_note=note.strip(),
            closed_at=datetime.now(UTC),
        )
        task.rating.excluded = True
    else:
        _move(
            session, task, expected_version, {"appealed"}, status="open", decided_note=note.strip()
        )
    record(
        session,
        "services.appeal_decided",
        actor_person_id=actor_person_id,
        subject=f"rectification:{task.id}",
        details={"upheld": upheld},
    )
    return task


def tasks_for(
    session: Session, department_ids: list[int], *, status: str | None = None
) -> list[Rectification]:
    statement = select(Rectification).where(Rectification.department_id.in_(department_ids))
    if status:
        statement = statement.where(Rectification.status == status)
    return list(session.scalars(statement.order_by(Rectification.due_on, Rectification.id)))


def appealed(session: Session) -> list[Rectification]:
    """Appeals waiting for the platform administrator."""
    statement = select(Rectification).where(Rectification.status == "appealed")
    return list(session.scalars(statement.order_by(Rectification.id)))


@dataclass(frozen=True)
class RollUp:
    key: str
    name: str
    ratings: int
    average: float
    bad: int


def roll_up(session: Session, by: str = "department") -> list[RollUp]:
    """Ratings per department (or per item): how many, the average overall score, how many bad;
    ratings taken out by an upheld appeal do not count."""
    column, name = (
        (Department.code, Department.name)
        if by == "department"
        else (ServiceItem.code, ServiceItem.name)
    )
    rows = session.execute(
        select(
            column,
            func.min(name),
            func.count(Rating.id),
            func.avg(Rating.overall),
            func.sum(case((Rating.overall <= BAD, 1), else_=0)),
        )
        .select_from(Rating)
        .join(Case, Case.application_id == Rating.application_id)
        .join(Department, Department.id == Case.department_id)
        .join(ServiceItem, ServiceItem.id == Case.item_id)
        .where(Rating.excluded.is_(False))
        .group_by(column)
        .order_by(func.avg(Rating.overall))
    ).all()
    return [RollUp(r[0], r[1], r[2], round(float(r[3]), 2), int(r[4])) for r in rows]


def rating_of(session: Session, application: Application) -> Rating | None:
    """The applicant's rating of an application, if they gave one."""
    return session.scalar(select(Rating).where(Rating.application_id == application.id))


RECTIFICATION_NAMES = {
    "open": "整改中",
    "fixed": "已整改并回访",
    "appealed": "部门申诉中",
    "appeal_upheld": "申诉成立，评价不计入",
}


def rectifications_of(session: Session, rating: Rating) -> list[Rectification]:
    """What the departments did about a bad rating (the rater sees it on the application)."""
    return list(
        session.scalars(
            select(Rectification)
            .where(Rectification.rating_id == rating.id)
            .order_by(Rectification.id)
        )
    )
