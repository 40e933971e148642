"""From readings to alarms: each stored reading runs through the rules for its device's kind and
metric, in time order, in the transaction that stored it. A problem is one alarm per (device,
rule) until it clears; its level moves in place; a value hovering at a limit does not flap
(hysteresis); a pending period must hold before an alarm opens; data the device marked invalid
never alarms; and a device silent for too long opens its own no-data alarm."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qilu.monitor import aqi, counties, geo, silences
from qilu.monitor.models import LIMITS, Alarm, AlarmEvent, Device, Rule, RuleState, Silence
from qilu.monitor.rules import COLOURS, VALID_FLAGS, RuleSpec, current_rules


@dataclass
class Outcome:
    """What an evaluation changed, for the caller to tell (after commit) and to count."""

    opened: list[Alarm] = field(default_factory=list)
    changed: list[Alarm] = field(default_factory=list)  # escalated or de-escalated
    cleared: list[Alarm] = field(default_factory=list)


class Evaluator:
    """The current rules, and the alarms and pending states touched so far, for one batch."""

    def __init__(self, session: Session):
        self.session = session
        self.rules = current_rules(session)
        self.outcome = Outcome()
        self._alarms: dict[tuple[int, str], Alarm | None] = {}
        self._states: dict[tuple[int, str], RuleState] = {}
        self._by_kind: dict[str, list[tuple[Rule, RuleSpec]]] = {}
        self._own: dict[tuple[int, str], RuleSpec] = {}
        self._silences: list[Silence] | None = None

    def readings(
        self, rows: list[dict[str, Any]], known: Iterable[Device] | None = None
    ) -> Outcome:
        """Evaluate stored reading rows (as `ingest.store` wrote them); `known`: their devices,
        when the caller has them already. A frame's readings about one moment are taken
        together: an index or a position needs several of them."""
        if not rows or not self.rules:
            return self.outcome
        ids = {row["device_id"] for row in rows}
        if known is None:
            known = self.session.scalars(select(Device).where(Device.id.in_(ids)))
        devices = {d.id: d for d in known}
        self._preload(ids)
        by_device: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_device[row["device_id"]].append(row)
        for device_id, series in by_device.items():
            device = devices[device_id]
            series.sort(key=lambda r: (r["observed_at"], r["frame_id"]))
            self._heard(device, series[-1]["observed_at"])
            watching = self._watching(device.kind)
            if not watching:
                continue
            together = itertools.groupby(series, key=lambda r: (r["observed_at"], r["frame_id"]))
            for (moment, _), group in together:
                values = {r["metric"]: float(r["value"]) for r in group if r["flag"] in VALID_FLAGS}
                if not values:
                    continue
                where = _position(values)
                for rule, shared in watching:
                    spec = self._own_levels(device, rule, shared)
                    value = self._signal(device, rule, spec, values, moment)
                    if value is None:
                        continue
                    if spec.kind == "n_of_m":
                        self._count(device, rule, spec, value, moment, where)
                    else:
                        self.step(device, rule, spec, value, moment, where)
        return self.outcome

    def _watching(self, kind: str) -> list[tuple[Rule, RuleSpec]]:
        """The rules evaluated on a kind of device's readings (no-data ones run apart)."""
        if kind not in self._by_kind:
            self._by_kind[kind] = [
                (rule, spec)
                for rule, spec in self.rules
                if kind in spec.kinds and spec.kind != "no_data"
            ]
        return self._by_kind[kind]

    def _own_levels(self, device: Device, rule: Rule, spec: RuleSpec) -> RuleSpec:
        """The rule with the device's own levels for it, if it has any (a station's 警戒
        and 保证 water levels)."""
        own = (device.thresholds or {}).get(rule.code)
        if not own:
            return spec
        key = (device.id, rule.code)
        if key not in self._own:
            self._own[key] = spec.model_copy(update={"levels": own})
        return self._own[key]

    def _signal(
        self,
        device: Device,
        rule: Rule,
        spec: RuleSpec,
        values: dict[str, float],
        moment: datetime,
    ) -> float | None:
        """The value the rule judges in these readings, None if they hold nothing for it."""
        if spec.kind in ("threshold", "n_of_m"):
            return values.get(spec.metric)
        if spec.kind == "rate":
            return self._rate(device, rule, spec, values.get(spec.metric), moment)
        if spec.kind == "device_alarm":
            word = values.get("alarm_flags")
            return None if word is None else float(bool(int(word) & spec.alarm_mask))
        if spec.kind == "aqi":
            hour = {m.partition("-")[0]: v for m, v in values.items() if m.endswith("-Avg")}
            edition = aqi.edition_for(moment) if spec.edition == "in_force" else spec.edition
            index = aqi.hourly(hour, edition)
            return float(index.aqi) if index else None
        where = _position(values)
        if where is None:
            return None
        latitude, longitude = where
        if spec.kind == "route":
            if not device.route:
                return None
            return geo.route_distance_km(device.route, latitude, longitude)
        if spec.kind == "geofence":
            zones = spec.zones
            return 1.0 if any(geo.inside(z.polygon, latitude, longitude) for z in zones) else 0.0
        return None

    def _rate(
        self, device: Device, rule: Rule, spec: RuleSpec, value: float | None, moment: datetime
    ) -> float | None:
        """Change since the reading before, per `per_seconds`; None for the first reading
        and for one no later than the last."""
        if value is None:
            return None
        state = self._state(device.id, rule.code)
        before, at = state.last_value, state.last_at
        if at is not None and moment <= at:
            return None
        state.last_value, state.last_at = value, moment
        if before is None or at is None:
            return None
        return (value - before) / (moment - at).total_seconds() * spec.per_seconds

    def _count(
        self,
        device: Device,
        rule: Rule,
        spec: RuleSpec,
        value: float,
        moment: datetime,
        where: geo.Point | None = None,
    ) -> None:
        """N of M: the alarm opens once `n` of the last `m` readings are beyond the least
        severe level, takes the level of the latest beyond, and clears once none of the
        last `m` is."""
        state = self._state(device.id, rule.code)
        level = spec.level_of(value)
        recent = ((state.recent or "") + ("1" if level else "0"))[-spec.m :]
        state.recent = recent
        alarm = self._active(device.id, rule.code)
        if alarm is None:
            if recent.count("1") >= spec.n:
                least = max(COLOURS[c] for c in spec.levels)
                self.open(device, rule, level or least, value, moment, where)
            return
        if moment < alarm.last_at:
            return
        alarm.last_value, alarm.last_at = value, moment
        if "1" not in recent:
            self._clear(alarm, moment, value)
        elif level is not None:
            self._move(alarm, level, moment, value)

    def step(
        self,
        device: Device,
        rule: Rule,
        spec: RuleSpec,
        value: float,
        observed: datetime,
        where: geo.Point | None = None,
    ) -> None:
        """One value for the rule, observed at `observed` (`where`: the device's position then,
        for a device that moves)."""
        alarm = self._active(device.id, rule.code)
        level = spec.level_of(value)
        if alarm is not None:
            if observed < alarm.last_at:
                return  # a late reading does not move an alarm back in time
            alarm.last_value, alarm.last_at = value, observed
            if level is not None:
                self._move(alarm, level, observed, value)
            elif spec.clears(value):
                self._clear(alarm, observed, value)
            return
        if not spec.for_seconds:
            if level is not None:
                self.open(device, rule, level, value, observed, where)
            return
        if level is None:  # nothing pending any more (no state row made just to say so)
            state = self._states.get((device.id, rule.code))
            if state is not None and state.pending_since is not None:
                state.pending_level = state.pending_since = None
            return
        state = self._state(device.id, rule.code)
        if state.pending_since is None:
            state.pending_level, state.pending_since = level, observed
            return
        if observed - state.pending_since >= timedelta(seconds=spec.for_seconds):
            state.pending_level = state.pending_since = None
            self.open(device, rule, level, value, observed, where)

    def open(
        self,
        device: Device,
        rule: Rule,
        level: int,
        value: float | None,
        observed: datetime,
        where: geo.Point | None = None,
    ) -> Alarm | None:
        """Open the alarm, or, if another transaction opened it first, take that one: the
        store allows one not cleared per (device, rule). None while a maintenance window or
        silence covers it (a condition still holding after it ends opens then). It belongs to
        the county where it happened (a vehicle's position), else to the device's division."""
        if self._silenced(device, rule.code, observed):
            return None
        alarm = Alarm(
            device_id=device.id,
            rule_id=rule.id,
            rule_code=rule.code,
            division_code=(where and counties.county_at(*where)) or device.division_code,
            level=level,
            state="open",
            opened_at=observed,
            value=value,
            last_value=value,
            last_at=observed,
            due_at=observed + timedelta(minutes=LIMITS[level][0]),  # when it must be 核实
        )
        try:
            with self.session.begin_nested():
                self.session.add(alarm)
                self.session.flush()
        except IntegrityError:
            existing = self._load_active(device.id, rule.code)
            assert existing is not None  # the unique index refused ours: another is there
            self._alarms[(device.id, rule.code)] = existing
            return existing
        self._alarms[(device.id, rule.code)] = alarm
        self._event(alarm, "opened", observed, value)
        self.outcome.opened.append(alarm)
        return alarm

    def silent(self, now: datetime) -> Outcome:
        """Open a no-data alarm for each device silent past its rule's multiple of its
        reporting interval (the pending period: counted from the last reading, or from its
        registration if it never reported)."""
        for rule, spec in self.rules:
            if spec.kind != "no_data":
                continue
            multiple = spec.levels.get("blue", 3)
            for device in self.session.scalars(select(Device).where(Device.kind.in_(spec.kinds))):
                last = device.last_seen_at or device.registered_at
                if now - last < timedelta(seconds=device.interval_seconds * multiple):
                    continue
                if self._active(device.id, rule.code) is None:
                    self.open(device, rule, 4, None, now)
        return self.outcome

    def _silenced(self, device: Device, rule_code: str, at: datetime) -> bool:
        if self._silences is None:  # loaded once per batch, the first time one is asked
            self._silences = silences.current(self.session, at - timedelta(days=1))
        return any(silences.covers(s, device, rule_code, at) for s in self._silences)

    def _preload(self, device_ids: set[int]) -> None:
        """Every rule's active alarm and pending state for these devices, in two queries
        rather than two per device and rule."""
        for device_id in device_ids:
            for rule, _ in self.rules:
                self._alarms.setdefault((device_id, rule.code), None)
        for alarm in self.session.scalars(
            select(Alarm).where(Alarm.device_id.in_(device_ids), Alarm.cleared_at.is_(None))
        ):
            self._alarms[(alarm.device_id, alarm.rule_code)] = alarm
        for state in self.session.scalars(
            select(RuleState).where(RuleState.device_id.in_(device_ids))
        ):
            self._states[(state.device_id, state.rule_code)] = state

    def _heard(self, device: Device, moment: datetime) -> None:
        """A reading clears the device's no-data alarm."""
        for rule, spec in self.rules:
            if spec.kind == "no_data" and device.kind in spec.kinds:
                alarm = self._active(device.id, rule.code)
                if alarm is not None:
                    self._clear(alarm, moment, None)

    def _move(self, alarm: Alarm, level: int, moment: datetime, value: float) -> None:
        """Escalate or de-escalate the alarm in place, if the level changed."""
        if level == alarm.level:
            return
        action = "escalated" if level < alarm.level else "deescalated"
        alarm.level = level
        self._event(alarm, action, moment, value)
        self.outcome.changed.append(alarm)

    def _clear(self, alarm: Alarm, moment: datetime, value: float | None) -> None:
        alarm.cleared_at = moment
        self._alarms[(alarm.device_id, alarm.rule_code)] = None
        self._event(alarm, "cleared", moment, value)
        self.outcome.cleared.append(alarm)

    def _active(self, device_id: int, rule_code: str) -> Alarm | None:
        key = (device_id, rule_code)
        if key not in self._alarms:
            self._alarms[key] = self._load_active(device_id, rule_code)
        return self._alarms[key]

    def _load_active(self, device_id: int, rule_code: str) -> Alarm | None:
        return self.session.scalars(
            select(Alarm).where(
                Alarm.device_id == device_id,
                Alarm.rule_code == rule_code,
                Alarm.cleared_at.is_(None),
            )
        ).first()

    def _state(self, device_id: int, rule_code: str) -> RuleState:
        """The rule's pending state for the device, made (race-safely) the first time."""
        key = (device_id, rule_code)
        state = self._states.get(key) or self.session.get(RuleState, key)
        if state is None:
            state = RuleState(device_id=device_id, rule_code=rule_code)
            try:
                with self.session.begin_nested():
                    self.session.add(state)
                    self.session.flush()
            except IntegrityError:  # another writer made it first
                state = self.session.get_one(RuleState, key, populate_existing=True)
        self._states[key] = state
        return state

    def _event(self, alarm: Alarm, action: str, at: datetime, value: float | None) -> None:
        self.session.add(
            AlarmEvent(alarm_id=alarm.id, at=at, action=action, level=alarm.level, value=value)
        )


def _position(values: dict[str, float]) -> geo.Point | None:
    """The valid position among a moment's readings, if it holds one."""
    latitude, longitude = values.get("lat"), values.get("lng")
    return None if latitude is None or longitude is None else (latitude, longitude)
