"""A resident's journey through one login, in a real browser on a real server."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import pyotp
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.identity.accounts import register_resident
from qilu.identity.models import LegalEntity, Person, StaffMember
from qilu.identity.service import id_number_of
from qilu.pii import load_vault

from ..browser import LiveServer, needs_browser

pytestmark = needs_browser
PASSWORD = "Qilu-journey-2026"


def _staff() -> Select[tuple[int]]:
    """Civil servants must set up TOTP at sign-in; these journeys are about residents."""
    return select(StaffMember.person_id)


def a_resident(live_server: LiveServer, offset: int) -> tuple[str, str]:
    """Name and ID number of an adult in the server's synthetic register."""
    engine = make_engine(live_server.settings)
    with Session(engine) as session:
        person = session.scalars(
            select(Person)
            .where(Person.birth_date < date(2000, 1, 1), Person.id.not_in(_staff()))
            .order_by(Person.id)
            .offset(offset)
            .limit(1)
        ).one()
        return person.name, id_number_of(load_vault(live_server.settings), person)


def test_register_sign_in_enable_totp_and_sign_in_with_it(
    live_server: LiveServer, browser: object, tmp_path: Path
) -> None:
    name, id_number = a_resident(live_server, 3)
    page = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    base = live_server.base

    page.goto(base + "/account/register")
    page.get_by_label("姓名").fill(name)
    page.get_by_label("公民身份号码").fill(id_number)
    page.get_by_label("设置密码").fill(PASSWORD)
    page.get_by_label("再次输入密码").fill(PASSWORD)
    page.get_by_role("button", name="注册并登录").click()
    page.wait_for_url(base + "/account")
    assert page.locator('[data-fact="name"]').inner_text() == name
    page.screenshot(path=str(tmp_path / "account.png"), full_page=True)

    page.get_by_role("link", name="启用").click()
    secret = page.locator("[data-totp-secret]").inner_text()
    assert page.locator(".qr svg").count() == 1
    totp = pyotp.TOTP(secret)
    setup_step = totp.timecode(datetime.now(UTC))
    page.get_by_label("验证码").fill(totp.at(datetime.now(UTC)))
    page.get_by_label("登录密码").fill(PASSWORD)  # a new factor counts only with the password
    page.get_by_role("button", name="启用").click()
    assert page.locator("[data-recovery-codes] li").count() == 10
    page.screenshot(path=str(tmp_path / "totp-enabled.png"), full_page=True)

    page.goto(base + "/account")
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url(base + "/")

    page.goto(base + "/account")
    page.wait_for_url("**/account/sign-in?next=/account")
    page.get_by_label("公民身份号码").fill(id_number)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url("**/account/two-factor**")
    page.get_by_label("验证码").fill("000000")
    page.get_by_role("button", name="验证并登录").click()
    assert "验证码不正确" in page.locator("[role=alert]").inner_text()
    # A code of a later 30-second step: the one used for the setup is never accepted again.
    while totp.timecode(datetime.now(UTC)) <= setup_step:
        time.sleep(0.5)
    page.get_by_label("验证码").fill(totp.now())
    page.get_by_role("button", name="验证并登录").click()
    page.wait_for_url(base + "/account")
    assert "4 级" in page.locator('[data-fact="assurance"]').inner_text()
    history = page.locator("table.history").inner_text()
    assert "两步验证失败" in history and "两步验证通过" in history
    page.screenshot(path=str(tmp_path / "signed-in-with-totp.png"), full_page=True)
    page.close()


def test_a_wrong_id_number_is_explained_at_registration(
    live_server: LiveServer, browser: object
) -> None:
    name, id_number = a_resident(live_server, 4)
    page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page.goto(live_server.base + "/account/register")
    page.get_by_label("姓名").fill(name)
    wrong = id_number[:17] + ("0" if id_number[17] != "0" else "1")
    page.get_by_label("公民身份号码").fill(wrong)
    page.get_by_label("设置密码").fill(PASSWORD)
    page.get_by_label("再次输入密码").fill(PASSWORD)
    page.get_by_role("button", name="注册并登录").click()
    assert "校验码应为" in page.locator("#id_number-error").inner_text()
    assert page.get_by_label("姓名").input_value() == name  # what was typed is kept
    page.close()


def _account_for(live_server: LiveServer, person_id: int) -> tuple[str, str]:
    """Give a person of the server's store an account; return their name and ID number."""
    settings = live_server.settings
    vault = load_vault(settings)
    with Session(make_engine(settings)) as session, session.begin():
        person = session.get(Person, person_id)
        assert person is not None
        number = id_number_of(vault, person)
        register_resident(
            session,
            vault,
            name=person.name,
            id_number=number,
            password=PASSWORD,
            profile="standard",
        )
        return person.name, number


