"""SM2 seals (issue 14, 密评): the standard's example verifies, Qilu's seals verify in an
independent implementation (GmSSL), and licences sealed with Ed25519 before keep verifying
while their department moves to SM2."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gmssl_pyx import sm2_verify
from sqlalchemy import select

from qilu import seals
from qilu.filestore import LocalFileStore
from qilu.services import licences
from qilu.services.models import DepartmentKey
from qilu.workdays import beijing_today

from .conftest import Province
from .test_results import certificate, finished_newborn

# GM/T 0003.5-2012 / GB/T 32918.5-2017 Annex A, as OpenSSL's test/sm2_internal_test.c and
# emmansun/gmsm's sm2 tests use it: this public key, the message "message digest", the
# default ID, and the signature made with k = 59276E27….
PUBLIC = bytes.fromhex(
    "0409F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
R = bytes.fromhex("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3")
S = bytes.fromhex("B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")


def der(signature: bytes) -> bytes:
    """r‖s as the DER SEQUENCE of two INTEGERs (GB/T 35276 SM2Signature)."""

    def integer(value: bytes) -> bytes:
        value = value.lstrip(b"\x00")
        value = b"\x00" + value if value[0] & 0x80 else value
        return b"\x02" + bytes([len(value)]) + value

    body = integer(signature[:32]) + integer(signature[32:])
    return b"\x30" + bytes([len(body)]) + body


def test_the_standards_example_signature_verifies_and_a_changed_one_does_not() -> None:
    assert seals.verify(seals.SM2, PUBLIC, R + S, b"message digest")
    assert not seals.verify(seals.SM2, PUBLIC, R + S, b"message digest!")
    assert not seals.verify(seals.SM2, PUBLIC, R + bytes(32), b"message digest")
    assert not seals.verify(seals.SM2, PUBLIC, b"not a signature", b"message digest")
    assert not seals.verify(seals.SM2, b"\x04" + bytes(64), R + S, b"message digest")


def test_a_qilu_seal_verifies_in_gmssl() -> None:
    key = seals.new_key()
    message = "出生医学证明 · 370102202612060000000001".encode()
    signature = key.sign(message)
    assert len(signature) == 64 and key.public_key[0] == 4
    assert sm2_verify(key.public_key[1:], message, der(signature), seals.SIGNER_ID)
    assert not sm2_verify(key.public_key[1:], message + b".", der(signature), seals.SIGNER_ID)


def test_licences_are_sealed_with_sm2(province: Province, store: LocalFileStore) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    key = province.session.get_one(DepartmentKey, licence.key_id)
    assert key.algorithm == seals.SM2 and len(licence.signature) == 64
    document = licences.canonical(licences.document_of(licence, licence.issuer))
    assert sm2_verify(key.public_key[1:], document, der(licence.signature), seals.SIGNER_ID)


def test_an_ed25519_licence_keeps_verifying_after_its_department_moves_to_sm2(
    province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    session, vault = province.session, province.vault
    current = session.get_one(DepartmentKey, licence.key_id)
    current.retired_at = datetime.now(UTC)
    # The department's key as Qilu made them before SM2, still live, and the licence it sealed.
    old = Ed25519PrivateKey.generate()
    pem = old.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    legacy = DepartmentKey(
        department_id=licence.issuer_department_id,
        algorithm=seals.ED25519,
        public_key=old.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        ),
        private_key_cipher=vault.encrypt(pem, licences.KEY_COLUMN),
        created_at=datetime.now(UTC),
    )
    session.add(legacy)
    session.flush()
    licence.key_id = legacy.id
    licence.signature = old.sign(licences.canonical(licences.document_of(licence, licence.issuer)))
    session.flush()
    today = beijing_today()
    seal = licence.signature.hex()
    assert licences.verify_number(session, licence.number, seal, today).status == "valid"

    row, key = licences.department_key(session, vault, licence.issuer)  # the next seal
    assert row.algorithm == seals.SM2 and row.id != legacy.id
    assert seals.verify(seals.SM2, row.public_key, key.sign(b"next"), b"next")
    assert legacy.retired_at is not None  # it seals nothing more
    live = session.scalars(
        select(DepartmentKey).where(
            DepartmentKey.department_id == licence.issuer_department_id,
            DepartmentKey.retired_at.is_(None),
        )
    ).all()
    assert [k.id for k in live] == [row.id]
    assert licences.verify_number(session, licence.number, seal, today).status == "valid"
    document = licences.document_of(licence, licence.issuer)
    document["holder_name"] = "冒名者"
    assert licences.verify_document(session, document, seal, today).status == "forged"
