"""The provider driven by an independent relying party: the OpenID Foundation's Python library
(`oic`), against `qilu serve` in its own process. It does its own discovery, builds its own
requests, and checks the ID token its own way (signature from the JWKS, iss, aud, nonce, exp),
so a rule Qilu's own tests and Authlib might share a blind spot about is checked again.

Covered: discovery (OIDC Discovery 1.0 §3–4), code flow with PKCE (Core §3.1, RFC 7636),
ID-token validation (Core §3.1.3.7), userinfo (§5.3), refresh (§12), revocation (RFC 7009),
introspection (RFC 7662), silent re-authentication with prompt=none, and RP-initiated logout
(RP-Initiated Logout 1.0), with back-channel logout to a listening system.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from oic.extension.client import Client as ExtensionClient
from oic.oauth2.message import ErrorResponse
from oic.oic import Client as OicClient
from oic.oic.message import AuthorizationResponse, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.identity.oidc_clients import Integration, register_client
from qilu.identity.roles import OPERATOR

from ..browser import LiveServer
from ..servers import serving
from . import test_oidc_interop as interop

resident = interop.resident  # the registered resident (a fixture of the interop module)
_sign_in_and_consent = interop._sign_in_and_consent

RP = "http://127.0.0.1:8001"


class Listener:
    """A department system's back-channel logout endpoint: what it was sent."""

    def __init__(self) -> None:
        self.received: list[str] = []

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(parse_qs(body.decode())["logout_token"][0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def listener() -> Iterator[tuple[Listener, str]]:
    app = Listener()
    with serving(app) as base:
        yield app, f"{base}/backchannel-logout"


def _registered(live_server: LiveServer, backchannel: str | None) -> tuple[str, str]:
    with Session(make_engine(live_server.settings)) as session, session.begin():
        new = register_client(
            session,
            name="oic 示例系统",
            redirect_uris=[f"{RP}/callback"],
            public=False,
            post_logout_redirect_uris=[f"{RP}/bye"],
            integration=Integration(backchannel_logout_uri=backchannel),
            actor=OPERATOR,
        )
        assert new.secret is not None
        return new.client.client_id, new.secret


def _oic_client(live_server: LiveServer, client_id: str, secret: str) -> OicClient:
    rp = OicClient(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(live_server.base)  # checks the issuer equals where it was discovered
    rp.store_registration_info(
        RegistrationResponse(
            client_id=client_id,
            client_secret=secret,
            redirect_uris=[f"{RP}/callback"],
            post_logout_redirect_uris=[f"{RP}/bye"],
            id_token_signed_response_alg="RS256",
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    rp.redirect_uris = [f"{RP}/callback"]
    return rp


def _authorization_url(rp: OicClient, state: str, **extra: str) -> tuple[str, str]:
    challenge, verifier = rp.add_code_challenge()
    request = rp.construct_AuthorizationRequest(
        request_args={
            "response_type": "code",
            "scope": ["openid", "profile"],
            "state": state,
            "nonce": f"nonce-{state}",
            "redirect_uri": f"{RP}/callback",
            **challenge,
            **extra,
        }
    )
    return request.request(rp.authorization_endpoint), verifier


def _code(rp: OicClient, location: str, state: str) -> str:
    response = rp.parse_response(
        AuthorizationResponse, info=urlsplit(location).query, sformat="urlencoded"
    )
    assert not isinstance(response, ErrorResponse), response.to_dict()
    assert response["state"] == state
    assert response["iss"] == rp.provider_info["issuer"]  # RFC 9207
    return str(response["code"])


def test_oic_relying_party_end_to_end(
    live_server: LiveServer, resident: tuple[str, str], listener: tuple[Listener, str]
) -> None:
    _, number = resident
    received, uri = listener
    client_id, secret = _registered(live_server, uri)
    rp = _oic_client(live_server, client_id, secret)
    info = rp.provider_info
    assert info["issuer"] == live_server.base
    assert info["request_uri_parameter_supported"] is False
    assert "private_key_jwt" in info["token_endpoint_auth_methods_supported"]

    with httpx.Client(base_url=live_server.base) as browser:
        url, verifier = _authorization_url(rp, "first")
        code = _code(rp, _sign_in_and_consent(browser, url, number), "first")
        tokens = rp.do_access_token_request(
            state="first",
            request_args={"code": code, "code_verifier": verifier},
            authn_method="client_secret_basic",
        )
        # oic verified the ID token: signature against the JWKS, iss, aud, nonce, exp.
        id_token = tokens["id_token"]
        assert id_token["iss"] == info["issuer"] and id_token["aud"] == [client_id]
        assert id_token["nonce"] == "nonce-first" and id_token["sid"]
        profile = rp.do_user_info_request(state="first")
        assert profile["sub"] == id_token["sub"]

        renewed = rp.do_access_token_refresh(state="first", authn_method="client_secret_basic")
        assert renewed["access_token"] != tokens["access_token"]

        # Silent SSO: the same browser, prompt=none, no page.
        url, verifier = _authorization_url(rp, "silent", prompt="none")
        silent = browser.get(url)
        assert silent.status_code == 302
        code = _code(rp, silent.headers["location"], "silent")
        again = rp.do_access_token_request(
            state="silent",
            request_args={"code": code, "code_verifier": verifier},
            authn_method="client_secret_basic",
        )
        assert again["id_token"]["sub"] == id_token["sub"]
        assert again["id_token"]["sid"] == id_token["sid"]

        extension = ExtensionClient(client_authn_method=CLIENT_AUTHN_METHOD)
        extension.provider_info = info
        extension.client_id, extension.client_secret = client_id, secret
        extension.introspection_endpoint = info["introspection_endpoint"]
        extension.revocation_endpoint = info["revocation_endpoint"]
        live = extension.do_token_introspection(
            request_args={"token": again["access_token"]}, authn_method="client_secret_basic"
        )
        assert live["active"] is True and live["sub"] == id_token["sub"]
        extension.do_token_revocation(
            request_args={"token": renewed["access_token"], "token_type_hint": "access_token"},
            authn_method="client_secret_basic",
        )
        gone = extension.do_token_introspection(
            request_args={"token": renewed["access_token"]}, authn_method="client_secret_basic"
        )
        assert gone["active"] is False

        # RP-initiated logout with the hint: no question, back to the registered URI.
        end = rp.construct_EndSessionRequest(
            state="first",
            request_args={
                "id_token_hint": again["id_token"].jwt,
                "post_logout_redirect_uri": f"{RP}/bye",
                "state": "bye",
            },
        )
        bye = browser.get(end.request(info["end_session_endpoint"]))
        assert bye.headers["location"] == f"{RP}/bye?state=bye"

    # Back-channel: the listening system got a logout token for this session, after commit.
    deadline = time.monotonic() + 10
    while not received.received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(received.received) == 1
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set(httpx.get(info["jwks_uri"]).json())
    claims = jwt.decode(received.received[0], keys).claims
    assert claims["sid"] == id_token["sid"] and claims["aud"] == client_id
    introspected = extension.do_token_introspection(
        request_args={"token": again["access_token"]}, authn_method="client_secret_basic"
    )
    assert introspected["active"] is False  # the session's tokens ended with it
