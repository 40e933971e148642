"""Journeys of the data platform in a real browser: a data steward loads a file with bad rows and
gets the error report; a department asks for health data, the provider approves, its system
reads only while the resident consents, and the resident sees every read."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.db import make_engine
from qilu.identity.accounts import register_resident
from qilu.identity.oidc_clients import register_service_client
from qilu.identity.roles import OPERATOR, grant_role
from qilu.pii import load_vault

from ..browser import LiveServer, needs_browser
from ..identity.test_journeys_browser import a_resident

pytestmark = needs_browser
PASSWORD = "Qilu-steward-2026"


def test_a_steward_loads_a_file_and_downloads_the_error_report(
    live_server: LiveServer, browser: object, tmp_path: Path
) -> None:
    name, id_number = a_resident(live_server, 20)
    with Session(make_engine(live_server.settings)) as session, session.begin():
        install_standard_catalog(session)
        account = register_resident(
            session,
            load_vault(live_server.settings),
            name=name,
            id_number=id_number,
            password=PASSWORD,
            profile="standard",
        )
        grant_role(
            session,
            person_id=account.person_id,
            department_code="370000-public_security",  # the 人口 library's provider
            role="data_steward",
            profile="standard",
            actor=OPERATOR,
        )
    upload = tmp_path / "人口.csv"
    upload.write_text(
        "公民身份号码,姓名,性别,出生日期,户籍地行政区划\n"
        "11010519491231002X,王芳,2,1949-12-31,110105\n"
        "370102199003073510,李强,1,1990-03-07,370102\n",
        encoding="utf-8",
    )
    page = browser.new_page(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    base = live_server.base
    page.goto(base + "/account/sign-in?next=/workbench/data")
    page.get_by_label("公民身份号码").fill(id_number)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    secret = page.locator("[data-totp-secret]").inner_text()  # staff set up TOTP first
    page.get_by_label("验证码").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="启用").click()
    page.goto(base + "/workbench/data")
    page.get_by_label("搜索资源").fill("人口")
    page.get_by_role("button", name="搜索").click()
    page.get_by_role("link", name="人口基础信息").click()
    page.set_input_files("#file", str(upload))
    page.get_by_role("button", name="上传并加载").click()
    page.wait_for_selector("[data-load]")
    assert page.locator('[data-count="inserted"]').inner_text() == "1"
    assert page.locator('[data-count="rejected"]').inner_text() == "1"
    page.screenshot(path=str(tmp_path / "load.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("[data-error-report]").click()
    report = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert report.splitlines()[0] == "行号,字段,原因" and report.splitlines()[1].startswith(
        "3,id_number,"
    )


def staff(live_server: LiveServer, offset: int, department: str) -> str:
    """A seeded person made data steward of `department`; returns their ID number."""
    name, id_number = a_resident(live_server, offset)
    with Session(make_engine(live_server.settings)) as session, session.begin():
        account = register_resident(
            session, load_vault(live_server.settings), name=name, id_number=id_number,
            password=PASSWORD, profile="standard",
        )  # fmt: skip
        grant_role(
            session, person_id=account.person_id, department_code=department,
            role="data_steward", profile="standard", actor=OPERATOR,
        )  # fmt: skip
    return id_number


def sign_in(page: Any, base: str, id_number: str, *, with_totp: bool, target: str) -> None:
    page.goto(base + f"/account/sign-in?next={target}")
    page.get_by_label("公民身份号码").fill(id_number)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(lambda url: "/account/sign-in" not in url)  # the post has landed
    if with_totp:  # staff set up TOTP on their first sign-in
        secret = page.locator("[data-totp-secret]").inner_text()
        page.get_by_label("验证码").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="启用").click()
    page.goto(base + target)


def test_a_department_gets_health_data_only_with_the_stewards_and_the_residents_yes(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    base, settings = live_server.base, live_server.settings
    resident_name, resident_id = a_resident(live_server, 30)
    asking = staff(live_server, 31, "370102-approval")
    providing = staff(live_server, 32, "370000-health")
    with Session(make_engine(settings)) as session, session.begin():
        vault = load_vault(settings)
        install_standard_catalog(session)
        rows = [{"id_number": resident_id, "chronic_conditions": "高血压", "allergies": "青霉素",
                 "updated_on": "2026-11-01"}]  # fmt: skip
        load_rows(session, vault, "ZT-YL-001", enumerate(rows, 1), source="t", actor=OPERATOR)
        register_resident(session, vault, name=resident_name, id_number=resident_id,
                          password=PASSWORD, profile="standard")  # fmt: skip
        system = register_service_client(
            session, name="历下区审批系统", department_code="370102-approval", actor=OPERATOR
        )
        credentials = (system.client.client_id, system.secret or "")
    phone = {"viewport": {"width": 390, "height": 844}}

    # The asking department's steward asks for three fields, one of them in clear.
    steward = browser.new_context(**phone).new_page()
    sign_in(steward, base, asking, with_totp=True, target="/workbench/data")
    steward.get_by_label("搜索资源").fill("健康")
    steward.get_by_role("button", name="搜索").click()
    steward.get_by_role("link", name="居民电子健康档案").click()
    steward.locator("[data-ask-sharing]").click()
    for value in ("id_number", "chronic_conditions", "allergies"):
        steward.locator(f'input[name="fields"][value="{value}"]').check()
    steward.locator('input[name="clear_fields"][value="chronic_conditions"]').check()
    steward.get_by_label("使用目的").fill("高龄老人慢病随访与上门服务")
    steward.get_by_label("法律或政策依据").fill("《山东省政务信息资源共享管理办法》")
    steward.get_by_label("使用期限至").fill((date.today() + timedelta(days=90)).isoformat())
    steward.get_by_role("button", name="提交申请").click()
    assert steward.locator("[data-request] [data-status]").first.inner_text().startswith("待审批")

    # The provider's steward approves.
    provider = browser.new_context(**phone).new_page()
    sign_in(provider, base, providing, with_totp=True, target="/workbench/sharing")
    provider.locator("[data-pending]").get_by_role("button", name="批准", exact=True).click()
    provider.wait_for_selector("text=待我审批", state="detached")

    # The system reads: refused until the resident consents.
    api = httpx.Client(base_url=base)
    token = api.post(
        "/oidc/token",
        data={"grant_type": "client_credentials"},
        auth=credentials,
    ).json()["access_token"]

    def read() -> httpx.Response:
        return api.post(
            "/api/v1/data/ZT-YL-001/lookup",
            json={"key": resident_id},
            headers={"Authorization": f"Bearer {token}"},
        )

    assert read().json()["error"]["code"] == "sharing.consent_missing"

    # The resident consents in the portal; the read goes through; they withdraw.
    resident = browser.new_context(**phone).new_page()
    sign_in(resident, base, resident_id, with_totp=False, target="/account/data")
    option = resident.locator('[data-option="ZT-YL-001:370102-approval"]')
    option.get_by_label("授权至").fill((date.today() + timedelta(days=30)).isoformat())
    option.get_by_role("button", name="授权").click()
    assert "已授权" in resident.locator("[role=status]").first.inner_text()
    answer = read()
    assert answer.status_code == 200, answer.text
    data = answer.json()["records"][0]["data"]
    assert data["chronic_conditions"] == "高血压" and data["allergies"] == "***"
    assert data["id_number"] == resident_id[:6] + "********" + resident_id[-4:]
    resident.get_by_role("button", name="撤销授权").click()
    assert read().json()["error"]["code"] == "sharing.consent_missing"
    resident.reload()
    assert resident.locator('[data-use="data.read"]').count() == 1
    assert resident.locator('[data-use="data.read_refused"]').count() == 2
    assert "高龄老人慢病随访与上门服务" in resident.locator("table.uses").inner_text()
    resident.screenshot(path=str(tmp_path / "my-data.png"), full_page=True)
