"""Cases (办件): an application fans out to one case per item in its competent department; each
case moves 已提交 → 已受理 / 不予受理 → 审查中 → 补正 (clock paused) → 准予 / 不予 → 办结 by
role-scoped civil servants, or at once by a 秒批 rule. Items waiting for another's result start
when it is granted. Every step is a conditional update on the case's version (two clerks cannot
both take one step), a row in its history and an audit entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from qilu.audit.service import record
from qilu.codes import items as item_codes
from qilu.db import next_serial
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import roles
from qilu.identity.models import Department, LegalEntity, Person
from qilu.messages import service as messages
from qilu.pii import Vault
from qilu.services import documents, memo
from qilu.services.catalog import competent_departments, implementation_code
from qilu.services.chains import Plan
from qilu.services.facts import Facts
from qilu.services.licences import (
    entity_holder_index,
    issue_licence,
    newborn_id_number,
    revoke_licence,
)
from qilu.services.models import Application, Case, CaseSerial, CaseStep, Licence
from qilu.services.rules import Decision, decide
from qilu.services.specs import shipped_catalog
from qilu.workdays import add_working_days, beijing_today, working_days_between

STATE_NAMES = {
    "draft": "草稿",
    "waiting": "等待前置事项",
    "submitted": "已提交",
    "accepted": "已受理",
    "reviewing": "审查中",
    "correcting": "补正中",
    "granted": "准予",
    "refused": "不予",
    "not_accepted": "不予受理",
    "cancelled": "已终止",
    "done": "办结",
}
FINAL = frozenset({"done", "not_accepted", "cancelled"})
DECISIONS = {"grant": "granted", "refuse": "refused", "not_accept": "not_accepted"}
BLACKLISTED = "失信黑名单"
RELEASED = "前置事项已办结，本事项开始办理"
PROMISED = "容缺受理"


@dataclass(frozen=True)
class Action:
    label: str
    from_states: frozenset[str]
    to_state: str
    permission: str
    needs_reason: bool = False


ACTIONS: dict[str, Action] = {
    "accept": Action("受理", frozenset({"submitted"}), "accepted", "applications.accept"),
    "not_accept": Action(
        "不予受理", frozenset({"submitted"}), "not_accepted", "applications.accept", True
    ),
    "review": Action("开始审查", frozenset({"accepted"}), "reviewing", "applications.decide"),
    "correct": Action(
        "要求补正", frozenset({"accepted", "reviewing"}), "correcting", "applications.decide", True
    ),
    "grant": Action("准予", frozenset({"reviewing"}), "granted", "applications.decide"),
    "refuse": Action("不予许可", frozenset({"reviewing"}), "refused", "applications.decide", True),
    "finish": Action("办结", frozenset({"granted", "refused"}), "done", "applications.decide"),
}


def national_numbers(session: Session, codes: list[str], day: date) -> dict[str, str]:
    """办件编号 for one new case of each implementation code, numbered within the code and
    `day`: each serial is taken by one atomic increment, so concurrent applications never share
    one."""
    numbers = {}
    for code in sorted(set(codes)):  # one order for every transaction: no deadlock between two
        serial = next_serial(session, CaseSerial.__table__, f"{code}{day:%Y%m%d}")
        numbers[code] = item_codes.case_number(code, day, serial)
    return numbers


def fan_out(
    session: Session, vault: Vault, application: Application, plan: Plan, today: date
) -> list[Case]:
    """One case per planned item in its competent department, waiting for the cases whose
    results it needs; then each case that can start, starts."""
    now = datetime.now(UTC)
    flags = _flags(session, vault, application, today)
    by_code: dict[str, Case] = {}
    departments = competent_departments(
        session, [e.item for e in plan.items], application.division_code
    )
    numbers = {
        e.item.code: f"{application.number}-{n:02d}" for n, e in enumerate(plan.items, start=1)
    }
    codes = {e.item.code: implementation_code(e.item, departments[e.item.id]) for e in plan.items}
    national = national_numbers(session, list(codes.values()), today)
    for entry in plan.items:
        department = departments[entry.item.id]
        receiving = application.receiving_department_id
        case = Case(
            application_id=application.id,
            item_id=entry.item.id,
            number=numbers[entry.item.code],
            national_number=national[codes[entry.item.code]],
            implementation_code=codes[entry.item.code],
            department_id=department.id,
            receiving_department_id=receiving if receiving != department.id else None,
            state="waiting" if entry.after else "submitted",
            # By number, known before the rows are written: all cases go in one statement.
            waits_for=[numbers[code] for code in entry.after],
            flags=list(flags),
            version=1,
            updated_at=now,
        )
        case.item = entry.item
        by_code[entry.item.code] = case
    session.add_all(by_code.values())
    session.flush()
    session.execute(
        insert(CaseStep),
        [
            {
                "case_id": c.id,
                "seq": 1,
                "action": "submit",
                "from_state": "draft",
                "to_state": c.state,
                "actor_person_id": application.clerk_person_id or application.applicant_person_id,
                "reason": "窗口代为申请" if application.channel == "window" else "网上申请",
                "at": now,
            }
            for c in by_code.values()
        ],
    )
    application.status = "in_progress"
    for case in by_code.values():
        if case.state == "submitted":
            _try_instant(session, vault, case, today)
        if case.state == "submitted":  # not decided by rule: a window has work
            _tell_the_window(session, case)
    _roll_up(session, application)
    return list(by_code.values())


def _tell_the_window(session: Session, case: Case) -> None:
    """Staff hear of new work too: each clerk who may accept the case gets a message."""
    window = case.receiving_department_id or case.department_id
    for person_id in roles.holders(session, "applications.accept", window):
        messages.send(
            session,
            person_id,
            title="新办件待受理",
            body=f"“{case.item.name}”（{case.number}）已提交，请及时受理。",
            link=f"/workbench/cases/{case.id}",
        )


def check_province_wide(
    session: Session, plan: Plan, division_code: str, receiving_department_id: int | None
) -> None:
    """A window in another city may receive only items handled province-wide (全省通办)."""
    if receiving_department_id is None:
        return
    receiving = session.get_one(Department, receiving_department_id)
    local = [e.item for e in plan.items if not e.item.spec["province_wide"]]
    departments = competent_departments(session, local, division_code) if local else {}
    for item in local:
        department = departments[item.id]
        if receiving.division_code[:4] != department.division_code[:4]:
            raise QiluError(
                "services.not_province_wide",
                f"“{item.name}”不支持全省通办，请到{department.name}办理",
                field="item",
            )


def _flags(session: Session, vault: Vault, application: Application, today: date) -> list[str]:
    """What an approver must see first: an applicant on the credit blacklist."""
    facts = _facts(session, vault, application, today)
    listed = facts("applicant.blacklisted") or facts("entity.blacklisted")
    return [BLACKLISTED] if listed else []


def _facts(session: Session, vault: Vault, application: Application, today: date) -> Facts:
    """One set of facts per application and transaction, so each is looked up once."""
    facts = memo.kept(session, "facts")
    if application.id not in facts:
        facts[application.id] = Facts(session, vault, application, today)
    return facts[application.id]  # type: ignore[no-any-return]


def _rule_decision(session: Session, vault: Vault, case: Case, today: date) -> Decision | None:
    """What the item's 秒批 rule says of this case (None if it has none), kept on the case;
    a referral is logged with its reason."""
    rule_key = case.item.spec.get("instant")
    if not rule_key:
        return None
    facts = _facts(session, vault, case.application, today)
    decision = decide(shipped_catalog().rules[rule_key], facts)
    if BLACKLISTED in case.flags:
        reason = f"申请人被列入失信黑名单，转人工审核（规则结论：{decision.reason}）"
        decision = Decision(False, reason, decision.findings)
    case.findings = decision.as_dict()
    if not decision.approved:
        record(
            session,
            "services.instant_referred",
            subject=f"case:{case.number}",
            details={"rule": rule_key, "reason": decision.reason},
        )
    return decision


def _try_instant(session: Session, vault: Vault, case: Case, today: date) -> None:
    """秒批: if the item has a rule and it approves, accept, grant and finish now; otherwise
    leave the case for a person with the rule's findings."""
    decision = _rule_decision(session, vault, case, today)
    if decision is not None and decision.approved:
        _decide_instantly(session, vault, case, decision.reason, today)


