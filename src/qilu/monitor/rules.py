"""Warning rules as data (`data/rules.yaml`): checked on load, installed as versions (a changed
rule is a new version; alarms keep the version that opened them), and looked up by device kind
and metric on the hot path."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from functools import cache, cached_property
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.errors import QiluError
from qilu.monitor import jt808
from qilu.monitor.models import KINDS, Rule

Colour = Literal["red", "orange", "yellow", "blue"]
COLOURS: dict[Colour, int] = {"red": 1, "orange": 2, "yellow": 3, "blue": 4}
# HJ 212 表8: only normal data (N), and values above the measuring range (T), may raise an
# alarm; 停运 F, 维护 M, 手工 S, 故障 D, 校准 C and 通讯异常 B never do.
VALID_FLAGS = frozenset((None, "N", "T"))


class Zone(BaseModel):
    """A named area: a polygon of [latitude, longitude] corners (WGS-84)."""

    name: str = Field(min_length=1, max_length=100)
    polygon: list[tuple[float, float]] = Field(min_length=3, max_length=1000)


class RuleSpec(BaseModel):
    """One rule. What its value is depends on `kind`:

    - `threshold`: the reading of `metric`; `n_of_m` the same, opening once `n` of the last
      `m` readings are beyond the least severe level (and clearing once none is);
    - `rate`: how fast `metric` changes, per `per_seconds` (a river rising so many metres an
      hour), from one reading to the next;
    - `aqi`: the hourly air quality index (HJ 633, `edition` or the one in force) of a frame's
      pollutant averages;
    - `route`: kilometres from the vehicle's approved route; `geofence`: 1 inside one of
      `zones` (禁行区), 0 outside;
    - `device_alarm`: 1 while the vehicle terminal itself reports one of `alarms` (JT/T 808
      0x0200 alarm bits by name: `emergency` for 紧急报警, `collision`, `rollover` …), 0 when
      it no longer does;
    - `no_data`: a device silent for `levels.blue` reporting intervals.
    """

    code: str = Field(pattern=r"^[A-Z0-9-]{3,40}$")
    name: str = Field(min_length=2, max_length=200)
    kinds: list[str]
    metric: str = Field(min_length=1, max_length=40)
    kind: Literal[
        "threshold", "no_data", "rate", "n_of_m", "aqi", "route", "geofence", "device_alarm"
    ]
    unit: str = ""
    levels: dict[Colour, float]
    direction: Literal["above", "below"] = "above"
    hysteresis: float = Field(default=0.0, ge=0, lt=1)
    for_seconds: int = Field(default=0, ge=0, le=7 * 86_400)
    per_seconds: int = Field(default=3600, ge=1, le=86_400)
    n: int = Field(default=0, ge=0, le=64)
    m: int = Field(default=0, ge=0, le=64)
    edition: Literal["in_force", "2012", "2026"] = "in_force"
    zones: list[Zone] = Field(default_factory=list, max_length=100)
    alarms: list[str] = Field(default_factory=list, max_length=32)
    source: str = Field(min_length=2)

    @model_validator(mode="after")
    def _ordered(self) -> RuleSpec:
        if not self.levels:
            raise ValueError("至少要有一个级别")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"设备类别 {sorted(unknown)} 不存在")
        if self.kind == "n_of_m" and not 1 <= self.n <= self.m:
            raise ValueError("N of M 规则须满足 1 ≤ n ≤ m")
        if self.kind == "geofence" and not self.zones:
            raise ValueError("电子围栏规则须列出区域 zones")
        if self.kind == "device_alarm":
            named = set(jt808.ALARMS.values())
            if not self.alarms or set(self.alarms) - named:
                raise ValueError(f"终端报警规则须列出 alarms，取自 {sorted(named)}")
        # A more severe level needs a value further out: red ≥ orange ≥ yellow ≥ blue (above).
        ordered = [self.levels[c] for c in COLOURS if c in self.levels]
        descending = all(a >= b for a, b in itertools.pairwise(ordered))
        ascending = all(a <= b for a, b in itertools.pairwise(ordered))
        if (self.direction == "above" and not descending) or (
            self.direction == "below" and not ascending
        ):
            raise ValueError("级别阈值须随级别由蓝到红单调变化")
        return self

    @cached_property
    def alarm_mask(self) -> int:
        """The bits of the alarm word a `device_alarm` rule watches."""
        return sum(1 << bit for bit, name in jt808.ALARMS.items() if name in self.alarms)

    def level_of(self, value: float) -> int | None:
        """The most severe level whose threshold the value reaches, if any."""
        for colour, level in COLOURS.items():
            threshold = self.levels.get(colour)
            if threshold is None:
                continue
            if (value >= threshold) if self.direction == "above" else (value <= threshold):
                return level
        return None

    def clears(self, value: float) -> bool:
        """Back past the least severe threshold by the hysteresis margin: a value hovering at
        the limit does not open and clear an alarm on every reading."""
        least = self.levels[max(self.levels, key=lambda c: COLOURS[c])]
        margin = abs(least) * self.hysteresis
        return value < least - margin if self.direction == "above" else value > least + margin


@cache
def shipped() -> tuple[RuleSpec, ...]:
    text = resources.files("qilu.monitor").joinpath("data/rules.yaml").read_text(encoding="utf-8")
    return tuple(parse(yaml.safe_load(text)))


def parse(raw: object) -> list[RuleSpec]:
    """Rules from YAML (a list), each checked; the first problem names the rule and field."""
    if not isinstance(raw, list):
        raise QiluError("monitor.rules", "规则文件须为规则的列表", field="rules")
    specs = []
    for index, item in enumerate(raw, 1):
        try:
            specs.append(RuleSpec.model_validate(item))
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "rule"
            raise QiluError(
                "monitor.rules", f"第 {index} 条规则的 {where} 有误：{problem['msg']}", field=where
            ) from None
    codes = [s.code for s in specs]
    if len(set(codes)) != len(codes):
        raise QiluError("monitor.rules", "规则编码重复", field="code")
    return specs


def install(
    session: Session,
    specs: tuple[RuleSpec, ...] | list[RuleSpec] = (),
    *,
    replace: bool = True,
) -> int:
    """Store the rules (the shipped ones by default); a changed rule becomes a new current
    version, unless `replace` is off (then only rules the store lacks are added, so a
    province's own thresholds stay). Returns how many versions were written."""
    written = 0
    now = datetime.now(UTC)
    for spec in specs or shipped():
        current = session.scalars(
            select(Rule).where(Rule.code == spec.code, Rule.is_current.is_(True))
        ).first()
        body = spec.model_dump(mode="json")
        if current is not None and (current.spec == body or not replace):
            continue
        if current is not None:
            current.is_current = False
        session.add(
            Rule(
                code=spec.code,
                version=(current.version + 1) if current else 1,
                is_current=True,
                name=spec.name,
                kind=spec.kind,
                metric=spec.metric,
                spec=body,
                installed_at=now,
            )
        )
        written += 1
    session.flush()
    return written


# A rule version never changes once written: its parsed spec is kept per process, by row id and
# install time (ids alone can come again in another store).
_PARSED: dict[tuple[int, datetime], RuleSpec] = {}


def current_rules(session: Session) -> list[tuple[Rule, RuleSpec]]:
    rows = session.scalars(select(Rule).where(Rule.is_current.is_(True)).order_by(Rule.code))
    out = []
    for row in rows:
        key = (row.id, row.installed_at)
        spec = _PARSED.get(key)
        if spec is None:
            spec = _PARSED[key] = RuleSpec.model_validate(row.spec)
        out.append((row, spec))
    return out
