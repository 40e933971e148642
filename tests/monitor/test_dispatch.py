"""指挥调度 (issue 15): an alarm is 核实, dispatched, 签收, reported on and reviewed by the right
people in the right order; outsiders do not see it; each step is recorded and told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import roles
from qilu.identity.models import Person
from qilu.messages.models import Message
from qilu.monitor import dispatch
from qilu.monitor.models import Alarm, AlarmEvent

from ..factories import make_person, make_staff
from .test_alarms import feed, stack

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def staff(session: Session, vault: object, department: str, role: str, name: str) -> Person:
    person = make_person(session, vault, name=name, phone=None)  # type: ignore[arg-type]
    return make_staff(session, person, department, role)


def as_actor(session: Session, person: Person) -> roles.Staff:
    return roles.staff(session, person.id)


@pytest.fixture
def alarm(session: Session, departments: None) -> Alarm:
    device = stack(session)
    feed(session, device, "a21026-Avg", [250])  # 红色 (SO2 ≥ 200)
    return session.scalars(select(Alarm)).one()


def test_an_alarm_goes_from_open_to_closed_by_the_right_people(
    session: Session, vault: object, alarm: Alarm
) -> None:
    county = staff(session, vault, "370102-emergency", "duty_officer", "区值班员")
    city = staff(session, vault, "370100-emergency", "duty_officer", "市值班员")
    responder = staff(session, vault, "370102-ecology", "approver", "生态环境局科员")

    def step(person: Person, action: str, **extra: object) -> Alarm:
        return dispatch.act(session, as_actor(session, person), alarm.id, action, now=NOW, **extra)

    assert step(county, "acknowledge", note="已电话核实").state == "acknowledged"
    with pytest.raises(NotFound):  # not theirs yet: they do not even see it
        step(responder, "sign")
    step(
        city,  # the city's duty officer may dispatch the county's alarm
        "dispatch",
        department_code="370102-ecology",
        assignee_person_id=responder.id,
        due_minutes=30,
    )
    assert alarm.state == "dispatched" and alarm.due_at == NOW + timedelta(minutes=30)
    [task] = session.scalars(select(Message).where(Message.person_id == responder.id)).all()
    assert task.title == "报警处置任务" and task.link == f"/monitor/alarms/{alarm.id}"
    with pytest.raises(Refused):  # only the assignee signs
        step(county, "sign")
    step(responder, "sign")
    with pytest.raises(QiluError) as blank:
        step(responder, "report", note="好")
    assert blank.value.code == "alarm.note" and blank.value.field == "note"
    step(responder, "report", note="已关停脱硫旁路，浓度回落")
    step(county, "return", note="请补充现场照片")
    assert alarm.state == "signed"
    step(responder, "report", note="已补充，浓度 28 mg/m³")
    closed = step(county, "approve")
    assert (closed.state, closed.close_reason, closed.closed_at) == ("closed", "resolved", NOW)
    actions = session.scalars(
        select(AlarmEvent.action).where(AlarmEvent.alarm_id == alarm.id).order_by(AlarmEvent.id)
    ).all()
    assert actions == [
        "opened", "acknowledge", "dispatch", "sign", "report", "return", "report", "approve",
    ]  # fmt: skip
    audited = session.scalars(
        select(AuditEvent.action).where(AuditEvent.subject == f"alarm:{alarm.id}")
    ).all()
    assert len(audited) == 7 and "monitor.alarm_approve" in audited


def test_outsiders_do_not_see_it_and_nobody_reviews_their_own_report(
    session: Session, vault: object, alarm: Alarm
) -> None:
    qingdao = staff(session, vault, "370202-emergency", "duty_officer", "青岛值班员")
    clerk = staff(session, vault, "370102-emergency", "window_clerk", "窗口人员")
    for outsider in (qingdao, clerk):
        with pytest.raises(NotFound):
            dispatch.act(session, as_actor(session, outsider), alarm.id, "acknowledge")
    officer = staff(session, vault, "370102-emergency", "duty_officer", "值班员")
    dispatch.act(session, as_actor(session, officer), alarm.id, "acknowledge")
    dispatch.act(
        session,
        as_actor(session, officer),
        alarm.id,
        "dispatch",
        department_code="370102-emergency",
        assignee_person_id=officer.id,  # to themselves
    )
    dispatch.act(session, as_actor(session, officer), alarm.id, "sign")
    dispatch.act(session, as_actor(session, officer), alarm.id, "report", note="现场已处置完毕")
    with pytest.raises(Refused) as own:
        dispatch.act(session, as_actor(session, officer), alarm.id, "approve")
    assert own.value.code == "role.own_request"


def test_a_false_alarm_is_closed_with_its_reason_and_bad_input_is_named(
    session: Session, vault: object, alarm: Alarm
) -> None:
    officer = staff(session, vault, "370102-emergency", "duty_officer", "值班员")
    actor = as_actor(session, officer)
    cases = [
        ({"action": "dismiss", "reason": "bored", "note": "仪表校准中"}, "alarm.reason"),
        ({"action": "dismiss", "reason": "false_alarm", "note": ""}, "alarm.note"),
        ({"action": "launch"}, "alarm.action"),
        ({"action": "dispatch"}, "alarm.state"),  # not yet 核实
    ]
    for extra, code in cases:
        action = str(extra.pop("action"))
        with pytest.raises(QiluError) as refused:
            dispatch.act(session, actor, alarm.id, action, **extra)  # type: ignore[arg-type]
        assert refused.value.code == code
    dispatch.act(session, actor, alarm.id, "acknowledge")
    with pytest.raises(QiluError) as nobody:
        dispatch.act(
            session, actor, alarm.id, "dispatch",
            department_code="370102-ecology", assignee_person_id=officer.id,
        )  # fmt: skip
    assert nobody.value.code == "alarm.assignee"  # not staff of that department
    closed = dispatch.act(
        session, actor, alarm.id, "dismiss", reason="false_alarm", note="仪表校准中，数据无效"
    )
    assert (closed.state, closed.close_reason) == ("closed", "false_alarm")


def test_a_step_past_due_is_chased_once_and_reported_one_level_up(
    session: Session, vault: object, alarm: Alarm
) -> None:
    """A red alarm must be 核实 within 5 minutes: past that, the county's duty officers are
    reminded (催办) and the city's told (督办), once per step."""
    county = staff(session, vault, "370102-emergency", "duty_officer", "区值班员")
    city = staff(session, vault, "370100-emergency", "duty_officer", "市值班员")
    assert alarm.due_at == alarm.opened_at + timedelta(minutes=5)
    assert dispatch.overdue(session, alarm.opened_at + timedelta(minutes=4)) == []
    late = alarm.opened_at + timedelta(minutes=6)
    assert dispatch.overdue(session, late) == [alarm]
    assert dispatch.overdue(session, late + timedelta(minutes=1)) == []  # chased once
    titles = {
        person.id: session.scalars(
            select(Message.title).where(Message.person_id == person.id)
        ).all()
        for person in (county, city)
    }
    assert titles == {county.id: ["报警催办"], city.id: ["报警督办"]}
    dispatch.act(session, as_actor(session, county), alarm.id, "acknowledge", now=late)
    assert alarm.due_at == late + timedelta(minutes=5)  # dispatching is due as quickly
    assert dispatch.overdue(session, late + timedelta(minutes=6)) == [alarm]  # a new step
    events = session.scalars(
        select(AlarmEvent.action).where(AlarmEvent.alarm_id == alarm.id).order_by(AlarmEvent.id)
    ).all()
    assert events == ["opened", "overdue", "acknowledge", "overdue"]