INSTANT_STEPS = (
    ("accept", "submitted", "accepted"),
    ("review", "accepted", "reviewing"),
    ("grant", "reviewing", "granted"),
    ("finish", "granted", "done"),
)


RELEASE = ("release", "waiting", "submitted")


def _decide_instantly(
    session: Session, vault: Vault, case: Case, reason: str, today: date, *, released: bool = False
) -> None:
    """The steps of a 秒批 case in one update (with its release, if it was waiting): it was
    submitted or released in this transaction, so nobody else holds it; each step is still a
    row of its history."""
    now = datetime.now(UTC)
    steps = (RELEASE, *INSTANT_STEPS) if released else INSTANT_STEPS
    changes: dict[str, Any] = {
        "state": "done",
        "instant": True,
        "decision": "granted",
        "decision_reason": reason,
        "findings": case.findings,
        "updated_at": now,
        **_clock(case, "accept", today),
    }
    moved = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == case.version)
        .values(version=Case.version + len(steps), **changes)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _conflict()
    first = case.version + 1
    _settle(case, {**changes, "version": case.version + len(steps)})
    session.execute(
        insert(CaseStep),
        [
            {
                "case_id": case.id,
                "seq": first + n,
                "action": action,
                "from_state": before,
                "to_state": after,
                "actor_person_id": None,
                "reason": reason,
                "at": now,
            }
            for n, (action, before, after) in enumerate(steps)
        ],
    )
    record(
        session,
        "services.case_instant",
        subject=f"case:{case.number}",
        details={"steps": [step[0] for step in steps], "reason": reason},
    )
    messages.send(
        session,
        case.application.applicant_person_id,
        title="秒批：已准予并办结",
        body=f"您申请的“{case.item.name}”已按规则即时审批，准予并办结（{case.department.name}）。"
        + (benefit_terms(case) if case.item.spec.get("type") == "行政给付" else ""),
        link=f"/services/applications/{case.application_id}",
    )
    _issue(session, vault, case, today)
    _release_waiting(session, vault, case, today)


