"""Journeys of 一网通办 in a real browser on a phone-sized screen: a resident completes 新生儿出生
(decided by 秒批) and a licence is verified on the public page; an enterprise completes
我要开饭店 across departments with one correction round; a clerk applies at the window for a
walk-in."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.db import make_engine
from qilu.identity.accounts import register_resident
from qilu.identity.models import LegalEntity, Person, StaffMember
from qilu.identity.roles import OPERATOR, grant_role
from qilu.identity.service import id_number_of
from qilu.pii import load_vault
from qilu.services.catalog import install_catalog

from ..browser import LiveServer, needs_browser
from ..data.test_journeys_browser import PASSWORD, sign_in
from ..identity.test_journeys_browser import a_resident

pytestmark = needs_browser
PHONE = {"width": 390, "height": 844}


def account(
    live_server: LiveServer, id_number: str, name: str, roles: list[tuple[str, str]]
) -> None:
    with Session(make_engine(live_server.settings)) as session, session.begin():
        install_standard_catalog(session)
        install_catalog(session)
        person = register_resident(
            session,
            load_vault(live_server.settings),
            name=name,
            id_number=id_number,
            password=PASSWORD,
            profile="standard",
        )
        for department, role in roles:
            grant_role(
                session,
                person_id=person.person_id,
                department_code=department,
                role=role,
                profile="standard",
                actor=OPERATOR,
            )


def new_page(browser: Any) -> Any:
    return browser.new_context(viewport=PHONE).new_page()


def test_a_resident_completes_newborn_by_instant_approval_and_a_licence_verifies(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    base = live_server.base
    name, id_number = a_resident(live_server, 40)
    account(live_server, id_number, name, [])
    page = new_page(browser)
    sign_in(page, base, id_number, with_totp=False, target="/services")
    page.get_by_label("您要办什么事？").fill("生孩子")
    page.get_by_role("button", name="搜索").click()
    page.locator('[data-hit="chain"]').get_by_role("link", name="新生儿出生").click()
    page.locator('[data-question="born_in_shandong"]').get_by_label("是").check()
    page.locator('[data-question="medical"]').get_by_label("暂不办理").check()
    page.get_by_role("button", name="开始办理").click()
    assert page.locator('[data-field="applicant_name"] .prefilled').count() == 1
    assert page.locator('[data-saved="fields"]').inner_text() == "4"
    born = (date.today() - timedelta(days=2)).isoformat()
    page.get_by_label("新生儿姓名").fill("小明")
    page.get_by_label("新生儿性别").select_option("男")
    page.get_by_label("新生儿出生日期").fill(born)
    page.get_by_label("出生地点").fill("山东省立医院")
    page.get_by_label("母亲姓名").fill(name)
    page.get_by_label("父亲姓名").fill("张伟")
    page.get_by_label("收款银行账号").fill("6222020200112233445")
    page.wait_for_selector("[data-autosave-status][data-saved]")  # the draft saved itself
    page.reload()
    assert page.get_by_label("新生儿姓名").input_value() == "小明"
    page.screenshot(path=str(tmp_path / "newborn-form.png"), full_page=True)
    page.locator("[data-submit]").click()
    page.wait_for_selector('[data-status="done"]')
    hukou = page.locator('[data-case="出生登记"]')
    assert hukou.get_attribute("data-state") == "done" and "秒批" in hukou.inner_text()
    page.screenshot(path=str(tmp_path / "newborn-done.png"), full_page=True)
    # 好差评 in one tap: the overall rating; the other indicators are optional.
    page.get_by_role("group", name="总体满意度").get_by_label("非常满意").check()
    page.get_by_role("button", name="提交评价").click()
    assert page.locator("[data-rating]").get_attribute("data-rating") == "5"
    # 亮证: the child's certificate, kept in the parent's wallet, shown with the name ticked.
    page.goto(base + "/account/licences")
    certificate = page.locator('[data-licence="出生医学证明"]')
    certificate.get_by_role("link", name="亮证").click()
    page.get_by_label("持证人姓名").check()
    page.get_by_role("button", name="更新二维码").click()
    shown = page.locator("[data-shown-link]").get_attribute("href")
    assert page.locator(".show-code svg").count() == 1
    anonymous = new_page(browser)  # the verifier needs no sign-in
    anonymous.goto(base + urlsplit(str(shown)).path)
    assert anonymous.locator("[data-verdict]").get_attribute("data-verdict") == "valid"
    assert anonymous.locator("[data-shown-field]").count() == 1
    anonymous.screenshot(path=str(tmp_path / "shown.png"), full_page=True)
    page.goto(base + "/account/licences")
    certificate.get_by_role("link", name="查看照面").click()
    face_width = "i => i.decode().then(() => i.naturalWidth, () => 0)"  # once it has loaded
    assert page.locator(".licence-face img").evaluate(face_width) > 0
    with page.expect_download() as download:
        page.get_by_role("link", name="下载签名证照文件").click()
    document = json.loads(Path(download.value.path()).read_text("utf-8"))
    anonymous.goto(base + "/licences/verify")
    document["document"]["holder_name"] = "冒名者"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document, ensure_ascii=False), "utf-8")
    anonymous.set_input_files("#file", str(forged))
    anonymous.get_by_role("button", name="核验").click()
    assert anonymous.locator("[data-verdict]").get_attribute("data-verdict") == "forged"


def an_entity(live_server: LiveServer) -> tuple[str, str, str, str]:
    """(representative's name, ID number, USCC, division) of an entity run by a non-official."""
    with Session(make_engine(live_server.settings)) as session:
        staff = select(StaffMember.person_id)
        entity = session.scalars(
            select(LegalEntity)
            .join(Person, Person.id == LegalEntity.legal_representative_id)
            .where(Person.id.not_in(staff), LegalEntity.status == "active")
            .order_by(LegalEntity.id)
            .offset(3)
            .limit(1)
        ).one()
        person = entity.legal_representative
        number = id_number_of(load_vault(live_server.settings), person)
        return person.name, number, entity.uscc, entity.division_code


def act(
    page: Any, base: str, item: str, action: str, reason: str = "", redo: tuple[str, ...] = ()
) -> None:
    """Find the case of `item` in the queues and take one step on it (a correction ticks what
    to redo)."""
    for tab in ("accept", "review", "finish"):
        page.goto(base + f"/workbench/cases?tab={tab}")
        row = page.locator(f'[data-item="{item}"]')
        if row.count():
            row.first.get_by_role("link").click()
            break
    if reason:
        page.get_by_label("意见 / 理由").fill(reason)
    if redo:
        page.locator("details.redo summary").click()
        for label in redo:
            page.locator("details.redo").get_by_label(label, exact=True).check()
    page.get_by_role("button", name=action, exact=True).click()
    page.wait_for_selector('[role="status"]')


def test_an_enterprise_opens_a_restaurant_across_departments_with_one_correction(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    base = live_server.base
    name, id_number, uscc, division = an_entity(live_server)
    account(live_server, id_number, name, [])
    clerk_name, clerk_id = a_resident(live_server, 41)
    account(
        live_server,
        clerk_id,
        clerk_name,
        [(f"{division}-approval", "window_clerk"), (f"{division}-emergency", "window_clerk")],
    )
    approver_name, approver_id = a_resident(live_server, 42)
    account(
        live_server,
        approver_id,
        approver_name,
        [(f"{division}-approval", "approver"), (f"{division}-emergency", "approver")],
    )
    owner = new_page(browser)
    sign_in(owner, base, id_number, with_totp=False, target="/account/enterprises")
    owner.locator(f'[data-uscc="{uscc}"]').get_by_role("button", name="以此身份办事").click()
    owner.goto(base + "/services?q=我要开饭店")
    owner.locator('[data-hit="chain"]').get_by_role("link", name="开办餐饮店").click()
    owner.locator('[data-question="area"]').get_by_label("经营场所面积（平方米）").fill("120")
    owner.locator('[data-question="scope"]').get_by_label("尚未包含").check()
    owner.locator('[data-question="signboard"]').get_by_label("不设置").check()
    owner.get_by_role("button", name="开始办理").click()
    # the area was answered once, in the questionnaire: the form has it already
    assert owner.locator('[data-field="premises_area"] input').first.input_value() == "120"
    fields = {
        "申请事由": "增加餐饮服务",
        "经营场所地址": "泉城路100号",
        "经营范围": "热食类食品制售",
        "座位数/床位数": "80",
    }
    for label, value in fields.items():
        owner.get_by_label(label, exact=True).fill(value)
    # each click posts a form: wait for its page before the next, or a busy machine races them
    with owner.expect_navigation():
        owner.get_by_role("button", name="保存草稿").click()
    upload = tmp_path / "材料.pdf"
    upload.write_bytes(b"%PDF-1.4 synthetic")
    while owner.locator('[data-source="missing"]').count():
        missing = owner.locator('[data-source="missing"]').first
        missing.locator('input[type="file"]').set_input_files(str(upload))
        with owner.expect_navigation():
            missing.get_by_role("button", name="上传", exact=True).click()
    owner.locator("[data-submit]").click()
    owner.wait_for_selector('[data-status="in_progress"]')
    assert owner.locator('[data-case="食品经营许可"]').get_attribute("data-state") == "waiting"

    clerk = new_page(browser)
    sign_in(clerk, base, clerk_id, with_totp=True, target="/workbench/cases")
    approver = new_page(browser)
    sign_in(approver, base, approver_id, with_totp=True, target="/workbench/cases")
    for item in (
        "企业变更登记",
        "公众聚集场所投入使用营业前消防安全检查",
        "城镇污水排入排水管网许可",
    ):
        act(clerk, base, item, "受理")
    for step in ("开始审查", "准予", "办结"):
        act(approver, base, "企业变更登记", step)
    act(clerk, base, "食品经营许可", "受理")
    act(
        approver,
        base,
        "食品经营许可",
        "要求补正",
        reason="平面图未标明粗加工区",
        redo=("经营场所面积（平方米）", "材料：经营场所平面图"),
    )
    approver.screenshot(path=str(tmp_path / "workbench-case.png"), full_page=True)

    owner.reload()
    owner.wait_for_selector('[data-status="correcting"]')
    told = owner.locator(".correction-notice").inner_text()
    assert "平面图未标明粗加工区" in told and "经营场所平面图" in told
    # only what was ticked is asked again; the plan is uploaded anew before submitting
    assert owner.locator('#correction [data-field="business_scope"]').count() == 0
    plan = owner.locator('[data-material="经营场所平面图"]')
    plan.locator('input[type="file"]').set_input_files(str(upload))
    with owner.expect_navigation():
        plan.get_by_role("button", name="上传", exact=True).click()
    owner.locator('#correction [data-field="premises_area"] input').first.fill("126")
    owner.get_by_role("button", name="提交补正").click()
    owner.wait_for_selector('[data-status="in_progress"]')

    for step in ("准予", "办结"):
        act(approver, base, "食品经营许可", step)
    for item in ("公众聚集场所投入使用营业前消防安全检查", "城镇污水排入排水管网许可"):
        for step in ("开始审查", "准予", "办结"):
            act(approver, base, item, step)
    owner.reload()
    owner.wait_for_selector('[data-status="done"]')
    owner.screenshot(path=str(tmp_path / "restaurant-done.png"), full_page=True)
    owner.goto(base + "/account/licences")
    assert owner.locator('[data-licence="食品经营许可证"]').count() == 1


def test_a_clerk_applies_at_the_window_for_a_walk_in(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    base = live_server.base
    with Session(make_engine(live_server.settings)) as session:
        elder = session.scalars(
            select(Person).where(Person.birth_date < date(1944, 1, 1)).order_by(Person.id).limit(1)
        ).one()
        elder_id = id_number_of(load_vault(live_server.settings), elder)
    clerk_name, clerk_id = a_resident(live_server, 43)
    account(live_server, clerk_id, clerk_name, [("370102-approval", "window_clerk")])
    clerk = new_page(browser)
    sign_in(clerk, base, clerk_id, with_totp=True, target="/workbench/window")
    clerk.get_by_label("事项或一件事").fill("高龄津贴")
    clerk.get_by_role("button", name="查找").click()
    clerk.get_by_label("高龄津贴申领").check()
    clerk.get_by_label("申请人公民身份号码").fill(elder_id)
    clerk.get_by_role("button", name="开始受理").click()
    assert "窗口代办" in clerk.locator(".lead").first.inner_text()
    clerk.locator("[data-submit]").click()
    clerk.wait_for_selector('[data-status="done"]')
    case = clerk.locator('[data-case="高龄津贴申领"]')
    assert case.get_attribute("data-state") == "done"
    clerk.screenshot(path=str(tmp_path / "window.png"), full_page=True)


def test_the_application_page_fits_a_phone_in_large_font(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    """Issue 13: the material cards overflowed a 390 px phone by 47 px in 大字版."""
    base = live_server.base
    name, id_number = a_resident(live_server, 41)
    account(live_server, id_number, name, [])
    context = browser.new_context(viewport=PHONE)
    context.add_cookies([{"name": "qilu_large", "value": "1", "url": base}])
    page = context.new_page()
    sign_in(page, base, id_number, with_totp=False, target="/services")
    page.get_by_label("您要办什么事？").fill("生孩子")
    page.get_by_role("button", name="搜索").click()
    page.locator('[data-hit="chain"]').get_by_role("link", name="新生儿出生").click()
    page.locator('[data-question="born_in_shandong"]').get_by_label("是").check()
    page.locator('[data-question="medical"] input[value="yes"]').check()
    page.get_by_role("button", name="开始办理").click()
    page.wait_for_selector("[data-material]")
    page.screenshot(path=str(tmp_path / "application-large.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()
