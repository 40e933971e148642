"""Storing what the listeners received, a batch per transaction: every frame in the raw archive
(refused ones with their reason), the readings of registered devices, and unregistered sources
held aside. Positions are checked against Shandong's extent and flagged, never dropped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from qilu.db import Base
from qilu.monitor import frames
from qilu.monitor.frames import Frame, FrameError
from qilu.monitor.models import Device, UnknownSource

# Shandong's extent (WGS-84) with a margin of about 20 km: 34.38–38.40 N, 114.80–122.72 E.
LATITUDES, LONGITUDES = (34.2, 38.6), (114.6, 122.9)


@dataclass(frozen=True)
class Received:
    """A frame as a listener got it: decoded, or refused with the reason."""

    protocol: str
    peer: str
    raw: bytes
    result: Frame | FrameError
    received_at: datetime


@dataclass
class Stored:
    frames: int = 0
    readings: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # by error code
    unknown: Counter[str] = field(default_factory=Counter)  # frames from unregistered sources
    rows: list[dict[str, Any]] = field(default_factory=list)  # the readings written
    devices: dict[tuple[str, str], Device] = field(default_factory=dict)  # the batch's, known


def store(session: Session, batch: list[Received]) -> Stored:
    """Write a batch; the caller commits (and only then answers the devices)."""
    stored = Stored(frames=len(batch))
    if not batch:
        return stored
    devices = stored.devices = registered(session, batch)
    rows, owners = [], []
    for item in batch:
        frame = item.result if isinstance(item.result, Frame) else None
        refused = item.result if isinstance(item.result, FrameError) else None
        device = devices.get((item.protocol, frame.source)) if frame else None
        owners.append(device.id if device else None)
        rows.append(
            {
                "protocol": item.protocol,
                "peer": item.peer,
                "received_at": item.received_at,
                "ok": frame is not None,
                "error": refused.code if refused else None,
                "message": frame.message if frame else None,
                "source": frame.source if frame else None,
                "device_id": device.id if device else None,
                "raw": item.raw,
            }
        )
    # Core statements on the session's connection: the ORM's bulk bookkeeping was most of a
    # batch's time.
    connection = session.connection()
    copying = connection.dialect.name == "postgresql"
    if copying:  # PostgreSQL: ids drawn from the sequence, rows sent by COPY
        ids = (
            connection.execute(
                text(
                    f"SELECT nextval('{_sequence(connection, FRAMES)}') FROM generate_series(1, :n)"
                ),
                {"n": len(rows)},
            )
            .scalars()
            .all()
        )
        _copy(connection, FRAMES, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
    else:
        frames_table = Base.metadata.tables[FRAMES]
        statement = frames_table.insert().returning(frames_table.c.id, sort_by_parameter_order=True)
        ids = connection.execute(statement, rows).scalars().all()
    readings: list[dict[str, Any]] = []
    seen: dict[int, datetime] = {}
    moved: dict[int, tuple[float, float]] = {}  # a vehicle's latest good position
    for item, frame_id, owner in zip(batch, ids, owners, strict=True):
        if isinstance(item.result, FrameError):
            stored.refused[item.result.code] += 1
        elif owner is None:
            stored.unknown[f"{item.protocol}:{item.result.source}"] += 1
        else:
            rows_of = readings_of(item.result, owner, frame_id, item.received_at)
            readings += rows_of
            seen[owner] = item.received_at
            position = _position(rows_of)
            if position:
                moved[owner] = position
    if readings and copying:
        _copy(connection, READINGS, readings)
    elif readings:
        connection.execute(Base.metadata.tables[READINGS].insert(), readings)
    stored.readings, stored.rows = len(readings), readings
    if seen:  # one statement for the batch; the session's Device objects told, not dirtied
        # Rows in id order, as the ORM's flush orders its updates: a listener writing 鉴权码
        # while a writer marks the same devices seen then locks them in one order, and the
        # two cannot deadlock (they did, in frame order, under the NATS bench).
        devices_table = Base.metadata.tables["monitor_devices"]
        connection.execute(
            devices_table.update()
            .where(devices_table.c.id == bindparam("device"))
            .values(last_seen_at=bindparam("moment")),
            [{"device": d, "moment": m} for d, m in sorted(seen.items())],
        )
        if moved:
            connection.execute(
                devices_table.update()
                .where(devices_table.c.id == bindparam("device"))
                .values(latitude=bindparam("lat"), longitude=bindparam("lng")),
                [{"device": d, "lat": lat, "lng": lng} for d, (lat, lng) in sorted(moved.items())],
            )
        by_id = {d.id: d for d in devices.values()}
        for device_id, moment in seen.items():
            set_committed_value(by_id[device_id], "last_seen_at", moment)
        for device_id, (lat, lng) in moved.items():
            set_committed_value(by_id[device_id], "latitude", lat)
            set_committed_value(by_id[device_id], "longitude", lng)
    _hold_aside(session, batch, stored.unknown)
    return stored


FRAMES, READINGS = "monitor_frames", "monitor_readings"


def _sequence(connection: Connection, table: str) -> str:
    """The sequence behind the table's id (serial or identity), looked up once per process."""
    key = (str(connection.engine.url), table)
    if key not in _SEQUENCES:
        _SEQUENCES[key] = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}
        ).scalar_one()
    return _SEQUENCES[key]


