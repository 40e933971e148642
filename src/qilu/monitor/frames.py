"""What every telemetry codec returns: a decoded frame (who sent it, what, when, its readings)
or a refusal with a stable code; and the stream splitter's bounded buffer.

Codecs are pure Python with no I/O (DESIGN.md, "Monitoring data path"): bytes in, frames out, so
each is tested on vectors alone and the listeners only move bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# Every protocol here stamps local time in Beijing (GMT+8), none says so in the frame.
BEIJING = timezone(timedelta(hours=8))


def _reflected_table(polynomial: int) -> list[int]:
    table = []
    for index in range(256):
        crc = index
        for _ in range(8):
            crc = (crc >> 1) ^ polynomial if crc & 1 else crc >> 1
        table.append(crc)
    return table


# Eight shifts right with XOR A001 (X¹⁶+X¹⁵+X²+1 reflected), per byte value: HJ 212's Appendix A
# and SL 651's CRC (CRC-16/MODBUS) both step with it, each in its own way.
CRC_A001 = _reflected_table(0xA001)


@dataclass(frozen=True)
class Reading:
    """One measured value: a pollutant code with its suffix (`a34004-Avg`), an element
    (`PJ`), a position field (`lat`)…; `flag` is the device's own data mark (HJ 212 `N`, `M`…);
    `time` only when it is not the frame's (a station's 5-minute series)."""

    metric: str
    value: float
    flag: str | None = None
    time: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "value": self.value, "flag": self.flag}
        if self.time is not None:
            out["time"] = self.time.isoformat()
        return out


@dataclass(frozen=True)
class Frame:
    """A frame decoded: the protocol's message (CN, message id or function code), the source
    (MN, terminal number, station address), the time it is about, and what it carries."""

    protocol: str
    message: str
    source: str
    time: datetime | None
    readings: tuple[Reading, ...] = ()
    alarms: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": True,
            "protocol": self.protocol,
            "message": self.message,
            "source": self.source,
            "time": self.time.isoformat() if self.time else None,
            "readings": [r.as_json() for r in self.readings],
        }
        if self.alarms or self.status or self.protocol == "jt808":
            out["alarms"], out["status"] = list(self.alarms), list(self.status)
        if self.details:
            out["details"] = self.details
        return out


class FrameError(Exception):
    """A frame refused: `code` is stable (`hj212.crc`), `reason` says why in Chinese."""

    def __init__(self, protocol: str, code: str, reason: str, raw: bytes = b""):
        super().__init__(f"{protocol}.{code}: {reason}")
        self.protocol, self.code, self.reason = protocol, f"{protocol}.{code}", reason
        self.raw = raw  # what a splitter dropped, for the archive

    def as_json(self) -> dict[str, Any]:
        return {"ok": False, "protocol": self.protocol, "error": self.code, "reason": self.reason}


class StreamBuffer:
    """Bytes received on one connection and not yet framed, never more than `limit`: a device
    that sends a megabyte without a frame end loses the excess, not the listener its memory."""

    def __init__(self, limit: int):
        self.data, self.limit, self.dropped = bytearray(), limit, 0

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            excess = len(self.data) - self.limit
            del self.data[:excess]
            self.dropped += excess

    def discard(self, count: int) -> bytes:
        taken = bytes(self.data[:count])
        del self.data[:count]
        return taken

    def skip_to(self, marker: bytes) -> bytes:
        """Drop what comes before the next `marker` (all of it if there is none, but for a
        partial marker at the very end); returns the dropped bytes. Afterwards the buffer
        starts with the marker, or holds too little to tell."""
        start = self.data.find(marker)
        if start < 0:
            keep = next(
                (k for k in range(len(marker) - 1, 0, -1) if self.data.endswith(marker[:k])), 0
            )
            start = len(self.data) - keep
        return self.discard(start)
