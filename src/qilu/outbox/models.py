"""One row per effect still to run (or run): its kind, what it needs, and how its tries went."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qilu.db import Base, Id, UtcDateTime


class OutboxEffect(Base):
    __tablename__ = "outbox_effects"
    __table_args__ = (Index("ix_outbox_effects_due", "done_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # One effect per key ("services.archive:<application>"): enqueuing twice is harmless.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SweeperBeat(Base):
    """A process that sweeps the outbox (a web process or a `qilu outbox run` worker), and when
    it last finished a sweep: 系统运行 shows which are alive."""

    __tablename__ = "outbox_sweepers"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)  # host:pid
    kind: Mapped[str] = mapped_column(String(10))  # web | worker
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    beat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    done: Mapped[int] = mapped_column(Integer, default=0)  # effects run since it started