_SEQUENCES: dict[tuple[str, str], str] = {}


def _copy(connection: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows into a PostgreSQL table by COPY, on the transaction's own connection."""
    columns = list(rows[0])
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def registered(session: Session, batch: list[Received]) -> dict[tuple[str, str], Device]:
    """The batch's registered devices by (protocol, code)."""
    keys = {(item.protocol, item.result.source) for item in batch if isinstance(item.result, Frame)}
    if not keys:
        return {}
    # By code alone (its index), the protocol checked here: a row-value IN is slow on SQLite.
    found = session.scalars(select(Device).where(Device.code.in_({code for _, code in keys})))
    return {(d.protocol, d.code): d for d in found if (d.protocol, d.code) in keys}


def readings_of(
    frame: Frame, device_id: int, frame_id: int, received_at: datetime
) -> list[dict[str, Any]]:
    """The frame's readings as rows (a JT/T 808 batch: each location's), positions flagged."""
    groups = [(frame.time, frame.readings)]
    for location in frame.details.get("locations", []):
        batch = tuple(frames.Reading(r["metric"], r["value"]) for r in location["readings"])
        groups.append((datetime.fromisoformat(location["time"]), batch))
    rows = []
    for moment, readings in groups:
        flags = _position_flags({r.metric: r.value for r in readings})
        for reading in readings:
            rows.append(
                {
                    "device_id": device_id,
                    "metric": reading.metric,
                    "observed_at": reading.time or moment or received_at,
                    "value": reading.value,
                    "flag": flags.get(reading.metric, reading.flag),
                    "frame_id": frame_id,
                    "received_at": received_at,
                }
            )
    return rows


def _position(rows: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The last unflagged position among a frame's rows (a 0x0704 batch holds several)."""
    latest: dict[str, tuple[datetime, float]] = {}
    for row in rows:
        metric = row["metric"]
        if metric not in ("lat", "lng") or row["flag"] is not None:
            continue
        if metric not in latest or row["observed_at"] >= latest[metric][0]:
            latest[metric] = (row["observed_at"], row["value"])
    if "lat" in latest and "lng" in latest and latest["lat"][0] == latest["lng"][0]:
        return latest["lat"][1], latest["lng"][1]
    return None


def position_flag(latitude: float, longitude: float) -> str | None:
    """None inside Shandong; `swapped` when latitude and longitude were sent the other way
    round (a known terminal fault), `out_of_area` elsewhere, `invalid` off the globe."""
    if abs(latitude) > 90 and abs(longitude) <= 90:
        return "swapped" if _inside(longitude, latitude) else "invalid"
    if abs(latitude) > 90 or abs(longitude) > 180:
        return "invalid"
    if _inside(latitude, longitude):
        return None
    return "swapped" if _inside(longitude, latitude) else "out_of_area"


def _inside(latitude: float, longitude: float) -> bool:
    return LATITUDES[0] <= latitude <= LATITUDES[1] and LONGITUDES[0] <= longitude <= LONGITUDES[1]


def _position_flags(values: dict[str, float]) -> dict[str, str]:
    if "lat" not in values or "lng" not in values:
        return {}
    flag = position_flag(values["lat"], values["lng"])
    return {"lat": flag, "lng": flag} if flag else {}


def _hold_aside(session: Session, batch: list[Received], unknown: Counter[str]) -> None:
    """Count the frames of each unregistered source, noting when and from where it came."""
    if not unknown:
        return
    latest = {
        f"{item.protocol}:{item.result.source}": item
        for item in batch
        if isinstance(item.result, Frame)
    }
    keys = [tuple(key.split(":", 1)) for key in unknown]
    known = {
        (u.protocol, u.code): u
        for u in session.scalars(
            select(UnknownSource).where(
                tuple_(UnknownSource.protocol, UnknownSource.code).in_(keys)
            )
        )
    }
    for key, count in unknown.items():
        protocol, code = key.split(":", 1)
        item = latest[key]
        held = known.get((protocol, code))
        if held is None:
            session.add(
                UnknownSource(
                    protocol=protocol,
                    code=code,
                    first_seen_at=item.received_at,
                    last_seen_at=item.received_at,
                    frames=count,
                    last_peer=item.peer,
                )
            )
        else:
            held.frames += count
            held.last_seen_at, held.last_peer = item.received_at, item.peer
    session.flush()
