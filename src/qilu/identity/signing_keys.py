"""Keys for signing ID tokens (RS256 through joserfc), their rotation, and the published JWKS.

The newest unretired key signs. `rotate` makes a new key and retires the others from signing; a
retired key stays in the JWKS for a day, longer than any ID token lives, so tokens it signed keep
verifying until they expire, and no longer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from joserfc.jwk import RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.identity.models import SigningKey
from qilu.pii import Vault

ALGORITHM = "RS256"
ID_TOKEN_LIFETIME = timedelta(hours=1)
PUBLISHED_AFTER_RETIREMENT = timedelta(hours=24)  # longer than any token signed before


def _new_key(session: Session, vault: Vault, now: datetime) -> SigningKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALGORITHM})
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid}
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_key_cipher=vault.encrypt(key.as_pem(private=True).decode(), "signing_key"),
        public_jwk=public,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def current_key(session: Session, vault: Vault, now: datetime | None = None) -> tuple[str, RSAKey]:
    """The kid and private key to sign with now (the first one is made on first use)."""
    moment = now or datetime.now(UTC)
    row = session.scalars(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
        .limit(1)
    ).first()
    if row is None:
        row = _new_key(session, vault, moment)
    return row.kid, _private_key(row.kid, vault.decrypt(row.private_key_cipher, "signing_key"))


class SigningKeyCache:
    """The key to sign with, looked up at most every `ttl` per process (one per application).

    After a rotation a server may sign with the previous key for up to `ttl` more: harmless, since
    that key stays in the JWKS for a day."""

    def __init__(self, ttl: timedelta = timedelta(seconds=30)):
        self.ttl = ttl.total_seconds()
        self._held: tuple[str, RSAKey] | None = None
        self._until = 0.0

    def current(self, session: Session, vault: Vault) -> tuple[str, RSAKey]:
        moment = time.monotonic()
        if self._held is None or moment >= self._until:
            self._held, self._until = current_key(session, vault), moment + self.ttl
        return self._held


@lru_cache(maxsize=4)
def _private_key(kid: str, pem: str) -> RSAKey:
    """Parsing a PEM key costs more than signing with it: parse each key once per process."""
    return RSAKey.import_key(pem, parameters={"kid": kid, "alg": ALGORITHM})


def rotate(session: Session, vault: Vault, now: datetime | None = None) -> SigningKey:
    """Sign with a new key from now on; keep the old ones verifiable for a day."""
    moment = now or datetime.now(UTC)
    session.execute(
        update(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .values(retired_at=moment, unpublish_at=moment + PUBLISHED_AFTER_RETIREMENT)
    )
    row = _new_key(session, vault, moment)
    record(session, "keys.rotated", subject=f"key:{row.kid}", at=moment)
    return row


def published_jwks(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """The JWKS relying parties verify with: live keys and recently retired ones."""
    moment = now or datetime.now(UTC)
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.unpublish_at.is_(None), SigningKey.unpublish_at > moment))
        .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
    )
    return {"keys": [row.public_jwk for row in rows]}
