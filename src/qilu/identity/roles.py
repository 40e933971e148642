"""Civil servants' roles and the one access rule every module uses: role × department × division.

A role held in a department covers that department's division and everything below it: a
provincial data steward covers the province, a city's approver the city's counties, a county's
window clerk that county. Under the 等保 level-3 profile the three administrator roles (system,
audit, security) are held by three different people, none of whom can do the others' work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, false, or_, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.divisions import SHANDONG
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity.models import Department, Person, StaffMember, StaffRole
from qilu.identity.passwords import Profile

ROLES = {
    "window_clerk": "窗口受理",
    "approver": "审批",
    "data_steward": "数据管理",
    "duty_officer": "值班",
    "leader": "领导",
    "admin": "管理员",
    "system_admin": "系统管理员",
    "audit_admin": "审计管理员",
    "security_admin": "安全管理员",
}
SEPARATED = frozenset({"system_admin", "audit_admin", "security_admin"})

# What each role may do; modules name permissions, never roles.
PERMISSIONS: dict[str, frozenset[str]] = {
    "applications.accept": frozenset({"window_clerk"}),
    "applications.decide": frozenset({"approver"}),
    "data.publish": frozenset({"data_steward"}),
    "data.approve_sharing": frozenset({"data_steward"}),
    "data.request_sharing": frozenset({"data_steward", "leader"}),
    "alarms.dispatch": frozenset({"duty_officer"}),
    "map.view": frozenset({"leader", "duty_officer"}),
    "admin.clients": frozenset({"admin", "system_admin"}),
    "admin.roles": frozenset({"admin", "security_admin"}),
    "audit.read": frozenset({"admin", "audit_admin"}),
    "services.catalog": frozenset({"admin", "system_admin"}),
    "ratings.appeals": frozenset({"admin"}),
}


@dataclass(frozen=True)
class RoleGrant:
    role: str
    department_id: int
    department_name: str
    division_code: str


def roles_of(session: Session, person_id: int) -> list[RoleGrant]:
    rows = session.execute(
        select(StaffRole.role, Department.id, Department.name, Department.division_code)
        .join(StaffMember, StaffRole.staff_member_id == StaffMember.id)
        .join(Department, StaffMember.department_id == Department.id)
        .where(StaffMember.person_id == person_id)
        .order_by(Department.id, StaffRole.role)
    )
    return [RoleGrant(*row) for row in rows]


def is_civil_servant(session: Session, person_id: int) -> bool:
    found = session.scalars(select(StaffMember.id).where(StaffMember.person_id == person_id))
    return found.first() is not None


def covers(scope_division: str, division_code: str) -> bool:
    """True if a department of `scope_division` has authority over `division_code`."""
    if scope_division == SHANDONG:
        return division_code[:2] == SHANDONG[:2]
    if scope_division.endswith("00"):
        return division_code[:4] == scope_division[:4]
    return division_code == scope_division


def can(grants: list[RoleGrant], permission: str, division_code: str | None = None) -> bool:
    """May someone holding `grants` do `permission` (in `division_code`, if given)?"""
    allowed = PERMISSIONS.get(permission)
    if allowed is None:
        raise ValueError(f"unknown permission {permission}")
    return any(
        grant.role in allowed
        and (division_code is None or covers(grant.division_code, division_code))
        for grant in grants
    )


def require(
    session: Session, person_id: int, permission: str, division_code: str | None = None
) -> list[RoleGrant]:
    """The person's grants if they allow `permission` (in `division_code`); `Refused` if not."""
    grants = roles_of(session, person_id)
    if not can(grants, permission, division_code):
        raise Refused("role.forbidden", "您没有办理此项工作的权限", permission=permission)
    return grants


def covered_by(grants: list[RoleGrant], permission: str) -> ColumnElement[bool]:
    """A filter on `Department.division_code`: the divisions where `grants` allow `permission`."""
    allowed = PERMISSIONS[permission]
    conditions: list[ColumnElement[bool]] = []
    for grant in grants:
        if grant.role not in allowed:
            continue
        scope = grant.division_code
        if scope == SHANDONG:
            conditions.append(Department.division_code.like(f"{scope[:2]}%"))
        elif scope.endswith("00"):
            conditions.append(Department.division_code.like(f"{scope[:4]}%"))
        else:
            conditions.append(Department.division_code == scope)
    return or_(*conditions) if conditions else false()


