"""A data steward's journey in a real browser: find a resource, load a file with bad rows, get
the error report."""

from __future__ import annotations

from pathlib import Path

import pyotp
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.db import make_engine
from qilu.identity.accounts import register_resident
from qilu.identity.roles import grant_role
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
            department_code="370000-bigdata",
            role="data_steward",
            profile="standard",
            granted_by=None,
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
