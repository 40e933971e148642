"""Sharing (共享): a department asks for a resource's fields for a purpose, a legal basis and a
period. Unconditionally shared resources are granted at once; conditionally shared ones are first
checked against the conditions the provider registered as data (`catalog.SharingRules`: a request
outside them is refused at once, naming the condition), then wait for the provider's data
steward, who must decide within `DECISION_DAYS` working days — reminded the day before, the
大数据局 told once it has passed — and who refuses only on a named rule (`REFUSAL_RULES`) with a
reason. Resources marked 不予共享 cannot be asked for. Grants expire and can be revoked. Every
step is audited, and the asking department's stewards are told the decision.

The 《政务数据共享条例》 (2025) requires an answer to a request for 有条件共享 data within a
set number of working days and reasons for a refusal; Shandong's own rules may shorten the
period, so it is a constant here to set.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.catalog import FieldSpec, SharingRules, get_resource, schema_of
from qilu.data.loading import PERSONAL
from qilu.data.models import DataResource, Dispute, ShareGrant
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import roles
from qilu.identity.models import Department
from qilu.messages import service as messages
from qilu.workdays import add_working_days, beijing_today

LONGEST_GRANT = timedelta(days=3 * 366)
OVERSEER = "370000-bigdata"  # 省大数据局: told of requests and disputes left past their deadline
DECISION_DAYS = 10  # working days for the provider to decide a conditional request
# What a refusal may rest on: the rule, as the requesting department reads it.
REFUSAL_RULES = {
    "not_needed": "超出履职所需：字段或范围超过所述用途必需（最小必要，《个人信息保护法》第六条）",
    "conditions": "不符合该资源登记的共享条件",
    "no_basis": "所述法律或政策依据不足以支持共享该数据",
    "consent": "涉及个人信息，须取得本人同意或有法定依据（《个人信息保护法》第十三条）",
    "law": "法律、行政法规规定不得共享",
    "security": "共享将危及国家安全、公共利益或数据安全（《数据安全法》）",
}
# Field types a grant's row conditions may name (stored in the open, compared as text).
ROW_TYPES = frozenset({"string", "enum", "division", "uscc", "party_code", "date"})


def request_access(
    session: Session,
    code: str,
    *,
    consumer: str,
    fields: list[str],
    purpose: str,
    legal_basis: str,
    valid_until: datetime,
    actor: roles.Actor,
    clear_fields: list[str] | None = None,
    may_list: bool = False,
    row_conditions: dict[str, str] | None = None,
    now: datetime | None = None,
) -> ShareGrant:
    """Ask for `fields` of resource `code` for department `consumer` (its code); of the personal
    ones, `clear_fields` are asked for in clear (the others are answered masked). Only a steward
    or leader of that department asks for it."""
    moment = now or datetime.now(UTC)
    resource = get_resource(session, code)
    department = session.scalars(
        select(Department).where(Department.code == consumer)
    ).one_or_none()
    if department is None:
        raise NotFound("sharing.consumer", f"没有编码为 {consumer} 的部门", field="consumer")
    roles.authorize(actor, "data.request_sharing", roles.Target.of(department))
    by = roles.person_of(actor)
    if resource.sharing == "none":
        raise Refused(
            "sharing.not_shared", f"{resource.name}为不予共享资源，不能申请", field="code"
        )
    if resource.origin:  # a city's entry (级联): its data and its grants are the city's
        raise Refused(
            "sharing.cascaded",
            f"{resource.name}级联自{resource.origin}目录，请在{resource.origin}的平台申请共享",
            field="code",
        )
    schema = schema_of(session, resource)
    known = [f.name for f in schema]
    unknown = sorted(set(fields) - set(known))
    if not fields or unknown:
        raise QiluError(
            "sharing.fields",
            f"请选择该资源已有的字段{'（没有：' + '、'.join(unknown) + '）' if unknown else ''}",
            field="fields",
            unknown=unknown,
        )
    personal = {f.name for f in schema if f.sensitivity in PERSONAL and f.name in set(fields)}
    not_personal = sorted(set(clear_fields or []) - personal)
    if not_personal:
        raise QiluError(
            "sharing.clear_fields",
            f"只有所申请的个人信息字段可以申请明文（{'、'.join(not_personal)}）",
            field="clear_fields",
            fields=not_personal,
        )
    conditions = _row_conditions(schema, row_conditions or {})
    if len(purpose.strip()) < 4:
        raise QiluError("sharing.purpose", "请写明使用目的（至少 4 个字）", field="purpose")
    if resource.sharing == "conditional":
        rules = SharingRules.model_validate(resource.sharing_rules or {})
        broken = rules.broken_by(fields, conditions, purpose, may_list)
        if broken is not None:
            raise Refused("sharing.condition", f"不符合共享条件：{broken[1]}", field=broken[0])
    if len(legal_basis.strip()) < 2:
        raise QiluError("sharing.legal_basis", "请写明法律依据或政策依据", field="legal_basis")
    if not moment < valid_until <= moment + LONGEST_GRANT:
        raise QiluError(
            "sharing.valid_until", "使用期限须在今天之后、三年之内", field="valid_until"
        )
    unconditional = resource.sharing == "unconditional"
    grant = ShareGrant(
        resource_id=resource.id,
        consumer_id=department.id,
        fields=[name for name in known if name in set(fields)],  # in the schema's order
        clear_fields=[name for name in known if name in set(clear_fields or [])],
        may_list=may_list,
        row_conditions=conditions,
        purpose=purpose.strip(),
        legal_basis=legal_basis.strip(),
        valid_until=valid_until,
        status="granted" if unconditional else "pending",
        requested_by_person_id=by,
        requested_at=moment,
        decided_at=moment if unconditional else None,
        decision_reason="无条件共享资源，自动批准" if unconditional else "",
        due_on=None if unconditional else add_working_days(beijing_today(moment), DECISION_DAYS),
    )
    session.add(grant)
    session.flush()
    _audit(session, "sharing.requested", grant, by, moment)
    if unconditional:
        _audit(session, "sharing.granted", grant, None, moment)
    else:
        _tell(
            session, "data.approve_sharing", resource.provider_id,
            f"{department.name}申请共享{resource.name}",
            f"请于 {grant.due_on:%Y-%m-%d} 前审批。",
        )  # fmt: skip
    return grant


def _row_conditions(schema: list[FieldSpec], asked: dict[str, str]) -> dict[str, str]:
    """Conditions on open fields a filter can compare (a division, a status, a code)."""
    fields = {f.name: f for f in schema}
    conditions: dict[str, str] = {}
    for name, value in asked.items():
        spec = fields.get(name)
        value = value.strip()
        if spec is None or spec.sensitivity in PERSONAL or spec.type not in ROW_TYPES:
            raise QiluError(
                "sharing.row_field", f"{name} 不能作为数据范围条件", field="row_conditions"
            )
        if not value or len(value) > 64 or (spec.type == "division" and not _is_code(value)):
            wanted = "6 位行政区划代码" if spec.type == "division" else "1 到 64 个字符"
            raise QiluError(
                "sharing.row_value", f"{spec.label}的范围条件须为{wanted}", field="row_conditions"
            )
        conditions[name] = value
    return conditions


def _is_code(value: str) -> bool:
    return len(value) == 6 and value.isdigit()


def decide(
    session: Session,
    grant_id: int,
    *,
    approve: bool,
    reason: str,
    actor: roles.Actor,
    rule: str = "",
    now: datetime | None = None,
) -> ShareGrant:
    """A data steward of the providing department approves or refuses a pending request; not
    the one who asked for it, nor a member of the department that asked. A refusal names its
    rule (`REFUSAL_RULES`) and a reason; the asking department's stewards are told either way."""
    moment = now or datetime.now(UTC)
    grant = _grant(session, grant_id)
    roles.authorize(actor, "data.approve_sharing", roles.Target.of(grant.resource.provider))
    roles.not_own(actor, grant.requested_by_person_id, "共享申请")
    if isinstance(actor, roles.Staff) and grant.consumer_id in {
        g.department_id for g in actor.grants
    }:
        raise Refused("role.own_request", "不能审批本部门提出的共享申请：请由提供部门其他人员办理")
    by = roles.person_of(actor)
    if grant.status != "pending":
        raise QiluError("sharing.decided", "该申请已处理，不能重复审批", field="grant")
    if not approve and rule not in REFUSAL_RULES:
        raise QiluError("sharing.rule", "不予批准须选择所依据的规则", field="rule")
    if not approve and len(reason.strip()) < 2:
        raise QiluError("sharing.reason", "不予批准须写明理由", field="reason")
    grant.status = "granted" if approve else "refused"
    grant.decided_by_person_id, grant.decided_at = by, moment
    grant.decision_reason = reason.strip()
    grant.refusal_rule = "" if approve else rule
    _audit(session, "sharing.granted" if approve else "sharing.refused", grant, by, moment)
    name, said = grant.resource.name, grant.decision_reason
    _tell(
        session, "data.request_sharing", grant.consumer_id,
        f"{name}的共享申请已批准" if approve else f"{name}的共享申请未获批准",
        said if approve else f"依据：{REFUSAL_RULES[rule]}。理由：{said}",
    )  # fmt: skip
    return grant


