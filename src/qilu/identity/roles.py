"""Civil servants' roles and the one access rule every module uses.

Modules name permissions, never roles. Each permission is held through a role in a department
and reaches either that department alone (to decide a case or a sharing request one must belong
to the department that owns it) or every department inside its division (a city's administrator
manages the city's counties). Whoever acts is an explicit `Actor`: a civil servant with their
grants, a department system, or the operator at the command line; there is no "skip the check".
Under the 等保 level-3 profile the three administrator roles (system, audit, security) are held by
three different people, none of whom can do the others' work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, delete, false, or_, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.divisions import SHANDONG, code_prefix, covers
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


class Reach(StrEnum):
    DEPARTMENT = "department"  # only in the department the role is held in
    DIVISION = "division"  # in every department inside the holding department's division


@dataclass(frozen=True)
class Permission:
    roles: frozenset[str]
    reach: Reach
    # What a department system acting for its own department may do with its credentials.
    systems: bool = False


def _p(reach: Reach, *held_by: str, systems: bool = False) -> Permission:
    return Permission(frozenset(held_by), reach, systems)


_DEPT, _DIV = Reach.DEPARTMENT, Reach.DIVISION
PERMISSIONS: dict[str, Permission] = {
    "applications.view": _p(_DEPT, "window_clerk", "approver"),
    "applications.accept": _p(_DEPT, "window_clerk"),
    "applications.decide": _p(_DEPT, "approver"),
    # 暂扣, 恢复, 变更, 延续 and 注销 of the licences a department issued.
    "licences.manage": _p(_DEPT, "approver"),
    "data.publish": _p(_DEPT, "data_steward", systems=True),
    "data.approve_sharing": _p(_DEPT, "data_steward"),
    "data.request_sharing": _p(_DEPT, "data_steward", "leader"),
    # A county's alarm is handled by duty officers of the county, its city and the province.
    "alarms.dispatch": _p(_DIV, "duty_officer"),
    "map.view": _p(_DIV, "leader", "duty_officer"),
    "admin.enter": _p(_DIV, "admin", "system_admin", "security_admin"),
    "admin.clients": _p(_DIV, "admin", "system_admin"),
    "admin.roles": _p(_DIV, "admin", "security_admin"),
    "admin.system": _p(_DIV, "admin", "system_admin"),
    "audit.read": _p(_DIV, "admin", "audit_admin"),
    "services.catalog": _p(_DIV, "admin", "system_admin"),
    "ratings.appeals": _p(_DIV, "admin"),
}


@dataclass(frozen=True)
class RoleGrant:
    role: str
    department_id: int
    department_name: str
    division_code: str


@dataclass(frozen=True)
class Target:
    """What an action is on, as the rule sees it: its department (if one owns it) and division."""

    division_code: str
    department_id: int | None = None

    @classmethod
    def of(cls, department: Department) -> Target:
        return cls(department.division_code, department.id)


# Things owned by the province as a whole (the service catalog, appeals, SSO clients).
PROVINCE = Target(SHANDONG)


@dataclass(frozen=True)
class Staff:
    """A signed-in person acting with the roles they hold."""

    person_id: int
    grants: tuple[RoleGrant, ...]


@dataclass(frozen=True)
class DepartmentSystem:
    """A department's own system calling with its client credentials."""

    client_id: str
    department_id: int
    division_code: str


@dataclass(frozen=True)
class Operator:
    """Whoever runs `qilu` on the server (they answer for the machine itself), or the platform
    acting on its own account (entering the licence it just issued in the 电子证照 library)."""

    name: str


Actor = Staff | DepartmentSystem | Operator
OPERATOR = Operator("command line")
PLATFORM = Operator("platform")


def roles_of(session: Session, person_id: int) -> list[RoleGrant]:
    rows = session.execute(
        select(StaffRole.role, Department.id, Department.name, Department.division_code)
        .join(StaffMember, StaffRole.staff_member_id == StaffMember.id)
        .join(Department, StaffMember.department_id == Department.id)
        .where(StaffMember.person_id == person_id)
        .order_by(Department.id, StaffRole.role)
    )
    return [RoleGrant(*row) for row in rows]


def staff(session: Session, person_id: int) -> Staff:
    """The person as an actor, with the roles they hold now."""
    return Staff(person_id, tuple(roles_of(session, person_id)))


def holders(session: Session, permission: str, department_id: int) -> list[int]:
    """The people who hold `permission` in the department itself (for a DEPARTMENT-reach
    permission: whose work lands there, such as the window that accepts its cases)."""
    return list(
        session.scalars(
            select(StaffMember.person_id)
            .join(StaffRole, StaffRole.staff_member_id == StaffMember.id)
            .where(
                StaffMember.department_id == department_id,
                StaffRole.role.in_(PERMISSIONS[permission].roles),
            )
            .distinct()
        )
    )


def person_of(actor: Actor) -> int | None:
    """The person an action is recorded against (none for a system or the command line)."""
    return actor.person_id if isinstance(actor, Staff) else None


