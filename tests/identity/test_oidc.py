"""The OIDC provider through its HTTP endpoints, as a relying party sees it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.identity.oidc_clients import NewClient, register_client
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault

from ..factories import make_person
from .test_pages import ID, csrf, register

REDIRECT = "http://127.0.0.1:9000/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


@pytest.fixture
def public_client(session: Session, vault: Vault) -> NewClient:
    make_person(session, vault, name="王芳", id_number=ID)
    return register_client(
        session,
        name="济南市社保系统",
        redirect_uris=[REDIRECT],
        public=True,
        post_logout_redirect_uris=["http://127.0.0.1:9000/bye"],
        actor=OPERATOR,
    )


def request_params(client_id: str, challenge: str | None, **extra: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "s1",
        "nonce": "n1",
        **extra,
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params


def authorize(client: TestClient, client_id: str, challenge: str | None, **extra: str):  # type: ignore[no-untyped-def]
    params = request_params(client_id, challenge, **extra)
    return client.get("/oidc/authorize", params=params, follow_redirects=False)


def consent(client: TestClient, page_params: dict[str, str]) -> str:
    response = client.post(
        "/oidc/authorize",
        follow_redirects=False,
        data={**page_params, "decision": "allow", "csrf_token": csrf(client)},
    )
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def code_for(client: TestClient, client_id: str, challenge: str) -> str:
    page = authorize(client, client_id, challenge)
    assert page.status_code == 200 and "济南市社保系统" in page.text
    return consent(client, request_params(client_id, challenge))


def exchange(client: TestClient, client_id: str, code: str, verifier: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )


def test_discovery_names_every_endpoint(client: TestClient) -> None:
    document = client.get("/.well-known/openid-configuration").json()
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
    ):
        path = urlsplit(document[key]).path
        assert client.options(path).status_code != 404 or key == "jwks_uri"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["subject_types_supported"] == ["pairwise"]


def test_code_flow_with_pkce(
    client: TestClient, public_client: NewClient, session: Session
) -> None:
    register(client)
    client_id = public_client.client.client_id
    verifier, challenge = pkce()
    code = code_for(client, client_id, challenge)
    response = exchange(client, client_id, code, verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert response.headers["cache-control"] == "no-store"
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert claims["aud"] == [client_id] and claims["nonce"] == "n1" and claims["acr"] == "3"
    assert claims["name"] == "王芳" and ID not in str(claims) and len(claims["sub"]) == 40
    info = client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"oidc.consent_given", "oidc.token_issued"} <= actions


def test_sub_is_pairwise_per_sector(
    client: TestClient, public_client: NewClient, session: Session, vault: Vault
) -> None:
    from qilu.identity.oidc_provider import pairwise_sub

    other = register_client(
        session, name="另一系统", redirect_uris=[REDIRECT], public=True, actor=OPERATOR
    )
    assert pairwise_sub(vault, public_client.client.sector, 1) != pairwise_sub(
        vault, other.client.sector, 1
    )
    assert pairwise_sub(vault, "s", 1) == pairwise_sub(vault, "s", 1)


def test_refresh_rotates_and_reuse_revokes_the_family(
    client: TestClient, public_client: NewClient, session: Session
) -> None:
    register(client)
    client_id = public_client.client.client_id
    verifier, challenge = pkce()
    tokens = exchange(client, client_id, code_for(client, client_id, challenge), verifier).json()
    refreshed = client.post(
        "/oidc/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    newer = refreshed.json()
    assert newer["refresh_token"] != tokens["refresh_token"]
    reused = client.post(
        "/oidc/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    after = client.post(
        "/oidc/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "refresh_token": newer["refresh_token"],
        },
    )
    assert after.status_code == 400  # the whole family is revoked
    info = client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {newer['access_token']}"}
    )
    assert info.status_code == 401
    assert "oidc.refresh_reused" in set(session.scalars(select(AuditEvent.action)))


def test_a_code_used_twice_is_refused_and_revokes_its_tokens(
    client: TestClient, public_client: NewClient
) -> None:
    register(client)
    client_id = public_client.client.client_id
    verifier, challenge = pkce()
    code = code_for(client, client_id, challenge)
    first = exchange(client, client_id, code, verifier).json()
    second = exchange(client, client_id, code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    info = client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert info.status_code == 401


def test_wrong_or_missing_pkce_verifier_is_refused(
    client: TestClient, public_client: NewClient
) -> None:
    register(client)
    client_id = public_client.client.client_id
    _, challenge = pkce()
    code = code_for(client, client_id, challenge)
    wrong = exchange(client, client_id, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    missing = client.post(
        "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
        },
    )
    assert missing.status_code == 400


def test_public_clients_must_send_a_challenge(client: TestClient, public_client: NewClient) -> None:
    register(client)
    response = authorize(client, public_client.client.client_id, None)
    assert response.status_code == 302
    assert "error=invalid_request" in response.headers["location"]


def test_a_redirect_uri_one_character_off_is_refused_without_redirecting(
    client: TestClient, public_client: NewClient
) -> None:
    register(client)
    _, challenge = pkce()
    response = authorize(
        client, public_client.client.client_id, challenge, redirect_uri=REDIRECT + "x"
    )
    assert response.status_code == 400 and "location" not in response.headers
    assert "接入请求无效" in response.text


def test_authorize_sends_strangers_to_sign_in_first(
    client: TestClient, public_client: NewClient
) -> None:
    _, challenge = pkce()
    response = authorize(client, public_client.client.client_id, challenge)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/account/sign-in?next=%2Foidc%2Fauthorize")


def test_refusing_consent_tells_the_client(client: TestClient, public_client: NewClient) -> None:
    register(client)
    client_id = public_client.client.client_id
    _, challenge = pkce()
    params = request_params(client_id, challenge, scope="openid")
    response = client.post(
        "/oidc/authorize",
        follow_redirects=False,
        data={**params, "decision": "deny", "csrf_token": csrf(client)},
    )
    assert "error=access_denied" in response.headers["location"]


def test_rp_initiated_logout(client: TestClient, public_client: NewClient) -> None:
    register(client)
    client_id = public_client.client.client_id
    verifier, challenge = pkce()
    tokens = exchange(client, client_id, code_for(client, client_id, challenge), verifier).json()
    bye = client.get(
        "/oidc/logout",
        follow_redirects=False,
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "http://127.0.0.1:9000/bye",
            "state": "z",
        },
    )
    assert bye.headers["location"] == "http://127.0.0.1:9000/bye?state=z"
    assert client.get("/account", follow_redirects=False).status_code == 303
    elsewhere = client.get(
        "/oidc/logout",
        follow_redirects=False,
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.example/",
        },
    )
    assert elsewhere.headers["location"] == "/"


def test_a_confidential_client_with_a_wrong_secret_is_refused(
    client: TestClient, session: Session, vault: Vault
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    confidential = register_client(
        session, name="济南市社保系统", redirect_uris=[REDIRECT], public=False, actor=OPERATOR
    )
    register(client)
    client_id = confidential.client.client_id
    verifier, challenge = pkce()
    code = code_for(client, client_id, challenge)
    wrong = client.post(
        "/oidc/token",
        auth=(client_id, "not-the-secret"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    right = client.post(
        "/oidc/token",
        auth=(client_id, confidential.secret or ""),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert right.status_code == 200, right.text


def test_the_enterprise_acted_for_is_a_claim(
    client: TestClient, public_client: NewClient, session: Session
) -> None:
    from qilu.identity.models import Person

    from ..factories import make_entity

    register(client)
    person = session.scalars(select(Person).where(Person.name == "王芳")).one()
    entity = make_entity(session, person, name="济南鑫华商贸有限公司")
    switched = client.post(
        "/account/enterprises/act-as",
        follow_redirects=False,
        data={"uscc": entity.uscc, "csrf_token": csrf(client)},
    )
    assert switched.status_code == 303
    client_id = public_client.client.client_id
    verifier, challenge = pkce()
    tokens = exchange(client, client_id, code_for(client, client_id, challenge), verifier).json()
    info = client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.json()["identity_type"] == "enterprise"
    assert info.json()["enterprise"] == {"uscc": entity.uscc, "name": "济南鑫华商贸有限公司"}
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json())
    assert jwt.decode(tokens["id_token"], keys).claims["enterprise"]["uscc"] == entity.uscc
