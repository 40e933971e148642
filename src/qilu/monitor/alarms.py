"""From readings to alarms: each stored reading runs through the rules for its device's kind and
metric, in time order, in the transaction that stored it. A problem is one alarm per (device,
rule) until it clears; its level moves in place; a value hovering at a limit does not flap
(hysteresis); a pending period must hold before an alarm opens; data the device marked invalid
never alarms; and a device silent for too long opens its own no-data alarm."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from qilu.monitor.models import LIMITS, Alarm, AlarmEvent, Device, Rule, RuleState
from qilu.monitor.rules import VALID_FLAGS, RuleSpec, current_rules


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

    def readings(
        self, rows: list[dict[str, Any]], known: Iterable[Device] | None = None
    ) -> Outcome:
        """Evaluate stored reading rows (as `ingest.store` wrote them); `known`: their devices,
        when the caller has them already."""
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
            series.sort(key=lambda r: r["observed_at"])
            self._heard(device, series[-1]["observed_at"])
            for row in series:
                if row["flag"] not in VALID_FLAGS:
                    continue
                for rule, spec in self.rules:
                    if (
                        spec.kind == "threshold"
                        and spec.metric == row["metric"]
                        and device.kind in spec.kinds
                    ):
                        self.step(device, rule, spec, float(row["value"]), row["observed_at"])
        return self.outcome

    def step(
        self, device: Device, rule: Rule, spec: RuleSpec, value: float, observed: datetime
    ) -> None:
        alarm = self._active(device.id, rule.code)
        level = spec.level_of(value)
        if alarm is not None:
            if observed < alarm.last_at:
                return  # a late reading does not move an alarm back in time
            alarm.last_value, alarm.last_at = value, observed
            if level is not None and level != alarm.level:
                action = "escalated" if level < alarm.level else "deescalated"
                alarm.level = level
                self._event(alarm, action, observed, value)
                self.outcome.changed.append(alarm)
            elif level is None and spec.clears(value):
                self._clear(alarm, observed, value)
            return
        if not spec.for_seconds:
            if level is not None:
                self.open(device, rule, level, value, observed)
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
            self.open(device, rule, level, value, observed)

    def open(
        self, device: Device, rule: Rule, level: int, value: float | None, observed: datetime
    ) -> Alarm:
        """Open the alarm, or, if another transaction opened it first, take that one: the
        store allows one not cleared per (device, rule)."""
        alarm = Alarm(
            device_id=device.id,
            rule_id=rule.id,
            rule_code=rule.code,
            division_code=device.division_code,
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
