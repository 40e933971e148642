"""A real relying party, written with Authlib's client, against a running Qilu.

The example department system (examples/department_system.py) runs in-process; Qilu runs as
`qilu serve` in its own process; an httpx client with its own cookie jar plays the browser.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.identity.accounts import register_resident
from qilu.identity.models import Account, Person, StaffMember
from qilu.identity.oidc_clients import Integration, register_client, register_service_client
from qilu.identity.roles import OPERATOR
from qilu.identity.service import id_number_of
from qilu.pii import load_vault

from ..browser import LiveServer
from ..servers import serving

RP = "http://127.0.0.1:8001"
PASSWORD = "Interop-Pass-2026"


def _example_app() -> Any:
    path = Path(__file__).parents[2] / "examples" / "department_system.py"
    spec = importlib.util.spec_from_file_location("department_system", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["department_system"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def resident(live_server: LiveServer) -> tuple[str, str]:
    settings = live_server.settings
    vault = load_vault(settings)
    with Session(make_engine(settings)) as session, session.begin():
        person = session.scalars(
            select(Person)
            .where(
                Person.birth_date < date(1995, 1, 1),
                Person.id.not_in(select(Account.person_id)),
                Person.id.not_in(select(StaffMember.person_id)),  # staff must set up TOTP first
            )
            .order_by(Person.id.desc())
            .offset(7)
            .limit(1)
        ).one()
        number = id_number_of(vault, person)
        register_resident(
            session,
            vault,
            name=person.name,
            id_number=number,
            password=PASSWORD,
            profile="standard",
        )
        return person.name, number


def _client(live_server: LiveServer, public: bool) -> tuple[str, str | None]:
    with Session(make_engine(live_server.settings)) as session, session.begin():
        new = register_client(
            session,
            name="示例部门系统",
            redirect_uris=[f"{RP}/callback"],
            public=public,
            post_logout_redirect_uris=[f"{RP}/"],
            actor=OPERATOR,
        )
        return new.client.client_id, new.secret


def _sign_in_and_consent(browser: httpx.Client, authorize_url: str, id_number: str) -> str:
    """Play the person at Qilu: sign in, agree; return where Qilu sends the browser back."""
    response = browser.get(authorize_url)
    if response.status_code == 303:  # not signed in yet
        browser.get(response.headers["location"])
        sign_in_next = urlsplit(response.headers["location"]).query.split("next=", 1)[1]
        from urllib.parse import unquote

        signed = browser.post(
            "/account/sign-in",
            data={
                "id_number": id_number,
                "password": PASSWORD,
                "next": unquote(sign_in_next),
                "csrf_token": browser.cookies["qilu_csrf"],
            },
        )
        assert signed.status_code == 303, signed.text
        response = browser.get(signed.headers["location"])
    assert response.status_code == 200 and "授权登录" in response.text
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', response.text)
    )
    fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
    agreed = browser.post("/oidc/authorize", data={**fields, "decision": "allow"})
    assert agreed.status_code == 302, agreed.text
    return agreed.headers["location"]


def test_the_example_department_system_signs_in_through_qilu(
    live_server: LiveServer, resident: tuple[str, str]
) -> None:
    name, number = resident
    client_id, secret = _client(live_server, public=False)
    app = _example_app().create_app(live_server.base, client_id, secret, RP)
    with TestClient(app, base_url=RP) as rp, httpx.Client(base_url=live_server.base) as browser:
        start = rp.get("/login", follow_redirects=False)
        assert start.status_code in (302, 307)
        back = _sign_in_and_consent(browser, start.headers["location"], number)
        assert back.startswith(f"{RP}/callback?")
        done = rp.get(back.removeprefix(RP), follow_redirects=False)
        assert done.status_code == 303, done.text
        page = rp.get("/")
        assert f"您好，{name}" in page.text and "认证等级 3" in page.text
        bye = rp.get("/logout", follow_redirects=False)
        qilu_logout = browser.get(bye.headers["location"])
        assert qilu_logout.headers["location"] == f"{RP}/"
        assert browser.get("/account").status_code == 303  # signed out at Qilu too


def test_authlib_client_code_flow_refresh_and_userinfo(
    live_server: LiveServer, resident: tuple[str, str]
) -> None:
    _, number = resident
    client_id, _ = _client(live_server, public=True)
    metadata = httpx.get(f"{live_server.base}/.well-known/openid-configuration").json()
    verifier = "v" * 20 + "-interop-verifier-0123456789"
    with OAuth2Client(
        client_id,
        redirect_uri=f"{RP}/callback",
        scope="openid profile",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as rp:
        url, _ = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce="interop"
        )
        assert "code_challenge=" + create_s256_code_challenge(verifier) in url
        with httpx.Client(base_url=live_server.base) as browser:
            back = _sign_in_and_consent(browser, url, number)
        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=back, code_verifier=verifier
        )
        assert {"access_token", "refresh_token", "id_token"} <= set(token)
        from joserfc import jwt
        from joserfc.jwk import KeySet

        keys = KeySet.import_key_set(httpx.get(metadata["jwks_uri"]).json())
        claims = jwt.decode(token["id_token"], keys).claims
        assert claims["iss"] == metadata["issuer"] and claims["nonce"] == "interop"
        info = rp.get(metadata["userinfo_endpoint"]).json()
        assert info["sub"] == claims["sub"]
        old_refresh = token["refresh_token"]
        renewed = rp.refresh_token(metadata["token_endpoint"], refresh_token=old_refresh)
        assert renewed["refresh_token"] != old_refresh
        assert rp.get(metadata["userinfo_endpoint"]).status_code == 200


def _example_api() -> Any:
    path = Path(__file__).parents[2] / "examples" / "department_api.py"
    spec = importlib.util.spec_from_file_location("department_api", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["department_api"] = module
    spec.loader.exec_module(module)
    return module


def test_two_example_systems_signed_in_at_once_are_signed_out_together(
    live_server: LiveServer, resident: tuple[str, str]
) -> None:
    """Back-Channel Logout 1.0: signing out at Qilu ends the person's session at every system
    that registered a logout URI, delivered after commit by the outbox of `qilu serve`."""
    _, number = resident
    example = _example_app()
    with ExitStack() as stack:
        systems = []
        for name in ("社保系统", "公积金系统"):
            holder: dict[str, Any] = {}

            async def app(
                scope: Any, receive: Any, send: Any, holder: dict[str, Any] = holder
            ) -> None:
                await holder["app"](scope, receive, send)

            base = stack.enter_context(serving(app))
            with Session(make_engine(live_server.settings)) as session, session.begin():
                new = register_client(
                    session,
                    name=name,
                    redirect_uris=[f"{base}/callback"],
                    public=False,
                    post_logout_redirect_uris=[f"{base}/"],
                    integration=Integration(backchannel_logout_uri=f"{base}/backchannel-logout"),
                    actor=OPERATOR,
                )
                client_id, secret = new.client.client_id, new.secret
            holder["app"] = example.create_app(live_server.base, client_id, secret, base)
            systems.append((base, stack.enter_context(httpx.Client(base_url=base))))
        browser = stack.enter_context(httpx.Client(base_url=live_server.base))
        for base, rp in systems:
            start = rp.get("/login")
            back = _sign_in_and_consent(browser, start.headers["location"], number)
            assert rp.get(back.removeprefix(base)).status_code == 303
            assert "data-user" in rp.get("/").text
        signed_out = browser.post(
            "/account/sign-out", data={"csrf_token": browser.cookies["qilu_csrf"]}
        )
        assert signed_out.status_code == 303
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all("data-user" not in rp.get("/").text for _, rp in systems):
                break
            time.sleep(0.2)
        assert all("用齐鲁账号登录" in rp.get("/").text for _, rp in systems)


def test_the_example_department_api_checks_tokens_both_ways(
    live_server: LiveServer, resident: tuple[str, str]
) -> None:
    """examples/department_api.py: introspection (RFC 7662) with the API's own credentials,
    and offline verification of JWT access tokens (RFC 9068)."""
    _, number = resident
    with Session(make_engine(live_server.settings)) as session, session.begin():
        opaque = register_client(
            session,
            name="不动产登记系统",
            redirect_uris=[f"{RP}/callback"],
            public=True,
            actor=OPERATOR,
        )
        signed = register_client(
            session,
            name="住房公积金系统",
            redirect_uris=[f"{RP}/callback"],
            public=True,
            integration=Integration(jwt_access_tokens=True),
            actor=OPERATOR,
        )
        api = register_service_client(
            session, name="不动产登记接口", department_code="370000-bigdata", actor=OPERATOR
        )
        ids = opaque.client.client_id, signed.client.client_id
        api_id, api_secret = api.client.client_id, api.secret
    tokens = [_person_token(live_server, client_id, number) for client_id in ids]
    module = _example_api()
    by_introspection = module.create_app(
        live_server.base, verify="introspection", client_id=api_id, client_secret=api_secret
    )
    offline = module.create_app(live_server.base, verify="jwt", audience=ids[1])
    with TestClient(by_introspection) as first, TestClient(offline) as second:
        for api_client, token in ((first, tokens[0]), (second, tokens[1])):
            answer = api_client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["sub"]
            refused = api_client.get("/api/me", headers={"Authorization": "Bearer forged"})
            assert refused.status_code == 401
        httpx.post(
            f"{live_server.base}/oidc/revoke", data={"token": tokens[0], "client_id": ids[0]}
        )
        revoked = first.get("/api/me", headers={"Authorization": f"Bearer {tokens[0]}"})
        assert revoked.status_code == 401


def _person_token(live_server: LiveServer, client_id: str, number: str) -> str:
    metadata = httpx.get(f"{live_server.base}/.well-known/openid-configuration").json()
    verifier = "v" * 20 + "-api-example-verifier-0123456789"
    with OAuth2Client(
        client_id,
        redirect_uri=f"{RP}/callback",
        scope="openid profile",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as rp:
        url, _ = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier
        )
        with httpx.Client(base_url=live_server.base) as browser:
            back = _sign_in_and_consent(browser, url, number)
        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=back, code_verifier=verifier
        )
        return str(token["access_token"])