def act(
    session: Session,
    vault: Vault,
    case_id: int,
    action: str,
    *,
    actor_person_id: int,
    expected_version: int,
    reason: str = "",
    promise_missing: bool = False,
    redo: list[str] | None = None,
) -> Case:
    """A civil servant's step on a case: allowed by their role in the case's department (or,
    to accept, the department that received it), from the state the case was in when they saw
    it (`expected_version`). A correction names at once everything to redo (一次性告知):
    `redo` holds `field:<key>` and `material:<name>` of the case's item."""
    if action not in ACTIONS:
        raise QiluError("case.action", f"未知的操作 {action}", field="action")
    case = get_case(session, case_id)
    spec = ACTIONS[action]
    _authorise(session, actor_person_id, case, spec)
    if case.version != expected_version:
        raise _conflict()
    if spec.needs_reason and not reason.strip():
        raise QiluError("case.reason", f"{spec.label}须写明理由", field="reason")
    today = beijing_today()
    correction = _correction(case, redo or [], reason, today) if action == "correct" else None
    if promise_missing and action == "accept":
        case.flags = [*case.flags, PROMISED]
        case.post_check = "pending"
    if correction is not None:
        case.correction = correction
    _step(session, vault, case, action, actor_person_id=actor_person_id, reason=reason, today=today)
    _roll_up(session, case.application)
    return case


CORRECTION_DAYS = 10  # working days the applicant has to answer a correction


def redo_choices(case: Case) -> list[tuple[str, str]]:
    """What a correction may ask for on this case: (`field:<key>` | `material:<name>`, label)."""
    fields = shipped_catalog().fields
    return [
        *((f"field:{k}", fields[k].label if k in fields else k) for k in case.item.spec["fields"]),
        *((f"material:{m}", m) for m in case.item.spec["materials"]),
    ]


