"""Electronic seals: how a department signs what it issues (e-licences, receipts, decisions).

New seals are SM2 signatures (GB/T 32918.2) over SM3 with the default signer ID of GB/T 35276
(`1234567812345678`), kept as r‖s (64 bytes; GB/T 35276's DER SM2Signature is the same two
integers) — what 密评 (GB/T 39786) asks of a system sealing documents in China. The arithmetic
is `gmalglib`'s (C), chosen by measurement over the pure-Python and GmSSL-backed packages
(`python -m bench.sm2_libraries`): it alone of the fast ones lets the nonce be fixed, and so
reproduces the standard's example signature exactly; it signs 9,000 times a second here, 25×
the GmSSL binding, and prints nothing on a failed check. Nonces come from the operating
system's CSPRNG, passed in explicitly. Ed25519 sealed Qilu's first licences and documents; those
keep verifying under their own key, and no new Ed25519 seal is made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from gmalglib.sm2 import SM2 as Sm2

SM2 = "sm2"
ED25519 = "ed25519"  # earlier seals: verified, never made
SIGNER_ID = b"1234567812345678"  # GB/T 35276-2017 §10, the default 用户身份标识


@dataclass(frozen=True)
class SealKey:
    """An SM2 private sealing key, opened for this transaction only."""

    public_key: bytes  # 04‖X‖Y (65 bytes)
    private_key: bytes  # d (32 bytes)

    def sign(self, message: bytes) -> bytes:
        signer = Sm2(self.private_key, self.public_key, SIGNER_ID, rnd_fn=os.urandom)
        signature: bytes = signer.sign(message)
        return signature

    def stored(self) -> str:
        """The private key as text, for the vault to encrypt (`opened` reads it back)."""
        return self.private_key.hex()

    @classmethod
    def opened(cls, public_key: bytes, stored: str) -> SealKey:
        return cls(public_key, bytes.fromhex(stored))


def new_key() -> SealKey:
    """A new SM2 key pair."""
    private, public = Sm2(rnd_fn=os.urandom).generate_keypair()
    return SealKey(public, private)


def verify(algorithm: str, public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` seals `message` under `public_key`; False for anything malformed."""
    if algorithm == SM2:
        try:
            return bool(Sm2(pk=public_key, uid=SIGNER_ID).verify(message, signature))
        except ValueError:  # a malformed signature or key is refused, not answered
            return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
