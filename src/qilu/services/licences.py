"""E-licences (电子证照): issued on approval, sealed with the issuing department's key, entered in
the 电子证照 library, shown with a QR code, verified by anyone on a public page, reused by later
applications (免提交).

Trust grades follow 国办函〔2016〕108号: A is issued by the agency with its seal and usable
directly, which is what Qilu issues; B–D describe licences checked at a window, uploaded, or
self-made under a promise, and are not issued here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import segno
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from qilu import pdf, seals
from qilu.audit.service import record
from qilu.codes.idcard import make_id_number
from qilu.data.loading import push_rows
from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.models import Department, Person
from qilu.pii import Vault
from qilu.seals import SealKey
from qilu.services.models import Case, DepartmentKey, Licence

LIBRARY = "JC-ZZ-001"
KEY_COLUMN = "department_key"
VERIFY_PATH = "/licences/verify"


def department_key(
    session: Session, vault: Vault, department: Department
) -> tuple[DepartmentKey, SealKey]:
    """The department's live sealing key: SM2, made on its first seal. A department still on
    an Ed25519 key from before SM2 gets a new SM2 key, and the old one is retired: what it
    sealed keeps verifying under it, and it seals nothing more."""
    row = session.scalars(
        select(DepartmentKey)
        .where(DepartmentKey.department_id == department.id, DepartmentKey.retired_at.is_(None))
        .order_by(DepartmentKey.id.desc())
        .limit(1)
    ).first()
    now = datetime.now(UTC)
    if row is not None and row.algorithm == seals.SM2:
        opened = vault.decrypt(row.private_key_cipher, KEY_COLUMN)
        return row, SealKey.opened(row.public_key, opened)
    if row is not None:
        row.retired_at = now
    key = seals.new_key()
    row = DepartmentKey(
        department_id=department.id,
        algorithm=seals.SM2,
        public_key=key.public_key,
        private_key_cipher=vault.encrypt(key.stored(), KEY_COLUMN),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, key


def document_of(licence: Licence, issuer: Department) -> dict[str, Any]:
    """What is signed and what the holder downloads: everything a verifier needs to check."""
    return {
        "number": licence.number,
        "type": licence.licence_type,
        "holder_name": licence.holder_name,
        "holder_kind": licence.holder_kind,
        "issuer": issuer.name,
        "issuer_uscc": issuer.uscc,
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "trust_grade": licence.trust_grade,
        "content": licence.content,
    }


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def issue_licence(
    session: Session,
    vault: Vault,
    *,
    licence_type: str,
    years: int,
    holder_kind: str,
    holder_code: str,
    holder_code_index: bytes,
    holder_name: str,
    issuer: Department,
    case_id: int,
    content: dict[str, Any],
    today: date,
    keeper_code_index: bytes | None = None,
) -> Licence:
    """Issue, seal and register a licence; its entry in the 电子证照 library goes in the same
    transaction, so a licence exists everywhere or nowhere."""
    key, private = department_key(session, vault, issuer)
    valid_until = None
    if years:
        try:
            valid_until = today.replace(year=today.year + years)
        except ValueError:  # 29 February
            valid_until = today.replace(year=today.year + years, day=28)
    licence = Licence(
        # One licence per case: the case's id makes the number unique without a counter.
        number=f"{issuer.division_code}{today:%Y%m%d}{case_id:010d}",
        licence_type=licence_type,
        holder_kind=holder_kind,
        holder_code_index=holder_code_index,
        holder_name=holder_name,
        keeper_code_index=keeper_code_index,
        issuer_department_id=issuer.id,
        case_id=case_id,
        content=content,
        valid_from=today,
        valid_until=valid_until,
        trust_grade="A",
        key_id=key.id,
        signature=b"",
        status="valid",
        issued_at=datetime.now(UTC),
    )
    licence.signature = private.sign(canonical(document_of(licence, issuer)))
    session.add(licence)
    session.flush()
    _register(session, vault, licence, holder_code, issuer)
    record(
        session,
        "services.licence_issued",
        subject=f"licence:{licence.number}",
        details={"type": licence_type, "issuer": issuer.code, "case": case_id},
    )
    return licence


def _register(
    session: Session, vault: Vault, licence: Licence, holder_code: str, issuer: Department
) -> None:
    """Enter the licence in the 电子证照 library (pushed by the platform that holds it)."""
    push_rows(
        session,
        vault,
        LIBRARY,
        [
            {
                "licence_number": licence.number,
                "licence_type": licence.licence_type,
                "holder_id": holder_code,
                "holder_name": licence.holder_name,
                "issuer": issuer.name,
                "valid_from": licence.valid_from.isoformat(),
                "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
                "status": "有效",
            }
        ],
        actor=roles.PLATFORM,
        source=f"services:{issuer.code}",
    )


# The blind indexes a holder's licences may be under: one, or during an index-key rotation
# (until `qilu keys rotate-pii` has rebuilt them) one per key.
Wallet = tuple[bytes, ...]


def entity_holder_index(vault: Vault, uscc: str) -> bytes:
    """How an enterprise's licences are issued (a person's: their ID number's blind index)."""
    return vault.blind_index(uscc, "licence_holder")


