"""E-licences (电子证照): issued on approval, sealed with the issuing department's key, entered in
the 电子证照 library, shown with a QR code, verified by anyone on a public page, reused by later
applications (免提交).

Each licence has its 电子证照标识 (GB/T 36903, `qilu.codes.licence_ids`) built from its type's
code in the 证照目录 (GB/T 36902, `data/licence_types.yaml`), the issuer's USCC, its number and
version. Its life is kept as events: 签发, 暂扣 and 恢复, 变更 and 延续 (each a new version,
resealed, with a new identifier; the old version's document and seal are kept, so what was
handed out before still verifies and says what replaced it), 注销. Every use (用证) is recorded
with its 事由 and the holder's authorisation, for the holder to see.

Trust grades follow 国办函〔2016〕108号: A is issued by the agency with its seal and usable
directly, which is every licence Qilu issues; B–D are the licences applications bring instead
(taken in at a window, uploaded, promised), graded by rule in `services.trust`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import segno
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from qilu import ofd, pdf, seals
from qilu.audit.service import record
from qilu.codes import licence_ids
from qilu.codes.idcard import make_id_number
from qilu.data.loading import push_rows
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import roles
from qilu.identity.models import Department, Person
from qilu.pii import Vault
from qilu.seals import SealKey
from qilu.services.models import Case, DepartmentKey, Licence, LicenceEvent, LicenceUse
from qilu.services.specs import shipped_catalog

LIBRARY = "JC-ZZ-001"
KEY_COLUMN = "department_key"
HOLDER_COLUMN = "licence_holder_code"
VERIFY_PATH = "/licences/verify"


def _until(today: date, years: int) -> date | None:
    """The last day of validity `years` from today (None: 长期有效)."""
    if not years:
        return None
    try:
        return today.replace(year=today.year + years)
    except ValueError:  # 29 February
        return today.replace(year=today.year + years, day=28)


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


STATE_NAMES = {"valid": "有效", "suspended": "暂扣", "revoked": "注销"}
ACTION_NAMES = {
    "issue": "签发",
    "suspend": "暂扣",
    "restore": "恢复有效",
    "change": "变更",
    "renew": "延续",
    "revoke": "注销",
}
# Content a 变更 cannot touch: what the licence was issued for.
FIXED = frozenset({"事项", "办件编号"})
# What the version a 变更 or 延续 replaced is from then on.
REPLACED_NAMES = {"change": "变更", "renew": "延续"}


def type_code_of(session: Session, licence_type: str) -> str:
    """证照类型代码 of a type in the 证照目录: the national one where the province set it, else
    its province defining department's USCC and the type's sequence."""
    entry = shipped_catalog().licence_types.get(licence_type)
    if entry is None:
        raise QiluError("licence.type_unknown", f"证照目录中没有“{licence_type}”", field="type")
    if entry.type_code:
        return entry.type_code
    definer = session.scalars(
        select(Department)
        .where(Department.kind == entry.defined_by, Department.level == "province")
        .limit(1)
    ).first()
    if definer is None:
        raise NotFound("licence.no_definer", f"没有定义“{licence_type}”的省级部门", field="type")
    return licence_ids.type_code(definer.uscc, entry.seq)


def document_of(licence: Licence, issuer: Department) -> dict[str, Any]:
    """What is signed and what the holder downloads: everything a verifier needs to check.
    The identifier and version are in it for licences sealed with them (all since they were
    introduced); licences sealed before keep the document they were sealed as."""
    document: dict[str, Any] = {
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
    if licence.version is not None:
        document |= {"identifier": licence.identifier, "version": licence.version}
    return document


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
    valid_until = _until(today, years)
    # One licence per case: the case's id makes the number unique without a counter.
    number = f"{issuer.division_code}{today:%Y%m%d}{case_id:010d}"
    type_code = type_code_of(session, licence_type)
    licence = Licence(
        number=number,
        identifier=licence_ids.identifier(type_code, issuer.uscc, number, 1),
        version=1,
        licence_type=licence_type,
        holder_kind=holder_kind,
        holder_code_index=holder_code_index,
        holder_code_cipher=vault.encrypt(holder_code, HOLDER_COLUMN),
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
        state="valid",
        issued_at=datetime.now(UTC),
    )
    licence.signature = private.sign(canonical(document_of(licence, issuer)))
    session.add(licence)
    session.flush()
    _event(session, licence, "issue", None, "valid", None, None)
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


def in_force() -> ColumnElement[bool]:
    """Licences 有效 (not 暂扣 or 注销); rows written before states read by their status."""
    return or_(Licence.state == "valid", and_(Licence.state.is_(None), Licence.status == "valid"))


def find_held(session: Session, wallet: Wallet, licence_type: str, today: date) -> Licence | None:
    """The holder's newest licence of a type still in force, if any (for 免提交 and rules)."""
    held = session.scalars(
        select(Licence)
        .where(holder_or_keeper(wallet), Licence.licence_type == licence_type, in_force())
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


def _event(
    session: Session,
    licence: Licence,
    action: str,
    from_state: str | None,
    to_state: str,
    reason: str | None,
    actor_person_id: int | None,
    replaced: dict[str, Any] | None = None,
) -> None:
    session.add(
        LicenceEvent(
            licence_id=licence.id,
            action=action,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            version=licence.version or 1,
            replaced=replaced,
            actor_person_id=actor_person_id,
            at=datetime.now(UTC),
        )
    )
    if action != "issue":
        record(
            session,
            f"services.licence_{action}",
            actor_person_id=actor_person_id,
            subject=f"licence:{licence.number}",
            details={"reason": reason, "version": licence.version or 1},
        )


def record_use(
    session: Session,
    licence: Licence,
    *,
    user: str,
    purpose: str,
    authorisation: str,
    department_id: int | None = None,
    application_id: int | None = None,
) -> None:
    """用证: who read `licence`, what for, and on what authority of the holder."""
    session.add(
        LicenceUse(
            licence_id=licence.id,
            used_by=user[:200],
            department_id=department_id,
            purpose=purpose[:300],
            authorisation=authorisation[:100],
            application_id=application_id,
            at=datetime.now(UTC),
        )
    )


def history_of(session: Session, licence: Licence) -> tuple[list[LicenceEvent], list[LicenceUse]]:
    """A licence's events and uses, newest first: what its holder is shown."""
    events = session.scalars(
        select(LicenceEvent)
        .where(LicenceEvent.licence_id == licence.id)
        .order_by(LicenceEvent.id.desc())
    )
    uses = session.scalars(
        select(LicenceUse).where(LicenceUse.licence_id == licence.id).order_by(LicenceUse.id.desc())
    )
    return list(events), list(uses)


MANAGE_ACTIONS = ("suspend", "restore", "renew", "change", "revoke")


def managed(session: Session, actor: roles.Actor, number: str) -> Licence:
    """A licence issued by a department where `actor` manages licences; for anyone else it
    does not exist."""
    found = session.scalars(select(Licence).where(Licence.number == number)).one_or_none()
    if found is None or not roles.allows(actor, "licences.manage", roles.Target.of(found.issuer)):
        raise NotFound("licence.not_found", f"没有编号为 {number} 的电子证照", field="number")
    return found


def issued_by(session: Session, actor: roles.Actor, query: str = "") -> list[Licence]:
    """The newest licences the actor's departments issued, found by number, identifier or
    holder's name."""
    departments = roles.departments_for(actor, "licences.manage")
    statement = select(Licence).where(Licence.issuer_department_id.in_(departments))
    if query.strip():
        text = query.strip()
        statement = statement.where(
            or_(
                Licence.number == text,
                Licence.identifier == text.upper(),
                Licence.holder_name == text,
            )
        )
    return list(session.scalars(statement.order_by(Licence.id.desc()).limit(50)))


def manage(
    session: Session,
    vault: Vault,
    actor: roles.Actor,
    number: str,
    action: str,
    *,
    reason: str,
    today: date,
    years: int | None = None,
    content: dict[str, Any] | None = None,
) -> Licence:
    """An issuing department's step on one of its licences; nobody acts on their own."""
    licence = managed(session, actor, number)
    person = roles.person_of(actor)
    if person is not None:
        own = session.get_one(Person, person).id_number_index
        if own in (licence.holder_code_index, licence.keeper_code_index):
            raise Refused("role.own_request", "不能办理本人持有的证照：请由其他人员办理")
    if action in ("suspend", "restore", "revoke"):
        step = {"suspend": suspend_licence, "restore": restore_licence, "revoke": revoke_licence}
        step[action](session, licence, reason=reason, actor_person_id=person)
    elif action in ("renew", "change"):
        reissue_licence(
            session,
            vault,
            licence,
            action,
            reason=reason,
            actor_person_id=person,
            today=today,
            years=years,
            content=content,
        )
    else:
        raise QiluError("licence.action", "未知的证照操作", field="action")
    return licence


def _moving(licence: Licence, action: str, allowed: tuple[str, ...], reason: str) -> str:
    """The licence's state, if `action` may start from it and a reason is given."""
    if not reason.strip():
        raise QiluError("licence.reason", f"请写明{ACTION_NAMES[action]}原因", field="reason")
    state = licence.current_state
    if state not in allowed:
        raise QiluError(
            "licence.state",
            f"该证照当前为“{STATE_NAMES[state]}”，不能{ACTION_NAMES[action]}",
            field="action",
        )
    return state


def revoke_licence(
    session: Session, licence: Licence, *, reason: str, actor_person_id: int | None
) -> None:
    state = _moving(licence, "revoke", ("valid", "suspended"), reason)
    licence.status = licence.state = "revoked"
    licence.revoked_at = datetime.now(UTC)
    licence.revoke_reason = reason
    _event(session, licence, "revoke", state, "revoked", reason, actor_person_id)


def suspend_licence(
    session: Session, licence: Licence, *, reason: str, actor_person_id: int | None
) -> None:
    """暂扣: the licence stops counting (no 免提交, verifiers are told) until restored."""
    _moving(licence, "suspend", ("valid",), reason)
    licence.state = "suspended"
    _event(session, licence, "suspend", "valid", "suspended", reason, actor_person_id)


def restore_licence(
    session: Session, licence: Licence, *, reason: str, actor_person_id: int | None
) -> None:
    _moving(licence, "restore", ("suspended",), reason)
    licence.state = "valid"
    _event(session, licence, "restore", "suspended", "valid", reason, actor_person_id)


def reissue_licence(
    session: Session,
    vault: Vault,
    licence: Licence,
    action: str,
    *,
    reason: str,
    actor_person_id: int | None,
    today: date,
    content: dict[str, Any] | None = None,
    years: int | None = None,
) -> None:
    """变更 (`content` changes) or 延续 (valid again for `years` from today, 0 = 长期): the next
    version, with its identifier, sealed anew by the issuer's live key. The version replaced is
    kept whole in the event."""
    _moving(licence, action, ("valid",), reason)
    if action == "change":
        if not content:
            raise QiluError("licence.change_fields", "请填写要变更的照面内容", field="content")
        unknown = sorted(set(content) - (set(licence.content) - FIXED))
        if unknown:
            raise QiluError(
                "licence.change_fields",
                f"只能变更照面已有的项目，不能变更：{'、'.join(unknown)}",
                field="content",
            )
        if all(licence.content[k] == v for k, v in content.items()):
            raise QiluError("licence.unchanged", "没有任何变更", field="content")
    elif action != "renew" or years is None or not 0 <= years <= 50:
        raise QiluError("licence.years", "延续年限须为 0–50 年（0 为长期）", field="years")
    issuer = licence.issuer
    replaced = {
        "identifier": licence.identifier,
        "version": licence.version,
        "document": document_of(licence, issuer),
        "signature": licence.signature.hex(),
        "key_id": licence.key_id,
    }
    licence.version = (licence.version or 1) + 1
    parsed = licence_ids.parse_identifier(licence.identifier) if licence.identifier else None
    type_code = parsed.type_code if parsed else type_code_of(session, licence.licence_type)
    licence.identifier = licence_ids.identifier(
        type_code, issuer.uscc, licence.number, licence.version
    )
    if action == "change":
        licence.content = {**licence.content, **(content or {})}
    else:
        licence.valid_from = today
        licence.valid_until = _until(today, years or 0)
    key, private = department_key(session, vault, issuer)
    licence.key_id = key.id
    licence.signature = private.sign(canonical(document_of(licence, issuer)))
    _event(session, licence, action, "valid", "valid", reason, actor_person_id, replaced)


@dataclass(frozen=True)
class Verdict:
    status: str  # valid | expired | suspended | revoked | replaced | forged
    document: dict[str, Any] | None
    reason: str


STATUS_NAMES = {
    "valid": "有效",
    "expired": "已过期",
    "suspended": "暂扣",
    "revoked": "已注销",
    "replaced": "已被新版本取代",
    "forged": "伪造或被篡改",
}


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


def _replacements(session: Session, licence: Licence) -> list[LicenceEvent]:
    return list(
        session.scalars(
            select(LicenceEvent)
            .where(
                LicenceEvent.licence_id == licence.id,
                LicenceEvent.action.in_(tuple(REPLACED_NAMES)),
            )
            .order_by(LicenceEvent.id)
        )
    )


def _sealed(session: Session, key_id: int, document: dict[str, Any], signature: bytes) -> bool:
    key = session.get_one(DepartmentKey, key_id)
    return seals.verify(key.algorithm, key.public_key, signature, canonical(document))


def _verdict(
    session: Session, found: Licence, document: dict[str, Any], signature: bytes, today: date
) -> Verdict:
    """The verdict on a document presented as the issued licence `found` (any version of it)."""
    presented = document.get("version") or 1
    if presented != (found.version or 1):
        return _replaced_verdict(session, found, document, signature, presented)
    if not _sealed(session, found.key_id, document, signature):
        return Verdict("forged", None, "签名与签发机构的印章密钥不符，内容可能被篡改")
    if found.current_state == "revoked":
        return Verdict(
            "revoked", document, f"已于 {found.revoked_at:%Y-%m-%d} 注销：{found.revoke_reason}"
        )
    if found.current_state == "suspended":
        return Verdict("suspended", document, "该证照已被签发机构暂扣，暂停使用")
    if found.valid_until is not None and found.valid_until < today:
        return Verdict("expired", document, f"有效期至 {found.valid_until:%Y-%m-%d}，已过期")
    return Verdict("valid", document, "签名有效，证照在有效期内")


def _replaced_verdict(
    session: Session, found: Licence, document: dict[str, Any], signature: bytes, version: int
) -> Verdict:
    """A version a 变更 or 延续 replaced: genuine if sealed as it was, and said to be replaced."""
    for event in _replacements(session, found):
        old = event.replaced or {}
        if (old.get("version") or 1) != version:
            continue
        if not _sealed(session, int(old["key_id"]), document, signature):
            break
        return Verdict(
            "replaced",
            document,
            f"这是第 {version} 版，已于 {event.at:%Y-%m-%d} {ACTION_NAMES[event.action]}；"
            f"现行为第 {found.version} 版（{found.identifier}）",
        )
    return Verdict("forged", None, "签名与签发机构的印章密钥不符，内容可能被篡改")


def verify_number(session: Session, number: str, seal: str, today: date) -> Verdict:
    """Check a licence by the number and seal its QR code carries (a replaced version's QR
    still names its seal)."""
    found = session.scalars(select(Licence).where(Licence.number == number)).one_or_none()
    if found is None:
        return Verdict("forged", None, "签发记录中没有该证照编号")
    if seal == found.signature.hex():
        return _verdict(session, found, document_of(found, found.issuer), found.signature, today)
    for event in _replacements(session, found):
        old = event.replaced or {}
        if old.get("signature") == seal:
            sealed = bytes.fromhex(seal)
            return _verdict(session, found, old["document"], sealed, today)
    return Verdict("forged", None, "二维码中的签名与签发记录不符")


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


def ofd_of(
    session: Session,
    vault: Vault,
    licence: Licence,
    fields: list[tuple[str, str]],
    *,
    at: datetime | None = None,
) -> bytes:
    """The licence as an OFD layout document (GB/T 33190 / 36905): its face, the data index,
    the signed licence document inside, sealed with SM2 by the issuer's live key."""
    issuer = licence.issuer
    _, key = department_key(session, vault, issuer)
    face = ofd.Face(
        title=licence.licence_type,
        lines=[("持证人", licence.holder_name), *fields, ("证照编号", licence.number)],
        issuer=issuer.name,
        issued_on=licence.valid_from.isoformat(),
        identifier=licence.identifier or licence.number,
    )
    document = document_of(licence, issuer)
    return ofd.licence_ofd(face, document, licence.signature.hex(), key, signer=issuer.name, at=at)


def verify_ofd(session: Session, data: bytes, today: date) -> Verdict:
    """Check a presented OFD licence: its package seal under one of the issuer's keys (nothing
    in it changed), then the licence document inside against the register."""
    opened = ofd.open_licence(data)
    if opened.document is None:
        return Verdict("forged", None, opened.problems[0])
    found = session.scalars(
        select(Licence).where(Licence.number == str(opened.document.get("number")))
    ).one_or_none()
    if found is None:
        return Verdict("forged", None, "签发记录中没有该证照编号")
    keys = session.scalars(
        select(DepartmentKey).where(
            DepartmentKey.department_id == found.issuer_department_id,
            DepartmentKey.algorithm == seals.SM2,
        )
    ).all()
    checked = [ofd.open_licence(data, key.public_key).problems for key in keys]
    if not any(problems == [] for problems in checked):
        reasons = min(checked, key=len, default=["签发机构没有可验证的国密印章密钥"])
        return Verdict("forged", None, "OFD 文件的国密签名未通过：" + "；".join(reasons))
    try:
        signature = bytes.fromhex(opened.seal_hex)
    except ValueError:
        return Verdict("forged", None, "证照数据不完整或签名格式有误")
    return _verdict(session, found, opened.document, signature, today)


def _void(licence: Licence, today: date) -> str | None:
    """What a printed face must say across it when it no longer holds."""
    if licence.current_state == "revoked":
        return "已注销"
    if licence.current_state == "suspended":
        return "已暂扣"
    if licence.valid_until is not None and licence.valid_until < today:
        return "已过期"
    return None
