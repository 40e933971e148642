"""TOTP second factor (RFC 6238, via pyotp) with one-time recovery codes.

A code is accepted within one 30-second step either side of now, and never twice: the last step
used is remembered (RFC 6238 §5.2). Wrong codes count towards the same temporary account lock as
wrong passwords. The secret is stored SM4-encrypted like other personal data.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import QiluError, Refused
from qilu.identity import sms_codes
from qilu.identity.accounts import POLICIES, count_failure, forget_failures, refuse_if_locked
from qilu.identity.models import Account, RecoveryCode
from qilu.identity.passwords import Profile
from qilu.pii import Vault

ISSUER = "齐鲁"
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    uri: str
    qr_svg: str


def begin_setup(session: Session, vault: Vault, account: Account) -> TotpSetup:
    """The pending secret (a new one the first time) until a code from the authenticator
    confirms it; reloading the page shows the same one."""
    if account.has_second_factor:
        raise QiluError("totp.already_enabled", "两步验证已启用")
    if account.totp_secret_cipher is None:
        account.totp_secret_cipher = vault.encrypt(pyotp.random_base32(), "totp_secret")
    secret = vault.decrypt(account.totp_secret_cipher, "totp_secret")
    label = f"{account.person.name}（{account.id}）"
    uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name=ISSUER)
    qr = segno.make(uri, error="m").svg_inline(scale=4, title="两步验证二维码")
    return TotpSetup(secret, uri, qr)


def confirm_setup(
    session: Session,
    vault: Vault,
    account: Account,
    code: str,
    *,
    client_address: str | None,
    now: datetime | None = None,
) -> list[str]:
    """Enable TOTP once the authenticator shows a right code; return new recovery codes."""
    moment = now or datetime.now(UTC)
    if account.totp_secret_cipher is None or account.has_second_factor:
        raise QiluError("totp.no_setup", "请先开始设置两步验证", field="code")
    step = _matching_step(vault.decrypt(account.totp_secret_cipher, "totp_secret"), code, moment)
    if step is None:
        raise QiluError(
            "totp.wrong_code", "验证码不正确，请输入验证器上当前显示的 6 位数字", field="code"
        )
    account.totp_enabled_at, account.totp_last_step = moment, step
    codes = _new_recovery_codes(session, account)
    record(
        session,
        "auth.totp_enabled",
        actor_person_id=account.person_id,
        subject=f"account:{account.id}",
        client_address=client_address,
        at=moment,
    )
    return codes


Method = Literal["totp", "sms", "recovery_code"]


def verify(
    session: Session,
    vault: Vault,
    account: Account,
    code: str,
    *,
    profile: Profile,
    client_address: str,
    now: datetime | None = None,
) -> Method:
    """Check the second factor at sign-in; raise `Refused` (trail kept) if it does not pass."""
    moment = now or datetime.now(UTC)
    key = f"account:{account.id}"
    refuse_if_locked(session, "account", key, moment, client_address)
    method = _accept(session, vault, account, code, moment)
    if method is None:
        locked = count_failure(session, "account", key, moment, POLICIES[profile])
        record(
            session,
            "auth.second_factor_failed",
            actor_person_id=account.person_id,
            subject=key,
            client_address=client_address,
            at=moment,
        )
        if locked:
            record(
                session,
                "auth.locked",
                subject=key,
                client_address=client_address,
                at=moment,
                details={"until": locked.isoformat()},
            )
        raise Refused("auth.second_factor", "验证码不正确或已使用过", field="code")
    forget_failures(session, account)
    record(
        session,
        "auth.second_factor_ok",
        actor_person_id=account.person_id,
        subject=key,
        client_address=client_address,
        at=moment,
        details={"method": method},
    )
    return method


def _accept(
    session: Session, vault: Vault, account: Account, code: str, moment: datetime
) -> Method | None:
    if account.totp_secret_cipher is None or not account.has_second_factor:
        return None
    digits = "".join(code.split())
    if digits.isdigit() and len(digits) == 6:
        secret = vault.decrypt(account.totp_secret_cipher, "totp_secret")
        step = _matching_step(secret, digits, moment)
        if step is not None and step > (account.totp_last_step or -1):
            account.totp_last_step = step
            return "totp"
        return "sms" if sms_codes.accept(session, account, digits, moment) else None
    recovery = session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.account_id == account.id,
            RecoveryCode.code_hash == secret_digest(_normalise_recovery(code)),
            RecoveryCode.used_at.is_(None),
        )
    ).one_or_none()
    if recovery is None:
        return None
    recovery.used_at = moment
    return "recovery_code"


def _matching_step(secret: str, code: str, moment: datetime) -> int | None:
    totp = pyotp.TOTP(secret)
    digits = "".join(code.split())
    for drift in (0, -1, 1):
        step = totp.timecode(moment) + drift
        if secrets.compare_digest(totp.generate_otp(step), digits):
            return step
    return None


def _new_recovery_codes(session: Session, account: Account) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        session.add(RecoveryCode(account_id=account.id, code_hash=secret_digest(raw)))
    return codes


def _normalise_recovery(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())
