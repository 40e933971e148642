"""扫码登录: a computer signs in by the confirmation of a phone that is signed in."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qilu.identity.models import CrossDeviceSignIn
from qilu.pii import Vault

from ..factories import make_person
from .test_pages import ID, csrf, register

HX = {"HX-Request": "true"}


def show_code(desktop: TestClient) -> tuple[str, str]:
    """The computer asks for a QR code: the confirmation address in it and the check code."""
    page = desktop.post("/account/qr", data={"csrf_token": csrf(desktop), "next": "/account"})
    assert page.status_code == 200 and "<svg" in page.text
    address = re.search(r"data-qr-address>([^<]+)<", page.text)
    code = re.search(r"data-check-code>(\d\d)<", page.text)
    assert address and code
    return address.group(1).split("/account/qr/confirm/")[1], code.group(1)


def poll(desktop: TestClient):  # type: ignore[no-untyped-def]
    return desktop.post(
        "/account/qr/status",
        data={"csrf_token": csrf(desktop), "next": "/account"},
        headers=HX,
    )


def test_a_phone_signs_the_computer_in_once(app: FastAPI, session: Session, vault: Vault) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    with TestClient(app) as desktop, TestClient(app) as phone:
        reference, check_code = show_code(desktop)
        assert 'data-qr-outcome="waiting"' in poll(desktop).text
        register(phone)  # signed in on the phone
        asked = phone.get(f"/account/qr/confirm/{reference}")
        assert asked.status_code == 200 and f"data-check-code>{check_code}<" in asked.text
        done = phone.post(
            f"/account/qr/confirm/{reference}",
            data={"decision": "allow", "csrf_token": csrf(phone)},
        )
        assert done.status_code == 200 and "请回到电脑继续" in done.text
        signed = poll(desktop)
        assert signed.status_code == 200 and signed.headers["HX-Redirect"] == "/account"
        account = desktop.get("/account", follow_redirects=False)
        assert account.status_code == 200 and "王芳" in account.text
        again = poll(desktop)  # once only
        assert again.status_code == 286 and 'data-qr-outcome="expired"' in again.text


def test_the_qr_code_alone_opens_nothing(app: FastAPI, session: Session, vault: Vault) -> None:
    """Someone who photographs the code but is not the computer that holds the poll cookie gets
    no session, even after the owner confirms."""
    make_person(session, vault, name="王芳", id_number=ID)
    with TestClient(app) as desktop, TestClient(app) as phone, TestClient(app) as stranger:
        reference, _ = show_code(desktop)
        register(phone)
        phone.post(
            f"/account/qr/confirm/{reference}",
            data={"decision": "allow", "csrf_token": csrf(phone)},
        )
        stolen = poll(stranger)
        assert stolen.status_code == 286 and "HX-Redirect" not in stolen.headers
        assert stranger.get("/account", follow_redirects=False).status_code == 303


def test_refused_and_expired_requests(app: FastAPI, session: Session, vault: Vault) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    with TestClient(app) as desktop, TestClient(app) as phone:
        reference, _ = show_code(desktop)
        register(phone)
        phone.post(
            f"/account/qr/confirm/{reference}",
            data={"decision": "deny", "csrf_token": csrf(phone)},
        )
        refused = poll(desktop)
        assert refused.status_code == 286 and 'data-qr-outcome="refused"' in refused.text
        assert desktop.get("/account", follow_redirects=False).status_code == 303
        late, _ = show_code(desktop)
        session.execute(
            update(CrossDeviceSignIn).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        page = phone.get(f"/account/qr/confirm/{late}")
        assert page.status_code == 400 and "二维码已过期" in page.text
        assert 'data-qr-outcome="expired"' in poll(desktop).text


def test_a_phone_not_signed_in_is_sent_to_sign_in_first(app: FastAPI) -> None:
    with TestClient(app) as desktop, TestClient(app) as phone:
        reference, _ = show_code(desktop)
        answer = phone.get(f"/account/qr/confirm/{reference}", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/account/sign-in?next=")
        assert reference in answer.headers["location"]


def test_without_scripts_the_button_asks_and_the_page_answers(
    app: FastAPI, session: Session, vault: Vault
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    with TestClient(app) as desktop:
        show_code(desktop)
        page = desktop.post(
            "/account/qr/status", data={"csrf_token": csrf(desktop), "next": "/account"}
        )
        assert page.status_code == 200 and 'data-qr-outcome="waiting"' in page.text


def test_requests_long_over_are_cleared_away(session: Session) -> None:
    from qilu.identity import cross_device

    old = cross_device.start(
        session, client_address=None, user_agent=None, now=datetime.now(UTC) - timedelta(days=2)
    )
    cross_device.start(session, client_address=None, user_agent=None)
    rows = session.scalars(select(CrossDeviceSignIn.check_code)).all()
    assert len(rows) == 1 and cross_device.poll(session, old.poll).outcome == "expired"
