"""办件进度: the dated timeline, 我的办件's tabs, withdrawing before acceptance, deleting a draft,
and the look-up by number that tells a wrong number from a wrong ID number by nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qilu.audit.models import AuditEvent
from qilu.errors import NotFound, QiluError
from qilu.filestore import LocalFileStore
from qilu.services import applications, cases, progress
from qilu.services.models import Application, ApplicationMaterial

from ..identity.test_pages import csrf
from .conftest import Province
from .test_applications import newborn
from .test_cases import restaurant


def submitted_newborn(province: Province, store: LocalFileStore) -> Application:
    application = newborn(province, store)
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    return application


def test_the_timeline_dates_every_step_and_the_delivered_result(
    province: Province, store: LocalFileStore
) -> None:
    application = submitted_newborn(province, store)
    events = progress.timeline(province.session, application)
    assert events[0].label == "提交申请" and events[0].detail == application.number
    assert [e.at for e in events] == sorted(e.at for e in events)
    hukou = next(c for c in application.cases if c.item.name == "出生登记")
    of_hukou = [e.label for e in events if e.case_number == hukou.number]
    assert of_hukou == ["前置事项办结，开始办理", "已受理", "开始审查", "准予许可", "办结"]
    assert "自动审核（秒批）" in next(e.detail for e in events if e.case_number == hukou.number)
    delivered = [e for e in events if e.kind == "result"]
    assert any(e.detail == "出生医学证明已存入电子证照库" for e in delivered)


def test_the_time_limit_is_said_in_words_in_every_state(province: Province) -> None:
    representative = province.resident
    application = restaurant(province, representative, province.enterprise(representative))
    case = application.cases[0]
    days = case.item.spec["promised_days"]
    assert progress.due_label(case) == f"受理后 {days} 个工作日内办结"
    clerk = province.official("370102-approval", "window_clerk", "窗口甲")
    cases.act(
        province.session,
        province.vault,
        case.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=case.version,
    )
    assert case.due_on is not None
    assert progress.due_label(case) == f"{case.due_on:%Y年%m月%d日}前办结"


def test_an_application_is_withdrawn_only_before_any_acceptance(province: Province) -> None:
    representative = province.resident
    entity = province.enterprise(representative)
    first = restaurant(province, representative, entity)
    assert progress.may_withdraw(first)
    progress.withdraw(province.session, first, actor_person_id=representative.id)
    assert first.status == "closed"
    assert {c.state for c in first.cases} == {"cancelled"}
    assert progress.timeline(province.session, first)[-1].detail.endswith(progress.WITHDRAWN)
    assert province.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "services.application_withdrawn")
    )

    second = restaurant(province, representative, entity)
    clerk = province.official("370102-approval", "window_clerk", "窗口甲")
    accepted = second.cases[0]
    cases.act(
        province.session,
        province.vault,
        accepted.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=accepted.version,
    )
    assert not progress.may_withdraw(second)
    with pytest.raises(QiluError) as refused:
        progress.withdraw(province.session, second, actor_person_id=representative.id)
    assert refused.value.code == "services.not_withdrawable"
    assert accepted.state == "accepted" and second.status == "in_progress"


def test_a_draft_is_deleted_with_its_uploads_and_a_submission_is_not(
    province: Province, store: LocalFileStore
) -> None:
    draft = newborn(province, store)
    draft_id = draft.id
    progress.delete_draft(province.session, draft, actor_person_id=province.resident.id)
    assert province.session.get(Application, draft_id) is None
    assert not province.session.scalar(
        select(func.count())
        .select_from(ApplicationMaterial)
        .where(ApplicationMaterial.application_id == draft_id)
    )
    kept = submitted_newborn(province, store)
    with pytest.raises(QiluError) as refused:
        progress.delete_draft(province.session, kept, actor_person_id=province.resident.id)
    assert refused.value.code == "services.not_draft"


def test_the_look_up_needs_the_number_and_the_applicants_id_number(
    province: Province, store: LocalFileStore
) -> None:
    application = submitted_newborn(province, store)
    found = progress.look_up(
        province.session,
        province.vault,
        f" {application.number.lower()} ",
        province.resident_id_number.lower(),
    )
    assert found.id == application.id
    answers = []
    for number, id_number in (
        (application.number, "11010519491231002X"),
        ("SQ000", province.resident_id_number),
    ):
        with pytest.raises(NotFound) as missing:
            progress.look_up(province.session, province.vault, number, id_number)
        answers.append((missing.value.code, missing.value.message, missing.value.field))
    assert answers[0] == answers[1] == ("services.lookup_not_found", progress.NOT_FOUND, "number")
    draft = newborn(province, store)
    with pytest.raises(NotFound):
        progress.look_up(
            province.session, province.vault, draft.number, province.resident_id_number
        )
    with pytest.raises(QiluError) as empty:
        progress.look_up(province.session, province.vault, application.number, " ")
    assert empty.value.field == "id_number"


def test_my_applications_in_tabs_with_counts(province: Province, store: LocalFileStore) -> None:
    submitted_newborn(province, store)
    newborn(province, store)
    applicant = applications.Applicant(province.resident)
    counts = progress.tab_counts(province.session, applicant)
    assert counts == {"doing": 1, "correcting": 0, "done": 0, "draft": 1}
    assert [a.status for a in progress.in_tab(province.session, applicant, "draft")] == ["draft"]


def test_the_pages_show_tabs_and_the_look_up_keeps_what_was_typed(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    from .test_pages import signed_in

    signed_in(client, province)
    page = client.get("/account/applications")
    assert page.status_code == 200 and 'data-tab="doing" aria-current="page"' in page.text
    assert "办理中暂无办件" in page.text

    client.cookies.clear()
    application = submitted_newborn(province, store)
    province.session.commit()
    wrong = client.post(
        "/services/progress",
        data={"number": application.number, "id_number": "123", "csrf_token": csrf(client)},
    )
    assert wrong.status_code == 404 and progress.NOT_FOUND in wrong.text
    assert f'value="{application.number}"' in wrong.text and 'value="123"' in wrong.text
    right = client.post(
        "/services/progress",
        data={
            "number": application.number,
            "id_number": province.resident_id_number,
            "csrf_token": csrf(client),
        },
    )
    assert right.status_code == 200 and f'data-found="{application.number}"' in right.text
    assert "结果已送达" in right.text and "出生医学证明" in right.text
    misses = [
        client.post(
            "/services/progress",
            data={"number": application.number, "id_number": "1", "csrf_token": csrf(client)},
        )
        for _ in range(5)
    ]
    # a miss a second per address: five quick guesses cannot all be answered
    limited = [m for m in misses if m.status_code == 429]
    assert limited and "请求过于频繁" in limited[0].text
