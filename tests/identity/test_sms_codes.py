"""SMS one-time codes as the second factor: sent after commit through the pluggable sender,
limited, one use, five tries."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session, sessionmaker

from qilu.errors import QiluError
from qilu.identity import sms_codes
from qilu.identity.models import Account
from qilu.outbox.service import sweep
from qilu.pii import Vault
from qilu.sms import GatewaySender, LoggingSender, sender_for

from .test_pages import PASSWORD, csrf
from .test_second_factor import ID, T0, account, check, enable  # noqa: F401  (fixture)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))


def delivered(connection: Connection, vault: Vault) -> Recorder:
    recorder = Recorder()
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
    sweep(sessions, {sms_codes.SEND: partial(sms_codes.deliver, vault=vault, sender=recorder)})
    return recorder


def code_in(recorder: Recorder) -> str:
    found = re.search(r"验证码为 (\d{6})", recorder.sent[-1][1])
    assert found
    return found.group(1)


def test_a_code_by_sms_passes_the_second_factor_once(
    session: Session,
    connection: Connection,
    vault: Vault,
    account: Account,  # noqa: F811
) -> None:
    enable(session, vault, account)
    masked = sms_codes.send_code(session, vault, account, client_address=None, now=T0)
    assert masked == "138****8000"
    session.commit()
    recorder = delivered(connection, vault)
    assert recorder.sent[0][0] == "13800138000"
    code = code_in(recorder)
    assert check(session, vault, account, code, T0 + timedelta(minutes=1)) == "sms"
    with pytest.raises(QiluError):  # one use
        check(session, vault, account, code, T0 + timedelta(minutes=2))


def test_sending_is_limited(session: Session, vault: Vault, account: Account) -> None:  # noqa: F811
    sms_codes.send_code(session, vault, account, client_address=None, now=T0)
    with pytest.raises(QiluError) as soon:
        sms_codes.send_code(
            session, vault, account, client_address=None, now=T0 + timedelta(seconds=20)
        )
    assert soon.value.code == "sms.too_soon" and "40 秒" in soon.value.message
    for minute in range(1, 5):
        sms_codes.send_code(
            session, vault, account, client_address=None, now=T0 + timedelta(minutes=minute)
        )
    with pytest.raises(QiluError) as many:
        sms_codes.send_code(
            session, vault, account, client_address=None, now=T0 + timedelta(minutes=10)
        )
    assert many.value.code == "sms.too_many"


def test_five_wrong_tries_end_the_code(
    session: Session,
    connection: Connection,
    vault: Vault,
    account: Account,  # noqa: F811
) -> None:
    enable(session, vault, account)
    sms_codes.send_code(session, vault, account, client_address=None, now=T0)
    session.commit()
    code = code_in(delivered(connection, vault))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert not sms_codes.accept(session, account, wrong, T0)
    assert not sms_codes.accept(session, account, code, T0)


def test_expired_codes_and_people_without_a_phone(
    session: Session,
    connection: Connection,
    vault: Vault,
    account: Account,  # noqa: F811
) -> None:
    sms_codes.send_code(session, vault, account, client_address=None, now=T0)
    session.commit()
    code = code_in(delivered(connection, vault))
    assert not sms_codes.accept(session, account, code, T0 + timedelta(minutes=6))
    account.person.phone_cipher = None
    with pytest.raises(QiluError) as none:
        sms_codes.send_code(
            session, vault, account, client_address=None, now=T0 + timedelta(hours=1)
        )
    assert none.value.code == "sms.no_phone"


def test_the_two_factor_page_sends_and_takes_the_code(
    client: TestClient,
    session: Session,
    connection: Connection,
    vault: Vault,
    account: Account,  # noqa: F811
) -> None:
    enable(session, vault, account)
    session.commit()
    client.post(
        "/account/sign-in", data={"id_number": ID, "password": PASSWORD, "csrf_token": csrf(client)}
    )
    sent = client.post("/account/two-factor/sms", data={"csrf_token": csrf(client)})
    assert sent.status_code == 200 and "已发送至 138****8000" in sent.text
    session.commit()  # a refusal rolls back its own request only (as between real requests)
    again = client.post("/account/two-factor/sms", data={"csrf_token": csrf(client)})
    assert again.status_code == 429 and "秒后再重新获取" in again.text
    code = code_in(delivered(connection, vault))
    done = client.post(
        "/account/two-factor",
        data={"code": code, "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and client.get("/account").status_code == 200


def test_the_sender_is_a_setting(settings: Any) -> None:
    assert isinstance(sender_for(settings), LoggingSender)
    gateway = sender_for(settings.model_copy(update={"sms_gateway_url": "https://sms.example/"}))
    assert isinstance(gateway, GatewaySender) and gateway.url == "https://sms.example/"
