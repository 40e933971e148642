"""Keys for signing ID tokens, logout tokens and JWT access tokens (RS256 through joserfc), their
rotation, and the published JWKS; and the SM2 key for the ID tokens of the department systems
registered to want SM2 (国密), published apart (`/oidc/jwks/sm2`).

A relying party caches the JWKS for up to `JWKS_MAX_AGE`, so a key must be in its cache before
anything it signs arrives: `rotate` publishes a new key at once and lets it sign only
`PUBLISH_AHEAD` later (pre-publication). From then the older keys sign nothing but stay published
until every token they signed has expired (`PUBLISHED_AFTER_RETIREMENT`), and no longer. The first
key is made when the platform first starts (`ensure_key`), so the JWKS is never empty.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Generic, TypeVar

from joserfc.jwk import RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from qilu import seals
from qilu.audit.service import record
from qilu.digests import sm3
from qilu.identity.models import SigningKey
from qilu.pii import Vault
from qilu.seals import SealKey

Key = TypeVar("Key")

ALGORITHM = "RS256"
# No JOSE registration exists for SM2: Qilu names it "SM2" (r‖s over SM3 with the default ID of
# GB/T 35276) and publishes its keys as kty EC, crv SM2, only in their own JWKS, so relying
# parties reading the standard JWKS never meet a curve they do not know.
SM2 = "SM2"
ID_TOKEN_LIFETIME = timedelta(hours=1)  # the longest-lived token a key signs
JWKS_MAX_AGE = 300  # seconds relying parties may cache the JWKS (its Cache-Control)
PUBLISH_AHEAD = timedelta(seconds=2 * JWKS_MAX_AGE)  # published this long before it signs
SIGNING_CACHE = timedelta(seconds=30)  # a process looks up the signing key this often
# A retired key may still sign for SIGNING_CACHE, and its tokens then live ID_TOKEN_LIFETIME.
PUBLISHED_AFTER_RETIREMENT = ID_TOKEN_LIFETIME + SIGNING_CACHE + timedelta(minutes=5)


def _new_key(session: Session, vault: Vault, now: datetime, activates_at: datetime) -> SigningKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": ALGORITHM})
    kid = key.thumbprint()
    public = {**key.as_dict(private=False), "kid": kid}
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        private_key_cipher=vault.encrypt(key.as_pem(private=True).decode(), "signing_key"),
        public_jwk=public,
        created_at=now,
        activates_at=activates_at,
    )
    session.add(row)
    session.flush()
    return row


def ensure_key(session: Session, vault: Vault, now: datetime | None = None) -> None:
    """Make the first key if there is none, signing at once (nothing can have cached the JWKS)."""
    if session.scalars(select(SigningKey.id).limit(1)).first() is None:
        moment = now or datetime.now(UTC)
        row = _new_key(session, vault, moment, moment)
        record(session, "keys.created", subject=f"key:{row.kid}", at=moment)


def current_key(session: Session, vault: Vault, now: datetime | None = None) -> tuple[str, RSAKey]:
    """The kid and private key to sign with now: the newest key that has started signing."""
    moment = now or datetime.now(UTC)
    ensure_key(session, vault, moment)
    row = session.scalars(
        select(SigningKey)
        .where(
            SigningKey.algorithm == ALGORITHM,
            SigningKey.activates_at <= moment,
            or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > moment),
        )
        .order_by(SigningKey.activates_at.desc(), SigningKey.id.desc())
        .limit(1)
    ).one()
    return row.kid, _private_key(row.kid, vault.decrypt(row.private_key_cipher, "signing_key"))


class SigningKeyCache(Generic[Key]):
    """The key to sign with as `loader` finds it (`current_key`, the RSA key of ID tokens, or
    `sm2_key`), looked up at most every `ttl` per process (one per application).

    After a key starts signing, a server may go on with the previous one for up to `ttl`:
    harmless, since that key stays published for longer than its tokens live."""

    def __init__(
        self,
        loader: Callable[[Session, Vault], tuple[str, Key]],
        ttl: timedelta = SIGNING_CACHE,
    ):
        self.ttl = ttl.total_seconds()
        self._loader = loader
        self._held: tuple[str, Key] | None = None
        self._until = 0.0

    def current(self, session: Session, vault: Vault) -> tuple[str, Key]:
        moment = time.monotonic()
        if self._held is None or moment >= self._until:
            self._held, self._until = self._loader(session, vault), moment + self.ttl
        return self._held


@lru_cache(maxsize=4)
def _private_key(kid: str, pem: str) -> RSAKey:
    """Parsing a PEM key costs more than signing with it: parse each key once per process."""
    return RSAKey.import_key(pem, parameters={"kid": kid, "alg": ALGORITHM})


def rotate(
    session: Session, vault: Vault, now: datetime | None = None, *, compromised: bool = False
) -> SigningKey:
    """Publish a new key now and sign with it from `PUBLISH_AHEAD` on; the older keys stop
    signing then and stay published until their tokens expire.

    `compromised`: the old keys may be in someone else's hands, so the new key signs at once and
    the old ones are withdrawn at once; tokens they signed stop verifying (people sign in again).
    """
    moment = now or datetime.now(UTC)
    ensure_key(session, vault, moment)  # something signs until the new key does
    starts = moment if compromised else moment + PUBLISH_AHEAD
    unpublish = starts + PUBLISHED_AFTER_RETIREMENT
    if compromised:  # every key still published goes, whatever stage it was at
        session.execute(
            update(SigningKey)
            .where(or_(SigningKey.unpublish_at.is_(None), SigningKey.unpublish_at > moment))
            .values(retired_at=moment, unpublish_at=moment)
        )
    else:
        session.execute(
            update(SigningKey)
            .where(SigningKey.algorithm == ALGORITHM, SigningKey.retired_at.is_(None))
            .values(retired_at=starts, unpublish_at=unpublish)
        )
    row = _new_key(session, vault, moment, starts)
    details = {"signs_from": starts.isoformat(), "compromised": compromised}
    record(session, "keys.rotated", subject=f"key:{row.kid}", at=moment, details=details)
    return row


def published_jwks(
    session: Session, now: datetime | None = None, *, algorithm: str = ALGORITHM
) -> dict[str, Any]:
    """The JWKS relying parties verify with: keys about to sign, signing, and recently retired
    (of one algorithm: the standard set holds RS256 only)."""
    moment = now or datetime.now(UTC)
    rows = session.scalars(
        select(SigningKey)
        .where(
            SigningKey.algorithm == algorithm,
            or_(SigningKey.unpublish_at.is_(None), SigningKey.unpublish_at > moment),
        )
        .order_by(SigningKey.activates_at.desc(), SigningKey.id.desc())
    )
    return {"keys": [row.public_jwk for row in rows]}


def sm2_key(session: Session, vault: Vault, now: datetime | None = None) -> tuple[str, SealKey]:
    """The kid and SM2 key ID tokens for SM2 clients are signed with (made on first use)."""
    moment = now or datetime.now(UTC)
    row = session.scalars(
        select(SigningKey)
        .where(
            SigningKey.algorithm == SM2,
            SigningKey.activates_at <= moment,
            or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > moment),
        )
        .order_by(SigningKey.activates_at.desc(), SigningKey.id.desc())
        .limit(1)
    ).first()
    if row is None:
        key = seals.new_key()
        x, y = key.public_key[1:33], key.public_key[33:]
        kid = _b64(sm3(key.public_key))[:43]
        public = {"kty": "EC", "crv": "SM2", "x": _b64(x), "y": _b64(y)}
        row = SigningKey(
            kid=kid,
            algorithm=SM2,
            private_key_cipher=vault.encrypt(key.stored(), "signing_key"),
            public_jwk={**public, "kid": kid, "alg": SM2, "use": "sig"},
            created_at=moment,
            activates_at=moment,
        )
        session.add(row)
        session.flush()
        record(session, "keys.created", subject=f"key:{kid}", at=moment, details={"alg": SM2})
        return kid, key
    opened = vault.decrypt(row.private_key_cipher, "signing_key")
    x, y = (_unb64(row.public_jwk[c]) for c in ("x", "y"))
    return row.kid, SealKey.opened(b"\x04" + x + y, opened)


def sm2_public_key(session: Session, kid: str) -> bytes | None:
    """The SM2 public key (04‖X‖Y) published under `kid`, retired or not; None if unknown."""
    row = session.scalars(
        select(SigningKey).where(SigningKey.kid == kid, SigningKey.algorithm == SM2)
    ).one_or_none()
    if row is None:
        return None
    return b"\x04" + _unb64(row.public_jwk["x"]) + _unb64(row.public_jwk["y"])


def sign_sm2_jwt(kid: str, key: SealKey, claims: dict[str, Any]) -> str:
    """A compact JWS: header and claims base64url-encoded, r‖s over their ASCII (RFC 7515 §5.1
    with SM2 for the signature)."""
    header = {"alg": SM2, "kid": kid, "typ": "JWT"}
    signing_input = ".".join(
        _b64(json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode())
        for part in (header, claims)
    )
    return f"{signing_input}.{_b64(key.sign(signing_input.encode()))}"


def sm3_half_hash(value: str) -> str:
    """at_hash / c_hash for an SM2-signed ID token (OIDC Core §3.1.3.6 with SM3)."""
    return _b64(sm3(value.encode())[:16])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
