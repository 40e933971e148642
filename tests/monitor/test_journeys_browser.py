"""应急指挥 in a real browser at phone size (issue 15): a duty officer sees the alarm on the wall,
核实 it, dispatches it (a wrong time limit is explained next to the field, what was typed kept),
the responder 签收 and reports back, and the officer's 复核 closes it; a new alarm reaches the
wall while it is open, and the map shows where it is."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.monitor import devices, hj212, rules
from qilu.monitor.alarms import Evaluator
from qilu.monitor.ingest import Received, store

from ..browser import LiveServer, needs_browser
from ..data.test_journeys_browser import sign_in
from ..identity.test_journeys_browser import a_resident
from ..services.test_journeys_browser import account, new_page

pytestmark = needs_browser
STACK = "370102000000000000000077"


def an_alarm(live_server: LiveServer) -> None:
    """A stack of 历下区 sends SO2 at 240 mg/m³: a red alarm, through the real store."""
    with Session(make_engine(live_server.settings)) as session, session.begin():
        rules.install(session, replace=False)
        spec = devices.DeviceSpec(
            "hj212", STACK, "pollution_source", "测试电厂 2 号烟囱", "370102", 60
        )
        devices.register(session, spec)
        raw = hj212.encode(
            cn="2051", mn=STACK, st="31", pw="123456", qn=None,
            data_time=datetime.now(UTC), values={"a21026-Avg": 240.0}, flags={"a21026": "N"},
        )  # fmt: skip
        item = Received("hj212", "test", raw, hj212.decode(raw), datetime.now(UTC))
        Evaluator(session).readings(store(session, [item]).rows)


def test_an_alarm_is_dispatched_handled_and_closed_on_a_phone(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    base = live_server.base
    officer_name, officer_id = a_resident(live_server, 60)
    responder_name, responder_id = a_resident(live_server, 61)
    account(live_server, officer_id, officer_name, [("370102-emergency", "duty_officer")])
    account(live_server, responder_id, responder_name, [("370102-ecology", "approver")])
    an_alarm(live_server)

    officer = new_page(browser)
    sign_in(officer, base, officer_id, with_totp=True, target="/monitor/alarms")
    wall = officer.locator("[data-alarm]").filter(has_text="测试电厂 2 号烟囱")
    assert "红色" in wall.inner_text() and "待核实" in wall.inner_text()
    officer.screenshot(path=str(tmp_path / "wall.png"), full_page=True)
    wall.get_by_role("link").click()
    officer.wait_for_selector("#alarm-chart[data-ready='1'] canvas")  # readings and levels
    officer.get_by_role("button", name="确认核实").click()
    assert officer.locator("[data-state]").first.inner_text() == "已核实"

    choice = next(
        label for label in officer.locator("#assignee option").all_inner_texts()
        if responder_name in label
    )  # fmt: skip
    officer.select_option("#assignee", label=choice)
    officer.locator("#due_minutes").fill("半小时")
    officer.get_by_role("button", name="派单").click()
    assert officer.locator("#due-error").inner_text() == "处置时限须为分钟数"
    assert officer.locator("#due_minutes").input_value() == "半小时"  # what was typed is kept
    assert officer.locator("#assignee").input_value() != ""  # the choice is kept too
    officer.locator("#due_minutes").fill("30")
    officer.get_by_role("button", name="派单").click()
    assert officer.locator("[data-state]").first.inner_text() == "已派单"
    alarm_url = officer.url

    responder = new_page(browser)
    sign_in(responder, base, responder_id, with_totp=True, target="/account/messages")
    assert "报警处置任务" in responder.locator("main").inner_text()
    responder.goto(alarm_url)
    responder.get_by_role("button", name="签收任务").click()
    responder.get_by_label("处置情况").fill("已到现场，脱硫设施恢复运行")
    responder.get_by_role("button", name="提交反馈").click()
    assert responder.locator("[data-state]").first.inner_text() == "已处置"

    officer.goto(alarm_url)
    officer.get_by_role("button", name="复核通过，关闭报警").click()
    assert officer.locator("[data-state]").first.inner_text() == "已关闭"
    history = officer.locator("[data-history]").inner_text()
    for step in ("报警为红色", "核实", "派单", "签收", "处置反馈", "复核通过"):
        assert step in history
    assert officer.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    officer.screenshot(path=str(tmp_path / "closed.png"), full_page=True)


def test_a_new_alarm_reaches_the_open_wall_and_the_map_on_a_phone(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    officer_name, officer_id = a_resident(live_server, 62)
    account(live_server, officer_id, officer_name, [("370102-emergency", "duty_officer")])
    officer = new_page(browser)
    sign_in(officer, live_server.base, officer_id, with_totp=True, target="/monitor/alarms")
    status = officer.locator("[data-live-status]")
    status.filter(has_text="实时更新中").wait_for()  # the event stream is open
    assert "测试化工 1 号排口" not in officer.locator(".alarm-wall").inner_text()
    with Session(make_engine(live_server.settings)) as session, session.begin():
        rules.install(session, replace=False)
        spec = devices.DeviceSpec(
            "hj212", "370102000000000000000078", "pollution_source", "测试化工 1 号排口",
            "370102", 60, None, 36.6612, 117.0823,
        )  # fmt: skip
        devices.register(session, spec)
        raw = hj212.encode(
            cn="2051", mn=spec.code, st="31", pw="123456", qn=None,
            data_time=datetime.now(UTC), values={"a21026-Avg": 120.0}, flags={"a21026": "N"},
        )  # fmt: skip
        item = Received("hj212", "test", raw, hj212.decode(raw), datetime.now(UTC))
        Evaluator(session).readings(store(session, [item]).rows)

    # Server-sent events tell the open wall, which fetches the list again: no reload.
    officer.locator(".alarm-wall").filter(has_text="测试化工 1 号排口").wait_for(timeout=15_000)
    assert "实时更新中" in status.inner_text()
    assert officer.locator("[data-live-wall]").get_attribute("data-refreshed") == "1"
    officer.get_by_role("link", name="态势图").click()
    officer.wait_for_selector("#situation-map[data-ready='1'] canvas")
    listed = officer.locator("main li").filter(has_text="测试化工 1 号排口")
    assert "橙色" in listed.inner_text()  # SO2 120 mg/m³: 橙
    box = officer.locator("#situation-map").bounding_box()
    assert box is not None and box["width"] <= 400 and box["height"] >= 300  # fits the phone
    officer.screenshot(path=str(tmp_path / "map.png"), full_page=True)
    whole = officer.get_by_role("button", name="查看全省")  # it opened on the officer's ground
    whole.click()
    assert whole.is_hidden()
    listed.get_by_role("link").click()
    assert "二氧化硫" in officer.locator("h1").inner_text()
