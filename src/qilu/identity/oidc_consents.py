"""What a person agreed each department system may know, remembered so that signing in there
again, or silently (`prompt=none`), asks nothing; listed and withdrawn from 我的账号.

An administrator may agree for a department system on everyone's behalf (its registration as the
platform's own, `is_first_party`) for the ordinary scopes only: real-name claims and offline
access are always the person's own decision (OIDC Core §11).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.errors import NotFound
from qilu.identity.models import Account, OidcClient, OidcConsent, OidcToken
from qilu.identity.oidc_provider import REAL_NAME_SCOPES, SCOPE_LABELS, revoke_tokens

ADMINISTRATOR_MAY_AGREE = frozenset({"openid", "profile", "enterprise"})
ALWAYS_ASKED = frozenset({"offline_access", *REAL_NAME_SCOPES})


def missing(session: Session, client: OidcClient, account_id: int, scope: str) -> list[str]:
    """The scopes of `scope` the person still has to agree to, in the order asked."""
    asked = [s for s in scope.split() if s != "openid"]
    if client.is_first_party:
        asked = [s for s in asked if s not in ADMINISTRATOR_MAY_AGREE]
    if not asked:
        return []
    given = session.scalars(
        select(OidcConsent.scope).where(
            OidcConsent.account_id == account_id, OidcConsent.client_id == client.client_id
        )
    ).first()
    agreed = set((given or "").split())
    return [s for s in asked if s not in agreed]


def remember(
    session: Session, account: Account, client_id: str, scope: str, *, client_address: str | None
) -> None:
    """The person agreed to `scope` for the client: add it to what they agreed before."""
    now = datetime.now(UTC)
    row = session.scalars(
        select(OidcConsent).where(
            OidcConsent.account_id == account.id, OidcConsent.client_id == client_id
        )
    ).first()
    if row is None:
        row = OidcConsent(account_id=account.id, client_id=client_id, scope="", granted_at=now)
        session.add(row)
    agreed = dict.fromkeys([*row.scope.split(), *scope.split()])
    row.scope, row.granted_at = " ".join(agreed)[:200], now
    record(
        session,
        "oidc.consent_given",
        actor_person_id=account.person_id,
        subject=f"client:{client_id}",
        client_address=client_address,
        details={"scope": row.scope},
    )


@dataclass(frozen=True)
class Consent:
    client_id: str
    client_name: str
    scopes: list[str]  # what the person reads (labels)
    granted_at: datetime


def consents_of(session: Session, account_id: int) -> list[Consent]:
    rows = session.execute(
        select(OidcConsent, OidcClient.name)
        .join(OidcClient, OidcClient.client_id == OidcConsent.client_id)
        .where(OidcConsent.account_id == account_id)
        .order_by(OidcConsent.granted_at.desc())
    ).all()
    return [
        Consent(
            consent.client_id,
            name,
            [SCOPE_LABELS[s] for s in consent.scope.split() if s in SCOPE_LABELS and s != "openid"],
            consent.granted_at,
        )
        for consent, name in rows
    ]


def withdraw(
    session: Session, account: Account, client_id: str, *, client_address: str | None
) -> None:
    """Withdraw what the person agreed for the client: it asks again next time, and every token
    it holds for them (offline ones too) stops working now."""
    row = session.scalars(
        select(OidcConsent).where(
            OidcConsent.account_id == account.id, OidcConsent.client_id == client_id
        )
    ).first()
    if row is None:  # another person's, or none: the same answer
        raise NotFound("consent.not_found", "没有对这个系统的授权")
    session.delete(row)
    revoked = revoke_tokens(
        session, OidcToken.account_id == account.id, OidcToken.client_id == client_id
    )
    record(
        session,
        "oidc.consent_withdrawn",
        actor_person_id=account.person_id,
        subject=f"client:{client_id}",
        client_address=client_address,
        details={"tokens_revoked": revoked},
    )