def is_civil_servant(session: Session, person_id: int) -> bool:
    found = session.scalars(select(StaffMember.id).where(StaffMember.person_id == person_id))
    return found.first() is not None


def _reaches(grant: RoleGrant, reach: Reach, target: Target) -> bool:
    if reach is Reach.DEPARTMENT and target.department_id is not None:
        return grant.department_id == target.department_id
    return covers(grant.division_code, target.division_code)


def allows(actor: Actor, permission: str, target: Target | None = None) -> bool:
    """The one rule: may `actor` do `permission` on `target` (anywhere, if no target)?"""
    rule = PERMISSIONS.get(permission)
    if rule is None:
        raise ValueError(f"unknown permission {permission}")
    if isinstance(actor, Operator):
        return True
    if isinstance(actor, DepartmentSystem):
        return rule.systems and (target is None or target.department_id == actor.department_id)
    return any(
        grant.role in rule.roles and (target is None or _reaches(grant, rule.reach, target))
        for grant in actor.grants
    )


def authorize(actor: Actor, permission: str, target: Target | None = None) -> None:
    """`Refused` (403, audited by the caller's trail) unless `allows(actor, permission, target)`."""
    if not allows(actor, permission, target):
        raise Refused("role.forbidden", "您没有办理此项工作的权限", permission=permission)


def not_own(actor: Actor, person_id: int | None, what: str) -> None:
    """Nobody decides their own request."""
    if person_id is not None and person_of(actor) == person_id:
        raise Refused("role.own_request", f"不能审批自己提出的{what}：请由其他人员办理")


def departments_for(actor: Actor, permission: str) -> list[int]:
    """The departments where `actor` holds `permission` itself (the ones they act for)."""
    if isinstance(actor, DepartmentSystem):
        return [actor.department_id] if PERMISSIONS[permission].systems else []
    if isinstance(actor, Operator):
        return []
    held_by = PERMISSIONS[permission].roles
    return sorted({g.department_id for g in actor.grants if g.role in held_by})


def visible_departments(grants: list[RoleGrant], permission: str) -> ColumnElement[bool]:
    """A filter on `Department`: the departments where `grants` allow `permission`."""
    rule = PERMISSIONS[permission]
    conditions: list[ColumnElement[bool]] = []
    for grant in grants:
        if grant.role not in rule.roles:
            continue
        if rule.reach is Reach.DEPARTMENT:
            conditions.append(Department.id == grant.department_id)
        else:
            conditions.append(Department.division_code.like(f"{code_prefix(grant.division_code)}%"))
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
        .where(visible_departments(grants, "admin.roles"))
        .order_by(StaffRole.granted_at.desc(), StaffRole.id.desc())
        .limit(limit)
    )
    if department_code:
        query = query.where(Department.code == department_code)
    return [
        HeldRole(role.id, role.role, member.person, member.department, role.granted_at)
        for role, member in session.execute(query)
    ]


def grant_role(
    session: Session,
    *,
    person_id: int,
    department_code: str,
    role: str,
    profile: Profile,
    actor: Actor,
    title: str = "工作人员",
    now: datetime | None = None,
) -> StaffRole:
    """Give a resident a role in a department, making them its staff if they are not yet. An
    administrator acts only where their admin.roles grant reaches, and never for themselves."""
    if role not in ROLES:
        raise QiluError(
            "role.unknown", f"没有“{role}”这个角色（可用：{'、'.join(ROLES)}）", field="role"
        )
    department = session.scalars(
        select(Department).where(Department.code == department_code)
    ).one_or_none()
    if department is None:
        raise NotFound(
            "department.not_found", f"没有编码为 {department_code} 的部门", field="department_code"
        )
    authorize(actor, "admin.roles", Target.of(department))
    if person_of(actor) == person_id:
        raise Refused("role.self", "不能给自己授予角色：请由其他管理员办理", field="id_number")
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
        staff_member_id=member.id,
        role=role,
        granted_at=moment,
        granted_by_person_id=person_of(actor),
    )
    session.add(granted)
    session.flush()
    record(
        session,
        "role.granted",
        actor_person_id=person_of(actor),
        subject=f"person:{person_id}",
        at=moment,
        details={"role": role, "department": department_code},
    )
    return granted


def revoke_role(
    session: Session, role_id: int, *, actor: Actor, now: datetime | None = None
) -> None:
    """Take a role away; the staff membership stays (their department has not changed)."""
    held = session.get(StaffRole, role_id)
    if held is None:
        raise NotFound("role.not_found", "没有这项角色授予")
    member = held.staff_member
    authorize(actor, "admin.roles", Target.of(member.department))
    if member.person_id == person_of(actor) and held.role in PERMISSIONS["admin.roles"].roles:
        raise Refused("role.self", "不能撤销自己的管理员角色：请由其他管理员办理")
    session.execute(delete(StaffRole).where(StaffRole.id == held.id))
    record(
        session,
        "role.revoked",
        actor_person_id=person_of(actor),
        subject=f"person:{member.person_id}",
        at=now or datetime.now(UTC),
        details={"role": held.role, "department": member.department.code},
    )
