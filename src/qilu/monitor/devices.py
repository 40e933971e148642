"""Registering a device: what it is, whose, where, how often it reports. A source that reported
before it was registered was held aside with its frames; registering it replays them, so
nothing it sent is lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.divisions import divisions
from qilu.errors import QiluError
from qilu.identity.models import LegalEntity
from qilu.monitor.frames import FrameError
from qilu.monitor.ingest import position_flag, readings_of
from qilu.monitor.models import KINDS, Device, RawFrame, Reading, UnknownSource
from qilu.monitor.protocols import DECODERS, PROTOCOLS
from qilu.monitor.rules import RuleSpec, current_rules

KIND_NAMES = {
    "pollution_source": "污染源在线监测",
    "air_station": "空气质量监测站",
    "vehicle": "两客一危车辆",
    "hydro_station": "水文监测站",
    "tank": "危化品储罐",
}


@dataclass(frozen=True)
class DeviceSpec:
    protocol: str
    code: str
    kind: str
    name: str
    division_code: str
    interval_seconds: int
    owner_uscc: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    auth_code: str | None = None
    route: list[tuple[float, float]] | None = None  # a vehicle's approved route
    thresholds: dict[str, dict[str, float]] | None = None  # its own levels, by rule code


def register(session: Session, spec: DeviceSpec, *, by: int | None = None) -> Device:
    """Register a device (checked field by field), then replay what it sent while unknown."""
    if spec.protocol not in (*PROTOCOLS, "mqtt"):
        raise QiluError("monitor.protocol", f"不支持的协议 {spec.protocol}", field="protocol")
    code = spec.code.strip()
    if spec.protocol == "jt808":  # the terminal number as frames name it: BCD, leading zeros off
        code = code.lstrip("0")
    if not code or len(code) > 40:
        raise QiluError("monitor.code", "设备编码须为 1–40 个字符", field="code")
    if spec.kind not in KINDS:
        raise QiluError("monitor.kind", "设备类别不在可选范围内", field="kind")
    if not spec.name.strip():
        raise QiluError("monitor.name", "请填写设备名称", field="name")
    division = divisions().get(spec.division_code)
    if division is None or not division.is_current or not spec.division_code.startswith("37"):
        raise QiluError("monitor.division", "行政区划代码须为山东省现行的区划", field="division")
    if not 1 <= spec.interval_seconds <= 86_400:
        raise QiluError(
            "monitor.interval", "上报间隔须在 1 秒到 1 天之间", field="interval_seconds"
        )
    if (spec.latitude is None) != (spec.longitude is None):
        raise QiluError("monitor.position", "经度和纬度须同时填写", field="latitude")
    route = _route(spec)
    thresholds = _thresholds(session, spec)
    owner = None
    if spec.owner_uscc:
        owner = session.scalars(
            select(LegalEntity).where(LegalEntity.uscc == spec.owner_uscc.strip().upper())
        ).first()
        if owner is None:
            raise QiluError("monitor.owner", "法人库中没有该统一社会信用代码", field="owner")
    taken = session.scalars(
        select(Device.id).where(Device.protocol == spec.protocol, Device.code == code)
    ).first()
    if taken is not None:
        raise QiluError("monitor.duplicate", f"该协议下设备编码 {code} 已登记", field="code")
    device = Device(
        protocol=spec.protocol,
        code=code,
        kind=spec.kind,
        name=spec.name.strip(),
        owner_entity_id=owner.id if owner else None,
        division_code=spec.division_code,
        latitude=spec.latitude,
        longitude=spec.longitude,
        interval_seconds=spec.interval_seconds,
        auth_code=spec.auth_code,
        route=route,
        thresholds=thresholds,
        registered_at=datetime.now(UTC),
    )
    session.add(device)
    session.flush()
    replayed = replay_held(session, device)
    record(
        session,
        "monitor.device_registered",
        actor_person_id=by,
        subject=f"device:{device.id}",
        details={"protocol": device.protocol, "code": code, "replayed": replayed},
    )
    return device


def _route(spec: DeviceSpec) -> list[list[float]] | None:
    if not spec.route:
        return None
    if spec.kind != "vehicle" or len(spec.route) < 2:
        raise QiluError("monitor.route", "核定路线只用于车辆，且至少两个点", field="route")
    if any(position_flag(lat, lng) is not None for lat, lng in spec.route):
        raise QiluError("monitor.route", "路线的点须在山东省内（纬度, 经度）", field="route")
    return [[lat, lng] for lat, lng in spec.route]


def _thresholds(session: Session, spec: DeviceSpec) -> dict[str, dict[str, float]] | None:
    """The device's own levels, each checked as its rule's levels are."""
    if not spec.thresholds:
        return None
    rules = {rule.code: rule_spec for rule, rule_spec in current_rules(session)}
    for code, levels in spec.thresholds.items():
        rule = rules.get(code)
        if rule is None or spec.kind not in rule.kinds or rule.kind == "no_data":
            raise QiluError(
                "monitor.thresholds", f"没有适用于该设备的规则 {code}", field="thresholds"
            )
        try:
            RuleSpec.model_validate({**rule.model_dump(), "levels": levels})
        except ValidationError:
            raise QiluError(
                "monitor.thresholds",
                f"{code} 的级别须为 red/orange/yellow/blue，且随级别单调变化",
                field="thresholds",
            ) from None
    return {code: dict(levels) for code, levels in spec.thresholds.items()}


def replay_held(session: Session, device: Device) -> int:
    """The frames a now-registered source sent while unknown, decoded again and stored as
    readings; returns how many frames."""
    decode = DECODERS.get(device.protocol)
    held = session.scalars(
        select(RawFrame).where(
            RawFrame.protocol == device.protocol,
            RawFrame.source == device.code,
            RawFrame.ok.is_(True),
            RawFrame.device_id.is_(None),
        )
    ).all()
    rows = []
    for frame_row in held:
        if decode is None:
            break
        try:
            frame = decode(frame_row.raw)
        except FrameError:  # it decoded when it came: a codec change since; leave it
            continue
        rows += readings_of(frame, device.id, frame_row.id, frame_row.received_at)
        frame_row.device_id = device.id
    if rows:
        session.execute(insert(Reading), rows)
    session.execute(
        delete(UnknownSource).where(
            UnknownSource.protocol == device.protocol, UnknownSource.code == device.code
        )
    )
    return len(held)
