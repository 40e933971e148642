"""秒批 decision tables: unary tests, hit policy FIRST, unknown inputs send it to a person."""

from __future__ import annotations

from typing import Any

import pytest

from qilu.services.rules import decide, passes
from qilu.services.specs import shipped_catalog


@pytest.mark.parametrize(
    ("test", "value", "expected"),
    [
        ("-", None, True),
        ("true", True, True),
        ("true", "true", False),
        ("false", False, True),
        (">= 80", 80, True),
        (">= 80", 79, False),
        ("< 50", "49.5", True),
        ("0..30", 30, True),
        ("0..30", 31, False),
        ("in 男,女", "女", True),
        ("= 个体", "个体", True),
        ("!= 个体", "企业", True),
        (">= 80", "八十", False),
    ],
)
def test_unary_tests(test: str, value: Any, expected: bool) -> None:
    assert passes(test, value) is expected


def facts(values: dict[str, Any]):  # type: ignore[no-untyped-def]
    return lambda name: values.get(name)


def test_senior_allowance_approves_an_80_year_old_local() -> None:
    rule = shipped_catalog().rules["senior-allowance"]
    decision = decide(rule, facts({"applicant.age": 82, "applicant.in_shandong": True}))
    assert decision.approved
    assert {f["label"]: f["value"] for f in decision.findings} == {"年龄": 82, "本省户籍": "是"}


def test_a_younger_applicant_is_referred_with_the_reason() -> None:
    rule = shipped_catalog().rules["senior-allowance"]
    decision = decide(rule, facts({"applicant.age": 75, "applicant.in_shandong": True}))
    assert not decision.approved
    assert decision.reason == "未满80周岁"


def test_an_unknown_input_never_approves() -> None:
    rule = shipped_catalog().rules["senior-allowance"]
    decision = decide(rule, facts({"applicant.age": 90}))
    assert not decision.approved
    assert "本省户籍" in decision.reason


def test_no_matching_row_refers() -> None:
    rule = shipped_catalog().rules["newborn-hukou"]
    decision = decide(
        rule,
        facts(
            {
                "applicant.holds.出生医学证明": True,
                "applicant.in_shandong": True,
                "form.child_birth_date.days_ago": -3,  # a birth date in the future
            }
        ),
    )
    assert not decision.approved
    assert "自动审批条件" in decision.reason
