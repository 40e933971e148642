"""Monitoring's tables: the devices registered to report, sources that reported unregistered,
every frame received as it came (the raw archive), and the readings decoded from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from qilu.db import Base, Id, UtcDateTime

PROTOCOLS = ("hj212", "jt808", "sl651", "mqtt")
KINDS = ("pollution_source", "air_station", "vehicle", "hydro_station", "tank")


class Device(Base):
    """A device allowed to report: its source code in its protocol (HJ 212 MN, JT/T 808
    terminal number, SL 651 station address, MQTT client), what it watches, whose it is."""

    __tablename__ = "monitor_devices"
    __table_args__ = (
        UniqueConstraint("protocol", "code"),
        CheckConstraint(f"protocol IN {PROTOCOLS}", name="protocol"),
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    protocol: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    owner_entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"))
    division_code: Mapped[str] = mapped_column(String(6), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)  # WGS-84
    longitude: Mapped[float | None] = mapped_column(Float)
    interval_seconds: Mapped[int] = mapped_column(Integer)  # how often it should report
    auth_code: Mapped[str | None] = mapped_column(String(64))  # JT/T 808 鉴权码
    # A vehicle's approved route, [[lat, lng], …] (WGS-84), for route-deviation rules.
    route: Mapped[list[list[float]] | None] = mapped_column(JSON)
    # Its own levels for a rule, {rule code: {colour: value}}: a river station's 警戒 and 保证
    # water levels, an outlet's permitted limits.
    thresholds: Mapped[dict[str, dict[str, float]] | None] = mapped_column(JSON)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class UnknownSource(Base):
    """A source that reported without being registered: held aside (its frames are kept) for a
    steward to register, never dropped."""

    __tablename__ = "monitor_unknown_sources"
    __table_args__ = (UniqueConstraint("protocol", "code"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    protocol: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(40))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    frames: Mapped[int] = mapped_column(BigInteger)
    last_peer: Mapped[str] = mapped_column(String(64))


class RawFrame(Base):
    """A frame as it came off the wire, decoded or refused (with the reason's code), and the
    connection it came from: for audit, counting and replay."""

    __tablename__ = "monitor_frames"
    __table_args__ = (Index("ix_monitor_frames_source", "protocol", "source", "received_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    protocol: Mapped[str] = mapped_column(String(8))
    peer: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(String(10))
    source: Mapped[str | None] = mapped_column(String(40))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("monitor_devices.id"))
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class Reading(Base):
    """One value a device reported, at the time it is about; `flag` is the device's own mark
    (HJ 212 N/F/M/S/D/C/T/B) or the platform's (`swapped`, `out_of_area` for a position)."""

    __tablename__ = "monitor_readings"
    __table_args__ = (Index("ix_monitor_readings_series", "device_id", "metric", "observed_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("monitor_devices.id"))
    metric: Mapped[str] = mapped_column(String(40))
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[float] = mapped_column(Float)
    flag: Mapped[str | None] = mapped_column(String(12))
    # The frame it came in (no foreign key: on PostgreSQL both tables are partitioned by day).
    frame_id: Mapped[int] = mapped_column(Id)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


LEVELS = {1: "红色", 2: "橙色", 3: "黄色", 4: "蓝色"}  # 《突发事件应对法》: 一级（红）最高
# Minutes allowed to 核实, to 签收 and to report back, by level. No national figures were found:
# these are defaults (the 2021 城市安全 guide's "30 分钟启动" in mind) a province sets over.
LIMITS = {1: (5, 15, 30), 2: (15, 30, 120), 3: (60, 60, 480), 4: (60, 60, 480)}


class Rule(Base):
    """A warning rule as installed: one row per version; `spec` holds its levels, hysteresis,
    pending period and source."""

    __tablename__ = "monitor_rules"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    is_current: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # rules.RuleSpec.kind
    metric: Mapped[str] = mapped_column(String(40))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    installed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RuleState(Base):
    """Where a rule stands for a device between readings: the level its condition has held
    since when (a rule with a pending period opens an alarm only once it has held long enough)."""

    __tablename__ = "monitor_rule_states"

    device_id: Mapped[int] = mapped_column(ForeignKey("monitor_devices.id"), primary_key=True)
    rule_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    pending_level: Mapped[int | None] = mapped_column(Integer)
    pending_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_value: Mapped[float | None] = mapped_column(Float)  # rate of change: the one before
    last_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recent: Mapped[str | None] = mapped_column(String(64))  # N of M: the last M, 1 = beyond


class Alarm(Base):
    """One problem: a rule's condition on a device, from when it opened until it cleared, its
    level moving in place. At most one not yet cleared per (device, rule), enforced here, so
    readings racing each other open one alarm. Its handling (核实, 派单 …) is `state`."""

    __tablename__ = "monitor_alarms"
    __table_args__ = (
        Index(
            "uq_monitor_alarms_active",
            "device_id",
            "rule_code",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_monitor_alarms_wall", "division_code", "state", "opened_at"),
        CheckConstraint("level BETWEEN 1 AND 4", name="level"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("monitor_devices.id"))
    rule_id: Mapped[int] = mapped_column(ForeignKey("monitor_rules.id"))
    rule_code: Mapped[str] = mapped_column(String(40))
    division_code: Mapped[str] = mapped_column(String(6))  # the device's, for county → province
    level: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[float | None] = mapped_column(Float)  # what opened it
    last_value: Mapped[float | None] = mapped_column(Float)
    last_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # 指挥调度: who it went to, by when the current step is due, and how it ended.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    assignee_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    close_reason: Mapped[str | None] = mapped_column(String(12))


class AlarmEvent(Base):
    """An alarm's history: opened, escalated, de-escalated, cleared, and each handling step."""

    __tablename__ = "monitor_alarm_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("monitor_alarms.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    note: Mapped[str | None] = mapped_column(String(500))


class BusMark(Base):
    """The last stream sequence a writer stored, per bus partition, written in the transaction
    that stored it: a frame the bus delivers again (its writer was killed before it could
    acknowledge) at or below the mark is already stored and is skipped."""

    __tablename__ = "monitor_bus_marks"

    consumer: Mapped[str] = mapped_column(String(80), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)


class Silence(Base):
    """A maintenance window or silence: from `starts_at` to `ends_at` no alarm opens for the
    device (every rule, or one), nor for every device of a division when no device is named.
    Kept in the store, so it outlives a restart of listeners and writers."""

    __tablename__ = "monitor_silences"
    __table_args__ = (Index("ix_monitor_silences_until", "ends_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("monitor_devices.id"))
    division_code: Mapped[str | None] = mapped_column(String(6))
    rule_code: Mapped[str | None] = mapped_column(String(40))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