def entity_wallet(vault: Vault, uscc: str) -> Wallet:
    return vault.blind_indexes(uscc, "licence_holder")


def person_wallet(vault: Vault, person: Person) -> Wallet:
    """A person's licences are under their register index; during a rotation also under any
    key's index of their number (a newborn's certificate issued before they were registered)."""
    if not vault.index_rotating:
        return (person.id_number_index,)
    number = vault.decrypt(person.id_number_cipher, "id_number")
    others = vault.blind_indexes(number, "id_number")
    return (person.id_number_index, *(i for i in others if i != person.id_number_index))


def newborn_id_number(
    session: Session, vault: Vault, division_code: str, birth: date, sex: str
) -> str:
    """预赋码: the 公民身份号码 a newborn is given with the birth certificate (出生一件事), the
    first order number of the right parity (odd for boys) no person or licence holds yet."""
    first = 1 if sex == "男" else 2
    for order in range(first, 1000, 2):
        number = make_id_number(division_code, birth, order)
        indexes = vault.blind_indexes(number, "id_number")
        taken = session.scalar(
            select(Licence.id).where(Licence.holder_code_index.in_(indexes)).limit(1)
        ) or session.scalar(select(Person.id).where(Person.id_number_index.in_(indexes)))
        if not taken:
            return number
    raise QiluError("licence.no_number", "当日该地区的身份号码顺序码已用完", field="holder")


def holder_or_keeper(wallet: Wallet) -> ColumnElement[bool]:
    """Licences a wallet shows: those it holds and those it keeps for someone (a child's)."""
    return or_(Licence.holder_code_index.in_(wallet), Licence.keeper_code_index.in_(wallet))


def holds_licence(session: Session, wallet: Wallet, licence_type: str, today: date) -> bool:
    return find_held(session, wallet, licence_type, today) is not None


def find_held(session: Session, wallet: Wallet, licence_type: str, today: date) -> Licence | None:
    """The holder's newest licence of a type still in force, if any (for 免提交 and rules)."""
    held = session.scalars(
        select(Licence)
        .where(
            holder_or_keeper(wallet),
            Licence.licence_type == licence_type,
            Licence.status == "valid",
        )
        .order_by(Licence.id.desc())
    )
    return next((h for h in held if h.valid_until is None or h.valid_until >= today), None)


def licences_of(session: Session, wallet: Wallet) -> list[Licence]:
    return list(
        session.scalars(
            select(Licence).where(holder_or_keeper(wallet)).order_by(Licence.issued_at.desc())
        )
    )


def get_licence(session: Session, number: str) -> Licence:
    found = session.scalars(select(Licence).where(Licence.number == number)).one_or_none()
    if found is None:
        raise NotFound("licence.not_found", f"没有编号为 {number} 的电子证照", field="number")
    return found


def revoke_licence(
    session: Session, licence: Licence, *, reason: str, actor_person_id: int | None
) -> None:
    if not reason.strip():
        raise QiluError("licence.reason", "请写明注销原因", field="reason")
    if licence.status == "revoked":
        raise QiluError("licence.revoked", "该证照已注销", field="number")
    licence.status = "revoked"
    licence.revoked_at = datetime.now(UTC)
    licence.revoke_reason = reason
    record(
        session,
        "services.licence_revoked",
        actor_person_id=actor_person_id,
        subject=f"licence:{licence.number}",
        details={"reason": reason},
    )


