"""补正 done right: the approver ticks what to redo (一次性告知) and the applicant is told it with a
deadline, sees only those fields and materials, must upload anew what was ticked, and can print
the 补正告知书."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu.errors import QiluError
from qilu.filestore import LocalFileStore
from qilu.identity.models import Person
from qilu.services import applications, cases
from qilu.services.models import Application, Case, ServiceItem
from qilu.workdays import add_working_days, beijing_today

from ..identity.test_pages import csrf
from .conftest import Province
from .test_applications import PNG
from .test_showing import signed_in_as


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def relief(
    province: Province, store: LocalFileStore, *, accepted: bool = True
) -> tuple[Application, Case, Person]:
    """A submitted 临时救助申请, accepted at its department (unless not `accepted`), and that
    department's approver."""
    code = province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == "临时救助申请", ServiceItem.is_current)
    ).one()
    application = applications.start(
        province.session, province.vault, applicant=province.resident, item_code=code
    ).application
    applications.save_draft(
        province.session,
        application,
        {"reason": "火灾", "amount": "3000", "bank_account": "6222020200112233445"},
    )
    applications.add_upload(
        province.session,
        store,
        application,
        "困难情况说明",
        file_name="说明.png",
        content_type="image/png",
        content=PNG,
    )
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    [case] = application.cases
    department = case.department.code
    clerk = province.official(department, "window_clerk", "民政窗口")
    approver = province.official(department, "approver", "民政审批")
    if not accepted:
        return application, case, clerk
    cases.act(
        province.session,
        province.vault,
        case.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=case.version,
    )
    return application, case, approver


def correct(province: Province, case: Case, approver: Person, redo: list[str]) -> None:
    cases.act(
        province.session,
        province.vault,
        case.id,
        "correct",
        actor_person_id=approver.id,
        expected_version=case.version,
        reason="金额与说明不符",
        redo=redo,
    )


def test_a_correction_names_what_to_redo_and_by_when(
    province: Province, store: LocalFileStore
) -> None:
    application, case, approver = relief(province, store)
    for nothing in ([], ["field:not_a_field", "material:户口簿"]):
        with pytest.raises(QiluError) as refused:
            correct(province, case, approver, nothing)
        assert refused.value.code == "case.redo" and refused.value.field == "redo"
    assert case.state == "accepted"
    correct(province, case, approver, ["field:amount", "material:困难情况说明", "field:amount"])
    assert case.correction is not None
    assert case.correction["fields"] == ["amount"]
    assert case.correction["materials"] == ["困难情况说明"]
    assert case.correction["labels"] == ["申请金额（元）", "困难情况说明"]
    due = add_working_days(beijing_today(), cases.CORRECTION_DAYS).isoformat()
    assert case.correction["due_on"] == due
    asked = applications.corrections_of(application)
    assert asked.fields == {"amount"} and set(asked.materials) == {"困难情况说明"}


def test_the_ticked_material_must_be_uploaded_anew(
    province: Province, store: LocalFileStore
) -> None:
    application, case, approver = relief(province, store)
    correct(province, case, approver, ["field:amount", "material:困难情况说明"])
    with pytest.raises(QiluError) as refused:
        applications.answer_correction(
            province.session,
            province.vault,
            application,
            {"amount": "2000"},
            actor_person_id=province.resident.id,
        )
    problems = refused.value.details["problems"]
    assert problems == [{"field": "materials.困难情况说明", "reason": "请重新上传困难情况说明"}]
    assert case.state == "correcting" and application.form["amount"] == "3000"
    applications.add_upload(
        province.session,
        store,
        application,
        "困难情况说明",
        file_name="新说明.png",
        content_type="image/png",
        content=PNG + b"new",
    )
    applications.answer_correction(
        province.session,
        province.vault,
        application,
        {"amount": "2000"},
        actor_person_id=province.resident.id,
    )
    assert case.state == "reviewing" and application.form["amount"] == "2000"


def test_the_applicant_sees_only_the_ticked_items_and_the_notice(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    application, case, approver = relief(province, store)
    correct(province, case, approver, ["field:amount", "material:困难情况说明"])
    signed_in_as(client, province, province.resident)
    page = client.get(f"/services/applications/{application.id}")
    correction = page.text[page.text.index('id="correction-title"') :]
    assert 'data-field="amount"' in correction and 'data-field="reason"' not in correction
    assert 'data-material="困难情况说明"' in correction and "需补正" in correction
    assert case.correction is not None and case.correction["due_on"] in correction
    refused = client.post(
        f"/services/applications/{application.id}/resubmit",
        data={"f.amount": "2500", "csrf_token": csrf(client)},
    )
    assert refused.status_code == 400 and "请重新上传困难情况说明" in refused.text
    link = r'href="(/services/applications/\d+/documents/[^"]+)">查看补正告知书'
    [notice_link] = re.findall(link, page.text)
    notice = client.get(notice_link)
    assert notice.status_code == 200 and "补正材料告知书" in notice.text
    assert "申请金额（元）" in notice.text and case.department.name in notice.text
    assert province.resident.name in notice.text


def test_the_approver_ticks_on_the_case_page_and_a_refusal_keeps_the_ticks(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    _, case, approver = relief(province, store)
    province.session.commit()
    signed_in_as(client, province, approver)
    page = client.get(f"/workbench/cases/{case.id}")
    assert 'name="redo" value="field:amount"' in page.text
    assert 'name="redo" value="material:困难情况说明"' in page.text
    refused = client.post(
        f"/workbench/cases/{case.id}/act",
        data={
            "action": "correct",
            "version": str(case.version),
            "reason": "",
            "redo": ["field:amount"],
            "csrf_token": csrf(client),
        },
    )
    assert refused.status_code == 400 and "须写明理由" in refused.text
    assert 'value="field:amount" checked' in refused.text
