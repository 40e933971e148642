"""A person's messages, and whether they want an SMS copy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qilu.db import Base, Id, UtcDateTime


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_inbox", "person_id", "read_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(300))  # a path on this site
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MessagePreference(Base):
    """Whether a person also wants their messages by SMS (off unless they turn it on)."""

    __tablename__ = "message_preferences"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    by_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
