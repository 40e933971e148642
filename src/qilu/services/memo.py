"""Values worked out once per transaction (an application's plan, the facts about it): several
steps of one submission ask for them, and nothing outside the transaction can change them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_KEY = "services_memo"


def kept(session: Session, name: str) -> dict[Any, Any]:
    """The transaction's store named `name` (empty at its start)."""
    stores: dict[str, dict[Any, Any]] = session.info.setdefault(_KEY, {})
    return stores.setdefault(name, {})


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_KEY, None)
