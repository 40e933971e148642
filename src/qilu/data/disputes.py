"""数据异议 (disputes and correction): a consuming department, or the person a record is about,
says some of a record's fields are wrong; every reader sees the flag while the dispute is open;
the providing department answers by a deadline in working days — 核实无误 (the record stands),
已更正 (the corrected values go through the loader, so the change keeps its history and reaches
the change feed), or 不予受理 with a reason — and the one who raised it is told through the
message centre. A day before the deadline the provider's stewards are reminded; once it has
passed, the dispute is escalated to the 大数据局 (the sharing authority).

《政务数据共享条例》第二十六条 asks for a 校核纠错 mechanism with a way in for corrections and a
provider that checks and corrects; the number of working days is Qilu's setting (`DAYS`), since
the regulation leaves it to the provinces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.catalog import get_resource, schema_of
from qilu.data.loading import Layout, find_stored, load_rows, values_of
from qilu.data.models import DataRecord, DataResource, Dispute
from qilu.data.reading import authorise, begin_read
from qilu.data.sharing import deadline_steps, open_on_provided, overseer_id
from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.models import Department, Person
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.service import id_number_of
from qilu.messages import service as messages
from qilu.pii import Vault
from qilu.workdays import add_working_days, beijing_today

DAYS = 5  # working days for the provider to answer
CLAIM_COLUMN = "dispute_claim"
LONGEST_CLAIM = 500


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    CORRECTED = "corrected"
    REJECTED = "rejected"

    @property
    def label(self) -> str:
        return OUTCOME_NAMES[self]


OUTCOME_NAMES = {
    "open": "待核实",
    Outcome.CONFIRMED: "核实无误",
    Outcome.CORRECTED: "已更正",
    Outcome.REJECTED: "不予受理",
}


def raise_by_department(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    key: str,
    fields: list[str],
    claim: str,
    *,
    now: datetime | None = None,
) -> Dispute:
    """A consuming department's system disputes fields of a record it may read."""
    begun = begin_read(session, vault, caller, code, now, key)
    grant = authorise(begun.read, begun.grants, fields, None)
    if begun.found is None:
        raise NotFound("sharing.record_not_found", "没有这条记录", field="key")
    if not grant.reaches(dict(begun.found.content)):
        raise begun.read.refuse(
            "sharing.row_not_granted", "这条记录不在本部门获授权的数据范围内", None
        )
    resource = session.get_one(DataResource, begun.read.resource.id)
    return _open(
        session, vault, resource, begun.found.record_id, fields, claim, now=now,
        department_id=caller.department_id, client=caller.client_id,
    )  # fmt: skip


def raise_by_person(
    session: Session,
    vault: Vault,
    person: Person,
    code: str,
    fields: list[str],
    claim: str,
    *,
    now: datetime | None = None,
) -> Dispute:
    """The person a record is about disputes fields of it (我的数据, or a prefilled form)."""
    stored = _own_record(session, vault, person, code)
    if stored is None:
        raise NotFound("dispute.no_record", "该资源中没有您的记录", field="resource")
    layout, found = stored
    return _open(
        session, vault, layout.resource, found.id, fields, claim, now=now, person_id=person.id
    )


def _own_record(
    session: Session, vault: Vault, person: Person, code: str
) -> tuple[Layout, Any] | None:
    resource = get_resource(session, code)
    keys = [f for f in schema_of(session, resource) if f.key]
    if [f.type for f in keys] != ["id_number"]:
        raise QiluError("dispute.not_personal", f"{resource.name}不是按身份号码登记的资源")
    return find_stored(session, vault, code, [id_number_of(vault, person)])