def _correction(case: Case, redo: list[str], reason: str, today: date) -> dict[str, Any]:
    choices = dict(redo_choices(case))
    chosen = [r for r in dict.fromkeys(redo) if r in choices]
    if not chosen:
        raise QiluError("case.redo", "请勾选需要补正的信息或材料，一次性告知申请人", field="redo")
    return {
        "fields": [r.removeprefix("field:") for r in chosen if r.startswith("field:")],
        "materials": [r.removeprefix("material:") for r in chosen if r.startswith("material:")],
        "labels": [choices[r] for r in chosen],
        "reason": reason,
        "due_on": add_working_days(today, CORRECTION_DAYS).isoformat(),
        "at": datetime.now(UTC).isoformat(),
    }


def _authorise(session: Session, person_id: int, case: Case, spec: Action) -> None:
    actor = roles.staff(session, person_id)
    if not may(actor, case, spec):
        raise Refused("role.forbidden", "您没有办理此项工作的权限", permission=spec.permission)
    roles.not_own(actor, case.application.applicant_person_id, "申请")


def may(actor: roles.Actor, case: Case, spec: Action) -> bool:
    """The step's permission in the case's department — or, to accept, in the department that
    received it (全省通办: the receiving window does the formal check)."""
    departments = [case.department]
    if spec.permission == "applications.accept" and case.receiving_department is not None:
        departments.append(case.receiving_department)
    return any(roles.allows(actor, spec.permission, roles.Target.of(d)) for d in departments)


def _settle(case: Case, values: dict[str, Any]) -> None:
    """What a conditional UPDATE wrote, set on the loaded case as already stored (so the session
    does not write it a second time)."""
    for name, value in values.items():
        set_committed_value(case, name, value)


def _conflict() -> QiluError:
    return QiluError("case.conflict", "该办件已被他人处理，请刷新后查看最新状态", field="version")


def _step(
    session: Session,
    vault: Vault,
    case: Case,
    action: str,
    *,
    actor_person_id: int | None,
    reason: str,
    today: date,
) -> None:
    spec = ACTIONS[action]
    if case.state not in spec.from_states:
        raise QiluError(
            "case.state",
            f"办件当前为“{STATE_NAMES[case.state]}”，不能{spec.label}",
            field="action",
        )
    changes: dict[str, Any] = {"state": spec.to_state, "updated_at": datetime.now(UTC)}
    changes |= _clock(case, action, today)
    if action in DECISIONS:
        changes["decision"] = DECISIONS[action]
        changes["decision_reason"] = reason or None
    moved = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == case.version)
        .values(version=Case.version + 1, **changes)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _conflict()
    previous = case.state
    _settle(case, {**changes, "version": case.version + 1})
    session.add(
        CaseStep(
            case_id=case.id,
            seq=case.version,
            action=action,
            from_state=previous,
            to_state=spec.to_state,
            actor_person_id=actor_person_id,
            reason=reason,
            at=changes["updated_at"],
        )
    )
    record(
        session,
        f"services.case_{action}",
        actor_person_id=actor_person_id,
        subject=f"case:{case.number}",
        details={"from": previous, "to": spec.to_state, "reason": reason, "instant": case.instant},
    )
    _after(session, vault, case, action, today, reason)


def _clock(case: Case, action: str, today: date) -> dict[str, Any]:
    """The time limit: promised working days from acceptance, extended by paused days."""
    promised = int(case.item.spec["promised_days"])
    if action == "accept":
        return {"accepted_on": today, "due_on": add_working_days(today, promised)}
    if action == "correct":
        return {"paused_since": today, "pause_reason": "补正"}
    return {}


# What the applicant is told at each step (消息中心), with the placeholders filled from the case.
NOTICES = {
    "accept": ("办件已受理", "您申请的“{item}”已由{department}受理，承诺 {days} 个工作日内办结。"),
    "not_accept": ("办件不予受理", "您申请的“{item}”不予受理。理由：{reason}"),
    "correct": (
        "请补正材料",
        "您申请的“{item}”需要补正：{redo}（{reason}），请于 {redo_by} 前在申请页面补正后提交。"
        "补正期间办理时限暂停。",
    ),
    "grant": ("准予许可", "您申请的“{item}”已准予许可。"),
    "refuse": ("不予许可", "您申请的“{item}”不予许可。理由：{reason}"),
    "finish": ("办件已办结", "您申请的“{item}”已办结。"),
}


