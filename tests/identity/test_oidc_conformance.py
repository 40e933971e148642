"""What a department system integrating with the provider relies on, each against the clause of
the spec it comes from (issue 12: the breaks found by relying parties written with `oic` and
Authlib, and what a provincial SSO is expected to offer)."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.identity.models import Account, OidcToken
from qilu.identity.oidc_clients import Integration, NewClient, register_client
from qilu.identity.roles import OPERATOR
from qilu.outbox.models import OutboxEffect
from qilu.pii import Vault
from qilu.settings import Settings

from ..factories import make_account, make_person
from .test_oidc import REDIRECT, authorize, consent, exchange, pkce, request_params
from .test_pages import ID, csrf, register

OTHER_ID = "370102199001011231"


def resident_and_system(session: Session, vault: Vault, name: str, *, public: bool) -> NewClient:
    """王芳 in the register, and a system registered with a post-logout URI that has a query."""
    make_person(session, vault, name="王芳", id_number=ID)
    return register_client(
        session,
        name=name,
        redirect_uris=[REDIRECT],
        public=public,
        post_logout_redirect_uris=["http://127.0.0.1:9000/bye?from=qilu"],
        actor=OPERATOR,
    )


@pytest.fixture
def public_client(session: Session, vault: Vault) -> NewClient:
    return resident_and_system(session, vault, "济南市社保系统", public=True)


def query_of(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)


def signed_in_tokens(client: TestClient, client_id: str, **extra: str) -> dict[str, str]:
    verifier, challenge = pkce()
    page = authorize(client, client_id, challenge, **extra)
    if page.status_code == 200:
        code = consent(client, request_params(client_id, challenge, **extra))
    else:
        code = query_of(page)["code"][0]
    tokens = exchange(client, client_id, code, verifier)
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def claims_of(client: TestClient, token: str) -> dict[str, object]:
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json())
    return dict(jwt.decode(token, keys).claims)


# --- Breaks ---


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"max_age": "abc"}, "invalid_request"),
        ({"acr_values": "gold"}, "invalid_request"),
        ({"acr_values": "5"}, "unmet_authentication_requirements"),
        ({"acr_values": "4", "prompt": "none"}, "interaction_required"),
    ],
)
def test_redirected_errors_carry_state_and_iss(
    client: TestClient,
    public_client: NewClient,
    settings: Settings,
    extra: dict[str, str],
    error: str,
) -> None:
    """RFC 6749 §4.1.2.1: `state` is REQUIRED in an error response if it was in the request;
    RFC 9207 §2: `iss` in every authorization response, errors included."""
    register(client)
    _, challenge = pkce()
    query = query_of(authorize(client, public_client.client.client_id, challenge, **extra))
    assert query["error"] == [error]
    assert query["state"] == ["s1"]
    assert query["iss"] == [settings.issuer]


def test_an_unknown_scope_is_ignored_and_offline_access_is_granted(
    client: TestClient, public_client: NewClient, session: Session
) -> None:
    """OIDC Core §3.1.2.1: scope values the server does not understand SHOULD be ignored;
    §11: offline_access asks for a refresh token that outlives the sign-in, with consent."""
    register(client)
    client_id = public_client.client.client_id
    verifier, challenge = pkce()
    extra = {"scope": "openid profile email offline_access"}
    page = authorize(client, client_id, challenge, **extra)
    assert page.status_code == 200 and 'data-scope="offline_access"' in page.text
    assert 'data-scope="email"' not in page.text
    code = consent(client, request_params(client_id, challenge, **extra))
    tokens = exchange(client, client_id, code, verifier).json()
    assert tokens["scope"] == "openid profile offline_access"
    # The offline token survives signing out at Qilu; the session's own token does not.
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    renewed = client.post(
        "/oidc/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client_id,
        },
    )
    assert renewed.status_code == 200, renewed.text


def test_prompt_none_never_shows_a_page(client: TestClient, public_client: NewClient) -> None:
    """OIDC Core §3.1.2.1: with prompt=none the server MUST NOT display any UI; without consent
    on record the answer is consent_required, and once the person agreed it is a code."""
    register(client)
    client_id = public_client.client.client_id
    _, challenge = pkce()
    first = query_of(authorize(client, client_id, challenge, prompt="none"))
    assert first["error"] == ["consent_required"] and first["state"] == ["s1"]
    signed_in_tokens(client, client_id)  # agreed once, on the consent page
    _, challenge = pkce()
    silent = query_of(authorize(client, client_id, challenge, prompt="none"))
    assert "code" in silent and silent["state"] == ["s1"]


def test_consent_is_remembered_and_not_asked_again(
    client: TestClient, public_client: NewClient
) -> None:
    register(client)
    client_id = public_client.client.client_id
    signed_in_tokens(client, client_id)
    _, challenge = pkce()
    again = authorize(client, client_id, challenge)
    assert "code" in query_of(again)
    # prompt=consent asks anyway (Core §3.1.2.1); a new scope is asked for, marked as new.
    _, challenge = pkce()
    assert authorize(client, client_id, challenge, prompt="consent").status_code == 200
    wider = authorize(client, client_id, challenge, scope="openid profile offline_access")
    assert wider.status_code == 200 and "本次新增" in wider.text


def test_an_administrator_agrees_for_a_department_system(
    client: TestClient, session: Session, vault: Vault
) -> None:
    """Administrator-granted consent (the platform's own systems): no page, even the first
    time, and prompt=none answers with a code."""
    make_person(session, vault, name="王芳", id_number=ID)
    own = register_client(
        session,
        name="爱山东",
        redirect_uris=[REDIRECT],
        public=True,
        first_party=True,
        actor=OPERATOR,
    )
    register(client)
    _, challenge = pkce()
    assert "code" in query_of(authorize(client, own.client.client_id, challenge, prompt="none"))


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://rp.example/request.jwt"}, "request_uri_not_supported"),
    ],
)
def test_request_objects_are_refused_not_ignored(
    client: TestClient, public_client: NewClient, extra: dict[str, str], error: str
) -> None:
    """OIDC Core §6.1–6.2 and §3.1.2.6: a server that does not take request objects answers
    request_not_supported / request_uri_not_supported, and says so in discovery (§6 of
    Discovery: request_uri_parameter_supported defaults to true when omitted)."""
    document = client.get("/.well-known/openid-configuration").json()
    assert document["request_parameter_supported"] is False
    assert document["request_uri_parameter_supported"] is False
    register(client)
    _, challenge = pkce()
    query = query_of(authorize(client, public_client.client.client_id, challenge, **extra))
    assert query["error"] == [error] and query["state"] == ["s1"]


@pytest.fixture
def confidential(session: Session, vault: Vault) -> NewClient:
    return resident_and_system(session, vault, "济南市公积金系统", public=False)


def confidential_tokens(client: TestClient, new: NewClient, **extra: str) -> dict[str, str]:
    client_id = new.client.client_id
    verifier, challenge = pkce()
    page = authorize(client, client_id, challenge, **extra)
    code = (
        consent(client, request_params(client_id, challenge, **extra))
        if page.status_code == 200
        else query_of(page)["code"][0]
    )
    response = client.post(
        "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(client_id, new.secret or ""),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("hint", ["access_token", "bogus_type"])
def test_revocation_finds_the_token_whatever_the_hint(
    client: TestClient, confidential: NewClient, hint: str
) -> None:
    """RFC 7009 §2.1: if the token is not found with the hint, the server MUST extend its
    search across all its token types; an unknown hint is only a hint."""
    register(client)
    tokens = confidential_tokens(client, confidential)
    auth = (confidential.client.client_id, confidential.secret or "")
    revoked = client.post(
        "/oidc/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": hint},
        auth=auth,
    )
    assert revoked.status_code == 200, revoked.text
    refresh = client.post(
        "/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=auth,
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_rp_initiated_logout_by_post_with_a_query_in_the_registered_uri(
    client: TestClient, confidential: NewClient
) -> None:
    """RP-Initiated Logout 1.0 §2: the OP MUST support GET and POST; §3: the state is added to
    the registered URI's own query, which is kept."""
    register(client)
    tokens = confidential_tokens(client, confidential)
    bye = client.post(
        "/oidc/logout",
        data={
            "id_token_hint": tokens["id_token"],
            "state": "z",
            "post_logout_redirect_uri": "http://127.0.0.1:9000/bye?from=qilu",
        },
        follow_redirects=False,
    )
    assert bye.headers["location"] == "http://127.0.0.1:9000/bye?from=qilu&state=z"
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_logout_without_a_hint_naming_the_person_asks_first(
    client: TestClient, confidential: NewClient, session: Session, vault: Vault
) -> None:
    """RP-Initiated Logout 1.0 §2: without an id_token_hint naming the signed-in person the OP
    SHOULD ask whether they want to sign out; a forged or foreign request must not end it."""
    make_person(session, vault, name="李强", id_number=OTHER_ID)
    register(client, name="李强", id_number=OTHER_ID)
    foreign_hint = confidential_tokens(client, confidential)["id_token"]
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    client.cookies.clear()
    register(client)  # 王芳 signs in on this browser
    for params in ({}, {"id_token_hint": foreign_hint}):
        page = client.get("/oidc/logout", params=params, follow_redirects=False)
        assert page.status_code == 200 and "data-logout-ask" in page.text
        assert client.get("/account", follow_redirects=False).status_code == 200  # still in
    stay = client.post(
        "/oidc/logout/confirm",
        data={"decision": "stay", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert stay.status_code == 303 and client.get("/account").status_code == 200
    leave = client.post(
        "/oidc/logout/confirm",
        data={"decision": "sign_out", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert leave.status_code == 303
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_the_issuer_comes_from_the_settings_not_the_host_header(
    client: TestClient, public_client: NewClient, settings: Settings
) -> None:
    """OIDC Discovery §3/§4.3 and Core §3.1.3.7: the issuer is one fixed URL; a request's Host
    header must not be able to rename it."""
    forged = {"Host": "evil.example"}
    document = client.get("/.well-known/openid-configuration", headers=forged).json()
    assert document["issuer"] == settings.issuer
    assert document["token_endpoint"].startswith(settings.issuer)
    register(client)
    tokens = signed_in_tokens(client, public_client.client.client_id)
    assert claims_of(client, tokens["id_token"])["iss"] == settings.issuer


# --- Consent in 我的账号 ---


def test_consents_are_listed_and_withdrawn_in_my_account(
    client: TestClient, public_client: NewClient, session: Session
) -> None:
    register(client)
    client_id = public_client.client.client_id
    tokens = signed_in_tokens(client, client_id, scope="openid profile offline_access")
    page = client.get("/account")
    assert f'data-consent="{client_id}"' in page.text and "济南市社保系统" in page.text
    assert "登录部门系统" in page.text and "oidc." not in page.text  # history in words
    withdrawn = client.post(
        "/account/consents/withdraw", data={"client_id": client_id, "csrf_token": csrf(client)}
    )
    assert withdrawn.status_code == 200 and "已撤回" in withdrawn.text
    # The offline token ends with the consent, and the next sign-in asks again.
    renewed = client.post(
        "/oidc/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client_id,
        },
    )
    assert renewed.status_code == 400
    _, challenge = pkce()
    assert authorize(client, client_id, challenge).status_code == 200
    session.commit()  # a refusal rolls back its own request only (as between real requests)
    again = client.post(
        "/account/consents/withdraw", data={"client_id": "nobody", "csrf_token": csrf(client)}
    )
    assert again.status_code == 404 and "没有对这个系统的授权" in again.text


# --- Introspection and JWT access tokens ---


def test_introspection_answers_a_department_api(
    client: TestClient, confidential: NewClient, session: Session
) -> None:
    """RFC 7662 §2.2: active with scope, client_id, sub, exp for a live token; only
    `active: false` for a revoked or unknown one; the caller must authenticate (§2.1)."""
    register(client)
    tokens = confidential_tokens(client, confidential)
    own = (confidential.client.client_id, confidential.secret or "")
    answer = client.post("/oidc/introspect", data={"token": tokens["access_token"]}, auth=own)
    body = answer.json()
    assert answer.status_code == 200 and body["active"] is True
    assert body["client_id"] == confidential.client.client_id and "profile" in body["scope"]
    assert body["sub"] == claims_of(client, tokens["id_token"])["sub"]
    assert body["exp"] > time.time() and body["token_type"] == "Bearer"
    anonymous = client.post("/oidc/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401
    client.post("/oidc/revoke", data={"token": tokens["access_token"]}, auth=own)
    after = client.post("/oidc/introspect", data={"token": tokens["access_token"]}, auth=own)
    assert after.json() == {"active": False}
    unknown = client.post("/oidc/introspect", data={"token": "nonsense"}, auth=own)
    assert unknown.json() == {"active": False}


def test_a_department_system_introspects_tokens_of_other_clients(
    client: TestClient, confidential: NewClient, session: Session, departments: None
) -> None:
    from ..factories import make_service_client

    register(client)
    tokens = confidential_tokens(client, confidential)
    api = make_service_client(session, "370102-approval")
    other = register_client(
        session, name="另一系统", redirect_uris=[REDIRECT], public=False, actor=OPERATOR
    )
    as_api = client.post(
        "/oidc/introspect",
        data={"token": tokens["access_token"]},
        auth=(api.client.client_id, api.secret or ""),
    )
    assert as_api.json()["active"] is True
    as_stranger = client.post(
        "/oidc/introspect",
        data={"token": tokens["access_token"]},
        auth=(other.client.client_id, other.secret or ""),
    )
    assert as_stranger.json() == {"active": False}  # not its token, and not a resource server


def test_jwt_access_tokens_for_a_client_that_asked_for_them(
    client: TestClient, session: Session, vault: Vault, settings: Settings
) -> None:
    """RFC 9068 §2: typ at+jwt, iss, exp, aud, sub, client_id, iat, jti; signed by the keys
    in the JWKS; still revocable and introspectable, and accepted at userinfo."""
    make_person(session, vault, name="王芳", id_number=ID)
    new = register_client(
        session,
        name="不动产登记系统",
        redirect_uris=[REDIRECT],
        public=False,
        integration=Integration(jwt_access_tokens=True),
        actor=OPERATOR,
    )
    register(client)
    tokens = confidential_tokens(client, new)
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json())
    decoded = jwt.decode(tokens["access_token"], keys)
    assert decoded.header["typ"] == "at+jwt"
    claims = decoded.claims
    assert claims["iss"] == settings.issuer and claims["client_id"] == new.client.client_id
    assert claims["sub"] == claims_of(client, tokens["id_token"])["sub"]
    assert {"exp", "iat", "jti", "aud", "scope", "acr", "auth_time"} <= set(claims)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 200
    auth = (new.client.client_id, new.secret or "")
    client.post("/oidc/revoke", data={"token": tokens["access_token"]}, auth=auth)
    assert client.get("/oidc/userinfo", headers=bearer).status_code == 401


# --- private_key_jwt and pushed authorization requests ---


def assertion(key: RSAKey, client_id: str, audience: str, jti: str) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti,
        "iat": now,
        "exp": now + 60,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


def test_private_key_jwt_authenticates_without_a_shared_secret(
    client: TestClient, session: Session, vault: Vault, settings: Settings
) -> None:
    """RFC 7523 §2.2/§3 and OIDC Core §9: the client signs an assertion with its private key;
    the same `jti` is accepted once; another key is refused."""
    make_person(session, vault, name="王芳", id_number=ID)
    key = RSAKey.generate_key(2048, parameters={"kid": "dept-1", "use": "sig"})
    public = {"keys": [key.as_dict(private=False)]}
    new = register_client(
        session,
        name="税务系统",
        redirect_uris=[REDIRECT],
        public=False,
        integration=Integration(jwks=public),
        actor=OPERATOR,
    )
    assert new.secret is None and new.client.secret_hash is None
    client_id = new.client.client_id
    register(client)
    verifier, challenge = pkce()
    authorize(client, client_id, challenge)
    code = consent(client, request_params(client_id, challenge))
    signed = assertion(key, client_id, f"{settings.issuer}/oidc/token", "once")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_assertion": signed,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    answer = client.post("/oidc/token", data=form)
    assert answer.status_code == 200, answer.text
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": answer.json()["refresh_token"],
        "client_assertion": signed,
        "client_assertion_type": form["client_assertion_type"],
    }
    replayed = client.post("/oidc/token", data=refresh)
    # RFC 6749 §5.2: invalid_client, with 401 only where the Authorization header was used.
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_client"
    stranger = RSAKey.generate_key(2048, parameters={"kid": "dept-1"})
    forged = assertion(stranger, client_id, f"{settings.issuer}/oidc/token", "forged")
    refused = client.post("/oidc/token", data={**refresh, "client_assertion": forged})
    assert refused.json()["error"] == "invalid_client"
    fresh = assertion(key, client_id, f"{settings.issuer}/oidc/token", "second")
    assert (
        client.post("/oidc/token", data={**refresh, "client_assertion": fresh}).status_code == 200
    )


def test_pushed_authorization_request(
    client: TestClient, confidential: NewClient, session: Session
) -> None:
    """RFC 9126: the client pushes its request (authenticated) and gets a request_uri; the
    browser carries only that; the pushed parameters are the ones used; it is good once."""
    register(client)
    client_id = confidential.client.client_id
    auth = (client_id, confidential.secret or "")
    verifier, challenge = pkce()
    params = request_params(client_id, challenge, state="pushed")
    unauthenticated = client.post("/oidc/par", data=params)
    assert unauthenticated.status_code == 401
    bad = client.post(
        "/oidc/par", data={**params, "redirect_uri": "https://evil.example/"}, auth=auth
    )
    assert bad.status_code == 400
    pushed = client.post("/oidc/par", data=params, auth=auth)
    assert pushed.status_code == 201, pushed.text
    reference = pushed.json()["request_uri"]
    assert reference.startswith("urn:ietf:params:oauth:request_uri:")
    assert 0 < pushed.json()["expires_in"] <= 600
    carried = {"client_id": client_id, "request_uri": reference}
    page = client.get("/oidc/authorize", params=carried, follow_redirects=False)
    assert page.status_code == 200
    agreed = client.post(
        "/oidc/authorize",
        data={**carried, "decision": "allow", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    query = query_of(agreed)
    assert query["state"] == ["pushed"]
    token = client.post(
        "/oidc/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=auth,
    )
    assert token.status_code == 200
    used = client.get("/oidc/authorize", params=carried, follow_redirects=False)
    assert used.status_code == 400  # gone: never redirected anywhere


# --- Real-name claims under consent ---


def test_real_name_claims_need_the_administrator_and_the_person(
    client: TestClient, session: Session, vault: Vault
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    allowed = register_client(
        session,
        name="人社系统",
        redirect_uris=[REDIRECT],
        public=False,
        first_party=True,
        integration=Integration(allowed_scopes=("id_number", "realname")),
        actor=OPERATOR,
    )
    not_allowed = register_client(
        session, name="旅游系统", redirect_uris=[REDIRECT], public=False, actor=OPERATOR
    )
    register(client)
    scope = "openid profile id_number realname"
    page = authorize(client, allowed.client.client_id, pkce()[1], scope=scope)
    # Even for a system the administrator agreed for, real-name claims are the person's call.
    assert page.status_code == 200 and "实名信息" in page.text and "证件号码" in page.text
    tokens = confidential_tokens(client, allowed, scope=scope)
    claims = claims_of(client, tokens["id_token"])
    assert claims["id_number"] == ID and claims["realname_level"] == 3
    info = client.get(
        "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert info["id_number"] == ID
    released = list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == "identity.claims_released"))
    )
    assert len(released) == 2 and released[0].details["claims"] == ["id_number", "realname_level"]
    data_page = client.get("/account/data")
    assert "人社系统" in data_page.text and "证件号码" in data_page.text
    plain = confidential_tokens(client, not_allowed, scope=scope)
    assert "id_number" not in claims_of(client, plain["id_token"])
    assert plain["scope"] == "openid profile"


# --- Single sign-out ---


def test_signing_out_ends_the_session_tokens_and_queues_back_channel_logout(
    client: TestClient, session: Session, vault: Vault
) -> None:
    """Back-Channel Logout 1.0 §2.4–2.5: a logout token per system that registered a URI,
    with `sid` as in its ID token, `events`, no `nonce`; sent after commit (the outbox)."""
    from qilu.identity.oidc_logout import BACKCHANNEL, logout_token

    make_person(session, vault, name="王芳", id_number=ID)
    systems = [
        register_client(
            session,
            name=name,
            redirect_uris=[REDIRECT],
            public=False,
            actor=OPERATOR,
            integration=Integration(backchannel_logout_uri=f"http://127.0.0.1:9000/{path}"),
        )
        for name, path in (("社保系统", "sb"), ("公积金系统", "gjj"))
    ]
    register(client)
    tokens = [confidential_tokens(client, system) for system in systems]
    sids = {claims_of(client, t["id_token"])["sid"] for t in tokens}
    assert len(sids) == 1  # one browser session, one sid
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    effects = list(session.scalars(select(OutboxEffect).where(OutboxEffect.kind == BACKCHANNEL)))
    assert {e.payload["client_id"] for e in effects} == {s.client.client_id for s in systems}
    rows = session.scalars(select(OidcToken).where(OidcToken.web_session_id.is_not(None)))
    assert all(row.revoked_at is not None for row in rows)
    system = systems[0].client
    payload = effects[0].payload
    token = logout_token(
        session,
        vault,
        issuer="http://qilu.test",
        client=system,
        person_id=session.get_one(Account, payload["account_id"]).person_id,
        web_session_id=payload["web_session_id"],
    )
    keys = KeySet.import_key_set(client.get("/oidc/jwks").json())
    decoded = jwt.decode(token, keys)
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    assert claims["sid"] in sids and "nonce" not in claims
    assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]


def test_front_channel_logout_frames_the_registered_uris(
    client: TestClient, session: Session, vault: Vault, settings: Settings
) -> None:
    """Front-Channel Logout 1.0 §2–3: the page that says one is signed out loads each system's
    URI with `iss` and `sid` in a hidden frame (and the page's CSP lets exactly those in)."""
    make_person(session, vault, name="王芳", id_number=ID)
    system = register_client(
        session,
        name="社保系统",
        redirect_uris=[REDIRECT],
        public=False,
        actor=OPERATOR,
        integration=Integration(frontchannel_logout_uri="http://127.0.0.1:9000/fc?x=1"),
    )
    register(client)
    sid = claims_of(client, confidential_tokens(client, system)["id_token"])["sid"]
    page = client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    assert page.status_code == 200 and "您已退出" in page.text
    frame = re.search(r'<iframe src="([^"]+)"', page.text)
    assert frame is not None
    parts = urlsplit(frame.group(1).replace("&amp;", "&"))
    assert parts.netloc == "127.0.0.1:9000" and parts.path == "/fc"
    assert parse_qs(parts.query) == {"x": ["1"], "iss": [settings.issuer], "sid": [sid]}
    assert "frame-src http://127.0.0.1:9000" in page.headers["content-security-policy"]


def test_a_system_that_never_answers_is_given_up_after_a_day(
    session: Session, vault: Vault
) -> None:
    from datetime import UTC, datetime, timedelta

    from qilu.identity.oidc_logout import deliver

    person = make_person(session, vault, name="王芳", id_number=ID)
    system = register_client(
        session,
        name="社保系统",
        redirect_uris=[REDIRECT],
        public=False,
        actor=OPERATOR,
        integration=Integration(backchannel_logout_uri="http://127.0.0.1:9/never"),
    )
    account = make_account(session, vault, person)
    payload = {"client_id": system.client.client_id, "web_session_id": 1, "account_id": account.id}
    fresh = deliver(
        session,
        {**payload, "ended_at": datetime.now(UTC).isoformat()},
        vault=vault,
        issuer="http://qilu.test",
    )
    assert callable(fresh)
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    assert deliver(session, {**payload, "ended_at": old}, vault=vault, issuer="x") is None
