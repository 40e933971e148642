"""指挥调度: an alarm from opening to closing. A duty officer whose divisions cover the alarm
核实 it (or closes it as a false alarm, or as needing no action, with the reason), dispatches
it to a department and a person there with a deadline; that person 签收 and reports what was
done (处置); a duty officer other than them 复核 and closes it, or sends it back. Each step is
in the alarm's history and the audit log, the next person is told through the message centre
(SMS after commit), and each step has a time limit by level.

An alarm belongs to the division where it happened (a vehicle's: the county it was in); that
division's duty officers, and those above them, handle it. The duty officers over the device's
own division (where its enterprise is) see it too, and follow it, but do not act on it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.divisions import code_prefix
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import roles
from qilu.identity.models import Department, Person, StaffMember, StaffRole
from qilu.messages import service as messages
from qilu.monitor.frames import BEIJING
from qilu.monitor.models import LEVELS, LIMITS, Alarm, AlarmEvent, Device, Reading, Rule
from qilu.monitor.rules import COLOURS, VALID_FLAGS, RuleSpec

STATES = {
    "open": "待核实",
    "acknowledged": "已核实",
    "dispatched": "已派单",
    "signed": "已签收",
    "handled": "已处置",
    "closed": "已关闭",
}
CLOSE_REASONS = {"resolved": "处置完毕", "false_alarm": "误报", "no_action": "无需处置"}


@dataclass(frozen=True)
class Step:
    label: str
    before: frozenset[str]
    after: str


STEPS = {
    "acknowledge": Step("核实", frozenset({"open"}), "acknowledged"),
    "dismiss": Step("关闭", frozenset({"open", "acknowledged"}), "closed"),
    "dispatch": Step("派单", frozenset({"acknowledged"}), "dispatched"),
    "sign": Step("签收", frozenset({"dispatched"}), "signed"),
    "report": Step("处置反馈", frozenset({"signed"}), "handled"),
    "approve": Step("复核通过", frozenset({"handled"}), "closed"),
    "return": Step("退回重办", frozenset({"handled"}), "signed"),
}


def act(
    session: Session,
    actor: roles.Staff,
    alarm_id: int,
    action: str,
    *,
    note: str = "",
    reason: str | None = None,
    department_code: str | None = None,
    assignee_person_id: int | None = None,
    due_minutes: int | None = None,
    now: datetime | None = None,
) -> Alarm:
    """Take one step on an alarm: checked (who, from which state, with what), recorded and
    told to whoever acts next."""
    moment = now or datetime.now(UTC)
    step = STEPS.get(action)
    if step is None:
        raise QiluError("alarm.action", "不支持的操作", field="action")
    alarm = session.get(Alarm, alarm_id, with_for_update=True)
    if alarm is None or not may_see(actor, alarm, _home(session, alarm)):  # not another's
        raise NotFound("alarm.not_found", f"没有编号为 {alarm_id} 的报警", field="alarm")
    if alarm.state not in step.before:
        raise QiluError(
            "alarm.state",
            f"报警当前为“{STATES[alarm.state]}”，不能{step.label}",
            field="action",
        )
    _authorise(actor, alarm, action)
    note = note.strip()
    limits = LIMITS[alarm.level]
    if action == "dismiss":
        if reason not in ("false_alarm", "no_action"):
            raise QiluError("alarm.reason", "请选择关闭原因：误报或无需处置", field="reason")
        _need(note, "请写明判断依据（至少 4 个字）")
        alarm.close_reason, alarm.closed_at = reason, moment
    elif action == "dispatch":
        department, assignee = _assignee(session, department_code, assignee_person_id)
        minutes = due_minutes or limits[2]
        if not 5 <= minutes <= 7 * 24 * 60:
            raise QiluError("alarm.due", "处置时限须在 5 分钟到 7 天之间", field="due_minutes")
        alarm.department_id, alarm.assignee_person_id = department.id, assignee
        alarm.due_at = moment + timedelta(minutes=minutes)
        name = session.get_one(Person, assignee).name
        note = f"派给{department.name} {name}" + (f"：{note}" if note else "")
    elif action == "report":
        _need(note, "请填写处置情况（至少 4 个字）")
    elif action == "return":
        _need(note, "请写明退回原因（至少 4 个字）")
    elif action == "approve":
        alarm.close_reason, alarm.closed_at = "resolved", moment
    alarm.state = step.after
    # `due_at` is when the next step is due: dispatching after 核实 and reviewing a report are
    # the duty officer's, as quick as 核实; the assignee's is the deadline they were given
    # (签收 does not move it), and a report sent back is due again within the level's limit.
    if action in ("acknowledge", "report"):
        alarm.due_at = moment + timedelta(minutes=limits[0])
    elif action == "return":
        alarm.due_at = moment + timedelta(minutes=limits[2])
    elif step.after == "closed":
        alarm.due_at = None
    session.add(
        AlarmEvent(
            alarm_id=alarm.id,
            at=moment,
            action=action,
            level=alarm.level,
            value=None,
            actor_person_id=actor.person_id,
            note=note or (CLOSE_REASONS.get(reason or "") if action == "dismiss" else None),
        )
    )
    record(
        session,
        f"monitor.alarm_{action}",
        actor_person_id=actor.person_id,
        subject=f"alarm:{alarm.id}",
        details={"state": alarm.state, "reason": alarm.close_reason, "note": note[:200]},
        at=moment,
    )
    _tell(session, alarm, action, note)
    return alarm


def may_see(actor: roles.Staff, alarm: Alarm, home: str) -> bool:
    """Duty officers over the alarm's division or over its device's (`home`), and the person
    it was dispatched to."""
    return (
        alarm.assignee_person_id == actor.person_id
        or roles.allows(actor, "alarms.dispatch", _target(alarm))
        or roles.allows(actor, "alarms.dispatch", roles.Target(home))
    )


def _home(session: Session, alarm: Alarm) -> str:
    """The division of the alarm's device."""
    return session.get_one(Device, alarm.device_id).division_code