@dataclass(frozen=True)
class HeldRole:
    id: int
    role: str
    person: Person
    department: Department
    granted_at: datetime


def held_roles(
    session: Session,
    grants: list[RoleGrant],
    *,
    department_code: str | None = None,
    limit: int = 200,
) -> list[HeldRole]:
    """Roles held in the departments an administrator with `grants` manages, newest first."""
    query = (
        select(StaffRole, StaffMember)
        .join(StaffMember, StaffRole.staff_member_id == StaffMember.id)
        .join(Department, StaffMember.department_id == Department.id)
        .where(covered_by(grants, "admin.roles"))
        .order_by(StaffRole.granted_at.desc(), StaffRole.id.desc())
        .limit(limit)
    )
    if department_code:
        query = query.where(Department.code == department_code)
    return [
        HeldRole(role.id, role.role, member.person, member.department, role.granted_at)
        for role, member in session.execute(query)
    ]


def _check_granter(session: Session, granted_by: int | None, department: Department) -> None:
    """An administrator acts only where their admin.roles grant reaches; None is the operator
    at the command line, who answers for the machine itself."""
    if granted_by is not None:
        require(session, granted_by, "admin.roles", department.division_code)


def grant_role(
    session: Session,
    *,
    person_id: int,
    department_code: str,
    role: str,
    profile: Profile,
    granted_by: int | None,
    title: str = "工作人员",
    now: datetime | None = None,
) -> StaffRole:
    """Give a resident a role in a department, making them its staff if they are not yet."""
    if role not in ROLES:
        raise QiluError(
            "role.unknown", f"没有“{role}”这个角色（可用：{'、'.join(ROLES)}）", field="role"
        )
    department = session.scalars(
        select(Department).where(Department.code == department_code)
    ).one_or_none()
    if department is None:
        raise NotFound(
            "department.not_found", f"没有编码为 {department_code} 的部门", field="department"
        )
    _check_granter(session, granted_by, department)
    if profile == "dengbao3" and role == "admin":
        raise Refused(
            "role.separation",
            "等保三级下不设全能管理员：请分别授予系统、审计、安全管理员",
            field="role",
        )
    if profile == "dengbao3" and role in SEPARATED:
        held = {g.role for g in roles_of(session, person_id)} & (SEPARATED - {role})
        if held:
            raise Refused(
                "role.separation",
                "系统、审计、安全管理员须由不同人员担任（等保三级）",
                field="role",
                held=sorted(held),
            )
    member = session.scalars(
        select(StaffMember).where(
            StaffMember.person_id == person_id, StaffMember.department_id == department.id
        )
    ).one_or_none()
    if member is None:
        member = StaffMember(person_id=person_id, department_id=department.id, title=title)
        session.add(member)
        session.flush()
    existing = session.scalars(
        select(StaffRole).where(StaffRole.staff_member_id == member.id, StaffRole.role == role)
    ).one_or_none()
    if existing is not None:
        return existing
    moment = now or datetime.now(UTC)
    granted = StaffRole(
        staff_member_id=member.id, role=role, granted_at=moment, granted_by_person_id=granted_by
    )
    session.add(granted)
    session.flush()
    record(
        session,
        "role.granted",
        actor_person_id=granted_by,
        subject=f"person:{person_id}",
        at=moment,
        details={"role": role, "department": department_code},
    )
    return granted


def revoke_role(
    session: Session, role_id: int, *, revoked_by: int | None, now: datetime | None = None
) -> None:
    """Take a role away; the staff membership stays (their department has not changed)."""
    held = session.get(StaffRole, role_id)
    if held is None:
        raise NotFound("role.not_found", "没有这项角色授予")
    member = held.staff_member
    _check_granter(session, revoked_by, member.department)
    if (
        revoked_by is not None
        and member.person_id == revoked_by
        and held.role in PERMISSIONS["admin.roles"]
    ):
        raise Refused("role.self", "不能撤销自己的管理员角色：请由其他管理员办理")
    session.execute(delete(StaffRole).where(StaffRole.id == held.id))
    record(
        session,
        "role.revoked",
        actor_person_id=revoked_by,
        subject=f"person:{member.person_id}",
        at=now or datetime.now(UTC),
        details={"role": held.role, "department": member.department.code},
    )