def watch(session: Session, *, now: datetime | None = None) -> tuple[int, int]:
    """The hourly look at conditional requests waiting for a decision: remind the provider's
    stewards a working day before the deadline, tell the 大数据局 once it has passed. Returns
    (reminded, escalated)."""
    moment = now or datetime.now(UTC)
    remind, escalate = deadline_steps(session, ShareGrant, "pending", moment)
    overseer = overseer_id(session) if escalate else None
    for grant in escalate:
        if overseer is not None:
            _tell(
                session, "data.publish", overseer, f"{_asked(grant)}，已超期未审批",
                f"提供部门：{grant.resource.provider.name}；应于 {grant.due_on:%Y-%m-%d} 前审批。",
            )  # fmt: skip
        _audit(session, "sharing.escalated", grant, None, moment)
    for grant in remind:
        _tell(
            session, "data.approve_sharing", grant.resource.provider_id,
            f"{_asked(grant)}，即将到期", f"请于 {grant.due_on:%Y-%m-%d} 前审批。",
        )  # fmt: skip
    return len(remind), len(escalate)


def _asked(grant: ShareGrant) -> str:
    return f"{grant.consumer.name}申请共享{grant.resource.name}"


def deadline_steps(
    session: Session, model: type[Waiting], status: str, now: datetime
) -> tuple[list[Waiting], list[Waiting]]:
    """Of `model`'s rows in `status` (requests, disputes), those to remind now — due by the
    next working day, not reminded yet — and those to escalate — past their deadline, not
    escalated yet. Each is marked, so the step happens once."""
    today = beijing_today(now)
    near = session.scalars(
        select(model).where(
            model.status == status,
            model.due_on <= add_working_days(today, 1),  # the others are not near it yet
            model.escalated_at.is_(None),
        )
    ).all()
    remind: list[Waiting] = []
    escalate: list[Waiting] = []
    for row in near:
        assert row.due_on is not None
        if row.due_on < today:
            row.escalated_at = now
            escalate.append(row)
        elif row.reminded_at is None:
            row.reminded_at = now
            remind.append(row)
    return remind, escalate


