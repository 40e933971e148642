"""SMS one-time codes as a second factor, to the phone the population register holds: six
digits, five minutes, five tries, one use; at most one a minute and five an hour per account;
sent through the outbox (`qilu.sms`) after the code is stored, never inside the transaction."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import QiluError
from qilu.identity.models import Account, Person, SmsCode
from qilu.identity.service import phone_of
from qilu.outbox.service import enqueue
from qilu.pii import Vault, mask_phone
from qilu.sms import SmsSender

SEND = "sms.second_factor"
LIFETIME = timedelta(minutes=5)
TRIES = 5
EVERY = timedelta(minutes=1)
PER_HOUR = 5


def _digest(account_id: int, code: str) -> bytes:
    return secret_digest(f"sms:{account_id}:{code}")


def send_code(
    session: Session,
    vault: Vault,
    account: Account,
    *,
    client_address: str | None,
    now: datetime | None = None,
    purpose: str = "登录",
) -> str:
    """Store a new code and queue its message (saying what it is for); returns the masked
    phone it goes to."""
    moment = now or datetime.now(UTC)
    phone = phone_of(vault, account.person)
    if phone is None:
        raise QiluError(
            "sms.no_phone", "人口库中没有您的手机号码：请使用验证器应用或恢复码", field="code"
        )
    last = session.scalar(select(func.max(SmsCode.sent_at)).where(SmsCode.account_id == account.id))
    if last is not None and moment - last < EVERY:
        wait = math.ceil((EVERY - (moment - last)).total_seconds())
        raise QiluError("sms.too_soon", f"验证码已发送：请 {wait} 秒后再重新获取", field="code")
    hour = session.scalar(
        select(func.count()).where(
            SmsCode.account_id == account.id, SmsCode.sent_at > moment - timedelta(hours=1)
        )
    )
    if (hour or 0) >= PER_HOUR:
        raise QiluError(
            "sms.too_many", "一小时内获取验证码次数过多：请稍后再试或使用验证器应用", field="code"
        )
    session.execute(  # codes older than the hourly limit looks at serve no one
        delete(SmsCode).where(
            SmsCode.account_id == account.id, SmsCode.sent_at < moment - timedelta(days=1)
        )
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    row = SmsCode(
        account_id=account.id,
        code_hash=_digest(account.id, code),
        sent_at=moment,
        expires_at=moment + LIFETIME,
        attempts=0,
    )
    session.add(row)
    session.flush()
    text = f"【齐鲁】您的{purpose}验证码为 {code}，5 分钟内有效。请勿告诉他人。"
    enqueue(
        session,
        SEND,
        str(row.id),
        {"person_id": account.person_id, "text": vault.encrypt(text, "sms_text").hex()},
    )
    masked = mask_phone(phone)
    record(
        session,
        "auth.sms_code_sent",
        actor_person_id=account.person_id,
        subject=f"account:{account.id}",
        client_address=client_address,
        details={"phone": masked},
    )
    return masked


def accept(session: Session, account: Account, code: str, moment: datetime) -> bool:
    """Whether `code` is the account's live SMS code; a wrong try counts against it."""
    row = session.scalars(
        select(SmsCode)
        .where(
            SmsCode.account_id == account.id,
            SmsCode.used_at.is_(None),
            SmsCode.expires_at > moment,
            SmsCode.attempts < TRIES,
        )
        .order_by(SmsCode.sent_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return False
    if not secrets.compare_digest(row.code_hash, _digest(account.id, code)):
        row.attempts += 1
        return False
    row.used_at = moment
    return True


def deliver(
    session: Session, payload: dict[str, Any], *, vault: Vault, sender: SmsSender
) -> Callable[[], None] | None:
    """The outbox handler: the phone as the register has it now, the message, and the sending,
    which the outbox does with no transaction open."""
    person = session.get(Person, payload["person_id"])
    phone = phone_of(vault, person) if person is not None else None
    if phone is None:
        return None
    text = vault.decrypt(bytes.fromhex(payload["text"]), "sms_text")
    return lambda: sender.send(phone, text)
