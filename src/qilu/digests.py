"""SM3 digests (GB/T 32905): of audit entries, and of the random secrets Qilu stores only hashed."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes


def sm3(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    for part in parts:
        digest.update(part)
    return digest.finalize()


def secret_digest(secret: str) -> bytes:
    """How session tokens, OAuth codes and tokens, client secrets and recovery codes are kept.

    They are random with 50 to 256 bits of entropy and checked on hot paths, so a fast hash is
    right here; passwords, which people choose, go through argon2id instead.
    """
    return sm3(secret.encode())
