"""Every route × every kind of actor, with the answer each must get (NetBox's view-test-cases
style). A route added without a row here fails `test_every_route_has_a_row`; a row whose rule
names a permission must be enforced by the route itself (`require(permission)`), and each actor
is sent to each route to see that the answer is the one in the table.

Outcomes: OK (past the door: the page, a form error, a 404 for an object the actor may not
know of, or a request to confirm one's identity), DENY (403), SIGN_IN (a page sends the browser
to sign in; an API answers 401). No route may answer 5xx to anyone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.routing import Route

from qilu.data import sharing
from qilu.identity import enterprises, sessions
from qilu.identity.access import SESSION_COOKIE, require, staff_member
from qilu.identity.models import Account, Person
from qilu.identity.roles import OPERATOR, grant_role
from qilu.pii import Vault
from qilu.web import INSTALLS

from .factories import make_account, make_entity, make_person, make_service_client

OK, DENY, SIGN_IN = "ok", "deny", "sign_in"
# Residents, and residents acting for an enterprise: as its agent with only the view scope, with
# the apply scope, and one whose authorisation was revoked while their browser still acts for it.
NOT_STAFF = ("resident", "agent_view", "agent_apply", "revoked_agent")
PEOPLE = (
    *NOT_STAFF,
    "clerk",
    "approver",
    "steward",
    "county_admin",
    "province_admin",
    "audit_admin",
)
ACTORS = ("anonymous", "system", *PEOPLE)
STAFF_ROLES = {  # actor → (department, role)
    "clerk": ("370102-approval", "window_clerk"),
    "approver": ("370102-approval", "approver"),
    "steward": ("370102-approval", "data_steward"),
    "county_admin": ("370102-bigdata", "admin"),
    "province_admin": ("370000-bigdata", "admin"),
    "audit_admin": ("370000-bigdata", "audit_admin"),
}


@dataclass(frozen=True)
class Rule:
    expected: dict[str, str]
    permission: str | None = None  # the permission the route must declare with `require`
    staff: bool = False  # the route must declare `AnyStaff`


def _everyone(outcome: str) -> dict[str, str]:
    return dict.fromkeys(ACTORS, outcome)


PUBLIC = Rule(_everyone(OK))
# Signing in and registering stay open; a signed-in person just gets the form again.
SIGNED_IN = Rule({**_everyone(OK), "anonymous": SIGN_IN, "system": SIGN_IN})
# Only a session that still owes its second factor; everyone else is sent to sign in.
HALF_SIGNED_IN = Rule(_everyone(SIGN_IN))
STAFF = Rule({**SIGNED_IN.expected, **dict.fromkeys(NOT_STAFF, DENY)}, staff=True)
# Department systems with their own token; a person's browser session is not a token.
SYSTEM = Rule({**_everyone(SIGN_IN), "system": OK})
# A person's bearer token (OIDC), or a client authenticating itself (RFC 7009 §2.1); nobody
# here holds either, so every actor is asked for it.
PERSON_TOKEN = CLIENT = Rule(_everyone(SIGN_IN))
# Only the enterprise's legal representative; none of the actors represents the sample one.
REPRESENTATIVE = Rule({**SIGNED_IN.expected, **dict.fromkeys(PEOPLE, DENY)})


def holders(permission: str, *actors: str) -> Rule:
    expected = {**SIGNED_IN.expected, **dict.fromkeys(PEOPLE, DENY), **dict.fromkeys(actors, OK)}
    return Rule(expected, permission=permission)


DESK = holders("applications.view", "clerk", "approver")
WINDOW = holders("applications.accept", "clerk")
ISSUER = holders("licences.manage", "approver")
STEWARD = holders("data.publish", "steward")
REQUESTER = holders("data.request_sharing", "steward")
APPROVER_OF_SHARING = holders("data.approve_sharing", "steward")
ADMIN = holders("admin.enter", "county_admin", "province_admin")
CLIENTS = holders("admin.clients", "county_admin", "province_admin")
ROLES = holders("admin.roles", "county_admin", "province_admin")
CATALOG = holders("services.catalog", "province_admin")  # the province's one catalog
SYSTEM_VIEW = holders("admin.system", "province_admin")  # the platform as a whole
# Prometheus' bearer token (QILU_METRICS_TOKEN), never a person's session; none is set here.
METRICS = Rule(_everyone(DENY))

MATRIX: dict[tuple[str, str], Rule] = {
    # shell
    ("GET", "/"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): METRICS,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/codes"): PUBLIC,
    ("GET", "/api/v1/codes/check"): PUBLIC,
    ("GET", "/api/v1/divisions"): PUBLIC,
    # OIDC: protocol endpoints; each answers by its spec (tested in tests/identity/test_oidc*)
    ("GET", "/.well-known/openid-configuration"): PUBLIC,
    ("GET", "/oidc/jwks"): PUBLIC,
    ("GET", "/oidc/jwks/sm2"): PUBLIC,
    ("GET", "/oidc/authorize"): PUBLIC,  # an unknown client is told so, signed in or not
    ("POST", "/oidc/authorize"): PUBLIC,  # an answer with no request pending is refused as such
    ("POST", "/oidc/token"): PUBLIC,  # client authentication is the protocol's own
    ("POST", "/oidc/revoke"): CLIENT,
    ("POST", "/oidc/introspect"): CLIENT,
    ("POST", "/oidc/par"): CLIENT,
    ("GET", "/oidc/userinfo"): PERSON_TOKEN,
    ("POST", "/oidc/userinfo"): PERSON_TOKEN,
    ("GET", "/oidc/logout"): PUBLIC,  # without a hint naming them, people are asked first
    ("POST", "/oidc/logout"): PUBLIC,
    ("POST", "/oidc/logout/confirm"): PUBLIC,  # the answer to that question, CSRF-checked
    ("PUT", "/api/v1/enterprises/{uscc}/legal-representative"): PERSON_TOKEN,
    # data APIs for department systems
    ("POST", "/api/v1/data/{code}/lookup"): SYSTEM,
    ("GET", "/api/v1/data/{code}/records"): SYSTEM,
    ("POST", "/api/v1/data/{code}/records"): SYSTEM,
    ("GET", "/api/v1/data/{code}/quality"): SYSTEM,
    ("GET", "/api/v1/data/{code}/changes"): SYSTEM,
    ("GET", "/api/v1/data/{code}/contract"): SYSTEM,
    ("POST", "/api/v1/data/{code}/disputes"): SYSTEM,
    ("POST", "/api/v1/data/{code}/subscriptions"): SYSTEM,
    ("GET", "/api/v1/data/subscriptions"): SYSTEM,
    ("GET", "/api/v1/data/subscriptions/{subscription_id}"): SYSTEM,
    ("POST", "/api/v1/data/subscriptions/{subscription_id}/replay"): SYSTEM,
    ("POST", "/api/v1/data/{code}/extracts"): SYSTEM,
    ("GET", "/api/v1/data/extracts/{extract_id}"): SYSTEM,
    ("GET", "/api/v1/data/extracts/{extract_id}/file"): SYSTEM,
    ("PUT", "/api/v1/data/{code}/files/{name}"): SYSTEM,
    ("GET", "/api/v1/data/{code}/files"): SYSTEM,
    ("GET", "/api/v1/data/{code}/files/{name}"): SYSTEM,
    ("DELETE", "/api/v1/data/subscriptions/{subscription_id}"): SYSTEM,
    ("GET", "/api/v1/data/evidence/{call_id}"): SYSTEM,
    ("GET", "/api/v1/apis"): SYSTEM,
    ("GET", "/api/v1/apis/{code}"): SYSTEM,
    ("GET", "/api/v1/apis/{code}/openapi"): SYSTEM,
    ("GET", "/api/v1/apis/{code}/call/{path:path}"): SYSTEM,
    ("POST", "/api/v1/apis/{code}/call/{path:path}"): SYSTEM,
    # one login
    ("GET", "/account/register"): PUBLIC,
    ("POST", "/account/register"): PUBLIC,
    # 忘记密码: anyone may ask; only the registered phone's code resets
    ("GET", "/account/forgot"): PUBLIC,
    ("POST", "/account/forgot/code"): PUBLIC,
    ("POST", "/account/forgot"): PUBLIC,
    ("GET", "/account/sign-in"): PUBLIC,
    ("POST", "/account/sign-in"): PUBLIC,
    ("GET", "/account/two-factor"): HALF_SIGNED_IN,
    ("POST", "/account/two-factor"): HALF_SIGNED_IN,
    ("GET", "/account/confirm"): SIGNED_IN,
    ("POST", "/account/confirm"): SIGNED_IN,
    ("GET", "/account/two-factor/setup"): SIGNED_IN,
    ("POST", "/account/two-factor/setup"): SIGNED_IN,
    ("GET", "/account"): SIGNED_IN,
    ("POST", "/account/password"): SIGNED_IN,
    ("POST", "/account/sign-out"): SIGNED_IN,
    ("POST", "/account/consents/withdraw"): SIGNED_IN,  # only one's own (tests/identity)
    # 扫码登录: the computer asks and waits (its own cookie), the signed-in phone confirms
    ("POST", "/account/two-factor/sms"): HALF_SIGNED_IN,
    # 消息中心: one's own inbox; the header's badge says "消息" to anyone
    ("GET", "/account/messages"): SIGNED_IN,
    ("GET", "/account/messages/badge"): PUBLIC,
    ("POST", "/account/messages/sms"): SIGNED_IN,
    # through the upstream provider: a refusal page here (none is configured), never a 500
    ("GET", "/account/federated"): PUBLIC,
    ("GET", "/account/federated/callback"): PUBLIC,
    ("GET", "/account/qr"): PUBLIC,
    ("POST", "/account/qr"): PUBLIC,
    ("POST", "/account/qr/status"): PUBLIC,
    ("GET", "/account/qr/confirm/{reference}"): SIGNED_IN,
    ("POST", "/account/qr/confirm/{reference}"): SIGNED_IN,
    ("POST", "/account/sign-out-everywhere"): SIGNED_IN,
    # enterprises: whose agents, whose hand-over is decided against the enterprise itself
    ("GET", "/account/enterprises"): SIGNED_IN,
    ("POST", "/account/enterprises/act-as"): SIGNED_IN,
    ("GET", "/account/enterprises/{uscc}/agents"): REPRESENTATIVE,
    ("POST", "/account/enterprises/{uscc}/agents"): SIGNED_IN,
    ("POST", "/account/enterprises/{uscc}/agents/{grant_id}/revoke"): REPRESENTATIVE,
    ("GET", "/account/enterprises/{uscc}/representative"): SIGNED_IN,
    ("POST", "/account/enterprises/{uscc}/representative"): SIGNED_IN,
    # administration
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/clients"): CLIENTS,
    ("POST", "/admin/clients"): CLIENTS,
    ("POST", "/admin/clients/service"): CLIENTS,
    ("POST", "/admin/clients/{client_id}/disable"): CLIENTS,
    ("GET", "/admin/roles"): ROLES,
    ("POST", "/admin/roles"): ROLES,
    ("POST", "/admin/roles/{role_id}/revoke"): ROLES,
    ("GET", "/admin/items"): CATALOG,
    ("GET", "/admin/items/export"): CATALOG,
    ("GET", "/admin/items/coverage"): CATALOG,
    ("GET", "/admin/items/{code}"): CATALOG,
    ("POST", "/admin/items/{code}"): CATALOG,
    ("GET", "/admin/system"): SYSTEM_VIEW,
    # 应急指挥: staff only; each alarm is shown to duty officers over its division and to the
    # person it was sent to, any other staff member is told there is no such alarm (404)
    ("GET", "/monitor/map"): STAFF,
    # 企业监测报警: anyone signed in sees the page (alarms only while acting for an enterprise);
    # only someone acting for it with the apply scope may explain one of its alarms
    ("GET", "/monitor/enterprise"): SIGNED_IN,
    ("POST", "/monitor/enterprise/{alarm_id}/reply"): Rule(
        {**SIGNED_IN.expected, **dict.fromkeys(PEOPLE, DENY), "agent_apply": OK}
    ),
    ("GET", "/monitor/alarms"): STAFF,
    ("GET", "/monitor/alarms/events"): STAFF,
    ("GET", "/monitor/alarms/{alarm_id}"): STAFF,
    ("POST", "/monitor/alarms/{alarm_id}/{action}"): STAFF,
    # data platform in the workbench
    ("GET", "/workbench/data"): STAFF,
    ("GET", "/workbench/data/{code}"): STAFF,
    ("POST", "/workbench/data/{code}/loads"): STEWARD,
    ("GET", "/workbench/data/loads/{load_id}"): STEWARD,
    ("GET", "/workbench/data/loads/{load_id}/errors.csv"): STEWARD,
    ("GET", "/workbench/sharing"): STAFF,
    ("GET", "/workbench/sharing/requests/{code}"): REQUESTER,
    ("POST", "/workbench/sharing/requests/{code}"): REQUESTER,
    ("POST", "/workbench/sharing/{grant_id}/decision"): APPROVER_OF_SHARING,
    ("POST", "/workbench/sharing/{grant_id}/revoke"): APPROVER_OF_SHARING,
    # a resident's own data
    ("GET", "/account/data"): SIGNED_IN,
    ("POST", "/account/data/consents"): SIGNED_IN,
    ("POST", "/account/data/disputes"): SIGNED_IN,
    ("GET", "/workbench/disputes"): STEWARD,
    ("GET", "/workbench/exchange"): STAFF,
    ("GET", "/open-data"): PUBLIC,
    ("GET", "/open-data/{code}"): PUBLIC,
    ("GET", "/open-data/{code}.csv"): PUBLIC,
    ("GET", "/open-data/dcat.jsonld"): PUBLIC,
    ("GET", "/api/v1/catalog"): SYSTEM,
    ("GET", "/api/v1/catalog/dcat"): SYSTEM,
    ("GET", "/api/v1/catalog/{code}"): SYSTEM,
    ("POST", "/workbench/disputes/{dispute_id}"): STEWARD,
    ("POST", "/account/data/consents/{consent_id}/withdraw"): SIGNED_IN,
    # 办事大厅: open to read; applying and everything of one's own needs signing in
    ("GET", "/services"): PUBLIC,
    ("GET", "/services/suggest"): PUBLIC,
    ("GET", "/services/items/{code}"): PUBLIC,
    ("GET", "/services/chains/{code}"): PUBLIC,
    ("POST", "/services/chains/{code}/start"): SIGNED_IN,
    # an agent applies only with 办理业务 (checked before the item is looked up)
    ("POST", "/services/items/{code}/start"): Rule({**SIGNED_IN.expected, "agent_view": DENY}),
    ("GET", "/services/applications/{application_id}"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/save"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/materials"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/materials/{file_id}/remove"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/promise"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/materials/fetch"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/submit"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/resubmit"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/rate"): SIGNED_IN,
    ("POST", "/services/applications/{application_id}/withdraw"): SIGNED_IN,
    # documents issued on one's own application's cases; anyone checks one by its QR
    ("GET", "/services/applications/{application_id}/documents/{number}"): SIGNED_IN,
    ("GET", "/services/applications/{application_id}/documents/{number}.pdf"): SIGNED_IN,
    ("GET", "/documents/verify"): PUBLIC,
    ("POST", "/services/applications/{application_id}/delete"): SIGNED_IN,
    ("GET", "/account/applications"): SIGNED_IN,
    # 亲友代办: one's own authorisations; applying for another only under a live one
    ("GET", "/account/family"): SIGNED_IN,
    ("POST", "/account/family"): SIGNED_IN,
    ("POST", "/account/family/{grant_id}/revoke"): SIGNED_IN,
    ("POST", "/account/family/{grant_id}/start"): SIGNED_IN,
    ("GET", "/account/family/{grant_id}/chains/{code}"): SIGNED_IN,
    # 预约: one's own bookings; the window sees the day's
    ("GET", "/services/items/{code}/booking"): SIGNED_IN,
    ("POST", "/services/items/{code}/booking"): SIGNED_IN,
    ("GET", "/account/bookings"): SIGNED_IN,
    ("POST", "/account/bookings/{booking_id}/cancel"): SIGNED_IN,
    # 办件查询 by number and the applicant's ID number, for anyone who has both
    ("GET", "/services/progress"): PUBLIC,
    ("POST", "/services/progress"): PUBLIC,
    ("POST", "/account/offers/{offer_id}/accept"): SIGNED_IN,
    ("POST", "/account/offers/{offer_id}/decline"): SIGNED_IN,
    ("GET", "/account/licences"): SIGNED_IN,
    # a licence is handed out for an enterprise only with 使用电子证照
    ("GET", "/account/licences/{number}.json"): Rule(
        {**SIGNED_IN.expected, "agent_view": DENY, "agent_apply": DENY}
    ),
    ("GET", "/account/licences/{number}.pdf"): Rule(
        {**SIGNED_IN.expected, "agent_view": DENY, "agent_apply": DENY}
    ),
    ("GET", "/account/licences/{number}.ofd"): Rule(
        {**SIGNED_IN.expected, "agent_view": DENY, "agent_apply": DENY}
    ),
    ("GET", "/account/licences/{number}"): SIGNED_IN,
    ("GET", "/account/licences/{number}/face.svg"): SIGNED_IN,
    # 亮证 hands the licence out like its file: 使用电子证照 for an enterprise's
    ("GET", "/account/licences/{number}/show"): Rule(
        {**SIGNED_IN.expected, "agent_view": DENY, "agent_apply": DENY}
    ),
    ("GET", "/licences/shown/{token}"): PUBLIC,
    ("GET", "/licences/verify"): PUBLIC,
    ("POST", "/licences/verify"): PUBLIC,
    ("POST", "/settings/large-font"): PUBLIC,
    # 办件 in the workbench
    ("GET", "/workbench/cases"): DESK,
    ("GET", "/workbench/cases/{case_id}"): DESK,
    ("POST", "/workbench/cases/{case_id}/act"): DESK,
    ("POST", "/workbench/cases/{case_id}/post-check"): WINDOW,
    ("GET", "/workbench/cases/{case_id}/materials/{material_id}"): DESK,
    ("GET", "/workbench/cases/{case_id}/documents/{number}.pdf"): DESK,
    ("GET", "/workbench/window"): WINDOW,
    ("GET", "/workbench/licences"): ISSUER,
    ("GET", "/workbench/licences/{number}"): ISSUER,
    ("POST", "/workbench/licences/{number}"): ISSUER,
    ("GET", "/workbench/bookings"): DESK,
    ("POST", "/workbench/window"): WINDOW,
    ("POST", "/workbench/window/chains/{code}"): WINDOW,
    ("GET", "/workbench/rectifications"): STAFF,
    ("POST", "/workbench/rectifications/{task_id}"): STAFF,
}


def routes(app: FastAPI) -> Iterator[tuple[str, str, Route]]:
    shell = [r for r in app.router.routes if isinstance(r, Route)]  # APIRoute or plain
    domains = [
        r
        for install in INSTALLS
        for r in sys.modules[install.__module__].router.routes
        if isinstance(r, APIRoute)
    ]
    for route in [*shell, *domains]:
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield method, route.path, route


def declared(route: Route) -> tuple[set[str], bool]:
    """The permissions a route's dependencies require, and whether it admits any staff."""
    permissions: set[str] = set()
    staff = False
    pending = [route.dependant] if isinstance(route, APIRoute) else []
    while pending:
        dependant = pending.pop()
        call = dependant.call
        if isinstance(call, require):
            permissions.add(call.permission)
        staff = staff or call is staff_member
        pending.extend(dependant.dependencies)
    return permissions, staff


