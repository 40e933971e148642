from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qilu.identity.assurance import FRESH_FOR, StepUpRequired, require

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)


def test_a_recent_authentication_at_the_level_passes() -> None:
    require(4, assurance=4, authenticated_at=NOW - FRESH_FOR + timedelta(seconds=1), now=NOW)


@pytest.mark.parametrize(
    ("level", "have", "age"),
    [(4, 3, timedelta(0)), (3, 4, FRESH_FOR), (3, 3, timedelta(hours=2))],
)
def test_a_weak_or_old_authentication_must_step_up(level: int, have: int, age: timedelta) -> None:
    with pytest.raises(StepUpRequired) as raised:
        require(level, assurance=have, authenticated_at=NOW - age, now=NOW)
    assert raised.value.level == level and raised.value.code == "auth.step_up"
    challenge = raised.value.headers()["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert f'acr_values="{level}"' in challenge and 'max_age="600"' in challenge


def test_without_a_freshness_window_only_the_level_counts() -> None:
    require(3, assurance=3, authenticated_at=NOW - timedelta(days=1), fresh_for=None, now=NOW)