def _open(
    session: Session,
    vault: Vault,
    resource: DataResource,
    record_id: int,
    fields: list[str],
    claim: str,
    *,
    now: datetime | None,
    person_id: int | None = None,
    department_id: int | None = None,
    client: str | None = None,
) -> Dispute:
    moment = now or datetime.now(UTC)
    known = [f.name for f in schema_of(session, resource) if f.name in set(fields)]
    if not known or len(known) != len(set(fields)):
        raise QiluError("dispute.fields", "请选择有误的信息项", field="fields")
    if not 4 <= len(claim.strip()) <= LONGEST_CLAIM:
        raise QiluError(
            "dispute.claim", f"请写明哪里有误、应为什么（4 至 {LONGEST_CLAIM} 字）", field="claim"
        )
    if _open_on(session, record_id) is not None:
        raise QiluError(
            "dispute.already_open", "这条记录已有待核实的异议，请等待提供部门答复", field="fields"
        )
    dispute = Dispute(
        resource_id=resource.id,
        record_id=record_id,
        fields=known,
        claim_cipher=vault.encrypt(claim.strip(), CLAIM_COLUMN),
        raised_by_person_id=person_id,
        raised_by_department_id=department_id,
        raised_by_client=client,
        status="open",
        raised_at=moment,
        due_on=add_working_days(beijing_today(moment), DAYS),
        answer="",
    )
    session.add(dispute)
    resource.disputes_open = DataResource.disputes_open + 1  # in SQL: no lost update
    session.flush()
    _audit(session, "data.disputed", dispute, person_id, {"fields": known})
    _tell_stewards(
        session,
        resource.provider_id,
        f"{resource.name}有一条数据异议待核实",
        f"异议信息项：{'、'.join(_labels(session, resource, known))}；"
        f"请于 {dispute.due_on:%Y-%m-%d} 前核实答复。",
    )
    return dispute


def _open_on(session: Session, record_id: int) -> Dispute | None:
    return session.scalars(
        select(Dispute).where(Dispute.record_id == record_id, Dispute.status == "open")
    ).first()


def answer(
    session: Session,
    vault: Vault,
    dispute_id: int,
    *,
    outcome: str,
    reason: str,
    corrections: dict[str, str] | None = None,
    actor: roles.Actor,
    now: datetime | None = None,
) -> Dispute:
    """The providing department's steward answers: the record stands, is corrected (through
    the loader: checked like any row, its history kept), or the dispute is refused."""
    moment = now or datetime.now(UTC)
    dispute = _dispute(session, dispute_id)
    resource = dispute.resource
    roles.authorize(actor, "data.publish", roles.Target.of(resource.provider))
    roles.not_own(actor, dispute.raised_by_person_id, "数据异议")
    if dispute.status != "open":
        raise QiluError("dispute.answered", "该异议已答复", field="dispute")
    try:
        chosen = Outcome(outcome)
    except ValueError:
        raise QiluError("dispute.outcome", "请选择核实结果", field="outcome") from None
    if chosen is not Outcome.CORRECTED and len(reason.strip()) < 2:
        raise QiluError("dispute.reason", "请写明核实情况或不予受理的理由", field="reason")
    if chosen is Outcome.CORRECTED:
        dispute.correction_load_id = _correct(session, vault, dispute, corrections or {}, actor)
    dispute.status = chosen.value
    dispute.answer = reason.strip() or "已按异议更正"
    dispute.answered_by_person_id, dispute.answered_at = roles.person_of(actor), moment
    resource.disputes_open = DataResource.disputes_open - 1
    _audit(session, "data.dispute_answered", dispute, roles.person_of(actor), {"outcome": outcome})
    _tell_raiser(session, dispute, f"您提出的数据异议：{chosen.label}", dispute.answer)
    return dispute


def _correct(
    session: Session,
    vault: Vault,
    dispute: Dispute,
    corrections: dict[str, str],
    actor: roles.Actor,
) -> int:
    """Load the record again with the corrected values; returns the load."""
    changed = {k: v.strip() for k, v in corrections.items() if v.strip()}
    outside = sorted(set(changed) - set(dispute.fields))
    if not changed or outside:
        raise QiluError(
            "dispute.corrections", "请填写异议信息项的更正值", field="corrections", outside=outside
        )
    layout = Layout.of(session, dispute.resource)
    stored = session.get_one(DataRecord, dispute.record_id)
    values = {k: v for k, v in values_of(vault, layout, stored).items() if v is not None}
    load = load_rows(
        session,
        vault,
        dispute.resource.code,
        [(1, {**values, **changed})],
        source=f"dispute:{dispute.id}",
        actor=actor,
    )
    if load.rejected:
        first = load.problems[0]
        raise QiluError(
            "dispute.correction_invalid",
            f"更正值有误：{first['reason']}",
            field=f"corrections.{first['field']}",
        )
    return load.id