@dataclass(frozen=True)
class Verdict:
    status: str  # valid | expired | revoked | forged
    document: dict[str, Any] | None
    reason: str


STATUS_NAMES = {"valid": "有效", "expired": "已过期", "revoked": "已注销", "forged": "伪造或被篡改"}


def verify_document(
    session: Session, document: dict[str, Any], signature_hex: str, today: date
) -> Verdict:
    """Check a presented licence document (downloaded file or QR contents): is it what the
    issuer sealed, and does it still hold?"""
    try:
        number = str(document["number"])
        signature = bytes.fromhex(signature_hex)
    except (KeyError, TypeError, ValueError):
        return Verdict("forged", None, "证照数据不完整或签名格式有误")
    found = session.scalars(select(Licence).where(Licence.number == number)).one_or_none()
    if found is None:
        return Verdict("forged", None, "签发记录中没有该证照编号")
    return _verdict(session, found, document, signature, today)


def _verdict(
    session: Session, found: Licence, document: dict[str, Any], signature: bytes, today: date
) -> Verdict:
    """The verdict on a document presented as the issued licence `found`."""
    key = session.get_one(DepartmentKey, found.key_id)
    if not seals.verify(key.algorithm, key.public_key, signature, canonical(document)):
        return Verdict("forged", None, "签名与签发机构的印章密钥不符，内容可能被篡改")
    if found.status == "revoked":
        return Verdict(
            "revoked", document, f"已于 {found.revoked_at:%Y-%m-%d} 注销：{found.revoke_reason}"
        )
    if found.valid_until is not None and found.valid_until < today:
        return Verdict("expired", document, f"有效期至 {found.valid_until:%Y-%m-%d}，已过期")
    return Verdict("valid", document, "签名有效，证照在有效期内")


def verify_number(session: Session, number: str, seal: str, today: date) -> Verdict:
    """Check a licence by the number and seal its QR code carries."""
    found = session.scalars(select(Licence).where(Licence.number == number)).one_or_none()
    if found is None:
        return Verdict("forged", None, "签发记录中没有该证照编号")
    if seal != found.signature.hex():
        return Verdict("forged", None, "二维码中的签名与签发记录不符")
    return _verdict(session, found, document_of(found, found.issuer), found.signature, today)


def verify_url(licence: Licence, base_url: str) -> str:
    """The public check its QR leads to: the number and the seal."""
    query = f"number={licence.number}&seal={licence.signature.hex()}"
    return f"{base_url.rstrip('/')}{VERIFY_PATH}?{query}"


def qr_svg(licence: Licence, base_url: str, size: int = 150) -> str:
    """The licence's QR code (SVG, `size` pixels square): the public verification address
    with its seal."""
    code = segno.make(verify_url(licence, base_url), error="m")
    return code.svg_inline(scale=size / code.symbol_size(scale=1)[0])


def issued_for(session: Session, cases: list[Case]) -> list[Licence]:
    """The licences these cases issued."""
    if not cases:
        return []
    return list(session.scalars(select(Licence).where(Licence.case_id.in_([c.id for c in cases]))))


def pdf_of(
    licence: Licence, fields: list[tuple[str, str]], font: Path, base_url: str, today: date
) -> bytes:
    """The licence's face as a PDF with the QR that verifies it (`fields`: label, value)."""
    validity = f"有效期 {licence.valid_from} 至 {licence.valid_until or '长期'}"
    return pdf.licence(
        font=font,
        title=licence.licence_type,
        number=licence.number,
        holder=licence.holder_name,
        fields=fields,
        validity=f"{validity} · 可信等级 {licence.trust_grade}",
        issuer=licence.issuer.name,
        seal_hex=licence.signature.hex(),
        verify_url=verify_url(licence, base_url),
        created=licence.issued_at,
        void=_void(licence, today),
    )


def _void(licence: Licence, today: date) -> str | None:
    """What a printed face must say across it when it no longer holds."""
    if licence.status == "revoked":
        return "已注销"
    if licence.valid_until is not None and licence.valid_until < today:
        return "已过期"
    return None
