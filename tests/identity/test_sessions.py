from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.identity.accounts import register_resident
from qilu.identity.models import Account, WebSession
from qilu.identity.sessions import (
    SessionEnded,
    end_all_sessions,
    end_session,
    live_sessions,
    resume_session,
    start_session,
)
from qilu.pii import Vault

from ..factories import make_person

T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def account(session: Session, vault: Vault) -> Account:
    make_person(session, vault, name="王芳", id_number="11010519491231002X")
    return register_resident(
        session,
        vault,
        name="王芳",
        id_number="11010519491231002X",
        password="qilu-Sign-in-2026",
        profile="standard",
    )


def start(session: Session, account: Account, at: datetime = T0) -> str:
    token, _ = start_session(
        session,
        account,
        assurance=3,
        profile="standard",
        client_address="10.0.0.1",
        user_agent="test",
        now=at,
    )
    return token


def test_a_session_resumes_from_its_token(session: Session, account: Account) -> None:
    token = start(session, account)
    assert resume_session(session, token, profile="standard", now=T0).account_id == account.id
    stored = session.scalars(select(WebSession)).one()
    assert token.encode() not in stored.token_hash and len(stored.token_hash) == 32


def test_unknown_token_is_refused(session: Session) -> None:
    with pytest.raises(SessionEnded) as caught:
        resume_session(session, "forged-token", profile="standard")
    assert caught.value.code == "session.ended"


def test_idle_timeout_depends_on_the_profile(session: Session, account: Account) -> None:
    token = start(session, account)
    later = T0 + timedelta(minutes=45)
    assert resume_session(session, token, profile="standard", now=later)
    other = start(session, account)
    with pytest.raises(SessionEnded) as caught:
        resume_session(session, other, profile="dengbao3", now=later)
    assert caught.value.code == "session.idle"


def test_activity_keeps_a_session_alive_until_its_absolute_limit(
    session: Session, account: Account
) -> None:
    token = start(session, account)
    moment = T0
    for _ in range(11):  # a request every hour for eleven hours
        moment += timedelta(hours=1)
        resume_session(session, token, profile="standard", now=moment)
    with pytest.raises(SessionEnded) as caught:
        resume_session(session, token, profile="standard", now=T0 + timedelta(hours=12))
    assert caught.value.code == "session.expired"


def test_sign_out_and_sign_out_everywhere(session: Session, account: Account) -> None:
    first, second, third = (start(session, account) for _ in range(3))
    end_session(
        session, resume_session(session, first, profile="standard"), client_address="10.0.0.1"
    )
    with pytest.raises(SessionEnded):
        resume_session(session, first, profile="standard")
    assert len(live_sessions(session, account, profile="standard")) == 2
    assert end_all_sessions(session, account, client_address="10.0.0.1") == 2
    for token in (second, third):
        with pytest.raises(SessionEnded):
            resume_session(session, token, profile="standard")
    assert live_sessions(session, account, profile="standard") == []


def test_a_disabled_account_loses_its_sessions(session: Session, account: Account) -> None:
    token = start(session, account)
    account.status = "disabled"
    with pytest.raises(SessionEnded) as caught:
        resume_session(session, token, profile="standard")
    assert caught.value.code == "session.account_disabled"
