from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from qilu.codes.divisions import covers
from qilu.errors import QiluError, Refused
from qilu.identity.roles import (
    OPERATOR,
    PROVINCE,
    RoleGrant,
    Staff,
    Target,
    allows,
    grant_role,
    is_civil_servant,
    roles_of,
)
from qilu.pii import Vault

from ..factories import make_person


@pytest.mark.parametrize(
    ("scope", "division", "expected"),
    [
        ("370000", "371728", True),
        ("370100", "370102", True),
        ("370100", "370202", False),
        ("370102", "370102", True),
        ("370102", "370103", False),
        ("370000", "110101", False),
    ],
)
def test_a_department_covers_its_division_and_below(
    scope: str, division: str, expected: bool
) -> None:
    assert covers(scope, division) is expected


def test_department_permissions_reach_only_their_department() -> None:
    """Deciding a case or a sharing request belongs to the department that owns it: a
    provincial steward does not decide for another provincial department."""
    clerk = Staff(1, (RoleGrant("window_clerk", 1, "历下区行政审批服务局", "370102"),))
    assert allows(clerk, "applications.accept", Target("370102", 1))
    assert not allows(clerk, "applications.accept", Target("370102", 7))  # another county office
    assert not allows(clerk, "applications.decide", Target("370102", 1))
    steward = Staff(2, (RoleGrant("data_steward", 2, "山东省大数据局", "370000"),))
    assert allows(steward, "data.approve_sharing", Target("370000", 2))
    assert not allows(steward, "data.approve_sharing", Target("370000", 9))  # 公安厅
    assert allows(steward, "data.publish")  # holds it somewhere
    with pytest.raises(ValueError):
        allows(steward, "no.such.permission")


def test_division_permissions_reach_down_never_up() -> None:
    city = Staff(3, (RoleGrant("admin", 3, "济南市大数据局", "370100"),))
    assert allows(city, "admin.roles", Target("370102", 40))
    assert not allows(city, "admin.roles", Target("370202", 41))
    assert not allows(city, "admin.roles", PROVINCE)


def test_separated_administrators_cannot_do_each_others_work() -> None:
    audit = Staff(1, (RoleGrant("audit_admin", 1, "山东省大数据局", "370000"),))
    assert allows(audit, "audit.read") and not allows(audit, "admin.roles")
    assert not allows(audit, "admin.clients")


def test_granting_makes_a_civil_servant(session: Session, vault: Vault, departments: None) -> None:
    person = make_person(session, vault)
    assert not is_civil_servant(session, person.id)
    grant_role(
        session,
        person_id=person.id,
        department_code="370102-approval",
        role="window_clerk",
        profile="standard",
        actor=OPERATOR,
    )
    assert is_civil_servant(session, person.id)
    [role] = roles_of(session, person.id)
    assert (role.role, role.division_code) == ("window_clerk", "370102")


def test_unknown_role_or_department_is_named(
    session: Session, vault: Vault, departments: None
) -> None:
    person = make_person(session, vault)
    with pytest.raises(QiluError) as caught:
        grant_role(
            session,
            person_id=person.id,
            department_code="370102-approval",
            role="king",
            profile="standard",
            actor=OPERATOR,
        )
    assert caught.value.code == "role.unknown"
    with pytest.raises(QiluError) as missing:
        grant_role(
            session,
            person_id=person.id,
            department_code="999999-x",
            role="approver",
            profile="standard",
            actor=OPERATOR,
        )
    assert missing.value.code == "department.not_found"


def test_dengbao_profile_separates_the_three_administrators(
    session: Session, vault: Vault, departments: None
) -> None:
    person = make_person(session, vault)
    grant_role(
        session,
        person_id=person.id,
        department_code="370000-bigdata",
        role="system_admin",
        profile="dengbao3",
        actor=OPERATOR,
    )
    with pytest.raises(Refused) as caught:
        grant_role(
            session,
            person_id=person.id,
            department_code="370000-bigdata",
            role="audit_admin",
            profile="dengbao3",
            actor=OPERATOR,
        )
    assert caught.value.code == "role.separation"
    with pytest.raises(Refused):
        grant_role(
            session,
            person_id=person.id,
            department_code="370000-bigdata",
            role="admin",
            profile="dengbao3",
            actor=OPERATOR,
        )
    other = make_person(session, vault)
    grant_role(
        session,
        person_id=other.id,
        department_code="370000-bigdata",
        role="audit_admin",
        profile="dengbao3",
        actor=OPERATOR,
    )
