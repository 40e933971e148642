from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from qilu.identity.signing_keys import (
    ID_TOKEN_LIFETIME,
    JWKS_MAX_AGE,
    PUBLISH_AHEAD,
    SIGNING_CACHE,
    current_key,
    published_jwks,
    rotate,
)
from qilu.pii import Vault

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def sign(session: Session, vault: Vault, at: datetime) -> str:
    kid, key = current_key(session, vault, at)
    return jwt.encode({"alg": "RS256", "kid": kid}, {"sub": "pairwise-x", "iat": 0}, key)


def verify(session: Session, token: str, at: datetime) -> str:
    keys = KeySet.import_key_set(published_jwks(session, at))  # type: ignore[arg-type]
    return str(jwt.decode(token, keys).claims["sub"])


def test_the_first_key_is_made_on_first_use(session: Session, vault: Vault) -> None:
    token = sign(session, vault, T0)
    [public] = published_jwks(session, T0)["keys"]
    assert public["kty"] == "RSA" and public["alg"] == "RS256" and "d" not in public
    assert verify(session, token, T0) == "pairwise-x"


def test_the_jwks_is_never_empty(client: TestClient) -> None:
    """The JWKS was empty until someone first signed in, so a relying party that fetched it at
    start-up cached nothing to verify with (break in issue 12). `qilu db upgrade` and
    `qilu serve` make the key (tests/test_cli.py); the JWKS makes one if a store has none."""
    keys = client.get("/oidc/jwks").json()["keys"]
    assert len(keys) == 1 and "d" not in keys[0]


def test_private_keys_are_stored_encrypted(session: Session, vault: Vault) -> None:
    from qilu.identity.models import SigningKey

    sign(session, vault, T0)
    stored = session.query(SigningKey).one()
    assert b"PRIVATE KEY" not in stored.private_key_cipher


def test_a_new_key_is_published_a_cache_lifetime_before_it_signs(
    session: Session, vault: Vault
) -> None:
    """Pre-publication: a relying party that cached the JWKS just before a rotation must still
    verify what is signed until its cache expires (the key signed within 30 s: issue 12)."""
    old_token = sign(session, vault, T0)
    old_kid = published_jwks(session, T0)["keys"][0]["kid"]
    rotated = T0 + timedelta(minutes=10)
    new = rotate(session, vault, rotated)
    cached = published_jwks(session, rotated)  # what a relying party holds from now on
    assert {k["kid"] for k in cached["keys"]} == {old_kid, new.kid}
    just_before = rotated + timedelta(seconds=JWKS_MAX_AGE)
    token = sign(session, vault, just_before)
    assert jwt.decode(token, KeySet.import_key_set(cached)).header["kid"] == old_kid  # type: ignore[arg-type]
    signs_from = rotated + PUBLISH_AHEAD
    assert timedelta(seconds=JWKS_MAX_AGE) <= PUBLISH_AHEAD
    new_token = sign(session, vault, signs_from)
    assert jwt.decode(new_token, KeySet.import_key_set(cached)).header["kid"] == new.kid  # type: ignore[arg-type]
    # The old key's last tokens verify until they expire, and the key is gone after that.
    last_old_token_expires = signs_from + SIGNING_CACHE + ID_TOKEN_LIFETIME
    assert verify(session, old_token, last_old_token_expires) == "pairwise-x"
    later = signs_from + timedelta(days=1)
    assert [k["kid"] for k in published_jwks(session, later)["keys"]] == [new.kid]
    with pytest.raises(JoseError):
        verify(session, old_token, later)
    assert verify(session, new_token, later) == "pairwise-x"


def test_a_compromised_key_is_withdrawn_at_once(session: Session, vault: Vault) -> None:
    old_token = sign(session, vault, T0)
    new = rotate(session, vault, T0 + timedelta(minutes=1), compromised=True)
    assert (
        sign(session, vault, T0 + timedelta(minutes=1))
        and current_key(session, vault, T0 + timedelta(minutes=1))[0] == new.kid
    )
    with pytest.raises(JoseError):
        verify(session, old_token, T0 + timedelta(minutes=1))


def test_a_token_signed_by_another_key_is_refused(session: Session, vault: Vault) -> None:
    from joserfc.jwk import RSAKey

    sign(session, vault, T0)
    forged = jwt.encode(
        {"alg": "RS256", "kid": "forged"}, {"sub": "admin"}, RSAKey.generate_key(2048)
    )
    with pytest.raises(JoseError):
        verify(session, forged, T0)


def test_jwks_endpoint(client: TestClient, session: Session, vault: Vault) -> None:
    response = client.get("/oidc/jwks")
    assert response.status_code == 200
    assert response.headers["cache-control"] == f"public, max-age={JWKS_MAX_AGE}"
    assert len(response.json()["keys"]) == 1


def test_the_key_cache_looks_up_again_after_its_time(session: Session, vault: Vault) -> None:
    from qilu.identity.signing_keys import SigningKeyCache

    held = SigningKeyCache(current_key, ttl=timedelta(hours=1))
    fresh = SigningKeyCache(current_key, ttl=timedelta(0))
    first, _ = held.current(session, vault)
    assert fresh.current(session, vault)[0] == first
    new = rotate(session, vault, compromised=True)
    assert held.current(session, vault)[0] == first  # held for its hour, whatever happened
    assert fresh.current(session, vault)[0] == new.kid
