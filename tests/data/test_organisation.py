"""The organisation tree and staff from the 编制/组织 systems' files (issue 14): checked like a
library load, every bad row named, the good ones applied, changes audited."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data import organisation
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.errors import QiluError
from qilu.identity.models import Department, StaffMember
from qilu.identity.roles import OPERATOR, roles_of
from qilu.identity.service import find_person
from qilu.pii import Vault

DEPARTMENTS = (
    "机构编码,机构名称,机构类别,层级,行政区划,上级机构编码,统一社会信用代码\n"
    "370000-bigdata,山东省大数据局,bigdata,省级,370000,,11370000MB28502018\n"
    "370102-approval,济南市历下区行政审批服务局,approval,县级,370102,370100-approval,"
    "11370102MB2850308M\n"
    "370100-approval,济南市行政审批服务局,approval,市级,370100,,11370100MB2850252M\n"
)
LI = "370102199003073516"


def read(text: str, name: str = "org.csv") -> tuple[str, Any]:
    return organisation.read(io.BytesIO(text.encode()), name)


def test_departments_load_with_their_parents_in_any_order(session: Session) -> None:
    kind, rows = read(DEPARTMENTS)
    assert kind == "departments"
    result = organisation.load_departments(session, rows, source="org.csv")
    assert (result.total, result.added, result.rejected) == (3, 3, 0)
    county = session.scalars(select(Department).where(Department.code == "370102-approval")).one()
    assert county.level == "county" and county.parent is not None
    assert county.parent.code == "370100-approval"  # named before it appeared in the file

    renamed = DEPARTMENTS.replace("山东省大数据局", "山东省大数据中心")
    again = organisation.load_departments(session, read(renamed)[1], source="org2.csv")
    assert (again.added, again.changed, again.unchanged) == (0, 1, 2)
    [changed] = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "org.department_changed")
    ).all()
    assert changed.subject == "department:370000-bigdata" and changed.details["fields"] == ["name"]


def test_bad_department_rows_are_refused_one_by_one_with_their_reason(session: Session) -> None:
    text = DEPARTMENTS + (
        "370103-approval,市中区审批局,approval,县级,370103,370100-nowhere,11370103MB2850404D\n"
        "370104-approval,槐荫区审批局,approval,区级,370104,,11370104MB28505005\n"
        "370105-bigdata,重复代码,bigdata,县级,370105,,11370000MB28502018\n"
        "370000-bigdata,重复编码,bigdata,省级,370000,,11370000MB28502018\n"
    )
    result = organisation.load_departments(session, read(text)[1], source="bad.csv")
    assert result.added == 3 and result.rejected == 4
    reasons = {p["row"]: (p["field"], p["reason"]) for p in result.problems}
    assert reasons[5][0] == "parent" and "370100-nowhere" in reasons[5][1]
    assert reasons[6][0] == "level"
    assert reasons[7][0] == "uscc" and "370000-bigdata" in reasons[7][1]
    assert reasons[8][0] == "code" and "重复" in reasons[8][1]
    report = organisation.error_report(result)
    assert report.startswith("行号,字段,原因\n") and "5,parent," in report


def li_in_the_register(session: Session, vault: Vault) -> None:
    """李强 in the 人口 library, and so in the register."""
    install_standard_catalog(session)
    person = {
        "id_number": LI,
        "name": "李强",
        "sex": "1",
        "birth_date": "1990-03-07",
        "household_division": "370102",
    }
    load_rows(session, vault, "JC-RK-001", [(1, person)], source="t", actor=OPERATOR)


def test_staff_are_residents_of_the_register_with_their_roles(
    session: Session, vault: Vault, departments: None
) -> None:
    li_in_the_register(session, vault)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["公民身份号码", "姓名", "机构编码", "职务", "角色"])
    sheet.append([LI, "李强", "370102-approval", "科员", "窗口受理、审批"])
    sheet.append([LI, "李四", "370102-approval", "科员", "审批"])  # name does not match
    sheet.append(["370102198001010015", "赵磊", "370102-approval", "", "审批"])  # not in 人口
    sheet.append([LI, "李强", "370199-nowhere", "", ""])
    sheet.append([LI, "李强", "370000-bigdata", "", "打杂"])
    stream = io.BytesIO()
    book.save(stream)
    kind, rows = organisation.read(io.BytesIO(stream.getvalue()), "staff.xlsx")
    assert kind == "staff"
    result = organisation.load_staff(session, vault, rows, source="staff.xlsx", profile="standard")
    assert (result.total, result.added, result.rejected) == (5, 1, 4)
    fields = [p["field"] for p in sorted(result.problems, key=lambda p: p["row"])]
    assert fields == ["id_number", "id_number", "department", "roles"]
    li = find_person(session, vault, LI)
    member = session.scalars(select(StaffMember).where(StaffMember.person_id == li.id)).one()
    assert member.title == "科员"
    assert {g.role for g in roles_of(session, li.id)} == {"window_clerk", "approver"}


def test_a_file_that_is_neither_shape_is_refused_by_name() -> None:
    with pytest.raises(QiluError) as refused:
        read("名称,地址\n甲,乙\n")
    assert refused.value.code == "org.columns" and "机构编码" in refused.value.message
    with pytest.raises(QiluError) as jsonl:
        read("{}", "org.jsonl")
    assert jsonl.value.code == "org.file_format"


def test_a_person_the_file_places_elsewhere_leaves_their_old_posts(
    session: Session, vault: Vault, departments: None
) -> None:
    li_in_the_register(session, vault)
    header = "公民身份号码,姓名,机构编码,职务,角色\n"

    def staff(text: str) -> None:
        result = organisation.load_staff(
            session, vault, read(header + text)[1], source="人员.csv", profile="standard"
        )
        assert result.rejected == 0, result.problems

    staff(f"{LI},李强,370102-approval,科员,窗口受理、审批\n")
    li = find_person(session, vault, LI)
    staff(f"{LI},李强,370102-approval,科员,窗口受理\n{LI},李强,370102-civil_affairs,科员,审批\n")
    held = {(g.department_name, g.role) for g in roles_of(session, li.id)}
    assert ("历下区行政审批服务局", "approver") in held  # 兼职: both posts listed, both kept
    assert len(held) == 3
    staff(f"{LI},李强,370102-civil_affairs,科长,审批\n")  # moved: only the new post listed
    assert {(g.department_name, g.role) for g in roles_of(session, li.id)} == {
        ("历下区民政局", "approver")
    }
    moved = session.scalars(select(AuditEvent).where(AuditEvent.action == "org.staff_moved")).one()
    assert moved.details["left"] == "370102-approval" and moved.details["roles_ended"] == 2
