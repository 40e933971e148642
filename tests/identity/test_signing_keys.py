from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from qilu.identity.signing_keys import current_key, published_jwks, rotate
from qilu.pii import Vault

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def sign(session: Session, vault: Vault, at: datetime) -> str:
    kid, key = current_key(session, vault, at)
    return jwt.encode({"alg": "RS256", "kid": kid}, {"sub": "pairwise-x", "iat": 0}, key)


def verify(session: Session, token: str, at: datetime) -> str:
    keys = KeySet.import_key_set(published_jwks(session, at))  # type: ignore[arg-type]
    return str(jwt.decode(token, keys).claims["sub"])


def test_the_first_key_is_made_on_first_use(session: Session, vault: Vault) -> None:
    assert published_jwks(session, T0) == {"keys": []}
    token = sign(session, vault, T0)
    [public] = published_jwks(session, T0)["keys"]
    assert public["kty"] == "RSA" and public["alg"] == "RS256" and "d" not in public
    assert verify(session, token, T0) == "pairwise-x"


def test_private_keys_are_stored_encrypted(session: Session, vault: Vault) -> None:
    from qilu.identity.models import SigningKey

    sign(session, vault, T0)
    stored = session.query(SigningKey).one()
    assert b"PRIVATE KEY" not in stored.private_key_cipher


def test_rotation_keeps_old_tokens_verifiable_until_they_expire(
    session: Session, vault: Vault
) -> None:
    old_token = sign(session, vault, T0)
    old_kid = published_jwks(session, T0)["keys"][0]["kid"]
    rotate(session, vault, T0 + timedelta(minutes=10))
    new_token = sign(session, vault, T0 + timedelta(minutes=11))
    assert (
        jwt.decode(
            new_token, KeySet.import_key_set(published_jwks(session, T0 + timedelta(minutes=11)))
        ).header["kid"]
        != old_kid
    )  # type: ignore[arg-type]
    assert verify(session, old_token, T0 + timedelta(hours=2)) == "pairwise-x"
    later = T0 + timedelta(days=2)
    assert [k["kid"] for k in published_jwks(session, later)["keys"]] != [old_kid]
    with pytest.raises(JoseError):
        verify(session, old_token, later)
    assert verify(session, new_token, later) == "pairwise-x"


def test_a_token_signed_by_another_key_is_refused(session: Session, vault: Vault) -> None:
    from joserfc.jwk import RSAKey

    sign(session, vault, T0)
    forged = jwt.encode(
        {"alg": "RS256", "kid": "forged"}, {"sub": "admin"}, RSAKey.generate_key(2048)
    )
    with pytest.raises(JoseError):
        verify(session, forged, T0)


def test_jwks_endpoint(client: TestClient, session: Session, vault: Vault) -> None:
    sign(session, vault, datetime.now(UTC))
    response = client.get("/oidc/jwks")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert len(response.json()["keys"]) == 1


def test_the_key_cache_looks_up_again_after_its_time(session: Session, vault: Vault) -> None:
    from qilu.identity.signing_keys import SigningKeyCache

    held = SigningKeyCache(ttl=timedelta(hours=1))
    fresh = SigningKeyCache(ttl=timedelta(0))
    first, _ = held.current(session, vault)
    assert fresh.current(session, vault)[0] == first
    new = rotate(session, vault)
    assert held.current(session, vault)[0] == first  # still published, still fine to sign with
    assert fresh.current(session, vault)[0] == new.kid