def _notify(session: Session, case: Case, action: str, reason: str) -> None:
    """Tell the applicant, in their inbox (and by SMS if they asked), as the step commits."""
    if action not in NOTICES:
        return
    title, body = NOTICES[action]
    values = {
        "item": case.item.name,
        "department": case.department.name,
        "days": case.item.spec["promised_days"],
        "reason": reason or "未说明",
        "redo": "、".join((case.correction or {}).get("labels", [])),
        "redo_by": (case.correction or {}).get("due_on", ""),
    }
    text = body.format(**values)
    if action == "grant" and case.item.spec.get("type") == "行政给付":
        text += benefit_terms(case)
    messages.send(
        session,
        case.application.applicant_person_id,
        title=title,
        body=text,
        link=f"/services/applications/{case.application_id}",
    )


def benefit_terms(case: Case) -> str:
    """What a granted benefit pays, from the month after the decision, to which account (the
    applicant's form)."""
    form = case.application.form
    amount = form.get("amount")
    paid = f"金额 {amount} 元" if amount else "按政策标准发放"
    today = beijing_today(case.updated_at)
    start = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    account = str(form.get("bank_account") or "")
    to = f"发放至尾号 {account[-4:]} 的银行账户" if account else "发放至本人社会保障卡银行账户"
    return f"{paid}，自 {start:%Y年%m月} 起，{to}。"


def _after(
    session: Session, vault: Vault, case: Case, action: str, today: date, reason: str
) -> None:
    documents.issue(session, vault, case, action, reason)
    _notify(session, case, action, reason)
    if action == "grant":
        _issue(session, vault, case, today)
    if action in ("finish", "not_accept"):
        _release_waiting(session, vault, case, today)


def resume(session: Session, vault: Vault, case: Case, *, actor_person_id: int) -> None:
    """The applicant has answered a correction: back to review, the clock running again with
    the paused working days added to the limit."""
    today = beijing_today()
    paused = max(0, working_days_between(case.paused_since or today, today))
    promised = int(case.item.spec["promised_days"])
    total = case.paused_days + paused
    changes = {
        "state": "reviewing",
        "paused_since": None,
        "pause_reason": None,
        "paused_days": total,
        "due_on": add_working_days(case.accepted_on or today, promised + total),
        "clock_warned": None,  # a later limit may turn yellow again, and is told again
        "updated_at": datetime.now(UTC),
    }
    moved = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == case.version, Case.state == "correcting")
        .values(version=Case.version + 1, **changes)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _conflict()
    _settle(case, {**changes, "version": case.version + 1})
    session.add(
        CaseStep(
            case_id=case.id,
            seq=case.version,
            action="resubmit",
            from_state="correcting",
            to_state="reviewing",
            actor_person_id=actor_person_id,
            reason=f"申请人已补正（暂停 {paused} 个工作日）",
            at=changes["updated_at"],
        )
    )
    record(
        session,
        "services.case_resubmit",
        actor_person_id=actor_person_id,
        subject=f"case:{case.number}",
        details={"paused_days": paused},
    )
    _roll_up(session, case.application)


def _issue(session: Session, vault: Vault, case: Case, today: date) -> None:
    issues = case.item.spec.get("issues")
    if not issues:
        return
    application = case.application
    if application.entity_id is not None:
        entity = session.get_one(LegalEntity, application.entity_id)
        kind, code, index, name = (
            "enterprise",
            entity.uscc,
            entity_holder_index(vault, entity.uscc),
            entity.name,
        )
    else:
        person = session.get_one(Person, application.applicant_person_id)
        code = vault.decrypt(person.id_number_cipher, "id_number")
        kind, index, name = "person", person.id_number_index, person.name
    own_fields = set(case.item.spec["fields"])
    form = application.form
    keeper = None
    if issues.get("holder") == "child":
        # The certificate is the child's, kept in the parent's wallet until the child has one.
        born = date.fromisoformat(form["child_birth_date"])
        division = session.get_one(Person, application.applicant_person_id).household_division_code
        code = newborn_id_number(session, vault, division, born, form["child_sex"])
        keeper, kind = index, "person"
        index, name = vault.blind_index(code, "id_number"), form["child_name"]
        form = {**form, "child_id_number": code}
        own_fields.add("child_id_number")
    messages.send(
        session,
        application.applicant_person_id,
        title="电子证照已签发",
        body=f"“{issues['licence']}”已签发（{case.department.name}），可在“我的电子证照”中查看和出示。",
        link="/account/licences",
    )
    issue_licence(
        session,
        vault,
        licence_type=issues["licence"],
        years=int(issues["years"]),
        holder_kind=kind,
        holder_code=code,
        holder_code_index=index,
        holder_name=name,
        issuer=case.department,
        case_id=case.id,
        content={
            "事项": case.item.name,
            "办件编号": case.national_number or case.number,
            **{k: v for k, v in form.items() if k in own_fields},
        },
        today=today,
        keeper_code_index=keeper,
    )