def overseer_id(session: Session) -> int | None:
    """The department overdue work is escalated to, if the organisation has it."""
    return session.scalars(select(Department.id).where(Department.code == OVERSEER)).one_or_none()


def _tell(session: Session, permission: str, department_id: int, title: str, body: str) -> None:
    """Everyone who holds `permission` in the department, through the message centre."""
    for person_id in roles.holders(session, permission, department_id):
        messages.send(session, person_id, title=title, body=body, link="/workbench/sharing")


def revoke(
    session: Session,
    grant_id: int,
    *,
    reason: str,
    actor: roles.Actor,
    now: datetime | None = None,
) -> ShareGrant:
    """The provider's steward ends a grant before its time (the consumer's use ends at once)."""
    moment = now or datetime.now(UTC)
    grant = _grant(session, grant_id)
    roles.authorize(actor, "data.approve_sharing", roles.Target.of(grant.resource.provider))
    by = roles.person_of(actor)
    if grant.status != "granted":
        raise QiluError("sharing.not_granted", "只有已批准的共享可以撤销", field="grant")
    grant.status = "revoked"
    grant.revoked_by_person_id, grant.revoked_at = by, moment
    grant.decision_reason = reason.strip() or grant.decision_reason
    _audit(session, "sharing.revoked", grant, by, moment)
    return grant


def requests_of(session: Session, actor: roles.Staff) -> list[ShareGrant]:
    """The requests of the departments `actor` asks for, newest first."""
    mine = roles.departments_for(actor, "data.request_sharing")
    if not mine:
        return []
    return list(
        session.scalars(
            select(ShareGrant)
            .where(ShareGrant.consumer_id.in_(mine))
            .order_by(ShareGrant.requested_at.desc())
        )
    )


def pending_for(session: Session, actor: roles.Staff) -> list[ShareGrant]:
    """Requests waiting for `actor`: on resources their departments provide, asked by others."""
    waiting = open_on_provided(
        session, actor, "data.approve_sharing", ShareGrant, "pending", (ShareGrant.id,)
    )
    return [g for g in waiting if g.requested_by_person_id != actor.person_id]


Waiting = TypeVar("Waiting", ShareGrant, Dispute)


def open_on_provided(
    session: Session,
    actor: roles.Staff,
    permission: str,
    model: type[Waiting],
    status: str,
    order: tuple[Any, ...],
) -> list[Waiting]:
    """What waits on the providers of resources: the requests (or disputes) in `status` on
    resources the departments where `actor` holds `permission` provide, in `order`."""
    providers = roles.departments_for(actor, permission)
    if not providers:
        return []
    return list(
        session.scalars(
            select(model)
            .join(DataResource, model.resource_id == DataResource.id)
            .where(model.status == status, DataResource.provider_id.in_(providers))
            .order_by(*order)
        )
    )


def _grant(session: Session, grant_id: int) -> ShareGrant:
    grant = session.get(ShareGrant, grant_id)
    if grant is None:
        raise NotFound("sharing.not_found", "没有这项共享申请", field="grant")
    return grant


def _audit(
    session: Session, action: str, grant: ShareGrant, by: int | None, moment: datetime
) -> None:
    record(
        session,
        action,
        actor_person_id=by,
        subject=f"resource:{grant.resource.code}",
        at=moment,
        details={
            "grant": grant.id,
            "consumer": grant.consumer.code,
            "fields": grant.fields,
            "clear_fields": grant.clear_fields,
            "may_list": grant.may_list,
            "rows": grant.row_conditions,
            "until": grant.valid_until.isoformat(),
        },
    )