def watch(session: Session, *, now: datetime | None = None) -> tuple[int, int]:
    """The hourly look at open disputes: remind the provider a working day before the
    deadline, escalate to the 大数据局 once it has passed. Returns (reminded, escalated)."""
    moment = now or datetime.now(UTC)
    remind, escalate = deadline_steps(session, Dispute, "open", moment)
    overseer = overseer_id(session) if escalate else None
    for dispute in escalate:
        if overseer is not None:
            _tell_stewards(
                session, overseer, f"{dispute.resource.name}的数据异议已超期未答复",
                f"提供部门：{dispute.resource.provider.name}；"
                f"应于 {dispute.due_on:%Y-%m-%d} 前答复。",
            )  # fmt: skip
        _audit(session, "data.dispute_escalated", dispute, None, {})
    for dispute in remind:
        _tell_stewards(
            session, dispute.resource.provider_id, f"{dispute.resource.name}的数据异议即将到期",
            f"请于 {dispute.due_on:%Y-%m-%d} 前核实答复。",
        )  # fmt: skip
    return len(remind), len(escalate)


@dataclass(frozen=True)
class Shown:
    """A dispute as a page shows it."""

    dispute: Dispute
    claim: str
    labels: list[str]
    raised_by: str
    values: dict[str, Any]  # the disputed fields' values now (for the provider)


def waiting_for(session: Session, vault: Vault, actor: roles.Staff) -> list[Shown]:
    """Open disputes on the resources `actor`'s departments provide, oldest deadline first."""
    found = open_on_provided(
        session, actor, "data.publish", Dispute, "open", (Dispute.due_on, Dispute.id)
    )
    return [_shown(session, vault, d, with_values=True) for d in found]


def disputes_of(session: Session, vault: Vault, person: Person) -> list[Shown]:
    """A person's own disputes, newest first."""
    found = session.scalars(
        select(Dispute)
        .where(Dispute.raised_by_person_id == person.id)
        .order_by(Dispute.raised_at.desc())
    ).all()
    return [_shown(session, vault, d, with_values=False) for d in found]


def disputable_by(
    session: Session, vault: Vault, person: Person
) -> list[tuple[DataResource, list[tuple[str, str]]]]:
    """The resources holding a record about the person, with their fields (name, label)."""
    found = []
    number = id_number_of(vault, person)
    for resource in session.scalars(
        select(DataResource).where(DataResource.share_mode == "table").order_by(DataResource.code)
    ):
        fields = schema_of(session, resource)
        if [f.type for f in fields if f.key] != ["id_number"]:
            continue
        if find_stored(session, vault, resource.code, [number]) is None:
            continue
        found.append((resource, [(f.name, f.label) for f in fields]))
    return found


def _shown(session: Session, vault: Vault, dispute: Dispute, *, with_values: bool) -> Shown:
    resource = dispute.resource
    values: dict[str, Any] = {}
    if with_values:
        stored = session.get(DataRecord, dispute.record_id)
        if stored is not None:
            opened = values_of(vault, Layout.of(session, resource), stored)
            values = {name: opened.get(name) for name in dispute.fields}
    if dispute.raised_by_department_id is not None:
        raised_by = session.get_one(Department, dispute.raised_by_department_id).name
    else:
        raised_by = "信息主体本人"
    return Shown(
        dispute,
        vault.decrypt(dispute.claim_cipher, CLAIM_COLUMN),
        _labels(session, resource, dispute.fields),
        raised_by,
        values,
    )


def _labels(session: Session, resource: DataResource, names: list[str]) -> list[str]:
    labels = {f.name: f.label for f in schema_of(session, resource)}
    return [labels.get(n, n) for n in names]


def _dispute(session: Session, dispute_id: int) -> Dispute:
    found = session.get(Dispute, dispute_id)
    if found is None:
        raise NotFound("dispute.not_found", "没有这条数据异议", field="dispute")
    return found


def _tell_stewards(session: Session, department_id: int, title: str, body: str) -> None:
    for person_id in roles.holders(session, "data.publish", department_id):
        messages.send(session, person_id, title=title, body=body, link="/workbench/data/disputes")


def _tell_raiser(session: Session, dispute: Dispute, title: str, body: str) -> None:
    if dispute.raised_by_person_id is not None:
        messages.send(
            session, dispute.raised_by_person_id, title=title, body=body, link="/account/data"
        )
    elif dispute.raised_by_department_id is not None:
        for person_id in roles.holders(
            session, "data.request_sharing", dispute.raised_by_department_id
        ):
            messages.send(session, person_id, title=title, body=body)


def _audit(
    session: Session, action: str, dispute: Dispute, by: int | None, extra: dict[str, Any]
) -> None:
    record(
        session,
        action,
        actor_person_id=by,
        subject=f"resource:{dispute.resource.code}",
        details={"dispute": dispute.id, "record": dispute.record_id, **extra},
    )