def _reach(actor: roles.Staff, prefixes: set[str]) -> ColumnElement[bool]:
    """Which alarms `actor` sees: those dispatched to them, those inside the divisions where
    they are on duty, and those on devices of those divisions."""
    return or_(
        Alarm.assignee_person_id == actor.person_id,
        *(Alarm.division_code.startswith(prefix) for prefix in prefixes),
        Alarm.device_id.in_(
            select(Device.id).where(or_(*(Device.division_code.startswith(p) for p in prefixes)))
        )
        if prefixes
        else false(),
    )


def _authorise(actor: roles.Staff, alarm: Alarm, action: str) -> None:
    """Duty officers 核实, dispatch, close and review; only the person it went to signs and
    reports; and nobody reviews what they themselves reported."""
    if action in ("sign", "report"):
        if alarm.assignee_person_id != actor.person_id:
            raise Refused("alarm.not_assignee", "只有被派单的责任人可以签收和反馈")
        return
    roles.authorize(actor, "alarms.dispatch", _target(alarm))
    if action in ("approve", "return"):
        roles.not_own(actor, alarm.assignee_person_id, "处置结果")


def _target(alarm: Alarm) -> roles.Target:
    return roles.Target(alarm.division_code)


def _need(note: str, message: str) -> None:
    if len(note) < 4:
        raise QiluError("alarm.note", message, field="note")


def _assignee(
    session: Session, department_code: str | None, person_id: int | None
) -> tuple[Department, int]:
    department = session.scalars(
        select(Department).where(Department.code == (department_code or ""))
    ).first()
    if department is None:
        raise QiluError("alarm.department", "请选择承办部门", field="department")
    if person_id is None:
        raise QiluError("alarm.assignee", "请选择该部门的责任人", field="assignee")
    member = session.scalars(
        select(StaffMember.id).where(
            StaffMember.department_id == department.id, StaffMember.person_id == person_id
        )
    ).first()
    if member is None:
        raise QiluError("alarm.assignee", "责任人须为承办部门的工作人员", field="assignee")
    return department, person_id


def _tell(session: Session, alarm: Alarm, action: str, note: str) -> None:
    """The person who acts next hears of it in the message centre (and by SMS if they chose)."""
    device = session.get_one(Device, alarm.device_id)
    what = f"{LEVELS[alarm.level]}报警 {alarm.id}（{device.name}）"
    link = f"/monitor/alarms/{alarm.id}"
    if action == "dispatch" and alarm.assignee_person_id is not None:
        due = alarm.due_at.astimezone(BEIJING) if alarm.due_at else None
        messages.send(
            session,
            alarm.assignee_person_id,
            title="报警处置任务",
            body=f"{what}已派给您处置，请及时签收"
            + (f"，并于 {due:%m月%d日 %H:%M} 前反馈处置情况" if due else ""),
            link=link,
        )
    elif action == "return" and alarm.assignee_person_id is not None:
        messages.send(
            session,
            alarm.assignee_person_id,
            title="报警处置被退回",
            body=f"{what}的处置结果未通过复核：{note}",
            link=link,
        )


