"""Signing in through an upstream provider, with a second Qilu instance (`qilu serve` in its own
process, its own register) as the upstream, as the national platform would be."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.db import make_engine
from qilu.identity.models import Account, Person
from qilu.identity.oidc_clients import Integration, register_client
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault
from qilu.routes import get_reader, get_session
from qilu.settings import Settings
from qilu.web import create_app

from ..browser import LiveServer
from ..factories import make_person
from . import test_oidc_interop as interop

resident = interop.resident  # registered at the upstream (a fixture of the interop module)


@pytest.fixture
def downstream(
    live_server: LiveServer, settings: Settings, session: Session
) -> Iterator[tuple[FastAPI, str]]:
    """This Qilu, registered as a client of the upstream one, allowed the ID number."""
    with Session(make_engine(live_server.settings)) as upstream_db, upstream_db.begin():
        new = register_client(
            upstream_db,
            name="山东省一体化平台",
            public=False,
            actor=OPERATOR,
            redirect_uris=[f"{settings.issuer}/account/federated/callback"],
            integration=Integration(allowed_scopes=("id_number",)),
        )
        client_id, secret = new.client.client_id, new.secret
    configured = settings.model_copy(
        update={
            "upstream_issuer": live_server.base,
            "upstream_client_id": client_id,
            "upstream_client_secret": SecretStr(secret or ""),
            "upstream_name": "国家政务服务平台",
        }
    )
    app = create_app(configured)

    def test_session() -> Iterator[Session]:
        yield session

    app.dependency_overrides[get_session] = test_session
    app.dependency_overrides[get_reader] = test_session
    yield app, client_id


def go_upstream(client: TestClient, number: str) -> str:
    """Follow the sign-in button to the upstream, sign in and agree there; return our callback."""
    page = client.get("/account/sign-in")
    assert "使用国家政务服务平台账号登录" in page.text
    departure = client.get("/account/federated?next=/account", follow_redirects=False)
    assert departure.status_code == 303
    with httpx.Client(
        base_url=str(httpx.URL(departure.headers["location"]).copy_with(path="/", query=None))
    ) as browser:
        back = interop._sign_in_and_consent(browser, departure.headers["location"], number)
    return back


def test_a_resident_signs_in_through_the_upstream(
    downstream: tuple[FastAPI, str],
    resident: tuple[str, str],
    session: Session,
    vault: Vault,
    live_server: LiveServer,
) -> None:
    app, _ = downstream
    name, number = resident
    make_person(session, vault, name=name, id_number=number)  # in this province's register too
    with TestClient(app) as client:
        back = go_upstream(client, number)
        query = parse_qs(urlsplit(back).query)
        assert query["iss"] == [live_server.base]  # RFC 9207 from the upstream
        done = client.get(urlsplit(back).path + "?" + urlsplit(back).query, follow_redirects=False)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/account"
        account = client.get("/account")
        assert account.status_code == 200 and name in account.text
        assert 'data-fact="assurance">3 级' in account.text  # what the upstream asserted
    person = session.scalars(select(Person).where(Person.name == name)).one()
    opened = session.scalars(select(Account).where(Account.person_id == person.id)).one()
    assert opened.password_hash == "!federated"
    assert "auth.federated_login" in set(session.scalars(select(AuditEvent.action)))


def test_someone_not_in_this_register_is_refused(
    downstream: tuple[FastAPI, str], resident: tuple[str, str], session: Session
) -> None:
    app, _ = downstream
    _, number = resident
    with TestClient(app) as client:
        back = go_upstream(client, number)
        refused = client.get(urlsplit(back).path + "?" + urlsplit(back).query)
        assert refused.status_code == 400 and "人口库中没有与您身份一致的记录" in refused.text
        assert client.get("/account", follow_redirects=False).status_code == 303


def test_an_answer_for_another_browser_or_a_forged_issuer_is_refused(
    downstream: tuple[FastAPI, str], resident: tuple[str, str], session: Session, vault: Vault
) -> None:
    app, _ = downstream
    name, number = resident
    make_person(session, vault, name=name, id_number=number)
    with TestClient(app) as client, TestClient(app) as other:
        back = go_upstream(client, number)
        path = urlsplit(back).path + "?" + urlsplit(back).query
        stolen = other.get(path)  # no state cookie: a login CSRF, or a stolen code
        assert stolen.status_code == 400 and "另一个浏览器" in stolen.text
        forged = client.get(path.replace("iss=", "iss=https%3A%2F%2Fevil.example&x="))
        assert forged.status_code == 400 and "不是来自登记的身份提供方" in forged.text
        denied = client.get("/account/federated/callback?error=access_denied&state=x")
        assert denied.status_code == 400 and "拒绝了授权" in denied.text


def test_without_an_upstream_the_way_is_closed(client: TestClient) -> None:
    assert "data-upstream" not in client.get("/account/sign-in").text
    closed = client.get("/account/federated")
    assert closed.status_code == 404 and "未接入上级统一身份认证" in closed.text
