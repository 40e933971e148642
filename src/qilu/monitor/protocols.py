"""The telemetry protocols Qilu speaks, by name: each one's splitter and decoder, and how a
frame is written on one line of text (HJ 212 as itself, the binary ones in hex)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from qilu.monitor import hj212, jt808, mqtt, sl651
from qilu.monitor.frames import Frame, FrameError


@dataclass(frozen=True)
class Protocol:
    name: str
    decode: Callable[[bytes], Frame]
    splitter: Callable[[], Any]
    binary: bool  # a line holds the frame in hex


PROTOCOLS = {
    "hj212": Protocol("hj212", hj212.decode, hj212.Splitter, binary=False),
    "jt808": Protocol("jt808", jt808.decode, jt808.Splitter, binary=True),
    "sl651": Protocol("sl651", sl651.decode, sl651.Splitter, binary=True),
}
# MQTT messages come whole from the broker (no stream to split); archived as topic, newline,
# payload, they are decoded again like any frame when a held-aside source is registered.
DECODERS: dict[str, Callable[[bytes], Frame]] = {
    **{name: protocol.decode for name, protocol in PROTOCOLS.items()},
    "mqtt": mqtt.decode,
}


def decode_line(protocol: Protocol, line: str) -> dict[str, Any]:
    """One frame written on a line, decoded to what `qilu monitor decode` prints."""
    text = line.strip()
    try:
        if protocol.binary:
            try:
                raw = bytes.fromhex(text.replace(" ", ""))
            except ValueError:
                raise FrameError(protocol.name, "hex", "这一行不是十六进制字节") from None
        else:
            raw = text.encode()
        return protocol.decode(raw).as_json()
    except FrameError as refused:
        return refused.as_json()


def decode_lines(protocol: Protocol, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    return (decode_line(protocol, line) for line in lines if line.strip())