def test_every_route_has_a_row(app: FastAPI) -> None:
    found = {(method, path) for method, path, _ in routes(app)}
    assert sorted(found - set(MATRIX)) == [], "routes without a row in the permission matrix"
    assert sorted(set(MATRIX) - found) == [], "rows for routes that no longer exist"


def test_each_route_declares_the_permission_of_its_row(app: FastAPI) -> None:
    for method, path, route in routes(app):
        rule = MATRIX[(method, path)]
        permissions, staff = declared(route)
        assert permissions == ({rule.permission} if rule.permission else set()), (method, path)
        assert staff is rule.staff, (method, path)


CSRF = "matrix-csrf-token"
SAMPLE = {
    "code": "JC-FR-001",  # shared unconditionally: the matrix's system holds a grant
    "uscc": "91370102MA00000019",
    "client_id": "no-such-client",
    "number": "no-such-licence",
}


def concrete(path: str) -> str:
    """A path with its parameters filled: ids that name nothing, codes that exist."""
    for name, value in SAMPLE.items():
        path = path.replace("{" + name + "}", value)
    while "{" in path:
        start = path.index("{")
        path = path[:start] + "999999" + path[path.index("}") + 1 :]
    return path


@dataclass(frozen=True)
class Cast:
    account: Account
    acting_for: int | None = None  # the enterprise the browser acts for


