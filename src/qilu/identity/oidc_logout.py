"""Single sign-out: when a browser session at Qilu ends, the tokens it gave department systems
end with it, and each system that registered a logout URI hears of it (OIDC Back-Channel
Logout 1.0, a signed logout token POSTed after commit through the outbox; Front-Channel Logout
1.0, hidden frames on the page that says one is signed out). Offline tokens (`offline_access`)
belong to no session and survive it, as the person agreed.

Also the RP-initiated logout decision (RP-Initiated Logout 1.0 §2–3): who asks, whether to ask
the person first, and where to send them after.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.identity.models import Account, OidcClient, OidcToken, WebSession
from qilu.identity.oidc_provider import pairwise_sub, revoke_tokens, session_id
from qilu.identity.signing_keys import current_key, published_jwks
from qilu.outbox.service import enqueue
from qilu.pii import Vault

BACKCHANNEL = "oidc.backchannel_logout"
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
DELIVERY_TIMEOUT = 5.0  # seconds a system gets to answer a logout token
# A system that has not taken a logout token for a day is not told any more (its own sessions
# have timed out by then); the outbox's back-off spaces the tries until then.
GIVE_UP_AFTER = timedelta(days=1)


def sessions_ended(session: Session, web_session_ids: Iterable[int]) -> int:
    """End what the sessions gave department systems, in the caller's transaction: revoke their
    tokens and queue a logout token for each system with a back-channel URI. Returns how many
    systems will be told."""
    ids = list(web_session_ids)
    if not ids:
        return 0
    now = datetime.now(UTC)
    reached = session.execute(
        select(OidcToken.client_id, OidcToken.web_session_id, OidcToken.account_id)
        .where(OidcToken.web_session_id.in_(ids))
        .distinct()
    ).all()
    revoke_tokens(session, OidcToken.web_session_id.in_(ids), at=now)
    listening = set(
        session.scalars(
            select(OidcClient.client_id).where(
                OidcClient.client_id.in_({row.client_id for row in reached}),
                OidcClient.backchannel_logout_uri.is_not(None),
                OidcClient.disabled_at.is_(None),
            )
        )
    )
    told = 0
    for client_id, web_session_id, account_id in reached:
        if client_id in listening and account_id is not None:
            payload = {
                "client_id": client_id,
                "web_session_id": web_session_id,
                "account_id": account_id,
                "ended_at": now.isoformat(),
            }
            enqueue(session, BACKCHANNEL, f"{client_id}:{web_session_id}", payload)
            told += 1
    return told


def logout_token(
    session: Session,
    vault: Vault,
    *,
    issuer: str,
    client: OidcClient,
    person_id: int,
    web_session_id: int,
) -> str:
    """The logout token (Back-Channel Logout 1.0 §2.4): signed like an ID token, naming the
    person (`sub`, pairwise as the system knows them) and the session (`sid`), never a nonce."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": generate_token(24),
        "sub": pairwise_sub(vault, client.sector, person_id),
        "sid": session_id(vault, web_session_id),
        "events": {LOGOUT_EVENT: {}},
    }
    kid, key = current_key(session, vault)
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "logout+jwt"}, claims, key)


