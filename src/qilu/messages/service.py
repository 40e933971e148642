"""Sending to a person's inbox, reading it, and their SMS preference.

`send` writes the message in the caller's transaction: it is seen when the cause commits, and
never if it rolls back. The SMS copy is an outbox effect (`SMS`), sent after commit through the
platform's pluggable sender (`qilu.sms`), to the phone the population register holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.identity.models import Person
from qilu.identity.service import phone_of
from qilu.messages.models import Message, MessagePreference
from qilu.outbox.service import enqueue
from qilu.pii import Vault
from qilu.sms import SmsSender

SMS = "messages.sms"
PAGE = 50


def send(
    session: Session, person_id: int, *, title: str, body: str, link: str | None = None
) -> Message:
    """A message to `person_id`'s inbox, and an SMS copy if they asked for one."""
    message = Message(
        person_id=person_id,
        title=title[:100],
        body=body,
        link=link,
        created_at=datetime.now(UTC),
    )
    session.add(message)
    session.flush()
    if wants_sms(session, person_id):
        enqueue(session, SMS, str(message.id), {"message": message.id})
    return message


def wants_sms(session: Session, person_id: int) -> bool:
    return bool(
        session.scalar(
            select(MessagePreference.by_sms).where(MessagePreference.person_id == person_id)
        )
    )


def set_sms(session: Session, person_id: int, by_sms: bool) -> None:
    preference = session.get(MessagePreference, person_id)
    if preference is None:
        preference = MessagePreference(person_id=person_id)
        session.add(preference)
    preference.by_sms, preference.changed_at = by_sms, datetime.now(UTC)
    record(
        session,
        "messages.sms_on" if by_sms else "messages.sms_off",
        actor_person_id=person_id,
        subject=f"person:{person_id}",
    )


def unread_count(session: Session, person_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.person_id == person_id, Message.read_at.is_(None))
        )
        or 0
    )


def inbox(session: Session, person_id: int, *, limit: int = PAGE) -> list[Message]:
    """The newest messages first."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.person_id == person_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )


def mark_read(session: Session, person_id: int) -> int:
    """Everything in the inbox seen (the page shows them all at once); how many were new."""
    return len(
        session.execute(
            update(Message)
            .where(Message.person_id == person_id, Message.read_at.is_(None))
            .values(read_at=datetime.now(UTC))
            .returning(Message.id)
        ).all()
    )


def deliver_sms(
    session: Session, payload: dict[str, Any], *, vault: Vault, sender: SmsSender
) -> Callable[[], None] | None:
    """The outbox handler: the message as an SMS, to the register's phone, sent with no
    transaction open; a person without a phone, or who turned SMS off since, gets none."""
    message = session.get(Message, payload["message"])
    if message is None or not wants_sms(session, message.person_id):
        return None
    person = session.get(Person, message.person_id)
    phone = phone_of(vault, person) if person is not None else None
    if phone is None:
        return None
    text = f"【齐鲁】{message.title}：{message.body}"
    return lambda: sender.send(phone, text)
