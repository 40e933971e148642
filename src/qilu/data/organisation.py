"""The organisation tree (机构) and its staff, loaded from the files the 编制 and 组织 systems
export (`qilu org load FILE`): CSV or XLSX, read and checked like any library load, every bad
row reported with its field and reason, the good ones applied in one transaction.

Two shapes of file, told apart by their columns:

- departments (机构编码, 机构名称, 机构类别, 层级, 行政区划, 上级机构编码, 统一社会信用代码,
  and optionally 撤并至机构编码), upserted by code; a parent may come earlier or later in the
  same file, or be known already. A department merged into another (撤并) hands it its open
  cases and its items (new applications go to the successor); its staff's roles end;
- staff (公民身份号码, 姓名, 机构编码, 职务, 角色), each a resident of the population register
  (the name must match) made staff of the department with the listed roles (窗口受理、审批 …,
  separated by 、 or ;).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.catalog import FieldSpec
from qilu.data.files import Row, file_format, read_rows
from qilu.data.validation import check_row
from qilu.errors import QiluError
from qilu.identity import roles
from qilu.identity.models import Department, StaffMember, StaffRole
from qilu.identity.passwords import Profile
from qilu.identity.service import matching_person
from qilu.pii import Vault


def _f(name: str, label: str, kind: str = "string", **more: Any) -> FieldSpec:
    return FieldSpec(name=name, label=label, type=kind, sensitivity="internal", **more)


DEPARTMENT_FIELDS = [
    _f("code", "机构编码", required=True, key=True, max_length=32),
    _f("name", "机构名称", required=True, max_length=100),
    _f("kind", "机构类别", required=True, max_length=32),
    _f("level", "层级", "enum", required=True, values=["省级", "市级", "县级"]),
    _f("division", "行政区划", "division", required=True),
    _f("parent", "上级机构编码", max_length=32),
    _f("uscc", "统一社会信用代码", "uscc", required=True),
    _f("merged_into", "撤并至机构编码", max_length=32),
]
STAFF_FIELDS = [
    _f("id_number", "公民身份号码", "id_number", required=True),
    _f("name", "姓名", required=True, max_length=64),
    _f("department", "机构编码", required=True, max_length=32),
    _f("title", "职务", max_length=50),
    _f("roles", "角色", max_length=200),
]
LEVELS = {"省级": "province", "市级": "city", "县级": "county"}
ROLE_BY_NAME = {name: key for key, name in roles.ROLES.items()} | {k: k for k in roles.ROLES}


def read(stream: IO[bytes], name: str) -> tuple[str, Iterator[Row]]:
    """The file's rows and which kind of file it is, told by its columns."""
    if file_format(name) == "jsonl":
        raise QiluError("org.file_format", "机构和人员文件须为 CSV 或 XLSX", field="file")
    for kind, fields in (("departments", DEPARTMENT_FIELDS), ("staff", STAFF_FIELDS)):
        stream.seek(0)
        try:
            return kind, read_rows(stream, name, fields)
        except QiluError as error:
            if error.code not in ("data.unknown_column", "data.missing_column"):
                raise
    raise QiluError(
        "org.columns",
        "列名既不是机构文件（机构编码、机构名称、机构类别、层级、行政区划、上级机构编码、"
        "统一社会信用代码），也不是人员文件（公民身份号码、姓名、机构编码、职务、角色）",
        field="file",
    )


@dataclass
class OrgLoad:
    """What a load did: counts, and every refused row (row, field, reason)."""

    kind: str
    total: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({p["row"] for p in self.problems})

    def refuse(self, row: int, name: str, reason: str) -> None:
        self.problems.append({"row": row, "field": name, "reason": reason})


