"""Server-side sign-in sessions: idle and absolute timeouts, revocation, "sign out everywhere".

The browser holds a random token; the store holds its SM3 hash, so a copy of the table opens no
session. Timeouts follow the security profile (等保 level 3: 30 minutes idle).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import QiluError
from qilu.identity import oidc_logout
from qilu.identity.models import Account, OidcToken, WebSession
from qilu.identity.passwords import Profile


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta
    absolute: timedelta


TIMEOUTS: dict[Profile, Timeouts] = {
    "standard": Timeouts(idle=timedelta(hours=2), absolute=timedelta(hours=12)),
    "dengbao3": Timeouts(idle=timedelta(minutes=30), absolute=timedelta(hours=8)),
}
# Writing last_seen_at on every request would make each page view a write; a minute is enough.
TOUCH_EVERY = timedelta(minutes=1)


class SessionEnded(QiluError):
    status_code = 401


def start_session(
    session: Session,
    account: Account,
    *,
    assurance: int,
    profile: Profile,
    client_address: str | None,
    user_agent: str | None,
    second_factor_pending: bool = False,
    now: datetime | None = None,
) -> tuple[str, WebSession]:
    """A new session for a signed-in account; returns the token for the cookie.

    With `second_factor_pending` the session only lets its holder enter the second factor.
    """
    moment = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_hash=secret_digest(token),
        account_id=account.id,
        assurance=assurance,
        authenticated_at=moment,
        last_seen_at=moment,
        expires_at=moment + TIMEOUTS[profile].absolute,
        client_address=client_address,
        user_agent=(user_agent or "")[:255] or None,
        second_factor_pending=second_factor_pending,
    )
    session.add(web_session)
    session.flush()
    return token, web_session


def resume_session(
    session: Session, token: str, *, profile: Profile, now: datetime | None = None
) -> WebSession:
    """The live session for a cookie's token; raise `SessionEnded` saying why it is not."""
    moment = now or datetime.now(UTC)
    web_session = session.scalars(
        select(WebSession)
        .where(WebSession.token_hash == secret_digest(token))
        .options(joinedload(WebSession.account))  # every caller needs it: one round trip
    ).one_or_none()
    if web_session is None or web_session.revoked_at is not None:
        raise SessionEnded("session.ended", "您已退出登录，请重新登录")
    if web_session.expires_at <= moment:
        raise SessionEnded("session.expired", "登录已超过最长有效期，请重新登录")
    if web_session.last_seen_at + TIMEOUTS[profile].idle <= moment:
        raise SessionEnded("session.idle", "长时间未操作，已自动退出，请重新登录")
    if web_session.account.status != "active":
        raise SessionEnded("session.account_disabled", "账号已停用")
    if moment - web_session.last_seen_at >= TOUCH_EVERY:
        web_session.last_seen_at = moment
    return web_session


def complete_second_factor(web_session: WebSession, now: datetime | None = None) -> None:
    """The second factor passed: the session opens everything, at assurance level 4."""
    web_session.second_factor_pending = False
    reconfirm(web_session, assurance=4, now=now)


def reconfirm(web_session: WebSession, *, assurance: int, now: datetime | None = None) -> None:
    """The holder proved who they are again: the authentication is fresh, at `assurance`."""
    web_session.assurance = assurance
    web_session.authenticated_at = now or datetime.now(UTC)


def end_session(session: Session, web_session: WebSession, *, client_address: str | None) -> None:
    """Sign out: the session, and what it gave department systems (`oidc_logout`)."""
    web_session.revoked_at = datetime.now(UTC)
    oidc_logout.sessions_ended(session, [web_session.id])
    record(
        session,
        "auth.logout",
        actor_person_id=web_session.account.person_id,
        subject=f"account:{web_session.account_id}",
        client_address=client_address,
    )


def revoke_all(session: Session, account_id: int) -> int:
    """Revoke every live session of the account, telling the systems they signed in to
    (back-channel logout); returns how many ended."""
    ended = session.scalars(
        update(WebSession)
        .where(WebSession.account_id == account_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(WebSession.id)
    ).all()
    oidc_logout.sessions_ended(session, ended)
    return len(ended)


def end_all_sessions(session: Session, account: Account, *, client_address: str | None) -> int:
    """Sign out everywhere: revoke every live session of the account."""
    revoked = revoke_all(session, account.id)
    record(
        session,
        "auth.logout_everywhere",
        actor_person_id=account.person_id,
        subject=f"account:{account.id}",
        client_address=client_address,
        details={"sessions": revoked},
    )
    return revoked


def end_other_sessions(
    session: Session, account: Account, *, keep: int | None, now: datetime | None = None
) -> int:
    """After a password change: every session but `keep` ends, and so do the access and
    refresh tokens issued to department systems for this account."""
    moment = now or datetime.now(UTC)
    ended = session.scalars(
        update(WebSession)
        .where(
            WebSession.account_id == account.id,
            WebSession.revoked_at.is_(None),
            WebSession.id != (keep or 0),
        )
        .values(revoked_at=moment)
        .returning(WebSession.id)
    ).all()
    oidc_logout.sessions_ended(session, ended)
    session.execute(
        update(OidcToken)
        .where(OidcToken.account_id == account.id, OidcToken.revoked_at.is_(None))
        .values(revoked_at=moment, rotated_at=func.coalesce(OidcToken.rotated_at, moment))
    )
    return len(ended)


def live_sessions(session: Session, account: Account, *, profile: Profile) -> list[WebSession]:
    now = datetime.now(UTC)
    candidates = session.scalars(
        select(WebSession)
        .where(WebSession.account_id == account.id, WebSession.revoked_at.is_(None))
        .order_by(WebSession.last_seen_at.desc())
    )
    idle = TIMEOUTS[profile].idle
    return [s for s in candidates if s.expires_at > now and s.last_seen_at + idle > now]
