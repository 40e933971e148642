"""Which SM2 library Qilu signs with (issue 14, 密评): each candidate installed here is checked
against the standard's example and timed.

Correctness: the example of GM/T 0003.5-2012 / GB/T 32918.5-2017 Annex A (private key
3945208F…, message "message digest", the default ID 1234567812345678, k 59276E27…, r F5A03B06…,
s B1B6AA29…), as OpenSSL's test/sm2_internal_test.c and Go's emmansun/gmsm use it: the published
signature must verify, a changed one must not, and where the library lets the nonce be chosen
it must reproduce r and s exactly. Speed: signatures and verifications a second on a 200-byte
document digest, beside Ed25519 (`cryptography`) in the same run.

    python -m bench.sm2_libraries      # candidates not installed are listed as such
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import metadata

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SK = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
PK = bytes.fromhex(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
K = bytes.fromhex("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21")
R = bytes.fromhex("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3")
S = bytes.fromhex("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")
MESSAGE = b"message digest"
UID = b"1234567812345678"
DOCUMENT = bytes(range(200))


def der(r: bytes, s: bytes) -> bytes:
    def integer(value: bytes) -> bytes:
        value = value.lstrip(b"\x00")
        if value[0] & 0x80:
            value = b"\x00" + value
        return b"\x02" + bytes([len(value)]) + value

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def rate(action: Callable[[], object], seconds: float = 1.0) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        action()
        count += 1
    return count / elapsed


def gmalglib() -> dict[str, object]:
    from gmalglib.sm2 import SM2  # type: ignore[import-not-found]

    # Its random bytes are read little-endian: the nonce goes in reversed.
    fixed = SM2(SK, b"\x04" + PK, UID, rnd_fn=lambda n: K[::-1])
    signer = SM2(SK, b"\x04" + PK, UID)
    signature = signer.sign(DOCUMENT)
    return {
        "reproduces r‖s": fixed.sign(MESSAGE) == R + S,
        "verifies published": signer.verify(MESSAGE, R + S),
        "rejects changed": not signer.verify(MESSAGE, R + S[:-1] + b"\x00"),
        "sign/s": rate(lambda: signer.sign(DOCUMENT)),
        "verify/s": rate(lambda: signer.verify(DOCUMENT, signature)),
    }


def gmalg() -> dict[str, object]:
    import gmalg as library  # type: ignore[import-not-found]

    fixed = library.SM2(SK, UID, b"\x04" + PK, rnd_fn=lambda n: int.from_bytes(K, "big"))
    signer = library.SM2(SK, UID, b"\x04" + PK)
    r, s = fixed.sign(MESSAGE)
    signature = signer.sign(DOCUMENT)
    return {
        "reproduces r‖s": (r, s) == (R, S),
        "verifies published": signer.verify(MESSAGE, R, S),
        "rejects changed": not signer.verify(MESSAGE, R, S[:-1] + b"\x00"),
        "sign/s": rate(lambda: signer.sign(DOCUMENT)),
        "verify/s": rate(lambda: signer.verify(DOCUMENT, *signature)),
    }


def gmssl_pyx() -> dict[str, object]:
    from gmssl_pyx import sm2_sign, sm2_verify  # type: ignore[import-not-found]

    signature = sm2_sign(SK, PK, DOCUMENT, UID)
    return {
        "reproduces r‖s": "n/a (nonce not injectable)",
        "verifies published": sm2_verify(PK, MESSAGE, der(R, S), UID),
        "rejects changed": not sm2_verify(PK, MESSAGE, der(R, S[:-1] + b"\x01"), UID),
        "sign/s": rate(lambda: sm2_sign(SK, PK, DOCUMENT, UID)),
        "verify/s": rate(lambda: sm2_verify(PK, DOCUMENT, signature, UID)),
    }


def gmssl_fast() -> dict[str, object]:
    from gmssl_fast import SM2  # type: ignore[import-not-found]

    signer = SM2(SK.hex(), "04" + PK.hex())
    signature = signer.sign(DOCUMENT)
    return {
        "reproduces r‖s": "n/a (nonce not injectable)",
        "verifies published": signer.verify(MESSAGE, R + S),
        "rejects changed": not signer.verify(MESSAGE, R + S[:-1] + b"\x01"),
        "sign/s": rate(lambda: signer.sign(DOCUMENT)),
        "verify/s": rate(lambda: signer.verify(DOCUMENT, signature)),
    }


def gmssl() -> dict[str, object]:
    from gmssl import sm2  # type: ignore[import-not-found]

    signer = sm2.CryptSM2(private_key=SK.hex(), public_key=PK.hex())
    signature = signer.sign_with_sm3(DOCUMENT)
    published = (R + S).hex()
    return {
        "reproduces r‖s": "n/a (nonce not injectable with the ID hash)",
        "verifies published": signer.verify_with_sm3(published, MESSAGE),
        "rejects changed": not signer.verify_with_sm3(published[:-2] + "00", MESSAGE),
        "sign/s": rate(lambda: signer.sign_with_sm3(DOCUMENT)),
        "verify/s": rate(lambda: signer.verify_with_sm3(signature, DOCUMENT)),
    }


CANDIDATES = {
    "gmalglib": gmalglib,
    "gmalg": gmalg,
    "gmssl-pyx": gmssl_pyx,
    "gmssl-fast": gmssl_fast,
    "gmssl": gmssl,
}


def main() -> None:
    key = Ed25519PrivateKey.generate()
    signature = key.sign(DOCUMENT)
    public = key.public_key()
    baseline_sign = rate(lambda: key.sign(DOCUMENT))
    baseline_verify = rate(lambda: public.verify(signature, DOCUMENT))
    print(
        f"Ed25519 (cryptography) baseline: {baseline_sign:,.0f} sign/s, "
        f"{baseline_verify:,.0f} verify/s"
    )
    for name, check in CANDIDATES.items():
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            print(f"{name}: not installed")
            continue
        try:
            found = check()
        except Exception as error:  # a candidate that cannot even run the example
            print(f"{name} {version}: failed: {type(error).__name__}: {error}")
            continue
        sign, verify = float(found["sign/s"]), float(found["verify/s"])  # type: ignore[arg-type]
        print(
            f"{name} {version}: reproduces r‖s: {found['reproduces r‖s']}; "
            f"verifies published: {found['verifies published']}; "
            f"rejects changed: {found['rejects changed']}; "
            f"{sign:,.0f} sign/s ({sign / baseline_sign:.2f}× Ed25519), "
            f"{verify:,.0f} verify/s ({verify / baseline_verify:.2f}× Ed25519)"
        )


if __name__ == "__main__":
    main()
