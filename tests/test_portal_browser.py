"""Every portal page a resident meets, on a 390 px phone, in 长辈版 and in the standard look:
nothing spills sideways, in 长辈版 no text under 18 px and no target under 48 px high, and
axe-core (vendored from npm, WCAG 2.2 A/AA rules) finds no violation. A portal route missing
from `pages` (or `NOT_PAGES`, with the reason) fails the suite, as a route missing from the
permission matrix does."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.db import make_engine
from qilu.filestore import file_store
from qilu.identity import family
from qilu.identity.models import Account, Person, StaffMember
from qilu.identity.roles import OPERATOR, grant_role
from qilu.identity.service import find_person, id_number_of
from qilu.pii import load_vault
from qilu.services import applications, bookings, cases, catalog, documents, showing
from qilu.services.models import Case, Licence, ServiceChain
from qilu.settings import Settings
from qilu.web import INSTALLS
from qilu.workdays import beijing_today

from .browser import LiveServer, needs_browser
from .data.test_journeys_browser import sign_in
from .services.test_journeys_browser import PHONE, account

pytestmark = needs_browser
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
PORTAL = ("/account", "/services", "/licences", "/documents", "/codes", "/open-data")
NOT_PAGES = {
    "/account/messages/badge": "an htmx fragment of the header",
    "/services/suggest": "an htmx fragment under the search box (its list is on the home page)",
    "/account/licences/{number}.json": "a file download",
    "/open-data/{code}.csv": "a file download (tests/data/test_opening.py)",
    "/open-data/dcat.jsonld": "JSON-LD for harvesters (tests/data/test_catalog_api.py)",
    "/account/licences/{number}.pdf": "a file download (tests/services/test_documents.py)",
    "/account/licences/{number}.ofd": "a file download (tests/services/test_licence_ofd.py)",
    "/services/applications/{application_id}/documents/{number}.pdf": "a file download",
    "/account/licences/{number}/face.svg": "an image, shown on the licence page",
    "/account/federated": "a redirect to the upstream identity provider",
    "/account/federated/callback": "the upstream's redirect back",
    "/account/two-factor": "exists only between password and second factor (identity tests)",
    "/account/qr/confirm/{reference}": "needs a code scanned on another device (cross-device)",
    "/account/enterprises/{uscc}/agents": "an enterprise's (agents journey)",
    "/account/enterprises/{uscc}/representative": "an enterprise's (agents journey)",
}
# What each check runs: the text under 18 px and the targets under 48 px in 长辈版.
SMALL_TEXT = """() => [...document.querySelectorAll('body *')].filter(e => {
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  const box = e.getBoundingClientRect();
  const decorative = e.closest('[aria-hidden=true]');  // a seal's imitation, not text to read
  return own && !decorative && box.width > 0 && parseFloat(getComputedStyle(e).fontSize) < 18;
}).map(e => e.tagName + ':' + e.textContent.trim().slice(0, 20))"""
TARGETS = "main a, main button, main input, main select, header a, header button"
SMALL_TARGETS = """() => [...document.querySelectorAll(TARGETS)].filter(e => {
  const box = e.getBoundingClientRect();
  const inline = e.tagName === 'A' && getComputedStyle(e).display === 'inline'
    && e.closest('p, li, dd, td');
  return box.width > 0 && !inline && e.type !== 'hidden' && e.type !== 'checkbox'
    && e.type !== 'radio' && box.height < 48;
}).map(e => e.tagName + ':' + (e.textContent || e.name).trim().slice(0, 20))""".replace(
    "TARGETS", repr(TARGETS)
)

# Input borders against the page behind them (WCAG 1.4.11 non-text contrast: at least 3:1).
FAINT_BORDERS = """() => {
  const lum = c => { const [r, g, b] = c.match(/\\d+/g).slice(0, 3).map(v => {
    v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  return [...document.querySelectorAll('input:not([type=hidden]):not([type=checkbox])'
    + ':not([type=radio]):not([type=file]), select, textarea')].filter(e => {
    const style = getComputedStyle(e);
    return e.getBoundingClientRect().width > 0
      && ratio(style.borderTopColor, 'rgb(255, 255, 255)') < 3;
  }).map(e => e.name + ' ' + getComputedStyle(e).borderTopColor);
}"""


def portal_routes() -> set[str]:
    found = set()
    for install in INSTALLS:
        for route in sys.modules[install.__module__].router.routes:
            if not (isinstance(route, APIRoute) and "GET" in route.methods):
                continue
            if route.path == "/" or route.path.startswith(PORTAL):
                found.add(route.path)
    return found


def unregistered_adult(live_server: LiveServer) -> tuple[str, str]:
    """Someone in the server's register with no account yet and a phone (forms prefill it),
    (other tests take theirs from the start of the register; this takes from its end, and
    which one depends on the tests that ran before on this worker)."""
    with Session(make_engine(live_server.settings)) as session:
        person = session.scalars(
            select(Person)
            .where(
                Person.birth_date < date(2000, 1, 1),
                Person.id.not_in(select(Account.person_id)),
                Person.id.not_in(select(StaffMember.person_id)),  # staff must set up TOTP
                Person.phone_cipher.is_not(None),
            )
            .order_by(Person.id.desc())
            .limit(1)
        ).one()
        return person.name, id_number_of(load_vault(live_server.settings), person)


def correcting(session: Session, settings: Settings, person: Person, code: str) -> Case:
    """A 临时救助申请 the department asked to correct (a field and a material ticked), acted on
    by someone who is staff already (so other tests' choice of non-staff residents holds)."""
    vault = load_vault(settings)
    application = applications.start(session, vault, applicant=person, item_code=code).application
    applications.save_draft(
        session,
        application,
        {"reason": "火灾", "amount": "3000", "bank_account": "6222020200112233445"},
    )
    applications.add_upload(
        session,
        file_store(settings.data_dir),
        application,
        "困难情况说明",
        file_name="说明.png",
        content_type="image/png",
        content=b"\x89PNG\r\n\x1a\n" + b"0" * 64,
    )
    applications.submit(session, vault, application, actor_person_id=person.id)
    [case] = application.cases
    staff_id = session.scalars(
        select(StaffMember.person_id).where(StaffMember.person_id != person.id).limit(1)
    ).one()
    for role in ("window_clerk", "approver"):
        grant_role(
            session,
            person_id=staff_id,
            department_code=case.department.code,
            role=role,
            profile="standard",
            actor=OPERATOR,
        )
    for action, redo in (("accept", None), ("correct", ["field:amount", "material:困难情况说明"])):
        cases.act(
            session,
            vault,
            case.id,
            action,
            actor_person_id=staff_id,
            expected_version=case.version,
            reason="金额与说明不符",
            redo=redo,
        )
    return case


def prepare(live_server: LiveServer) -> tuple[str, dict[str, str]]:
    """A resident with a finished 新生儿出生, a draft, a licence; the pages' addresses."""
    name, id_number = unregistered_adult(live_server)
    account(live_server, id_number, name, [])
    settings = live_server.settings
    vault = load_vault(settings)
    with Session(make_engine(settings)) as session, session.begin():
        person = find_person(session, vault, id_number)
        chain = session.scalars(
            select(ServiceChain).where(ServiceChain.name == "新生儿出生", ServiceChain.is_current)
        ).one()
        started = applications.start(
            session,
            vault,
            applicant=person,
            chain_code=chain.code,
            answers={"born_in_shandong": "yes", "medical": "no"},
        )
        done = started.application
        applications.save_draft(
            session,
            done,
            {
                "child_name": "小红",
                "child_sex": "女",
                "child_birth_date": (beijing_today() - timedelta(days=2)).isoformat(),
                "birth_place": "山东省立医院",
                "mother_name": name,
                "father_name": "张伟",
                "bank_account": "6222020200112233445",
            },
        )
        applications.submit(session, vault, done, actor_person_id=person.id)
        item = catalog.named(session, ["临时救助申请"])[0]
        draft = applications.start(session, vault, applicant=person, item_code=item.code)
        corrected = correcting(session, settings, person, item.code)
        visit = catalog.named(session, ["机动车注册登记"])[0]
        slot = bookings.slots(session, person, visit.code)[0]
        bookings.book(session, person, visit.code, slot.day, slot.period)
        licence = session.scalars(
            select(Licence).where(Licence.keeper_code_index == person.id_number_index)
        ).first()
        assert licence is not None
        token, _ = showing.show(session, licence, ["holder_name"])
        notice = documents.of_cases(session, [corrected.id])[corrected.id][-1]
        parent = session.scalars(select(Person).where(Person.id != person.id).limit(1)).one()
        proxy = family.grant(
            session, vault, parent, name=name, id_number=id_number, relation="子女", days=30
        )
        retire = catalog.named(session, ["退休"])[0]
        pages = {
            "/": "/",
            "/codes": "/codes",
            "/open-data": "/open-data",
            "/open-data/{code}": "/open-data/JC-FR-001",
            "/account/register": "/account/register",
            "/account/sign-in": "/account/sign-in",
            "/account/forgot": "/account/forgot",
            "/account/qr": "/account/qr",
            "/services": "/services?q=生小孩",
            "/services/items/{code}": f"/services/items/{item.code}",
            "/services/chains/{code}": f"/services/chains/{chain.code}",
            "/services/progress": "/services/progress",
            "/licences/verify": "/licences/verify",
            "/licences/shown/{token}": f"/licences/shown/{token}",
            # signed in from here on
            "/account": "/account",
            "/account/confirm": "/account/confirm?next=/account",
            "/account/two-factor/setup": "/account/two-factor/setup",
            "/account/messages": "/account/messages",
            "/account/enterprises": "/account/enterprises",
            "/account/data": "/account/data",
            "/services/applications/{application_id}": f"/services/applications/{done.id}",
            "draft": f"/services/applications/{draft.application.id}",
            "correcting": f"/services/applications/{corrected.application_id}",
            "/services/applications/{application_id}/documents/{number}": (
                f"/services/applications/{corrected.application_id}/documents/{notice.number}"
            ),
            "/documents/verify": documents.verify_url(notice, ""),
            "/account/applications": "/account/applications?tab=doing",
            "/account/licences": "/account/licences",
            "/services/items/{code}/booking": f"/services/items/{visit.code}/booking",
            "/account/bookings": "/account/bookings",
            "/account/family": "/account/family",
            "/account/family/{grant_id}/chains/{code}": (
                f"/account/family/{proxy.id}/chains/{retire.code}"
            ),
            "/account/licences/{number}": f"/account/licences/{licence.number}",
            "/account/licences/{number}/show": f"/account/licences/{licence.number}/show",
        }
    return id_number, pages


def test_every_portal_route_is_checked() -> None:
    listed = set(PAGE_TEMPLATES) | set(NOT_PAGES)
    assert portal_routes() - listed == set()
    assert set(NOT_PAGES) & set(PAGE_TEMPLATES) == set()


PAGE_TEMPLATES = (
    "/",
    "/codes",
    "/open-data",
    "/open-data/{code}",
    "/account/register",
    "/account/sign-in",
    "/account/forgot",
    "/account/qr",
    "/services",
    "/services/items/{code}",
    "/services/chains/{code}",
    "/services/progress",
    "/licences/verify",
    "/licences/shown/{token}",
    "/account",
    "/account/confirm",
    "/account/two-factor/setup",
    "/account/messages",
    "/account/enterprises",
    "/account/data",
    "/services/applications/{application_id}",
    "/services/applications/{application_id}/documents/{number}",
    "/documents/verify",
    "/account/applications",
    "/account/licences",
    "/services/items/{code}/booking",
    "/account/bookings",
    "/account/family",
    "/account/family/{grant_id}/chains/{code}",
    "/account/licences/{number}",
    "/account/licences/{number}/show",
)


@pytest.mark.parametrize("care", [True, False], ids=["care", "standard"])
def test_portal_pages_fit_a_phone_and_pass_axe(
    live_server: LiveServer, browser: Any, tmp_path: Path, care: bool
) -> None:
    base = live_server.base
    id_number, pages = prepare(live_server)
    assert set(PAGE_TEMPLATES) <= set(pages)
    context = browser.new_context(viewport=PHONE, bypass_csp=True)  # to add axe
    if care:
        context.add_cookies([{"name": "qilu_large", "value": "1", "url": base}])
    page = context.new_page()
    axe = AXE.read_text("utf-8")
    problems: dict[str, Any] = {}
    signed_in = False
    for key, url in pages.items():
        if key == "/account" and not signed_in:
            sign_in(page, base, id_number, with_totp=False, target="/account")
            assert page.url == base + "/account", page.locator("main").inner_text()
            signed_in = True
        page.goto(base + url)
        assert page.url.startswith(base + url.split("?")[0]), (key, page.url)
        found: dict[str, Any] = {}
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            found["overflow"] = width
        if faint := page.evaluate(FAINT_BORDERS):
            found["input_borders_under_3_to_1"] = faint[:5]
        if care:
            if small := page.evaluate(SMALL_TEXT):
                found["text_under_18px"] = small[:5]
            if tiny := page.evaluate(SMALL_TARGETS):
                found["targets_under_48px"] = tiny[:5]
        page.add_script_tag(content=axe)
        assert page.evaluate("axe.version") == "4.14.1"
        result = page.evaluate(
            """async () => (await axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}}))
              .violations.map(v => v.id + ' ' + v.nodes.length + ' ' + v.nodes[0].target)"""
        )
        if result:
            found["axe"] = result
        if found:
            problems[key] = found
            page.screenshot(path=str(tmp_path / f"{len(problems)}.png"), full_page=True)
    assert problems == {}
