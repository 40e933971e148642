"""秒批 decision tables: a rule (rules.yaml) maps facts about an application to approve or refer,
DMN style (unary tests per input, hit policy FIRST). A rule approves only when every input is
known and the first matching row says so; anything else goes to a person with the findings."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qilu.services.specs import RuleSpec

COMPARISON = re.compile(r"^(>=|<=|!=|>|<|=)\s*(.+)$")
RANGE = re.compile(r"^(-?\d+(?:\.\d+)?)\.\.(-?\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str
    findings: list[dict[str, Any]]  # each input: label, value, whether it was known

    def as_dict(self) -> dict[str, Any]:
        return {"approved": self.approved, "reason": self.reason, "findings": self.findings}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def passes(test: str, value: Any) -> bool:
    """Does `value` satisfy the unary test (`-`, `true`, `>= 80`, `0..30`, `in a,b`, `值`)?"""
    test = test.strip()
    if test == "-":
        return True
    if test in ("true", "false"):
        return value is (test == "true")
    if test.startswith("in "):
        return str(value) in {part.strip() for part in test[3:].split(",")}
    span = RANGE.match(test)
    if span:
        number = _number(value)
        return number is not None and float(span[1]) <= number <= float(span[2])
    compared = COMPARISON.match(test)
    if compared:
        operator, operand = compared[1], compared[2].strip()
        number, limit = _number(value), _number(operand)
        if number is None or limit is None:
            return {"=": str(value) == operand, "!=": str(value) != operand}.get(operator, False)
        return {
            ">=": number >= limit,
            "<=": number <= limit,
            ">": number > limit,
            "<": number < limit,
            "=": number == limit,
            "!=": number != limit,
        }[operator]
    return str(value) == test


def decide(rule: RuleSpec, fact: Callable[[str], Any]) -> Decision:
    """Evaluate `rule` with facts from `fact(name)` (None when unknown)."""
    values = {name: fact(spec.fact) for name, spec in rule.inputs.items()}
    findings = [
        {"label": spec.label, "value": _shown(values[name]), "known": values[name] is not None}
        for name, spec in rule.inputs.items()
    ]
    unknown = [rule.inputs[n].label for n, v in values.items() if v is None]
    if unknown:
        return Decision(False, f"缺少信息：{'、'.join(unknown)}，转人工审核", findings)
    for row in rule.rules:
        if all(passes(test, values[name]) for name, test in row.when.items()):
            return Decision(row.then == "approve", row.reason, findings)
    return Decision(False, f"不满足“{rule.name}”自动审批条件，转人工审核", findings)


def _shown(value: Any) -> Any:
    if value is True:
        return "是"
    if value is False:
        return "否"
    return value
