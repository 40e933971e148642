"""Clocks that speak up: a case turning yellow, then red, messages its department's approvers
once per colour; a paused or finished case says nothing; a later limit can warn again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import sessionmaker

from qilu.identity.models import Person
from qilu.messages import service as messages
from qilu.services import cases, clocks
from qilu.services.models import Application
from qilu.settings import Settings
from qilu.workdays import add_working_days
from qilu.workers import hourly

from .conftest import Province
from .test_cases import case_named, restaurant


@pytest.fixture
def started(province: Province) -> tuple[Application, Person, Person]:
    """The restaurant chain submitted, with a window clerk and an approver where it lands."""
    clerk = province.official("370102-approval", "window_clerk", "窗口甲")
    approver = province.official("370102-approval", "approver", "审批乙")
    entity = province.enterprise(province.resident)
    return restaurant(province, province.resident, entity), clerk, approver


def titles(province: Province, person: Person) -> list[str]:
    return [m.title for m in messages.inbox(province.session, person.id)]


def test_yellow_then_red_once_each(
    province: Province, started: tuple[Application, Person, Person]
) -> None:
    application, clerk, approver = started
    change = case_named(application, "企业变更登记")
    cases.act(
        province.session,
        province.vault,
        change.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=change.version,
    )
    assert change.due_on is not None
    early = change.due_on - timedelta(days=30)
    assert clocks.warn(province.session, early) == 0  # weeks left: green
    soon = change.due_on  # the last day
    assert clocks.warn(province.session, soon) == 1
    assert clocks.warn(province.session, soon) == 0  # told once
    late = add_working_days(change.due_on, 1)
    assert clocks.warn(province.session, late) == 1
    assert titles(province, approver)[:2] == ["办件已超期", "办件即将超期"]
    assert "办件即将超期" not in titles(
        province, clerk
    )  # approvers decide; the window is told of new cases
    assert change.clock_warned == "red"


def test_a_paused_case_is_silent(
    province: Province, started: tuple[Application, Person, Person]
) -> None:
    application, clerk, approver = started
    change = case_named(application, "企业变更登记")
    for action, who in (("accept", clerk), ("correct", approver)):
        cases.act(
            province.session,
            province.vault,
            change.id,
            action,
            actor_person_id=who.id,
            expected_version=change.version,
            reason="缺签字",
            redo=["material:变更决议"],
        )
    assert change.due_on is not None
    assert clocks.warn(province.session, add_working_days(change.due_on, 5)) == 0


def test_the_worker_runs_the_clocks(
    province: Province, started: tuple[Application, Person, Person], settings: Settings
) -> None:
    """`hourly` (what the sweeper calls once an hour) works in a session of its own: a case
    accepted today with one promised working day is yellow at once."""
    application, clerk, approver = started
    change = case_named(application, "企业变更登记")
    cases.act(
        province.session,
        province.vault,
        change.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=change.version,
    )
    province.session.commit()
    sessions = sessionmaker(bind=province.session.get_bind())
    assert hourly(sessions, settings, province.vault) == (1, 0)
    assert hourly(sessions, settings, province.vault) == (0, 0)
    assert titles(province, approver)[0] == "办件即将超期"