def _duty_prefixes(actor: roles.Staff) -> set[str]:
    """Division code prefixes of where `actor` is on duty (holds `alarms.dispatch`)."""
    rule = roles.PERMISSIONS["alarms.dispatch"]
    return {code_prefix(g.division_code) for g in actor.grants if g.role in rule.roles}


def visible(session: Session, actor: roles.Staff, *, closed: bool = False) -> list[Alarm]:
    """The alarms the wall shows `actor` (`_reach`); open ones most severe first, or the
    latest closed ones."""
    query = select(Alarm).where(_reach(actor, _duty_prefixes(actor)))
    if closed:
        query = query.where(Alarm.state == "closed").order_by(Alarm.closed_at.desc())
    else:
        query = query.where(Alarm.state != "closed").order_by(Alarm.level, Alarm.opened_at.desc())
    return list(session.scalars(query.limit(200)))


def wall_mark(session: Session, actor: roles.Staff) -> str:
    """What the live wall compares to know it changed: each shown alarm's id, level, state,
    assignee and whether it cleared, as one short digest."""
    text = ";".join(
        f"{a.id}:{a.level}:{a.state}:{a.assignee_person_id}:{a.cleared_at is not None}"
        for a in visible(session, actor)
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fresh_wall_mark(sessions: Callable[[], Session], actor: roles.Staff) -> str:
    """`wall_mark` in a session of its own (a long-lived stream holds none between looks)."""
    with sessions() as session:
        return wall_mark(session, actor)


def candidates(session: Session, alarm: Alarm) -> list[tuple[str, int, str]]:
    """Whom it may be dispatched to: staff of the departments in the alarm's county (and its
    city), as (department code, person id, label)."""
    county, city = alarm.division_code, alarm.division_code[:4] + "00"
    rows = session.execute(
        select(Department.code, Department.name, Person.id, Person.name)
        .join(StaffMember, StaffMember.department_id == Department.id)
        .join(Person, Person.id == StaffMember.person_id)
        .where(Department.division_code.in_((county, city)))
        .order_by(Department.division_code.desc(), Department.code, Person.name)
    )
    return [(code, person, f"{department} · {name}") for code, department, person, name in rows]


def history(session: Session, alarm: Alarm) -> list[tuple[AlarmEvent, str | None]]:
    """The alarm's events, oldest first, each with the name of who acted (none for the rules)."""
    rows = session.execute(
        select(AlarmEvent, Person.name)
        .outerjoin(Person, Person.id == AlarmEvent.actor_person_id)
        .where(AlarmEvent.alarm_id == alarm.id)
        .order_by(AlarmEvent.id)
    )
    return [(event, name) for event, name in rows]


def overdue(session: Session, now: datetime) -> list[Alarm]:
    """催办 and 督办: for each alarm whose current step is past due and not yet chased, remind
    whoever holds it (the assignee, or the duty officers of its division) and tell the duty
    officers one level up (a county's alarm goes to the city's, a city's to the province's).
    Each step is chased once; the history and the audit log say so."""
    late = session.scalars(
        select(Alarm).where(Alarm.state != "closed", Alarm.due_at.is_not(None), Alarm.due_at < now)
    ).all()
    chased = []
    for alarm in late:
        last_step = session.scalar(  # the step now running began with this event
            select(func.max(AlarmEvent.id)).where(
                AlarmEvent.alarm_id == alarm.id, AlarmEvent.action != "overdue"
            )
        )
        already = session.scalar(
            select(AlarmEvent.id).where(
                AlarmEvent.alarm_id == alarm.id,
                AlarmEvent.action == "overdue",
                AlarmEvent.id > (last_step or 0),
            )
        )
        if already is not None:
            continue
        assignee = alarm.assignee_person_id if alarm.state in ("dispatched", "signed") else None
        holders = [assignee] if assignee is not None else _on_duty(session, alarm.division_code)
        above = _parent_division(alarm.division_code)
        supervisors = _on_duty(session, above) if above else []
        device = session.get_one(Device, alarm.device_id)
        what = f"{LEVELS[alarm.level]}报警 {alarm.id}（{device.name}）“{STATES[alarm.state]}”已超时"
        for person in holders:
            messages.send(
                session, person, title="报警催办", body=f"{what}，请尽快办理",
                link=f"/monitor/alarms/{alarm.id}",
            )  # fmt: skip
        for person in supervisors:
            messages.send(
                session, person, title="报警督办", body=f"下级{what}，请督促办理",
                link=f"/monitor/alarms/{alarm.id}",
            )  # fmt: skip
        session.add(
            AlarmEvent(
                alarm_id=alarm.id, at=now, action="overdue", level=alarm.level, value=None,
                note=f"超时催办 {len(holders)} 人，上报上级督办 {len(supervisors)} 人",
            )
        )  # fmt: skip
        record(
            session,
            "monitor.alarm_overdue",
            subject=f"alarm:{alarm.id}",
            details={"state": alarm.state, "reminded": holders, "escalated_to": supervisors},
            at=now,
        )
        chased.append(alarm)
    return chased


def _parent_division(code: str) -> str | None:
    """The city of a county, the province of a city; none above the province."""
    if code.endswith("0000"):
        return None
    return code[:2] + "0000" if code.endswith("00") else code[:4] + "00"


def _on_duty(session: Session, division: str) -> list[int]:
    """The duty officers of the departments of exactly this division."""
    rule = roles.PERMISSIONS["alarms.dispatch"]
    return list(
        session.scalars(
            select(StaffMember.person_id)
            .join(Department, Department.id == StaffMember.department_id)
            .join(StaffRole, StaffRole.staff_member_id == StaffMember.id)
            .where(Department.division_code == division, StaffRole.role.in_(rule.roles))
            .distinct()
        )
    )


@dataclass(frozen=True)
class Wall:
    """The alarm wall: the alarms, with their devices and rules by id."""

    alarms: list[Alarm]
    devices: dict[int, Device]
    rules: dict[int, Rule]


def wall(session: Session, actor: roles.Staff, *, closed: bool = False) -> Wall:
    alarms = visible(session, actor, closed=closed)
    ids = {a.device_id for a in alarms}
    rule_ids = {a.rule_id for a in alarms}
    return Wall(
        alarms,
        {d.id: d for d in session.scalars(select(Device).where(Device.id.in_(ids)))},
        {r.id: r for r in session.scalars(select(Rule).where(Rule.id.in_(rule_ids)))},
    )


@dataclass(frozen=True)
class AlarmView:
    """One alarm as its page shows it to `actor`."""

    alarm: Alarm
    device: Device
    rule: Rule
    readings: list[Reading]  # the rule's metric, newest first (the last 120)
    history: list[tuple[AlarmEvent, str | None]]
    candidates: list[tuple[str, int, str]]  # whom a duty officer may dispatch it to
    on_duty: bool
    assigned: bool


def chart(view: AlarmView) -> dict[str, object]:
    """The alarm page's chart: its readings in time order, and the rule's levels (the
    device's own, if it has them) as lines."""
    levels = (view.device.thresholds or {}).get(view.rule.code) or view.rule.spec["levels"]
    order: dict[str, int] = {str(c): level for c, level in COLOURS.items()}
    watched = view.rule.kind == "device_alarm"
    mask = RuleSpec.model_validate(view.rule.spec).alarm_mask if watched else 0

    def value(reading: float) -> float:  # a terminal's alarm word: 1 while a watched bit is set
        return float(bool(int(reading) & mask)) if watched else reading

    return {
        "points": [
            [r.observed_at.astimezone(BEIJING).isoformat(), value(r.value)]
            for r in reversed(view.readings)
            if r.flag in VALID_FLAGS
        ],
        "levels": [{"level": order[c], "name": LEVELS[order[c]], "value": v}
                   for c, v in levels.items()],
        "unit": view.rule.spec.get("unit", ""),
    }  # fmt: skip


def view(session: Session, actor: roles.Staff, alarm_id: int) -> AlarmView:
    alarm = session.get(Alarm, alarm_id)
    device = session.get(Device, alarm.device_id) if alarm else None
    if alarm is None or device is None or not may_see(actor, alarm, device.division_code):
        raise NotFound("alarm.not_found", f"没有编号为 {alarm_id} 的报警", field="alarm")
    rule = session.get_one(Rule, alarm.rule_id)
    readings = session.scalars(
        select(Reading)
        .where(Reading.device_id == device.id, Reading.metric == rule.metric)
        .order_by(Reading.observed_at.desc())
        .limit(120)
    ).all()
    on_duty = roles.allows(actor, "alarms.dispatch", _target(alarm))
    return AlarmView(
        alarm,
        device,
        rule,
        list(readings),
        history(session, alarm),
        candidates(session, alarm) if on_duty else [],
        on_duty,
        alarm.assignee_person_id == actor.person_id,
    )


@dataclass(frozen=True)
class Place:
    """A device on the map: where it is (a vehicle: its latest good position), and its most
    severe alarm not closed."""

    device_id: int
    name: str
    kind: str
    latitude: float
    longitude: float
    level: int | None
    alarm_id: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "value": [self.longitude, self.latitude],
            "level": self.level,
            "alarm": self.alarm_id,
        }


