from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from qilu.errors import QiluError, Refused
from qilu.identity.roles import RoleGrant, can, covers, grant_role, is_civil_servant, roles_of
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


def test_permissions_follow_role_and_division() -> None:
    clerk = [RoleGrant("window_clerk", 1, "历下区行政审批服务局", "370102")]
    assert can(clerk, "applications.accept", "370102")
    assert not can(clerk, "applications.accept", "370103")
    assert not can(clerk, "applications.decide", "370102")
    steward = [RoleGrant("data_steward", 2, "山东省大数据局", "370000")]
    assert can(steward, "data.publish", "371728") and can(steward, "data.publish")
    with pytest.raises(ValueError):
        can(steward, "no.such.permission")


def test_separated_administrators_cannot_do_each_others_work() -> None:
    audit = [RoleGrant("audit_admin", 1, "山东省大数据局", "370000")]
    assert can(audit, "audit.read") and not can(audit, "admin.roles")
    assert not can(audit, "admin.clients")


def test_granting_makes_a_civil_servant(session: Session, vault: Vault, departments: None) -> None:
    person = make_person(session, vault)
    assert not is_civil_servant(session, person.id)
    grant_role(
        session,
        person_id=person.id,
        department_code="370102-approval",
        role="window_clerk",
        profile="standard",
        granted_by=None,
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
            granted_by=None,
        )
    assert caught.value.code == "role.unknown"
    with pytest.raises(QiluError) as missing:
        grant_role(
            session,
            person_id=person.id,
            department_code="999999-x",
            role="approver",
            profile="standard",
            granted_by=None,
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
        granted_by=None,
    )
    with pytest.raises(Refused) as caught:
        grant_role(
            session,
            person_id=person.id,
            department_code="370000-bigdata",
            role="audit_admin",
            profile="dengbao3",
            granted_by=None,
        )
    assert caught.value.code == "role.separation"
    with pytest.raises(Refused):
        grant_role(
            session,
            person_id=person.id,
            department_code="370000-bigdata",
            role="admin",
            profile="dengbao3",
            granted_by=None,
        )
    other = make_person(session, vault)
    grant_role(
        session,
        person_id=other.id,
        department_code="370000-bigdata",
        role="audit_admin",
        profile="dengbao3",
        granted_by=None,
    )
