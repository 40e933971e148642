"""Cases follow the registers (issue 14). 撤并: a department merged into another, as the 编制
system's file says, hands over its open cases (with a step on their timeline and the applicant
told) and its items; the roles held in it end. 户籍迁移: a resident's cases no window has
accepted go to their new county. What was decided stays where it was decided."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import select

from qilu.audit.models import AuditEvent
from qilu.codes.uscc import make_uscc
from qilu.data import organisation
from qilu.filestore import LocalFileStore
from qilu.identity.models import Department
from qilu.identity.roles import roles_of
from qilu.messages import service as messages
from qilu.services import applications, progress
from qilu.services.models import Case, CaseStep

from .conftest import Province
from .test_applications import newborn
from .test_cases import case_named, restaurant

HEADER = "机构编码,机构名称,机构类别,层级,行政区划,上级机构编码,统一社会信用代码,撤并至机构编码\n"
LEVEL = {"province": "省级", "city": "市级", "county": "县级"}


def line(department: Department, merged_into: str = "") -> str:
    parent = department.parent.code if department.parent else ""
    return (
        f"{department.code},{department.name},{department.kind},{LEVEL[department.level]},"
        f"{department.division_code},{parent},{department.uscc},{merged_into}\n"
    )


def load(province: Province, text: str) -> organisation.OrgLoad:
    kind, rows = organisation.read(io.BytesIO(text.encode()), "机构.csv")
    assert kind == "departments"
    return organisation.load_departments(province.session, rows, source="机构.csv")


def test_a_merged_department_hands_over_its_open_cases_and_its_items(province: Province) -> None:
    session = province.session
    clerk = province.official("370102-approval", "window_clerk", "窗口甲")
    entity = province.enterprise(province.resident)
    application = restaurant(province, province.resident, entity)
    change = case_named(application, "企业变更登记")
    fire = case_named(application, "公众聚集场所投入使用营业前消防安全检查")
    approval = province.department("370102-approval")
    uscc = make_uscc("1", "1", "370102", "MB299999")
    centre = (
        f"370102-government_services,历下区政务服务中心,government_services,县级,370102,,{uscc},\n"
    )
    merged = load(province, HEADER + centre + line(approval, "370102-government_services"))
    assert (merged.added, merged.rejected) == (1, 0)

    successor = province.department("370102-government_services")
    assert approval.merged_into_id == successor.id and approval.merged_on is not None
    session.refresh(change)
    assert change.department_id == successor.id and change.state == "submitted"
    assert change.implementation_code.startswith(f"{successor.uscc}4")
    assert fire.department.code == "370102-emergency"  # another department's case stays
    step = session.scalars(
        select(CaseStep).where(CaseStep.case_id == change.id, CaseStep.action == "transfer")
    ).one()
    assert "政务服务中心" in step.reason and progress.STEP_NAMES["transfer"]
    assert any(
        m.title == "办件改由新机构办理" for m in messages.inbox(session, province.resident.id)
    )
    assert roles_of(session, clerk.id) == []  # the roles held in the merged department end
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "org.department_merged")
    ).one()
    assert audit.details["into"] == "370102-government_services"
    assert change.number in audit.details["cases"]

    again = restaurant(province, province.resident, entity)  # new work goes to the successor
    assert case_named(again, "企业变更登记").department_id == successor.id
    reloaded = load(province, HEADER + line(approval, "370102-government_services"))
    assert (
        reloaded.rejected == 0
        and len(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == "org.department_merged")
            ).all()
        )
        == 1
    )  # loading the same file again merges nothing twice
    undone = load(province, HEADER + line(approval))
    assert (
        undone.problems[0]["field"] == "merged_into" and "不能恢复" in undone.problems[0]["reason"]
    )
    staff = "公民身份号码,姓名,机构编码,职务,角色\n"
    staff += f"{province.resident_id_number},王丽,370102-approval,科员,\n"
    posted = organisation.load_staff(
        session, province.vault, organisation.read(io.BytesIO(staff.encode()), "人员.csv")[1],
        source="人员.csv", profile="standard",
    )  # fmt: skip
    assert posted.rejected == 1 and "已撤并" in posted.problems[0]["reason"]


def test_impossible_merges_are_refused_with_their_reason(province: Province) -> None:
    approval = province.department("370102-approval")
    emergency = province.department("370102-emergency")
    text = HEADER + line(approval, "370102-nowhere") + line(emergency, "370102-emergency")
    refused = load(province, text)
    reasons = [p["reason"] for p in refused.problems]
    assert refused.rejected == 2 and "未登记" in reasons[0] and "本机构" in reasons[1]
    chained = load(
        province,
        HEADER + line(approval, "370102-emergency") + line(emergency, "370102-approval"),
    )
    assert chained.rejected == 2 and all("本身已撤并" in p["reason"] for p in chained.problems)
    assert province.session.scalars(select(Case).where(Case.department_id.is_(None))).all() == []
    assert approval.merged_into_id is None and emergency.merged_into_id is None


def test_a_move_to_another_county_takes_the_unaccepted_cases_along(
    province: Province, tmp_path: Path
) -> None:
    """户籍迁移 as the 人口 library says it: the newborn's 社保卡 case, not yet accepted, goes to
    the new county's office; what was decided (the instant cases) stays where it was."""
    session = province.session
    application = newborn(province, LocalFileStore(tmp_path / "files"))
    applications.submit(session, province.vault, application, actor_person_id=province.resident.id)
    card = case_named(application, "社会保障卡申领")
    decided = [c for c in application.cases if c.state == "done"]
    assert card.state == "submitted" and card.department.code == "370102-human_resources"
    assert decided  # 出生登记 and others were decided at once
    moved = {
        "id_number": province.resident_id_number,
        "name": "王丽",
        "sex": "2",
        "birth_date": "1992-05-17",
        "household_division": "370103",
        "address": "山东省济南市市中区经七路1号",
        "phone": "13900001111",
    }
    province.library("JC-RK-001", [moved])
    session.refresh(card)
    assert card.department.code == "370103-human_resources" and card.state == "submitted"
    assert all(session.get_one(Case, c.id).department_id == c.department_id for c in decided)
    step = session.scalars(
        select(CaseStep).where(CaseStep.case_id == card.id, CaseStep.action == "transfer")
    ).one()
    assert step.reason.startswith("户籍迁移")
    assert province.resident.household_division_code == "370103"
    transferred = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "services.case_transferred")
    ).all()
    assert [e.subject for e in transferred] == [f"case:{card.number}"]
