"""Retention (issue 15): on PostgreSQL frames and readings sit in day partitions, made ahead and
dropped whole past QILU_MONITOR_RETENTION_DAYS; on SQLite old rows are deleted. Nothing newer
than the retention is touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from qilu.db import make_engine, upgrade
from qilu.monitor import devices, hj212, retention
from qilu.monitor.bus import take
from qilu.monitor.ingest import Received
from qilu.monitor.models import RawFrame, Reading
from qilu.settings import Settings

MN = "370102000000000000000091"


def frames_on(session: Session, days_ago: list[int], now: datetime) -> None:
    for ago in days_ago:
        moment = now - timedelta(days=ago)
        raw = hj212.encode(
            cn="2051", mn=MN, st="31", pw="123456", qn=None, data_time=moment,
            values={"a21026-Avg": 20.0}, flags={"a21026": "N"},
        )  # fmt: skip
        take(session, [Received("hj212", "t", raw, hj212.decode(raw), moment)])


def test_old_days_go_and_newer_ones_stay(empty_store: Settings) -> None:
    engine = make_engine(empty_store)
    upgrade(engine)
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    postgres = engine.dialect.name == "postgresql"
    with Session(engine) as session, session.begin():
        devices.register(
            session, devices.DeviceSpec("hj212", MN, "pollution_source", "排口", "370102", 60)
        )
        # Partitions of ten days ago until today, as a running platform would have made them.
        for back in range(10, -1, -1):
            retention.maintain(session, now - timedelta(days=back), keep_days=400)
        frames_on(session, [9, 5, 1, 0], now)
    with Session(engine) as session, session.begin():
        kept = retention.maintain(session, now, keep_days=3)
    with Session(engine) as session:
        left = session.scalars(select(RawFrame.received_at).order_by(RawFrame.received_at)).all()
        assert [now - moment for moment in left] == [timedelta(days=1), timedelta(0)]
        assert session.scalar(select(func.count()).select_from(Reading)) == 2
        if postgres:
            assert "monitor_frames_20261128" in kept.dropped  # 9 days back: the whole day went
            assert "monitor_readings_20261202" in kept.dropped
            assert kept.deleted == 0  # nothing had to be deleted row by row
            partitions = session.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'monitor_partitions'")
            ).all()
            assert "monitor_frames_20261209" in partitions  # two days ahead
            assert "monitor_frames_20261203" not in partitions
        else:
            assert kept.deleted == 4  # two frames and their two readings
    engine.dispose()
