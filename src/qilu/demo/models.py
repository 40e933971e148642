"""A record of each synthetic generation, so a second `qilu demo` reuses the first one's data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from qilu.db import Base, Id, UtcDateTime


class SeedRun(Base):
    __tablename__ = "seed_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    seed: Mapped[int] = mapped_column(Integer)
    residents: Mapped[int] = mapped_column(Integer)
    entities: Mapped[int] = mapped_column(Integer)
    departments: Mapped[int] = mapped_column(Integer)
    staff: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.now())