@dataclass(frozen=True)
class Situation:
    """What the 态势图 shows one officer: the devices, and per county the most severe alarm
    not closed and how many there are (a county's alarms count in its city and province)."""

    places: list[Place]
    counties: dict[str, tuple[int, int]]  # county code: (most severe level, alarms)


def situation(session: Session, actor: roles.Staff, *, limit: int = 20_000) -> Situation:
    """The devices inside the divisions where `actor` is on duty, and those with an alarm
    there (a vehicle registered elsewhere that sped through), with a position, for the map;
    those with an alarm first, most severe first."""
    prefixes = _duty_prefixes(actor)
    if not prefixes:
        return Situation([], {})
    worst: dict[int, tuple[int, int]] = {}
    counties: dict[str, tuple[int, int]] = {}
    for alarm_id, device_id, level, division in session.execute(
        select(Alarm.id, Alarm.device_id, Alarm.level, Alarm.division_code).where(
            Alarm.state != "closed", _reach(actor, prefixes)
        )
    ):
        if device_id not in worst or level < worst[device_id][0]:
            worst[device_id] = (level, alarm_id)
        most, count = counties.get(division, (level, 0))
        counties[division] = (min(most, level), count + 1)
    devices = session.execute(
        select(Device.id, Device.name, Device.kind, Device.latitude, Device.longitude)
        .where(
            Device.latitude.is_not(None),
            or_(
                Device.id.in_(worst),
                *(Device.division_code.startswith(p) for p in prefixes),
            ),
        )
        .limit(limit)
    ).all()
    places = [
        Place(d.id, d.name, d.kind, d.latitude, d.longitude, *worst.get(d.id, (None, None)))
        for d in devices
    ]
    places.sort(key=lambda p: (p.level is None, p.level or 0, p.device_id))
    return Situation(places, counties)


