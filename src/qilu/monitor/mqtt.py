"""MQTT with JSON payloads, for sensors that have no national protocol (tank farms' level,
temperature, pressure and gas detectors under 危险化学品重大危险源 monitoring).

A device publishes to `qilu/telemetry/<its code>` one JSON object per message, as the published
schema (`data/mqtt_payload.schema.json`) says: the time it is about (ISO 8601 with an offset),
its values by metric, and optionally the device's own mark per metric (HJ 212's letters).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qilu.monitor.frames import Frame, FrameError, Reading

PROTOCOL = "mqtt"
TOPIC_PREFIX = "qilu/telemetry/"
SUBSCRIPTION = TOPIC_PREFIX + "+"
MAX_PAYLOAD = 16 * 1024
METRIC = r"^[a-z][a-z0-9_]{0,39}$"


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time: datetime
    values: dict[str, float] = Field(min_length=1, max_length=64)
    flags: dict[str, Literal["N", "F", "M", "S", "D", "C", "T", "B"]] = Field(default_factory=dict)


def decode(raw: bytes) -> Frame:
    """A message as the listener archives it: the topic, a newline, the payload."""
    topic, _, payload = raw.partition(b"\n")
    return decode_message(topic.decode(errors="replace"), payload)


def decode_message(topic: str, payload: bytes) -> Frame:
    if not topic.startswith(TOPIC_PREFIX) or "/" in topic[len(TOPIC_PREFIX) :]:
        raise FrameError(PROTOCOL, "topic", f"主题须为 {TOPIC_PREFIX}<设备编码>")
    code = topic[len(TOPIC_PREFIX) :]
    if not code or len(code) > 40:
        raise FrameError(PROTOCOL, "topic", "设备编码须为 1–40 个字符")
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(PROTOCOL, "length", f"消息超过 {MAX_PAYLOAD // 1024} KB")
    try:
        body: Any = json.loads(payload)
        message = Payload.model_validate(body)
    except (ValueError, ValidationError) as error:
        where = ""
        if isinstance(error, ValidationError):
            where = ".".join(str(p) for p in error.errors()[0]["loc"])
        raise FrameError(
            PROTOCOL, "json", f"消息不符合约定格式{f'（{where}）' if where else ''}"
        ) from None
    if message.time.tzinfo is None:
        raise FrameError(PROTOCOL, "time", "time 须带时区，例如 2026-12-07T09:00:00+08:00")
    readings = []
    for metric, value in message.values.items():
        if not _valid_metric(metric):
            raise FrameError(PROTOCOL, "metric", f"指标名 {metric[:40]} 须为小写字母、数字和下划线")
        readings.append(Reading(metric, value, message.flags.get(metric)))
    return Frame(PROTOCOL, "telemetry", code, message.time, tuple(readings))


def _valid_metric(name: str) -> bool:
    return re.fullmatch(METRIC, name) is not None


@cache
def schema() -> dict[str, Any]:
    """The payload's JSON Schema, as published to device makers."""
    text = resources.files("qilu.monitor").joinpath("data/mqtt_payload.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded
