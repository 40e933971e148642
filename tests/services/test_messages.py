"""消息中心: the applicant is told at every step, in the inbox and (if they asked) by SMS after
commit; the header shows the unread count."""

from __future__ import annotations

import re
from functools import partial

from fastapi.testclient import TestClient
from sqlalchemy import Connection, select
from sqlalchemy.orm import sessionmaker

from qilu.identity import sessions
from qilu.identity.access import SESSION_COOKIE
from qilu.messages import service
from qilu.messages.models import Message
from qilu.outbox.models import OutboxEffect
from qilu.outbox.service import sweep
from qilu.services import cases
from qilu.services.models import Case

from ..factories import make_account
from ..identity.test_pages import csrf
from ..identity.test_sms_codes import Recorder
from .conftest import Province
from .test_cases import restaurant


def opened(province: Province) -> tuple[Case, int, int]:
    representative = province.resident
    clerk = province.official("370102-approval", "window_clerk", "窗口甲")
    application = restaurant(province, representative, province.enterprise(representative))
    # The clerk's department's case (the chain also opens cases elsewhere, in no set order).
    clerk_department = province.department("370102-approval")
    case = province.session.scalars(
        select(Case).where(
            Case.application_id == application.id,
            Case.state == "submitted",
            Case.department_id == clerk_department.id,
        )
    ).first()
    assert case is not None
    return case, representative.id, clerk.id


def test_each_step_tells_the_applicant(province: Province) -> None:
    case, applicant, clerk = opened(province)
    cases.act(
        province.session,
        province.vault,
        case.id,
        "accept",
        actor_person_id=clerk,
        expected_version=case.version,
    )
    [accepted] = service.inbox(province.session, applicant)
    assert accepted.title == "办件已受理" and case.department.name in accepted.body
    assert accepted.link == f"/services/applications/{case.application_id}"
    approver = province.official("370102-approval", "approver", "审批乙")
    cases.act(
        province.session,
        province.vault,
        case.id,
        "correct",
        actor_person_id=approver.id,
        expected_version=case.version,
        reason="平面图不清晰",
        redo=[f"material:{case.item.spec['materials'][-1]}"],
    )
    newest = service.inbox(province.session, applicant)[0]
    assert newest.title == "请补正材料" and "平面图不清晰" in newest.body
    assert case.item.spec["materials"][-1] in newest.body
    assert f"请于 {case.correction['due_on']} 前" in newest.body
    assert service.unread_count(province.session, applicant) == 2


def test_the_inbox_page_and_the_header_badge(client: TestClient, province: Province) -> None:
    case, _, clerk = opened(province)
    cases.act(
        province.session,
        province.vault,
        case.id,
        "accept",
        actor_person_id=clerk,
        expected_version=case.version,
    )
    account = make_account(province.session, province.vault, province.resident)
    cookie, _ = sessions.start_session(
        province.session,
        account,
        assurance=3,
        profile="standard",
        client_address="t",
        user_agent="t",
    )
    client.cookies.set(SESSION_COOKIE, cookie)
    home = client.get("/")
    assert 'hx-get="/account/messages/badge"' in home.text  # fetched after the page
    assert 'data-unread="1"' in client.get("/account/messages/badge").text
    inbox = client.get("/account/messages")
    assert "办件已受理" in inbox.text and '<span class="badge">新</span>' in inbox.text
    assert client.get("/account/messages/badge").text == "消息"  # seen
    client.cookies.clear()
    assert client.get("/account/messages/badge").text == "消息"


def test_an_sms_copy_only_for_those_who_asked_and_after_commit(
    client: TestClient, province: Province, connection: Connection
) -> None:
    case, applicant, clerk = opened(province)
    account = make_account(province.session, province.vault, province.resident)
    cookie, _ = sessions.start_session(
        province.session,
        account,
        assurance=3,
        profile="standard",
        client_address="t",
        user_agent="t",
    )
    client.cookies.set(SESSION_COOKIE, cookie)
    service.send(province.session, applicant, title="试一下", body="没有短信")
    assert province.session.scalar(select(OutboxEffect.id)) is None
    saved = client.post("/account/messages/sms", data={"by_sms": "yes", "csrf_token": csrf(client)})
    assert saved.status_code == 200 and "已保存" in saved.text
    cases.act(
        province.session,
        province.vault,
        case.id,
        "accept",
        actor_person_id=clerk,
        expected_version=case.version,
    )
    province.session.commit()
    recorder = Recorder()
    sessions_ = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    sweep(
        sessions_,
        {service.SMS: partial(service.deliver_sms, vault=province.vault, sender=recorder)},
    )
    assert len(recorder.sent) == 1
    phone, text = recorder.sent[0]
    assert re.fullmatch(r"1\d{10}", phone) and text.startswith("【齐鲁】办件已受理：")
    assert province.session.scalar(select(Message.id).where(Message.title == "办件已受理"))


def test_an_instant_decision_is_told_too(province: Province, tmp_path: object) -> None:
    """秒批 cases move in one update, not step by step: the applicant still hears of it."""
    from qilu.filestore import LocalFileStore
    from qilu.services import applications

    from .test_applications import newborn

    application = newborn(province, LocalFileStore(tmp_path))  # type: ignore[arg-type]
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    titles = [m.title for m in service.inbox(province.session, province.resident.id)]
    assert "秒批：已准予并办结" in titles and "电子证照已签发" in titles


def test_a_new_case_tells_the_window_that_accepts_it(province: Province) -> None:
    case, _, clerk = opened(province)
    told = {m.link: m for m in service.inbox(province.session, clerk)}
    mine = told[f"/workbench/cases/{case.id}"]
    assert mine.title == "新办件待受理" and case.number in mine.body
    waiting = province.session.scalars(
        select(Case).where(
            Case.application_id == case.application_id,
            Case.state == "submitted",
            Case.department_id == case.department_id,
        )
    ).all()
    assert len(told) == len(waiting)  # one per case that landed at this window


def test_a_granted_benefit_says_how_much_from_when_and_where(province: Province) -> None:
    """Issue 13: a benefit granted says how much, from when, to which account."""
    from datetime import timedelta

    from sqlalchemy import select

    from qilu.services import applications
    from qilu.services.models import ServiceItem
    from qilu.workdays import beijing_today

    code = province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == "高龄津贴申领", ServiceItem.is_current)
    ).one()
    application = applications.start(
        province.session, province.vault, applicant=province.resident, item_code=code
    ).application
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    [case] = application.cases
    terms = cases.benefit_terms(case)
    month = (beijing_today().replace(day=1) + timedelta(days=32)).replace(day=1)
    assert terms == f"按政策标准发放，自 {month:%Y年%m月} 起，发放至本人社会保障卡银行账户。"
    application.form = {**application.form, "amount": "3000", "bank_account": "6222020200112233445"}
    assert cases.benefit_terms(case).startswith("金额 3000 元")
    assert "尾号 3445" in cases.benefit_terms(case)
