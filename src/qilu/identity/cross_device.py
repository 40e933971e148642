"""扫码登录: sign in on a computer by confirming on a phone that is already signed in, as
爱山东 and 浙里办 do.

The computer asks for a sign-in and shows a QR code of the confirmation address (its reference)
with a two-digit check code; it holds a second secret (the poll token) in a cookie nobody else
sees. The person, signed in on their phone, opens the address, compares the check code and the
computer's description, and confirms or refuses. The computer's next poll then gets a session
for that person at the phone session's level, once. Two minutes, one use; a QR code photographed
by someone else opens nothing without the phone's confirmation, and a confirmation opens only
the computer that holds the poll token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import NotFound, QiluError
from qilu.identity.models import Account, CrossDeviceSignIn, WebSession

LIFETIME = timedelta(minutes=2)


@dataclass(frozen=True)
class Started:
    reference: str  # in the QR code's address
    poll: str  # the computer's cookie
    check_code: str
    expires_at: datetime


def start(
    session: Session,
    *,
    client_address: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> Started:
    moment = now or datetime.now(UTC)
    session.execute(  # what is long over goes: a request lives two minutes
        delete(CrossDeviceSignIn).where(CrossDeviceSignIn.expires_at < moment - timedelta(days=1))
    )
    reference, poll = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
    check_code = f"{secrets.randbelow(100):02d}"
    session.add(
        CrossDeviceSignIn(
            reference_hash=secret_digest(reference),
            poll_hash=secret_digest(poll),
            check_code=check_code,
            desktop_address=client_address,
            desktop_agent=(user_agent or "")[:255] or None,
            created_at=moment,
            expires_at=moment + LIFETIME,
        )
    )
    session.flush()
    return Started(reference, poll, check_code, moment + LIFETIME)


def waiting(session: Session, reference: str, *, now: datetime | None = None) -> CrossDeviceSignIn:
    """The request a phone is asked to confirm: open, undecided and in time."""
    digest = secret_digest(reference)
    row = session.scalars(
        select(CrossDeviceSignIn).where(CrossDeviceSignIn.reference_hash == digest)
    ).first()
    if row is None:
        raise NotFound("qr.not_found", "二维码无效：请在电脑上重新获取")
    if row.decided_at is not None:
        raise QiluError("qr.used", "这个二维码已经确认过：请在电脑上重新获取")
    if row.expires_at <= (now or datetime.now(UTC)):
        raise QiluError("qr.expired", "二维码已过期：请在电脑上刷新后重新扫码")
    return row


def decide(
    session: Session,
    reference: str,
    phone: WebSession,
    *,
    approve: bool,
    client_address: str | None,
    now: datetime | None = None,
) -> CrossDeviceSignIn:
    """The person on the phone confirms (or refuses) signing in on the computer."""
    moment = now or datetime.now(UTC)
    row = waiting(session, reference, now=moment)
    row.decided_at = moment
    row.refused = not approve
    if approve:
        row.account_id, row.assurance = phone.account_id, phone.assurance
    record(
        session,
        "auth.cross_device_confirmed" if approve else "auth.cross_device_refused",
        actor_person_id=phone.account.person_id,
        subject=f"account:{phone.account_id}",
        client_address=client_address,
        details={"desktop_address": row.desktop_address},
    )
    return row


Outcome = Literal["waiting", "confirmed", "refused", "expired"]


@dataclass(frozen=True)
class Poll:
    outcome: Outcome
    account: Account | None = None
    assurance: int | None = None
    expires_at: datetime | None = None
    check_code: str | None = None


def poll(session: Session, token: str | None, *, now: datetime | None = None) -> Poll:
    """What the computer holding `token` gets now: a confirmed request is handed over once."""
    moment = now or datetime.now(UTC)
    row = (
        session.scalars(
            select(CrossDeviceSignIn).where(CrossDeviceSignIn.poll_hash == secret_digest(token))
        ).first()
        if token
        else None
    )
    if row is None or row.consumed_at is not None:
        return Poll("expired")
    if row.refused:
        return Poll("refused")
    if row.account_id is not None and row.account is not None:
        row.consumed_at = moment
        return Poll("confirmed", row.account, row.assurance)
    if row.expires_at <= moment:
        return Poll("expired")
    return Poll("waiting", expires_at=row.expires_at, check_code=row.check_code)
