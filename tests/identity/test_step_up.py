"""Re-authentication for sensitive actions and step-up to level 4: pages, authorize, the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.identity.models import LegalEntity, Person, WebSession
from qilu.identity.oidc_clients import NewClient
from qilu.pii import Vault

from ..factories import make_account, make_entity, make_person
from .test_oidc import REDIRECT, authorize, consent, exchange, pkce, public_client, request_params
from .test_pages import PASSWORD, csrf, register

__all__ = ["public_client"]  # a fixture used here
SUCCESSOR_ID = "370102199003073516"


def age_sessions(session: Session, by: timedelta) -> None:
    session.execute(update(WebSession).values(authenticated_at=datetime.now(UTC) - by))


def enable_totp(client: TestClient, password: str = PASSWORD) -> pyotp.TOTP:
    page = client.get("/account/two-factor/setup")
    secret = re.search(r"data-totp-secret>([A-Z2-7]+)<", page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    form = {"code": totp.now(), "password": password, "csrf_token": csrf(client)}
    client.post("/account/two-factor/setup", data=form)
    return totp


def test_a_factor_enrolled_in_a_session_counts_only_with_the_password(
    client: TestClient, company: LegalEntity, session: Session
) -> None:
    """Found: a level-3 session enrolled its own TOTP with a wrong password and reached acr 4."""
    page = f"/account/enterprises/{company.uscc}/representative"
    enable_totp(client, password="not-the-password")
    held = session.scalars(select(WebSession)).all()
    assert [s.assurance for s in held] == [3]
    assert not held[0].account.has_second_factor
    assert client.get(page).url.path == "/account/confirm"  # still not level 4
    failures = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "auth.login_failed")
    ).all()
    assert failures  # the wrong password counts toward the lockout
    enable_totp(client)
    assert held[0].account.has_second_factor and held[0].assurance == 4
    assert client.get(page).url.path == page


@pytest.fixture
def company(
    session: Session, vault: Vault, client: TestClient, public_client: NewClient
) -> LegalEntity:
    register(client)  # 王芳, whom the client fixture put in the register
    boss = session.scalars(select(Person).where(Person.name == "王芳")).one()
    make_account(session, vault, make_person(session, vault, name="李强", id_number=SUCCESSOR_ID))
    return make_entity(session, boss)


def test_an_old_sign_in_must_confirm_before_authorising_an_agent(
    client: TestClient, company: LegalEntity, session: Session
) -> None:
    age_sessions(session, timedelta(minutes=30))
    agents = f"/account/enterprises/{company.uscc}/agents"
    form = {
        "agent_name": "李强",
        "agent_id_number": SUCCESSOR_ID,
        "valid_until": (datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
        "scopes": "apply",
        "csrf_token": csrf(client),
    }
    sent = client.post(agents, data=form, headers={"referer": f"http://testserver{agents}"})
    assert sent.url.path == "/account/confirm" and "再次输入密码" in sent.text
    assert parse_qs(sent.url.query.decode()) == {"level": ["3"], "next": [agents]}
    wrong = client.post(
        "/account/confirm",
        data={"password": "not-it", "next": agents, "level": "3", "csrf_token": csrf(client)},
    )
    assert wrong.status_code == 403 and "密码不正确" in wrong.text
    right = client.post(
        "/account/confirm",
        follow_redirects=False,
        data={"password": PASSWORD, "next": agents, "level": "3", "csrf_token": csrf(client)},
    )
    assert right.status_code == 303 and right.headers["location"] == agents
    assert client.post(agents, data=form).url.path == agents  # now it goes through
    actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[-3:] == ["auth.login_failed", "auth.reconfirmed", "agent.authorised"]


def test_confirming_only_returns_to_this_site(client: TestClient, company: LegalEntity) -> None:
    done = client.post(
        "/account/confirm",
        follow_redirects=False,
        data={"password": PASSWORD, "next": "//evil.example/x", "csrf_token": csrf(client)},
    )
    assert done.headers["location"] == "/account"


def test_changing_the_representative_steps_up_to_a_second_factor(
    client: TestClient, company: LegalEntity, session: Session
) -> None:
    page = f"/account/enterprises/{company.uscc}/representative"
    asked = client.get(page)  # level 3 only: a second factor must be set up first
    assert asked.url.path == "/account/confirm" and "data-needs-second-factor" in asked.text
    setup = client.get(str(asked.url.path), params={"level": 4, "next": page})
    link = re.search(r'href="(/account/two-factor/setup\?next=[^"]+)"', setup.text)
    assert link
    totp = enable_totp(client)  # (the link's page is this setup page)
    assert client.get(page).url.path == page  # the setup itself was a level-4 authentication
    age_sessions(session, timedelta(minutes=11))
    again = client.get(page)
    assert again.url.path == "/account/confirm" and 'name="code"' in again.text
    passed = client.post(
        "/account/confirm",
        data={
            "password": PASSWORD,
            "code": totp.at(datetime.now(UTC) + timedelta(seconds=30)),  # now's was used
            "next": page,
            "level": "4",
            "csrf_token": csrf(client),
        },
    )
    assert passed.url.path == page
    done = client.post(
        page, data={"name": "李强", "id_number": SUCCESSOR_ID, "csrf_token": csrf(client)}
    )
    assert "data-representative-changed" in done.text
    assert company.legal_representative.name == "李强"


def test_level_five_cannot_be_reached_online(client: TestClient, company: LegalEntity) -> None:
    page = client.get("/account/confirm", params={"level": 5, "next": "/account"})
    assert "data-unreachable" in page.text and "<form" not in page.text.split("<main")[-1]


# --- authorize: prompt, max_age, acr_values ---------------------------------------------------


def redirected_error(response: object) -> dict[str, list[str]]:
    location = response.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def test_prompt_none_without_a_session_tells_the_client(
    client: TestClient, public_client: NewClient
) -> None:
    _, challenge = pkce()
    response = authorize(client, public_client.client.client_id, challenge, prompt="none")
    assert redirected_error(response)["error"] == ["login_required"]


@pytest.mark.parametrize(
    ("extra", "level"), [({"prompt": "login"}, "3"), ({"max_age": "60"}, "3"), ({}, None)]
)
def test_prompt_login_and_max_age_ask_for_a_fresh_sign_in(
    client: TestClient,
    public_client: NewClient,
    session: Session,
    extra: dict[str, str],
    level: str | None,
) -> None:
    register(client)
    age_sessions(session, timedelta(minutes=5))
    _, challenge = pkce()
    response = authorize(client, public_client.client.client_id, challenge, **extra)
    if level is None:
        assert response.status_code == 200 and "授权登录" in response.text
        return
    target = urlsplit(response.headers["location"])
    assert target.path == "/account/confirm" and parse_qs(target.query)["level"] == [level]
    back = parse_qs(target.query)["next"][0]
    assert "prompt" not in back and "max_age" not in back and "code_challenge" in back
    if "max_age" in extra:  # a client that asks for no interaction hears why it cannot be
        none = authorize(client, public_client.client.client_id, challenge, prompt="none", **extra)
        assert redirected_error(none)["error"] == ["interaction_required"]


def test_acr_values_4_steps_up_and_the_tokens_say_so(
    client: TestClient, public_client: NewClient
) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    register(client)
    client_id = public_client.client.client_id
    verifier, challenge = pkce()
    asked = authorize(client, client_id, challenge, acr_values="4")
    target = urlsplit(asked.headers["location"])
    assert target.path == "/account/confirm" and parse_qs(target.query)["level"] == ["4"]
    enable_totp(client)
    page = authorize(client, client_id, challenge, acr_values="4")
    assert page.status_code == 200
    code = consent(client, request_params(client_id, challenge, acr_values="4"))
    tokens = exchange(client, client_id, code, verifier).json()
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert claims["acr"] == "4" and claims["amr"] == ["pwd", "otp"] and "auth_time" in claims


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"acr_values": "5"}, "unmet_authentication_requirements"),
        ({"acr_values": "high"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
    ],
)
def test_impossible_or_malformed_demands_are_refused(
    client: TestClient, public_client: NewClient, extra: dict[str, str], error: str
) -> None:
    register(client)
    _, challenge = pkce()
    response = authorize(client, public_client.client.client_id, challenge, **extra)
    assert redirected_error(response)["error"] == [error]


# --- the API: RFC 9470 challenge; revocation ---------------------------------------------------


def tokens_for(client: TestClient, client_id: str, scope: str, **extra: str) -> dict[str, str]:
    verifier, challenge = pkce()
    authorize(client, client_id, challenge, scope=scope, **extra)
    code = consent(client, request_params(client_id, challenge, scope=scope, **extra))
    response = exchange(client, client_id, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def change_by_api(client: TestClient, uscc: str, access_token: str):  # type: ignore[no-untyped-def]
    return client.put(
        f"/api/v1/enterprises/{uscc}/legal-representative",
        json={"name": "李强", "id_number": SUCCESSOR_ID},
        headers={"Authorization": f"Bearer {access_token}"},
    )


def test_the_api_answers_a_weak_token_with_a_step_up_challenge(
    client: TestClient, public_client: NewClient, company: LegalEntity
) -> None:
    client_id = public_client.client.client_id
    weak = tokens_for(client, client_id, "openid enterprise")
    refused = change_by_api(client, company.uscc, weak["access_token"])
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "auth.step_up"
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge and 'acr_values="4"' in challenge
    no_scope = tokens_for(client, client_id, "openid profile")
    scoped = change_by_api(client, company.uscc, no_scope["access_token"])
    assert (
        scoped.status_code == 403
        and 'error="insufficient_scope"' in scoped.headers["www-authenticate"]
    )
    enable_totp(client)
    strong = tokens_for(client, client_id, "openid enterprise", acr_values="4")
    done = change_by_api(client, company.uscc, strong["access_token"])
    assert done.status_code == 200 and done.json()["legal_representative"] == "李强"
    again = change_by_api(client, company.uscc, strong["access_token"])
    assert again.status_code == 403  # no longer the representative
    forged = change_by_api(client, company.uscc, "forged")
    assert (
        forged.status_code == 401 and 'error="invalid_token"' in forged.headers["www-authenticate"]
    )


def test_revoking_tokens(client: TestClient, public_client: NewClient, session: Session) -> None:
    register(client)
    client_id = public_client.client.client_id
    tokens = tokens_for(client, client_id, "openid profile")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 200
    revoked = client.post(
        "/oidc/revoke", data={"token": tokens["access_token"], "client_id": client_id}
    )
    assert revoked.status_code == 200
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 401
    refresh = {"grant_type": "refresh_token", "client_id": client_id}
    client.post(
        "/oidc/revoke",
        data={
            "token": tokens["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": client_id,
        },
    )
    after = client.post("/oidc/token", data={**refresh, "refresh_token": tokens["refresh_token"]})
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    kinds = [
        e.details["kind"]
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "oidc.token_revoked")
        )
    ]
    assert kinds == ["access", "refresh"]
    unknown = client.post("/oidc/revoke", data={"token": "nothing", "client_id": client_id})
    assert unknown.status_code == 200  # RFC 7009 §2.2: an unknown token is not an error