@dataclass(frozen=True)
class Owned:
    """An alarm on one of an enterprise's own devices, as the enterprise sees it."""

    alarm: Alarm
    device: Device
    rule: Rule
    replies: list[AlarmEvent]


def owned(session: Session, entity_id: int) -> list[Owned]:
    """The alarms on the enterprise's devices: those still being handled first (most severe
    first), then the latest closed; 100 at most."""
    rows = session.execute(
        select(Alarm, Device, Rule)
        .join(Device, Device.id == Alarm.device_id)
        .join(Rule, Rule.id == Alarm.rule_id)
        .where(Device.owner_entity_id == entity_id)
        .order_by((Alarm.state == "closed"), Alarm.level, Alarm.opened_at.desc())
        .limit(100)
    ).all()
    replies: dict[int, list[AlarmEvent]] = {}
    for event in session.scalars(
        select(AlarmEvent)
        .where(
            AlarmEvent.alarm_id.in_([a.id for a, _, _ in rows]),
            AlarmEvent.action == "enterprise_reply",
        )
        .order_by(AlarmEvent.id)
    ):
        replies.setdefault(event.alarm_id, []).append(event)
    return [Owned(a, d, r, replies.get(a.id, [])) for a, d, r in rows]


def reply(session: Session, person_id: int, entity_id: int, alarm_id: int, note: str) -> Alarm:
    """The enterprise explains an alarm on its own device (what happened, what it did): kept
    in the alarm's history, audited, and told to whoever handles it now."""
    alarm = session.get(Alarm, alarm_id)
    device = session.get(Device, alarm.device_id) if alarm else None
    if alarm is None or device is None or device.owner_entity_id != entity_id:
        raise NotFound("alarm.not_found", "没有这条报警")
    if alarm.state == "closed":
        raise QiluError("alarm.closed", "该报警已关闭，不能再说明", field="note")
    text = note.strip()
    _need(text, "请写明情况说明（至少 4 个字）")
    if len(text) > 500:
        raise QiluError("alarm.note", "情况说明不超过 500 字", field="note")
    now = datetime.now(UTC)
    session.add(
        AlarmEvent(
            alarm_id=alarm.id, at=now, action="enterprise_reply", level=alarm.level,
            actor_person_id=person_id, note=text,
        )
    )  # fmt: skip
    record(
        session,
        "monitor.alarm_enterprise_reply",
        actor_person_id=person_id,
        subject=f"alarm:{alarm.id}",
        details={"device": device.id},
    )
    if alarm.assignee_person_id is not None:
        messages.send(
            session,
            alarm.assignee_person_id,
            title="企业对报警的情况说明",
            body=f"{LEVELS[alarm.level]}报警 {alarm.id}（{device.name}）：{text[:100]}",
            link=f"/monitor/alarms/{alarm.id}",
        )
    return alarm