def _release_waiting(session: Session, vault: Vault, finished: Case, today: date) -> None:
    """Cases of the same application waiting for `finished`: start those whose every
    prerequisite was granted and is done; end those that can no longer go on."""
    siblings = {c.number: c for c in _cases_of(session, finished.application_id)}
    for case in siblings.values():
        if case.state != "waiting" or finished.number not in case.waits_for:
            continue
        needed = [siblings[i] for i in case.waits_for]
        if any(n.state in FINAL and n.decision != "granted" for n in needed):
            cancel(session, case, "前置事项未获准予，本事项终止")
            _release_waiting(session, vault, case, today)
        elif all(n.state == "done" and n.decision == "granted" for n in needed):
            decision = _rule_decision(session, vault, case, today)
            if decision is not None and decision.approved:
                _decide_instantly(session, vault, case, decision.reason, today, released=True)
            else:
                _system_move(session, case, "submitted", RELEASED)


def cancel(session: Session, case: Case, reason: str) -> None:
    """End a case no one will decide (its prerequisite was refused, the applicant withdrew)."""
    _system_move(session, case, "cancelled", reason)


def _system_move(session: Session, case: Case, to_state: str, reason: str) -> None:
    previous = case.state
    moved = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.version == case.version)
        .values(state=to_state, version=Case.version + 1, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _conflict()
    _settle(case, {"state": to_state, "version": case.version + 1})
    session.add(
        CaseStep(
            case_id=case.id,
            seq=case.version,
            action="release" if to_state == "submitted" else "cancel",
            from_state=previous,
            to_state=to_state,
            actor_person_id=None,
            reason=reason,
            at=datetime.now(UTC),
        )
    )
    record(
        session,
        f"services.case_{to_state}",
        subject=f"case:{case.number}",
        details={"reason": reason},
    )


def transfer_open(session: Session, old: Department, new: Department, reason: str) -> list[Case]:
    """Every unfinished case of `old` moves to `new` (a merge, 撤并): same number and clock,
    the new department's implementation code, a dated step on its timeline, and
    the applicant told. Finished cases stay where they were decided."""
    moving = list(
        session.scalars(
            select(Case)
            .where(Case.department_id == old.id, Case.state.not_in(FINAL))
            .order_by(Case.id)
        )
    )
    for case in moving:
        _transfer(session, case, old, new, reason)
    session.flush()
    return moving


# Not yet taken in by a window: a case the applicant's new county may still receive.
NOT_ACCEPTED = ("waiting", "submitted")


def follow_move(session: Session, person_id: int, old_division: str, new_division: str) -> int:
    """The resident's household moved to another county (the population register says so):
    their applications handled where they lived, whose cases no window has accepted yet, go to
    the new county's competent departments. Cases already accepted are finished where they
    were accepted (受理地负责到底). Returns how many cases moved."""
    moved = 0
    applications = session.scalars(
        select(Application).where(
            Application.applicant_person_id == person_id,
            Application.entity_id.is_(None),
            Application.division_code == old_division,
            Application.status.in_(("submitted", "in_progress")),
        )
    ).all()
    for application in applications:
        waiting = [c for c in _cases_of(session, application.id) if c.state in NOT_ACCEPTED]
        if not waiting:
            continue
        try:
            chosen = competent_departments(session, [c.item for c in waiting], new_division)
        except NotFound:  # the new county has no such office: the case stays where it is
            continue
        for case in waiting:
            target = chosen[case.item.id]
            if target.id != case.department_id:
                _transfer(session, case, case.department, target, "户籍迁移")
                moved += 1
        if all(c.state in NOT_ACCEPTED for c in _cases_of(session, application.id)):
            application.division_code = new_division  # handled where the applicant now lives
    session.flush()
    return moved


def _transfer(session: Session, case: Case, old: Department, new: Department, reason: str) -> None:
    """One case to another department: a step on its timeline, audited, the applicant told."""
    now = datetime.now(UTC)
    case.department_id = new.id
    session.expire(case, ["department"])  # read again as the new department
    case.implementation_code = implementation_code(case.item, new)
    case.version += 1
    case.updated_at = now
    session.add(
        CaseStep(
            case_id=case.id,
            seq=case.version,
            action="transfer",
            from_state=case.state,
            to_state=case.state,
            actor_person_id=None,
            reason=f"{reason}：由{old.name}移交{new.name}",
            at=now,
        )
    )
    record(
        session,
        "services.case_transferred",
        subject=f"case:{case.number}",
        details={"from": old.code, "to": new.code, "reason": reason},
    )
    messages.send(
        session,
        case.application.applicant_person_id,
        title="办件改由新机构办理",
        body=f"因{reason}，您的办件 {case.number}（{case.item.name}）改由{new.name}继续办理，"
        "办理进度和时限不变。",
        link=f"/services/applications/{case.application_id}",
    )


def _cases_of(session: Session, application_id: int) -> list[Case]:
    return list(
        session.scalars(select(Case).where(Case.application_id == application_id).order_by(Case.id))
    )


def _roll_up(session: Session, application: Application) -> None:
    """One application, one status, from its cases."""
    states = [c.state for c in _cases_of(session, application.id)]
    if not states:
        return
    if any(s == "correcting" for s in states):
        status = "correcting"
    elif all(s in FINAL for s in states):
        status = "done"
    else:
        status = "in_progress"
    if status != application.status:
        application.status = status
        application.finished_at = datetime.now(UTC) if status == "done" else None
        session.flush()


def get_case(session: Session, case_id: int) -> Case:
    # Every step reads the item (its limits) and the application (its status): one query.
    found = session.get(
        Case, case_id, options=[joinedload(Case.item), joinedload(Case.application)]
    )
    if found is None:
        raise NotFound("case.not_found", "办件不存在", field="case")
    return found


def steps_of(session: Session, case_id: int) -> list[CaseStep]:
    return list(
        session.scalars(select(CaseStep).where(CaseStep.case_id == case_id).order_by(CaseStep.seq))
    )


def post_check(
    session: Session,
    case_id: int,
    *,
    actor_person_id: int,
    passed: bool,
    note: str,
) -> Case:
    """The check after 容缺受理: the promised material arrived and holds (passed), or not
    (failed: a licence the case issued is revoked)."""
    case = get_case(session, case_id)
    _authorise(session, actor_person_id, case, ACTIONS["accept"])
    if case.post_check != "pending":
        raise QiluError("case.post_check", "该办件不在后核队列中", field="case")
    if not note.strip():
        raise QiluError("case.reason", "请写明核查情况", field="reason")
    outcome = "passed" if passed else "failed"
    moved = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.post_check == "pending", Case.version == case.version)
        .values(post_check=outcome, version=Case.version + 1, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _conflict()
    _settle(case, {"post_check": outcome, "version": case.version + 1})
    session.add(
        CaseStep(
            case_id=case.id,
            seq=case.version,
            action=f"post_check_{outcome}",
            from_state=case.state,
            to_state=case.state,
            actor_person_id=actor_person_id,
            reason=note.strip(),
            at=datetime.now(UTC),
        )
    )
    if not passed:
        for licence in session.scalars(
            select(Licence).where(Licence.case_id == case.id, Licence.status == "valid")
        ):
            revoke_licence(
                session,
                licence,
                reason=f"容缺后核未通过：{note.strip()}",
                actor_person_id=actor_person_id,
            )
    record(
        session,
        f"services.post_check_{outcome}",
        actor_person_id=actor_person_id,
        subject=f"case:{case.number}",
        details={"note": note.strip()},
    )
    return case
