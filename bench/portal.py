"""Issue 13's figures: `python -m bench.portal`.

Against `qilu serve` on a small generated demo (SQLite), in Debian's Chromium on a 390 × 844
phone with Lighthouse's slow-4G emulation (150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up)
and an empty cache for every page:

- the ten main pages a resident meets: bytes over the wire (compressed) and the time to the
  load event, beside the smallest answer of the same server (/healthz) under the same network
  as the baseline (the ratio is the figure that travels between machines);
- axe-core (vendored in tests/vendor) violations per page, WCAG 2.2 A/AA rules;
- the 新生儿出生 journey of a visitor not signed in, from the home page to a submitted
  application: every tap and every typed field, counted by the script as it makes them.

Targets: ≤ 100 KB and ≤ 1.5 s a page, no axe violations.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.server import served
from qilu.db import make_engine
from qilu.demo.service import DEMO_PASSWORD, prepare_demo
from qilu.settings import Settings

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
SLOW_4G = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1.6 * 1024 * 1024 / 8,
    "uploadThroughput": 750 * 1024 / 8,
}
AXE = Path(__file__).resolve().parent.parent / "tests" / "vendor" / "axe-core" / "axe.min.js"
PAGES = (
    ("首页", "/"),
    ("办事大厅", "/services"),
    ("搜索“生孩子”", "/services?q=生孩子"),
    ("一件事指南", "CHAIN"),
    ("登录", "/account/sign-in"),
    ("我的账号", "/account"),
    ("我的办件", "/account/applications"),
    ("我的电子证照", "/account/licences"),
    ("消息中心", "/account/messages"),
    ("办件查询", "/services/progress"),
)


def measure(browser: Any, url: str, state: dict[str, Any] | None) -> tuple[int, float]:
    """Bytes over the wire and milliseconds to the load event, cold cache, slow 4G."""
    context = browser.new_context(viewport=PHONE, storage_state=state)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    received: list[int] = []
    cdp.on("Network.loadingFinished", lambda e: received.append(int(e["encodedDataLength"])))
    page.goto(url, wait_until="load")
    if "/account/sign-in" in page.url and "/account/sign-in" not in url:
        raise RuntimeError(f"{url} sent the browser to sign in: the stored session did not hold")
    load = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return n.loadEventEnd - n.startTime; }"
    )
    context.close()
    return sum(received), float(load)


def axe_violations(browser: Any, url: str, state: dict[str, Any] | None) -> list[str]:
    context = browser.new_context(viewport=PHONE, storage_state=state, bypass_csp=True)
    page = context.new_page()
    page.goto(url)
    page.add_script_tag(content=AXE.read_text("utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
          values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}}))
          .violations.map(v => v.id)"""
    )
    context.close()
    return list(found)


class Counted:
    """A usability count: each tap and each typed field the journey needs."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.taps = 0
        self.typed = 0

    def tap(self, locator: Any) -> None:
        self.taps += 1
        locator.click()

    def type(self, locator: Any, value: str) -> None:
        self.typed += 1
        locator.fill(value)

    def choose(self, locator: Any, value: str) -> None:
        self.taps += 1  # a select is one tap to open, one to pick: counted as one choice
        locator.select_option(value)


def newborn_journey(browser: Any, base: str, id_number: str, name: str) -> Counted:
    """Home → search → 新生儿出生 → answers → sign in mid-task → back → form → submitted."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    user = Counted(page)
    page.goto(base + "/")
    user.type(page.get_by_label("您要办什么事？"), "生孩子")
    page.wait_for_selector('[data-suggestion="新生儿出生"]')
    user.tap(page.locator('[data-suggestion="新生儿出生"]'))
    user.tap(page.locator('[data-question="born_in_shandong"]').get_by_label("是"))
    user.tap(page.locator('[data-question="medical"]').get_by_label("暂不办理"))
    user.tap(page.get_by_role("button", name="开始办理"))
    user.type(page.get_by_label("公民身份号码"), id_number)
    user.type(page.get_by_label("密码"), DEMO_PASSWORD)
    user.tap(page.get_by_role("button", name="登录"))
    page.wait_for_url("**/services/**")
    if page.get_by_role("button", name="开始办理").count():  # the answers are kept: one tap
        user.tap(page.get_by_role("button", name="开始办理"))
    born = (date.today() - timedelta(days=2)).isoformat()
    user.type(page.get_by_label("新生儿姓名"), "小明")
    user.choose(page.get_by_label("新生儿性别"), "男")
    user.type(page.get_by_label("新生儿出生日期"), born)
    user.type(page.get_by_label("出生地点"), "山东省立医院")
    user.type(page.get_by_label("母亲姓名"), name)
    user.type(page.get_by_label("父亲姓名"), "张伟")
    user.type(page.get_by_label("收款银行账号"), "6222020200112233445")
    user.tap(page.locator("[data-submit]"))
    page.wait_for_selector('[data-status="done"], [data-status="in_progress"]')
    context.close()
    return user


def main() -> None:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="qilu-bench-portal-"))
    pii, index = secrets.token_hex(16), secrets.token_hex(32)
    settings = Settings(data_dir=folder, pii_key=pii, index_key=index, log_level="warning")
    summary = prepare_demo(make_engine(settings), settings, scale=2000)
    resident = next(i for i in summary.identities if i.role == "居民")
    env = {"QILU_DATA_DIR": str(folder), "QILU_PII_KEY": pii, "QILU_INDEX_KEY": index}
    try:
        with served(env, 8097, workers=1) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            journey = newborn_journey(browser, base, resident.id_number, resident.name)
            state = signed_in_state(browser, base, resident.id_number)
            chain = chain_guide(browser, base)
            _, healthz = measure(browser, base + "/healthz", None)
            print("ten main pages, 390 x 844, slow 4G (150 ms RTT, 1.6 Mbit/s), cold cache:")
            print(f"    baseline /healthz: {healthz:,.0f} ms to load")
            worst: list[tuple[float, int]] = []
            for title, path in PAGES:
                url = base + (chain if path == "CHAIN" else path)
                size, load = measure(browser, url, state)
                violations = axe_violations(browser, url, state)
                worst.append((load, size))
                verdict = "meets" if size <= 100 * 1024 and load <= 1500 else "MISSES"
                print(
                    f"    {title}: {size / 1024:,.1f} KB, {load:,.0f} ms"
                    f" = {load / healthz:.1f} x baseline, axe violations {len(violations)}"
                    f"{' ' + ','.join(violations) if violations else ''} ({verdict})"
                )
            print(
                f"    heaviest {max(s for _, s in worst) / 1024:,.1f} KB,"
                f" slowest {max(t for t, _ in worst):,.0f} ms (targets ≤ 100 KB, ≤ 1.5 s)"
            )
            print("新生儿出生 by a visitor not signed in, home page to submitted:")
            print(f"    {journey.taps} taps and {journey.typed} typed fields")
            browser.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def signed_in_state(browser: Any, base: str, id_number: str) -> dict[str, Any]:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(base + "/account/sign-in")
    page.get_by_label("公民身份号码").fill(id_number)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(lambda url: "/account/sign-in" not in url)
    state: dict[str, Any] = context.storage_state()
    context.close()
    return state


def chain_guide(browser: Any, base: str) -> str:
    page = browser.new_page()
    page.goto(base + "/services?q=新生儿出生")
    href: str = page.locator('[data-hit="chain"] a').first.get_attribute("href")
    page.close()
    return href


if __name__ == "__main__":
    main()