def deliver(
    session: Session, payload: dict[str, Any], *, vault: Vault, issuer: str
) -> Callable[[], None] | None:
    """The outbox handler: sign the logout token now, and return the POST, which the outbox
    makes with no transaction open; anything but 200/204 is tried again later (§2.8)."""
    client = session.scalars(
        select(OidcClient).where(OidcClient.client_id == payload["client_id"])
    ).first()
    account = session.get(Account, payload["account_id"])
    if client is None or client.backchannel_logout_uri is None or account is None:
        return None  # unregistered since: nobody to tell
    ended = datetime.fromisoformat(payload["ended_at"])
    if datetime.now(UTC) - ended > GIVE_UP_AFTER:
        record(
            session,
            "oidc.backchannel_logout_abandoned",
            subject=f"client:{client.client_id}",
            details={"ended_at": payload["ended_at"]},
        )
        return None
    token = logout_token(
        session,
        vault,
        issuer=issuer,
        client=client,
        person_id=account.person_id,
        web_session_id=payload["web_session_id"],
    )
    record(
        session,
        "oidc.backchannel_logout",
        subject=f"client:{client.client_id}",
        actor_person_id=account.person_id,
        details={"uri": client.backchannel_logout_uri},
    )
    uri, client_id = client.backchannel_logout_uri, client.client_id

    def post() -> None:
        response = httpx.post(
            uri,
            data={"logout_token": token},
            headers={"Cache-Control": "no-store"},
            timeout=DELIVERY_TIMEOUT,
        )
        if response.status_code not in (200, 204):
            raise RuntimeError(f"{client_id} answered {response.status_code}")

    return post


def frontchannel_frames(
    session: Session, vault: Vault, web_session_id: int, *, issuer: str
) -> list[str]:
    """The URIs to load in hidden frames once the session has ended (Front-Channel Logout 1.0
    §2–3: `iss` and `sid` so the system knows which of its sessions to end)."""
    uris = session.scalars(
        select(OidcClient.frontchannel_logout_uri)
        .join(OidcToken, OidcToken.client_id == OidcClient.client_id)
        .where(
            OidcToken.web_session_id == web_session_id,
            OidcClient.frontchannel_logout_uri.is_not(None),
        )
        .distinct()
    )
    sid = session_id(vault, web_session_id)
    return [add_params_to_uri(uri, {"iss": issuer, "sid": sid}) for uri in uris if uri]


@dataclass(frozen=True)
class LogoutRequest:
    """What an RP-initiated logout asks, checked."""

    client: OidcClient | None  # the system asking, if it proved who it is
    redirect: str | None  # where to go after: registered for that client, with `state`
    confirmed: bool  # the hint names this very person (and session): no need to ask them


def logout_request(
    session: Session, vault: Vault, params: Mapping[str, str], viewer: WebSession | None
) -> LogoutRequest:
    """RP-Initiated Logout 1.0 §2–3. The `id_token_hint` (expired ones too) identifies the
    system and the person; a `client_id` must agree with it. The post-logout URI is honoured
    only if registered for that system, exactly. Signing the person out without asking needs a
    hint that names them: no hint, or somebody else's, and they are asked first (§2, §3)."""
    claims: dict[str, Any] = {}
    hint = params.get("id_token_hint", "")
    if hint:
        try:
            keys = KeySet.import_key_set(published_jwks(session))  # type: ignore[arg-type]
            claims = dict(jwt.decode(hint, keys).claims)
        except (JoseError, ValueError):
            claims = {}
    audiences = claims.get("aud", [])
    audiences = [audiences] if isinstance(audiences, str) else list(audiences)
    client_id = params.get("client_id") or (audiences[0] if audiences else None)
    client = None
    if client_id and (not audiences or client_id in audiences):
        client = session.scalars(
            select(OidcClient).where(
                OidcClient.client_id == client_id, OidcClient.disabled_at.is_(None)
            )
        ).first()
    redirect = None
    wanted = params.get("post_logout_redirect_uri", "")
    if client is not None and wanted and wanted in client.post_logout_redirect_uris:
        state = params.get("state")
        redirect = add_params_to_uri(wanted, {"state": state}) if state else wanted
    confirmed = False
    if viewer is not None and client is not None and claims:
        own = claims.get("sub") == pairwise_sub(vault, client.sector, viewer.account.person_id)
        same_session = claims.get("sid") in (None, session_id(vault, viewer.id))
        confirmed = own and same_session
    return LogoutRequest(client, redirect, confirmed)


def query_of(params: Mapping[str, str]) -> str:
    """The logout parameters again, for the confirmation form to carry."""
    names = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id")
    return urlencode({k: params[k] for k in names if params.get(k)})
