"""忘记密码: a code to the registered phone resets the password, ends every session and is told
in the message centre; a wrong name, an unknown person or a civil servant get the same answer
and no code; a wrong code is refused and counts."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.identity import recovery, sessions
from qilu.identity.models import Account, WebSession
from qilu.identity.roles import OPERATOR, grant_role
from qilu.messages import service as messages
from qilu.pii import Vault

from .test_pages import PASSWORD, csrf
from .test_second_factor import ID, account  # noqa: F401  (fixture)
from .test_sms_codes import code_in, delivered

NEW = "Quan-cheng-2027"


def test_a_reset_by_sms_code_ends_every_session(
    client: TestClient,
    session: Session,
    connection: Connection,
    vault: Vault,
    account: Account,  # noqa: F811
) -> None:
    sessions.start_session(
        session, account, assurance=3, profile="standard", client_address="t", user_agent="t"
    )
    session.commit()
    asked = client.post(
        "/account/forgot/code", data={"name": "王芳", "id_number": ID, "csrf_token": csrf(client)}
    )
    assert asked.status_code == 200 and recovery.SENT in asked.text and "短信验证码" in asked.text
    session.commit()
    sent = delivered(connection, vault)
    assert "重置密码验证码" in sent.sent[-1][1]
    wrong = client.post(
        "/account/forgot",
        data={
            "name": "王芳",
            "id_number": ID,
            "code": "000000",
            "password": NEW,
            "password_again": NEW,
            "csrf_token": csrf(client),
        },
    )
    assert wrong.status_code == 400 and recovery.WRONG_CODE in wrong.text
    assert 'value="000000"' in wrong.text  # what was typed is kept
    session.commit()
    done = client.post(
        "/account/forgot",
        data={
            "name": "王芳",
            "id_number": ID,
            "code": code_in(sent),
            "password": NEW,
            "password_again": NEW,
            "csrf_token": csrf(client),
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/account/sign-in?reset=1"
    session.expire_all()
    live = session.scalar(
        select(func.count())
        .select_from(WebSession)
        .where(WebSession.account_id == account.id, WebSession.revoked_at.is_(None))
    )
    assert live == 0
    assert messages.inbox(session, account.person_id)[0].title == "密码已重置"
    assert session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "account.password_reset")
    )
    signed = client.post(
        "/account/sign-in",
        data={"id_number": ID, "password": NEW, "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/account"
    old = client.post(
        "/account/sign-in", data={"id_number": ID, "password": PASSWORD, "csrf_token": csrf(client)}
    )
    assert old.status_code == 403  # the old password no longer signs in


def test_misses_answer_alike_and_send_nothing(
    client: TestClient,
    departments: None,
    session: Session,
    connection: Connection,
    vault: Vault,
    account: Account,  # noqa: F811
) -> None:
    for name in ("王芬", "王芳"):
        answer = recovery.send_code(
            session, vault, name=name, id_number="110105194912310046", client_address="t"
        )
        assert answer == recovery.SENT
    wrong_name = recovery.send_code(session, vault, name="王芬", id_number=ID, client_address="t")
    assert wrong_name == recovery.SENT
    grant_role(
        session,
        person_id=account.person_id,
        department_code="370102-approval",
        role="approver",
        profile="standard",
        actor=OPERATOR,
    )
    staff = recovery.send_code(session, vault, name="王芳", id_number=ID, client_address="t")
    assert staff == recovery.SENT
    session.commit()
    assert delivered(connection, vault).sent == []
    bad = client.post(
        "/account/forgot/code",
        data={"name": "王芳", "id_number": "123", "csrf_token": csrf(client)},
    )
    assert bad.status_code == 400 and "公民身份号码格式不正确" in bad.text
    assert 'value="123"' in bad.text
