"""撤并 (issue 14): a department merged into another, as the 编制 system's file says, hands
over its open cases (with a step on their timeline and the applicant told) and its items;
the roles held in it end; what was decided stays where it was decided."""

from __future__ import annotations

import io

from sqlalchemy import select

from qilu.audit.models import AuditEvent
from qilu.codes.uscc import make_uscc
from qilu.data import organisation
from qilu.identity.models import Department
from qilu.identity.roles import roles_of
from qilu.messages import service as messages
from qilu.services import progress
from qilu.services.models import Case, CaseStep

from .conftest import Province
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
    assert change.implementation_code.endswith(f"-{successor.uscc}-1-00")
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