def load_departments(session: Session, rows: Iterable[Row], *, source: str) -> OrgLoad:
    """Upsert departments by code; parents resolved once every row is in."""
    result = OrgLoad("departments")
    checked: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for number, raw in rows:
        result.total += 1
        values = _checked(result, DEPARTMENT_FIELDS, number, raw)
        if values is None:
            continue
        if values["code"] in seen:
            result.refuse(number, "code", f"机构编码与第 {seen[values['code']]} 行重复")
            continue
        seen[values["code"]] = number
        checked.append((number, values))
    known = {d.code: d for d in session.scalars(select(Department))}
    codes = set(known) | {v["code"] for _, v in checked}
    # USCC and (division, kind) are each one department's: held by another code, refused.
    usccs = {d.uscc: d.code for d in known.values()}
    places = {(d.division_code, d.kind): d.code for d in known.values()}
    merging = {v["code"] for _, v in checked if v.get("merged_into")}
    for number, values in checked:
        parent = values.get("parent")
        code = values["code"]
        if parent and parent not in codes:
            result.refuse(number, "parent", f"上级机构 {parent} 既不在文件中也未登记")
        elif parent == code:
            result.refuse(number, "parent", "上级机构不能是本机构")
        elif usccs.setdefault(values["uscc"], code) != code:
            holder = usccs[values["uscc"]]
            result.refuse(number, "uscc", f"统一社会信用代码已属于机构 {holder}")
        elif places.setdefault((values["division"], values["kind"]), code) != code:
            holder = places[(values["division"], values["kind"])]
            result.refuse(number, "kind", f"该行政区划已有同类机构 {holder}")
        elif reason := _merge_problem(values, codes, merging, known):
            result.refuse(number, "merged_into", reason)
    refused = {p["row"] for p in result.problems}
    good = [(n, v) for n, v in checked if n not in refused]
    for _, values in good:
        wanted = {
            "name": values["name"],
            "kind": values["kind"],
            "level": LEVELS[values["level"]],
            "division_code": values["division"],
            "uscc": values["uscc"],
        }
        department = known.get(values["code"])
        if department is None:
            department = Department(code=values["code"], **wanted)
            session.add(department)
            known[values["code"]] = department
            result.added += 1
            continue
        changed = sorted(k for k, v in wanted.items() if getattr(department, k) != v)
        for name in changed:
            setattr(department, name, wanted[name])
        if changed:
            result.changed += 1
            _audit_change(session, department.code, changed, source)
    session.flush()
    for _, values in good:
        department = known[values["code"]]
        parent = known[values["parent"]].id if values.get("parent") else None
        if department.parent_id != parent:
            if department.id is not None and department.parent_id is not None:
                _audit_change(session, department.code, ["parent"], source)
            department.parent_id = parent
    result.unchanged = len(good) - result.added - result.changed
    session.flush()
    for _, values in good:
        department = known[values["code"]]
        if values.get("merged_into") and department.merged_into_id is None:
            _merge(session, department, known[values["merged_into"]], source)
    _audit_load(session, result, source)
    return result


def _merge_problem(
    values: dict[str, Any], codes: set[str], merging: set[str], known: dict[str, Department]
) -> str | None:
    """Why this row's 撤并至 cannot be applied, if it cannot."""
    target = values.get("merged_into")
    current = known.get(values["code"])
    if not target:
        if current is not None and current.merged_into_id is not None:
            return "该机构已撤并，不能恢复：请新设机构"
        return None
    if target == values["code"]:
        return "不能撤并至本机构"
    if target not in codes:
        return f"撤并至的机构 {target} 既不在文件中也未登记"
    if target in merging or (target in known and known[target].merged_into_id is not None):
        return f"机构 {target} 本身已撤并：请直接撤并至承接它的机构"
    already = current.merged_into_id if current is not None else None
    if already is not None and (target not in known or known[target].id != already):
        return "该机构已撤并至另一机构"
    return None


def _merge(session: Session, old: Department, new: Department, source: str) -> None:
    """撤并: `new` takes over `old`'s open cases and items; roles held in `old` end."""
    # The services build on the organisation, not the reverse: imported where a merge needs them.
    from qilu.services import cases
    from qilu.workdays import beijing_today

    old.merged_into_id, old.merged_on = new.id, beijing_today()
    moved = cases.transfer_open(session, old, new, "机构撤并")
    ended = session.execute(
        delete(StaffRole).where(
            StaffRole.staff_member_id.in_(
                select(StaffMember.id).where(StaffMember.department_id == old.id)
            )
        )
    )
    record(
        session,
        "org.department_merged",
        subject=f"department:{old.code}",
        details={
            "into": new.code,
            "cases": [c.number for c in moved],
            "roles_ended": ended.rowcount,  # type: ignore[attr-defined]
            "source": source,
        },
    )


