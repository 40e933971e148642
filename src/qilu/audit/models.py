"""Audit entries and the head of each chain.

Entries carry plain ids, not foreign keys: the log must outlive what it talks about. The `chain`
column lets appends be spread over several independent chains later without a migration.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qilu.db import Base, Id, UtcDateTime


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    chain: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(BigInteger)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    actor_person_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    actor_entity_uscc: Mapped[str | None] = mapped_column(String(18))
    subject: Mapped[str | None] = mapped_column(String(128), index=True)
    client_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    previous_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditChainHead(Base):
    """The last entry of a chain: appends lock this row, so entries are chained in order."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditSubject(Base):
    """A further person an entry is about: an entry for a batch (a change feed's page) names
    every person read in its details, and here, so their data-use record finds it."""

    __tablename__ = "audit_event_subjects"

    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    chain: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