def _sign_in(page: object, base: str, id_number: str) -> None:
    page.goto(base + "/account/sign-in")  # type: ignore[attr-defined]
    page.get_by_label("公民身份号码").fill(id_number)  # type: ignore[attr-defined]
    page.get_by_label("密码").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="登录").click()  # type: ignore[attr-defined]
    page.wait_for_url(base + "/account")  # type: ignore[attr-defined]


def test_a_legal_representative_authorises_an_agent_who_acts_for_the_enterprise(
    live_server: LiveServer, browser: object, tmp_path: Path
) -> None:
    base = live_server.base
    with Session(make_engine(live_server.settings)) as session:
        entity = session.scalars(
            select(LegalEntity)
            .where(
                LegalEntity.uscc.like("91%"), LegalEntity.legal_representative_id.not_in(_staff())
            )
            .order_by(LegalEntity.id)
            .offset(2)
            .limit(1)
        ).one()
        uscc, entity_name, boss_id = entity.uscc, entity.name, entity.legal_representative_id
        agent_id = session.scalars(
            select(Person.id)
            .where(
                Person.id != boss_id,
                Person.birth_date < date(1990, 1, 1),
                Person.id.not_in(_staff()),
            )
            .order_by(Person.id.desc())
            .limit(1)
        ).one()
    _, boss_number = _account_for(live_server, boss_id)
    agent_name, agent_number = _account_for(live_server, agent_id)

    boss = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # type: ignore[attr-defined]
    _sign_in(boss, base, boss_number)
    boss.goto(base + f"/account/enterprises/{uscc}/agents")
    boss.get_by_label("经办人姓名").fill(agent_name)
    boss.get_by_label("经办人身份号码").fill(agent_number)
    boss.get_by_role("button", name="授权").click()
    boss.wait_for_url(base + f"/account/enterprises/{uscc}/agents")
    assert "有效" in boss.locator("table.grants tbody tr").first.inner_text()
    boss.screenshot(path=str(tmp_path / "agents.png"), full_page=True)

    agent = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # type: ignore[attr-defined]
    _sign_in(agent, base, agent_number)
    agent.goto(base + "/account/enterprises")
    agent.locator(f'[data-uscc="{uscc}"]').get_by_role("button", name="以此身份办事").click()
    agent.wait_for_url(base + "/account/enterprises")
    assert entity_name in agent.locator("[data-acting]").inner_text()
    assert "经办人" in agent.locator("[data-acting]").inner_text()
    agent.screenshot(path=str(tmp_path / "acting.png"), full_page=True)

    boss.get_by_role("button", name="撤销").click()
    boss.wait_for_url(base + f"/account/enterprises/{uscc}/agents")
    assert "已撤销" in boss.locator("table.grants tbody tr").first.inner_text()

    agent.reload()
    assert "个人" in agent.locator("[data-acting]").inner_text()
    assert agent.locator(f'[data-uscc="{uscc}"]').count() == 0
    history = agent.goto(base + "/account") and agent.locator("table.history").inner_text()
    assert "企业身份失效" in history


def test_scan_to_sign_in_on_a_computer(
    live_server: LiveServer, browser: object, tmp_path: Path
) -> None:
    """扫码登录: the computer's page waits by itself (htmx polling) and goes on once the phone
    confirms; the phone is a second browser context signed in as the person."""
    name, id_number = a_resident(live_server, 11)
    with Session(make_engine(live_server.settings)) as session, session.begin():
        register_resident(
            session,
            load_vault(live_server.settings),
            name=name,
            id_number=id_number,
            password=PASSWORD,
            profile="standard",
        )
    base = live_server.base
    computer = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    phone = browser.new_context(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    desk = computer.new_page()
    desk.goto(base + "/account/sign-in")
    desk.get_by_role("link", name="在电脑上？用已登录的手机扫码登录").click()
    desk.get_by_role("button", name="获取二维码").click()
    assert desk.locator("[data-qr] svg").count() == 1
    address = desk.locator("[data-qr-address]").inner_text()
    check_code = desk.locator("[data-check-code]").inner_text()
    desk.screenshot(path=str(tmp_path / "qr-computer.png"), full_page=True)

    hand = phone.new_page()
    hand.goto(address)  # not signed in on the phone yet: sign in, come back
    hand.get_by_label("公民身份号码").fill(id_number)
    hand.get_by_label("密码").fill(PASSWORD)
    hand.get_by_role("button", name="登录", exact=True).click()
    hand.wait_for_url(address)
    assert hand.locator("[data-check-code]").inner_text() == check_code
    hand.screenshot(path=str(tmp_path / "qr-phone.png"), full_page=True)
    hand.get_by_role("button", name="确认登录").click()
    assert "请回到电脑继续" in hand.locator("[data-qr-done]").inner_text()

    desk.wait_for_url(base + "/account", timeout=10_000)  # the poll carried it on
    assert desk.locator('[data-fact="name"]').inner_text() == name
    computer.close()
    phone.close()
