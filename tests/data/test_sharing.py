"""Sharing requests: granted at once, approved or refused by the provider's steward, never for
不予共享 resources; grants expire and can be revoked; every step audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data import sharing
from qilu.data.catalog import install_standard_catalog, parse_spec, register_resource
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity.models import Department, Person
from qilu.identity.roles import OPERATOR, Staff, grant_role, staff
from qilu.messages import service as messages
from qilu.pii import Vault
from qilu.workdays import add_working_days, beijing_today

from ..factories import make_person, make_staff

NOW = datetime.now(UTC)


@pytest.fixture
def catalog(session: Session, departments: None) -> None:
    install_standard_catalog(session)


def ask(session: Session, code: str = "JC-RK-001", **changes: Any) -> Any:
    arguments: dict[str, Any] = {
        "consumer": "370102-approval",
        "fields": ["id_number", "name", "household_division"],
        "purpose": "办理户籍类政务服务事项时核验身份",
        "legal_basis": "《山东省政务信息资源共享管理办法》",
        "valid_until": NOW + timedelta(days=365),
        "actor": OPERATOR,
        "now": NOW,
        **changes,
    }
    return sharing.request_access(session, code, **arguments)


def steward(session: Session, vault: Vault, department: str, name: str = "陈超") -> Staff:
    person = make_staff(session, make_person(session, vault, name=name), department, "data_steward")
    return staff(session, person.id)


def consumer_id(session: Session) -> int:
    return session.scalars(select(Department.id).where(Department.code == "370102-approval")).one()


def test_an_unconditional_resource_is_granted_at_once(session: Session, catalog: None) -> None:
    grant = ask(session, "JC-FR-001", fields=["uscc", "name"])
    assert grant.status == "granted" and grant.is_live(NOW)
    actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-2:] == ["sharing.requested", "sharing.granted"]


def test_a_conditional_resource_waits_for_the_providers_steward(
    session: Session, vault: Vault, catalog: None
) -> None:
    grant = ask(session)
    assert grant.status == "pending"
    assert not grant.is_live(NOW)
    outsider = steward(session, vault, "370200-bigdata", "青岛管理员")  # not over the provider
    provider = steward(session, vault, "370000-public_security", "省厅管理员")
    assert sharing.pending_for(session, provider) == [grant]
    assert sharing.pending_for(session, outsider) == []
    with pytest.raises(Refused):
        sharing.decide(session, grant.id, approve=True, reason="", actor=outsider)
    with pytest.raises(QiluError) as no_rule:
        sharing.decide(session, grant.id, approve=False, reason="不需要", actor=provider)
    assert no_rule.value.field == "rule"
    with pytest.raises(QiluError) as no_reason:
        sharing.decide(
            session, grant.id, approve=False, rule="not_needed", reason=" ", actor=provider
        )
    assert no_reason.value.field == "reason"
    sharing.decide(session, grant.id, approve=True, reason="符合共享条件", actor=provider)
    assert grant.is_live(NOW)
    with pytest.raises(QiluError) as twice:
        sharing.decide(session, grant.id, approve=False, reason="改主意", actor=provider)
    assert twice.value.code == "sharing.decided"
    sharing.revoke(session, grant.id, reason="用途已结束", actor=provider)
    assert grant.status == "revoked"
    assert not grant.is_live(NOW)


def test_grants_expire(session: Session, catalog: None) -> None:
    grant = ask(session, "JC-FR-001", fields=["uscc"], valid_until=NOW + timedelta(days=1))
    assert grant.is_live(NOW) and not grant.is_live(NOW + timedelta(days=2))


def test_a_resource_not_to_be_shared_cannot_be_asked_for(session: Session, catalog: None) -> None:
    spec = parse_spec(
        {
            "code": "YW-NB-001",
            "name": "内部考核记录",
            "provider": "370000-bigdata",
            "library": "business",
            "topic": "内部管理",
            "sharing": "none",
            "update_cycle": "yearly",
            "legal_basis": "内部管理规定",
            "fields": [
                {"name": "code", "label": "编号", "type": "string", "required": True, "key": True}
            ],
        }
    )
    register_resource(session, spec, actor=OPERATOR)
    with pytest.raises(Refused) as refused:
        ask(session, "YW-NB-001", fields=["code"])
    assert refused.value.code == "sharing.not_shared"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fields": ["id_number", "blood_type"]}, "fields"),
        ({"fields": []}, "fields"),
        ({"purpose": "看看"}, "purpose"),
        ({"legal_basis": ""}, "legal_basis"),
        ({"valid_until": NOW - timedelta(days=1)}, "valid_until"),
        ({"valid_until": NOW + timedelta(days=4 * 366)}, "valid_until"),
    ],
)
def test_bad_requests_name_the_field(
    session: Session, catalog: None, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(QiluError) as refused:
        ask(session, **changes)
    assert refused.value.field == field


def test_only_stewards_of_the_consumer_ask(session: Session, vault: Vault, catalog: None) -> None:
    clerk = make_person(session, vault, name="李强")
    grant_role(
        session,
        person_id=clerk.id,
        department_code="370102-approval",
        role="window_clerk",
        profile="standard",
        actor=OPERATOR,
    )
    with pytest.raises(Refused):
        ask(session, "JC-FR-001", fields=["uscc"], actor=staff(session, clerk.id))
    own = steward(session, vault, "370102-approval")
    assert ask(session, "JC-FR-001", fields=["uscc"], actor=own).status == "granted"
    with pytest.raises(Refused):  # a steward asks only for the departments they belong to
        ask(session, "JC-FR-001", fields=["uscc"], consumer="370103-approval", actor=own)


def test_only_the_providers_steward_decides_and_never_on_their_own_request(
    session: Session, vault: Vault, catalog: None
) -> None:
    """Found: the 大数据局 steward asked for 公安厅's 人口 resource on behalf of 历下区审批局
    and approved it himself."""
    bigdata = steward(session, vault, "370000-bigdata", "大数据局管理员")
    with pytest.raises(Refused):  # not a department he belongs to
        ask(session, consumer="370102-approval", actor=bigdata)
    asked = ask(session, consumer="370000-bigdata", actor=bigdata)
    with pytest.raises(Refused) as not_provider:  # 公安厅's resource: not his to decide
        sharing.decide(session, asked.id, approve=True, reason="", actor=bigdata)
    assert not_provider.value.code == "role.forbidden"
    assert sharing.pending_for(session, bigdata) == []
    both = steward(session, vault, "370000-public_security", "两部门管理员")
    both = staff(session, grant_both(session, both.person_id))
    mine = ask(session, consumer="370000-bigdata", actor=both)
    with pytest.raises(Refused) as own:
        sharing.decide(session, mine.id, approve=True, reason="", actor=both)
    assert own.value.code == "role.own_request"
    assert mine.status == "pending" and sharing.pending_for(session, both) == [asked]
    with pytest.raises(Refused) as own_department:  # asked by his other department
        sharing.decide(session, asked.id, approve=True, reason="", actor=both)
    assert own_department.value.code == "role.own_request"


def grant_both(session: Session, person_id: int) -> int:
    make_staff(session, session.get_one(Person, person_id), "370000-bigdata", "data_steward")
    return person_id
    with pytest.raises(NotFound):
        ask(session, consumer="379999-x")


def test_a_request_outside_the_registered_conditions_is_refused_naming_the_condition(
    session: Session, catalog: None
) -> None:
    # 社会保险参保信息: only for the uses it names, looked up one by one.
    insured = {"fields": ["id_number", "insured"], "purpose": "办理落户时核验就业创业补贴资格"}
    with pytest.raises(Refused) as refused:
        ask(session, "ZT-SB-001", **{**insured, "purpose": "统计分析全省参保情况"})
    assert refused.value.code == "sharing.condition" and refused.value.field == "purpose"
    assert "就业创业" in refused.value.message
    with pytest.raises(Refused) as refused:
        ask(session, "ZT-SB-001", **insured, may_list=True)
    assert refused.value.field == "may_list"
    grant = ask(session, "ZT-SB-001", **insured)
    assert grant.status == "pending"
    assert grant.due_on == add_working_days(beijing_today(NOW), sharing.DECISION_DAYS)


def test_the_deadline_reminds_the_provider_then_tells_the_overseer_once(
    session: Session, vault: Vault, catalog: None
) -> None:
    provider = steward(session, vault, "370000-public_security", "省厅管理员")
    overseer = steward(session, vault, sharing.OVERSEER, "大数据局")
    grant = ask(session)
    assert grant.due_on is not None
    told = [m.title for m in messages.inbox(session, provider.person_id)]
    assert any("申请共享人口基础信息" in title for title in told)  # told of the request
    assert sharing.watch(session) == (0, 0)  # ten working days ahead: nothing yet
    grant.due_on = add_working_days(beijing_today(), 1)  # the eve of the deadline
    assert sharing.watch(session) == (1, 0)
    assert sharing.watch(session) == (0, 0)  # once
    grant.due_on = beijing_today() - timedelta(days=1)  # passed
    assert sharing.watch(session) == (0, 1)
    assert sharing.watch(session) == (0, 0)
    assert any("已超期未审批" in m.title for m in messages.inbox(session, overseer.person_id))
    escalated = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "sharing.escalated")
    ).all()
    assert [e.details["grant"] for e in escalated] == [grant.id]


def test_a_refusal_names_its_rule_and_the_asking_department_is_told(
    session: Session, vault: Vault, catalog: None
) -> None:
    asker = steward(session, vault, "370102-approval", "历下管理员")
    provider = steward(session, vault, "370000-public_security", "省厅管理员")
    grant = ask(session)
    with pytest.raises(QiluError) as unknown:
        sharing.decide(session, grant.id, approve=False, rule="whim", reason="不想", actor=provider)
    assert unknown.value.code == "sharing.rule"
    sharing.decide(
        session, grant.id, approve=False, rule="not_needed", reason="核验身份无需户籍地",
        actor=provider,
    )  # fmt: skip
    assert (grant.status, grant.refusal_rule) == ("refused", "not_needed")
    (told,) = [m for m in messages.inbox(session, asker.person_id) if "未获批准" in m.title]
    assert "最小必要" in told.body and "核验身份无需户籍地" in told.body