@pytest.fixture
def cast(session: Session, vault: Vault, departments: None) -> dict[str, Cast]:
    """An account (with its roles, or its enterprise identity) for each person in the table."""
    from qilu.data.catalog import install_standard_catalog

    install_standard_catalog(session)
    people = {actor: make_person(session, vault, name=f"矩阵{n}") for n, actor in enumerate(PEOPLE)}
    accounts = {actor: make_account(session, vault, person) for actor, person in people.items()}
    entity = make_entity(session, people["resident"])  # the resident leads it
    cast: dict[str, Cast] = {}
    for actor, person in people.items():
        cast[actor] = Cast(accounts[actor])
        if actor.endswith("agent") or actor.startswith("agent_"):
            scopes = ["apply", "view"] if actor != "agent_view" else ["view"]
            grant = enterprises.authorise_agent(
                session,
                vault,
                entity,
                granted_by=person_id_of(people["resident"]),
                agent_name=person.name,
                agent_id_number=vault.decrypt(person.id_number_cipher, "id_number"),
                scopes=scopes,
                valid_until=datetime.now(UTC) + timedelta(days=30),
            )
            if actor == "revoked_agent":
                enterprises.revoke_agent(
                    session, entity, grant.id, by=entity.legal_representative_id
                )
            cast[actor] = Cast(accounts[actor], entity.id)
        if actor in STAFF_ROLES:
            department, role = STAFF_ROLES[actor]
            grant_role(
                session,
                person_id=person.id,
                department_code=department,
                role=role,
                profile="standard",
                actor=OPERATOR,
            )
    return cast