def load_staff(
    session: Session, vault: Vault, rows: Iterable[Row], *, source: str, profile: Profile
) -> OrgLoad:
    """Make each listed resident staff of their department with the listed roles. A person
    the file lists works where it says: their roles in other departments end, unless the file
    lists those posts too (兼职). Roles granted on the platform in a department the person still
    works in stay."""
    result = OrgLoad("staff")
    departments = {d.code: d for d in session.scalars(select(Department))}
    posts: dict[int, set[int]] = {}  # person → the departments this file lists them in
    for number, raw in rows:
        result.total += 1
        values = _checked(result, STAFF_FIELDS, number, raw)
        if values is None:
            continue
        department = departments.get(values["department"])
        if department is None:
            result.refuse(number, "department", f"机构 {values['department']} 未登记")
            continue
        if department.merged_into_id is not None:
            result.refuse(number, "department", f"机构 {department.code} 已撤并，不能再任职")
            continue
        wanted = [r for r in re.split(r"[、;；,，\s]+", values.get("roles") or "") if r]
        unknown = [r for r in wanted if r not in ROLE_BY_NAME]
        if unknown:
            result.refuse(number, "roles", f"没有“{'、'.join(unknown)}”这个角色")
            continue
        person = matching_person(session, vault, values["name"], values["id_number"])
        if person is None:
            reason = "人口库中没有与姓名和身份号码相符的在册居民"
            result.refuse(number, "id_number", reason)
            continue
        member = session.scalars(
            select(StaffMember).where(
                StaffMember.person_id == person.id, StaffMember.department_id == department.id
            )
        ).one_or_none()
        title = values.get("title") or "工作人员"
        posts.setdefault(person.id, set()).add(department.id)
        if member is None:
            session.add(StaffMember(person_id=person.id, department_id=department.id, title=title))
            result.added += 1
        elif member.title != title:
            member.title = title
            result.changed += 1
        else:
            result.unchanged += 1
        session.flush()
        for role in wanted:
            roles.grant_role(
                session,
                person_id=person.id,
                department_code=department.code,
                role=ROLE_BY_NAME[role],
                profile=profile,
                actor=roles.OPERATOR,
                title=title,
            )
    _end_other_posts(session, posts, source)
    _audit_load(session, result, source)
    return result


def _end_other_posts(session: Session, posts: dict[int, set[int]], source: str) -> None:
    """The people the file places moved: the roles they held in departments it no longer
    lists them in end. Their posts are read a thousand people at a time, not one by one."""
    people = list(posts)
    for start in range(0, len(people), 1_000):
        held = session.scalars(
            select(StaffMember).where(StaffMember.person_id.in_(people[start : start + 1_000]))
        ).all()
        for member in held:
            if member.department_id in posts[member.person_id]:
                continue
            ended = session.execute(delete(StaffRole).where(StaffRole.staff_member_id == member.id))
            if ended.rowcount:  # type: ignore[attr-defined]
                record(
                    session,
                    "org.staff_moved",
                    subject=f"person:{member.person_id}",
                    details={
                        "left": member.department.code,
                        "roles_ended": ended.rowcount,  # type: ignore[attr-defined]
                        "source": source,
                    },
                )


def _checked(
    result: OrgLoad, fields: list[FieldSpec], number: int, raw: dict[str, Any]
) -> dict[str, Any] | None:
    if "__invalid__" in raw:
        result.refuse(number, "row", str(raw["__invalid__"]))
        return None
    checked = check_row(fields, raw)
    for name, reason in checked.problems:
        result.refuse(number, name, reason)
    return None if checked.problems else checked.values


def _audit_change(session: Session, code: str, fields: list[str], source: str) -> None:
    record(
        session,
        "org.department_changed",
        subject=f"department:{code}",
        details={"fields": fields, "source": source},
    )


def _audit_load(session: Session, result: OrgLoad, source: str) -> None:
    record(
        session,
        f"org.{result.kind}_loaded",
        details={
            "source": source,
            "total": result.total,
            "added": result.added,
            "changed": result.changed,
            "rejected": result.rejected,
        },
    )


def error_report(result: OrgLoad) -> str:
    """The refused rows as CSV (行号, 字段, 原因), for the file's owner to correct."""
    lines = ["行号,字段,原因"]
    for p in sorted(result.problems, key=lambda p: p["row"]):
        reason = str(p["reason"]).replace('"', '""')
        lines.append(f'{p["row"]},{p["field"]},"{reason}"')
    return "\n".join(lines) + "\n"