def person_id_of(person: Person) -> int:
    return person.id


def outcome(response: object) -> str:
    status = response.status_code  # type: ignore[attr-defined]
    assert status < 500, response.text  # type: ignore[attr-defined]
    location = response.headers.get("location", "")  # type: ignore[attr-defined]
    if status == 401 or (status == 303 and location.startswith("/account/sign-in?next=")):
        return SIGN_IN
    return DENY if status == 403 else OK


def test_every_actor_gets_the_answer_of_the_table(
    app: FastAPI, session: Session, vault: Vault, cast: dict[str, Cast]
) -> None:
    system = make_service_client(session, "370102-approval")
    sharing.request_access(
        session,
        "JC-FR-001",
        consumer="370102-approval",
        fields=["uscc", "name"],
        purpose="核验企业身份",
        may_list=True,
        legal_basis="《山东省政务信息资源共享管理办法》",
        valid_until=datetime.now(UTC) + timedelta(days=30),
        actor=OPERATOR,
    )
    # Committed (to the test's savepoint): a refused request rolls back its own work only.
    session.commit()
    wrong: list[tuple[str, str, str, str, str]] = []
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.post(
            "/oidc/token",
            data={"grant_type": "client_credentials", "scope": "data.read data.push"},
            auth=(system.client.client_id, system.secret or ""),
        ).json()["access_token"]
        for method, path, _ in routes(app):
            expected = MATRIX[(method, path)].expected
            for actor in ACTORS:
                client.cookies.clear()
                client.cookies.set("qilu_csrf", CSRF)
                headers = {}
                if actor == "system":
                    headers["Authorization"] = f"Bearer {token}"
                elif actor != "anonymous":
                    cookie, browser = sessions.start_session(
                        session,
                        cast[actor].account,
                        assurance=3,
                        profile="standard",
                        client_address="testclient",
                        user_agent="matrix",
                    )
                    browser.acting_for_entity_id = cast[actor].acting_for
                    session.commit()
                    client.cookies.set(SESSION_COOKIE, cookie)
                body = {"data": {"csrf_token": CSRF}} if method == "POST" else {}
                if method == "PUT":
                    body = {"json": {}}
                response = client.request(
                    method, concrete(path), headers=headers, follow_redirects=False, **body
                )
                got = outcome(response)
                if got != expected[actor]:
                    wrong.append((method, path, actor, expected[actor], got))
    for line in wrong:
        print(*line)
    assert wrong == []
