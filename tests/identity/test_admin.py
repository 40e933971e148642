"""Administration: who may register clients and grant roles, where, and the pages that do it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.errors import NotFound, Refused
from qilu.identity import oidc_clients, roles
from qilu.identity.models import Person, StaffRole, WebSession
from qilu.pii import Vault

from ..factories import make_person
from .test_oidc import REDIRECT
from .test_pages import ID, PASSWORD, csrf, register

OTHER_ID = "370102199003073516"


def grant(session: Session, person: Person, department: str, role: str, by: int | None) -> None:
    roles.grant_role(
        session,
        person_id=person.id,
        department_code=department,
        role=role,
        profile="standard",
        actor=roles.staff(session, by) if by else roles.OPERATOR,
    )


def test_an_administrator_grants_only_where_their_department_reaches(
    session: Session, vault: Vault, departments: None
) -> None:
    admin = make_person(session, vault, name="张伟")
    clerk = make_person(session, vault, name="李强")
    grant(session, admin, "370100-bigdata", "admin", None)  # 济南市大数据局
    grant(session, clerk, "370102-approval", "window_clerk", admin.id)  # 历下区: inside
    with pytest.raises(Refused) as outside:
        grant(session, clerk, "370202-approval", "window_clerk", admin.id)  # 青岛市南区
    assert outside.value.code == "role.forbidden"
    with pytest.raises(Refused):
        grant(session, admin, "370102-approval", "approver", clerk.id)  # a clerk grants nothing
    grants = roles.roles_of(session, admin.id)
    held = roles.held_roles(session, grants)
    assert {(h.person.name, h.role) for h in held} == {("张伟", "admin"), ("李强", "window_clerk")}
    assert [
        h.role for h in roles.held_roles(session, grants, department_code="370102-approval")
    ] == ["window_clerk"]


def test_revoking_a_role_is_audited_and_never_ones_own_admin_role(
    session: Session, vault: Vault, departments: None
) -> None:
    admin = make_person(session, vault, name="张伟")
    clerk = make_person(session, vault, name="李强")
    grant(session, admin, "370000-bigdata", "admin", None)
    grant(session, clerk, "370102-approval", "window_clerk", admin.id)
    [clerk_role] = session.scalars(select(StaffRole).where(StaffRole.role == "window_clerk"))
    [own] = session.scalars(select(StaffRole).where(StaffRole.role == "admin"))
    with pytest.raises(Refused):
        roles.revoke_role(session, own.id, actor=roles.staff(session, admin.id))
    roles.revoke_role(session, clerk_role.id, actor=roles.staff(session, admin.id))
    assert roles.roles_of(session, clerk.id) == [] and roles.is_civil_servant(session, clerk.id)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "role.revoked")).one()
    assert event.details == {"role": "window_clerk", "department": "370102-approval"}
    with pytest.raises(NotFound):
        roles.revoke_role(session, clerk_role.id, actor=roles.staff(session, admin.id))


def test_only_client_administrators_register_and_disable_clients(
    session: Session, vault: Vault, departments: None
) -> None:
    clerk = make_person(session, vault, name="李强")
    grant(session, clerk, "370102-approval", "window_clerk", None)
    with pytest.raises(Refused):
        oidc_clients.register_client(
            session,
            name="x",
            redirect_uris=[REDIRECT],
            public=True,
            actor=roles.staff(session, clerk.id),
        )
    admin = make_person(session, vault, name="张伟")
    grant(session, admin, "370000-bigdata", "system_admin", None)
    new = oidc_clients.register_client(
        session,
        name="社保系统",
        redirect_uris=[REDIRECT],
        public=False,
        actor=roles.staff(session, admin.id),
    )
    with pytest.raises(Refused):
        oidc_clients.disable_client(
            session, new.client.client_id, actor=roles.staff(session, clerk.id)
        )
    oidc_clients.disable_client(session, new.client.client_id, actor=roles.staff(session, admin.id))
    assert new.client.disabled_at is not None


def test_a_county_administrator_acts_only_for_systems_of_their_county(
    session: Session, vault: Vault, departments: None
) -> None:
    """Found: a 历下区 administrator registered a data-API client for 山东省公安厅 (and then
    pushed into the provincial 人口 library with it) and disabled a provincial client."""
    county = make_person(session, vault, name="历下管理员")
    grant(session, county, "370102-bigdata", "admin", None)
    actor = roles.staff(session, county.id)
    with pytest.raises(Refused) as provincial:
        oidc_clients.register_service_client(
            session, name="冒名系统", department_code="370000-public_security", actor=actor
        )
    assert provincial.value.code == "role.forbidden"
    with pytest.raises(Refused):  # a sign-in system serves the whole province
        oidc_clients.register_client(
            session, name="x", redirect_uris=[REDIRECT], public=True, actor=actor
        )
    theirs = oidc_clients.register_service_client(
        session, name="省级系统", department_code="370000-public_security", actor=roles.OPERATOR
    )
    with pytest.raises(Refused):
        oidc_clients.disable_client(session, theirs.client.client_id, actor=actor)
    assert theirs.client.disabled_at is None
    own = oidc_clients.register_service_client(
        session, name="历下区审批系统", department_code="370102-approval", actor=actor
    )
    assert [c.name for c in oidc_clients.clients_visible_to(session, actor)] == ["历下区审批系统"]
    oidc_clients.disable_client(session, own.client.client_id, actor=actor)
    assert own.client.disabled_at is not None


def test_nobody_grants_a_role_to_themselves(
    session: Session, vault: Vault, departments: None
) -> None:
    admin = make_person(session, vault, name="张伟")
    grant(session, admin, "370100-bigdata", "admin", None)
    with pytest.raises(Refused) as own:
        grant(session, admin, "370102-approval", "approver", admin.id)
    assert own.value.code == "role.self"


# --- pages ----------------------------------------------------------------------------------


def sign_in_as_admin(client: TestClient, session: Session, vault: Vault) -> pyotp.TOTP:
    make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    person = session.scalars(select(Person).where(Person.name == "王芳")).one()
    grant(session, person, "370000-bigdata", "admin", None)
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    client.post(
        "/account/sign-in", data={"id_number": ID, "password": PASSWORD, "csrf_token": csrf(client)}
    )
    page = client.get("/account/two-factor/setup")
    secret = re.search(r"data-totp-secret>([A-Z2-7]+)<", page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    client.post("/account/two-factor/setup", data={"code": totp.now(), "csrf_token": csrf(client)})
    return totp


def test_residents_are_kept_out_of_the_admin_pages(
    client: TestClient, session: Session, vault: Vault
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    assert "data-admin-link" not in client.get("/account").text
    for path in ("/admin", "/admin/clients", "/admin/roles"):
        refused = client.get(path)
        assert refused.status_code == 403 and "没有办理此项工作的权限" in refused.text


def test_registering_a_client_shows_its_secret_once(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    sign_in_as_admin(client, session, vault)
    assert "data-admin-link" in client.get("/account").text
    assert "/admin/clients" in client.get("/admin").text
    made = client.post(
        "/admin/clients",
        data={
            "name": "社保系统",
            "redirect_uris": "https://sb.example/cb\nhttps://sb.example/cb2",
            "kind": "confidential",
            "csrf_token": csrf(client),
        },
    )
    secret = re.search(r"data-client-secret>([^<]+)<", made.text)
    client_id = re.search(r"data-client-id>([^<]+)<", made.text)
    assert made.status_code == 200 and secret and client_id
    listed = client.get("/admin/clients").text
    assert client_id.group(1) in listed and secret.group(1) not in listed
    client.post(f"/admin/clients/{client_id.group(1)}/disable", data={"csrf_token": csrf(client)})
    assert "已停用" in client.get("/admin/clients").text
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"client.registered", "client.disabled"} <= actions
    # (last: a refusal rolls back the unit of work, which in tests is the whole test's)
    bad = client.post(
        "/admin/clients",
        data={
            "name": "社保系统",
            "redirect_uris": "http://sb.example/cb",
            "csrf_token": csrf(client),
        },
    )
    assert bad.status_code == 400 and "须为 https" in bad.text


def test_an_administrator_registers_a_system_for_private_key_jwt_and_logout(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    """The integration options in the page: public keys instead of a secret, real-name scopes,
    JWT access tokens, logout URIs; a bad JWKS is refused by its field, what was typed kept."""
    from joserfc.jwk import RSAKey

    from qilu.identity.models import OidcClient

    sign_in_as_admin(client, session, vault)
    public = json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=False)]})
    form = {
        "name": "税务系统",
        "redirect_uris": "https://tax.example/cb",
        "kind": "private_key_jwt",
        "jwks": public,
        "allowed_scopes": ["id_number", "phone"],
        "jwt_access_tokens": "true",
        "backchannel_logout_uri": "https://tax.example/logout",
        "csrf_token": csrf(client),
    }
    made = client.post("/admin/clients", data=form)
    assert made.status_code == 200 and "data-client-secret" not in made.text
    row = session.scalars(select(OidcClient).where(OidcClient.name == "税务系统")).one()
    assert row.auth_method == "private_key_jwt" and row.secret_hash is None
    assert row.allowed_scopes == ["id_number", "phone"] and row.access_token_format == "jwt"
    assert row.backchannel_logout_uri == "https://tax.example/logout"
    session.commit()  # a refusal rolls back its own request only (as between real requests)
    private = json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=True)]})
    bad = client.post("/admin/clients", data={**form, "name": "财政系统", "jwks": private})
    assert bad.status_code == 400 and "不能有私钥" in bad.text
    assert "aria-invalid" not in bad.text or "财政系统" in bad.text
    assert "财政系统" in bad.text and "https://tax.example/logout" in bad.text


def test_granting_a_role_in_the_page_asks_for_a_fresh_second_factor(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    totp = sign_in_as_admin(client, session, vault)
    make_person(session, vault, name="李强", id_number=OTHER_ID)
    session.execute(
        update(WebSession).values(authenticated_at=datetime.now(UTC) - timedelta(minutes=20))
    )
    form = {
        "name": "李强",
        "id_number": OTHER_ID,
        "department_code": "370102-approval",
        "role": "approver",
        "csrf_token": csrf(client),
    }
    stale = client.post(
        "/admin/roles", data=form, headers={"referer": "http://testserver/admin/roles"}
    )
    assert stale.url.path == "/account/confirm" and 'name="code"' in stale.text
    client.post(
        "/account/confirm",
        data={
            "password": PASSWORD,
            "code": totp.at(datetime.now(UTC) + timedelta(seconds=30)),
            "next": "/admin/roles",
            "level": "4",
            "csrf_token": csrf(client),
        },
    )
    done = client.post("/admin/roles", data=form)
    assert done.url.path == "/admin/roles" and 'data-role="approver"' in done.text
    # (last: a refusal rolls back the unit of work, which in tests is the whole test's)
    wrong = client.post("/admin/roles", data={**form, "name": "李四"})
    assert wrong.status_code == 400 and "姓名与身份号码不匹配" in wrong.text


def test_registering_a_department_system_for_the_data_apis(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    sign_in_as_admin(client, session, vault)
    made = client.post(
        "/admin/clients/service",
        data={
            "service_name": "历下区审批系统",
            "department": "370102-approval",
            "rate_per_second": "50",
            "csrf_token": csrf(client),
        },
    )
    client_id = re.search(r"data-client-id>([^<]+)<", made.text)
    secret = re.search(r"data-client-secret>([^<]+)<", made.text)
    assert made.status_code == 200 and client_id and secret
    assert "数据共享系统 · 历下区行政审批服务局 · 每秒 50 次" in made.text
    token = client.post(
        "/oidc/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id.group(1), secret.group(1)),
    )
    assert token.status_code == 200 and token.json()["scope"] == "data.read data.push"
    session.commit()  # the refusal below rolls back to here
    bad = client.post(
        "/admin/clients/service",
        data={
            "service_name": "无名系统",
            "department": "nowhere",
            "csrf_token": csrf(client),
        },
    )
    assert bad.status_code == 400 and "没有编码为 nowhere 的部门" in bad.text
    assert 'aria-invalid="true" aria-describedby="department-error"' in bad.text


def test_a_role_grant_to_an_unknown_department_says_so_by_the_field(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    """Issue 13: a role grant with a wrong department code answered nothing at all."""
    sign_in_as_admin(client, session, vault)
    make_person(session, vault, name="李强", id_number=OTHER_ID)
    session.commit()  # a refusal rolls back its own request only (as between real requests)
    form = {
        "name": "李强",
        "id_number": OTHER_ID,
        "department_code": "370102-nowhere",
        "role": "approver",
        "csrf_token": csrf(client),
    }
    answer = client.post("/admin/roles", data=form)
    assert answer.status_code in (400, 404)
    field = answer.text[answer.text.index('for="department_code"') :]
    field = field[: field.index("</div>")]
    assert "没有编码为 370102-nowhere 的部门" in field and 'value="370102-nowhere"' in field
    assert 'value="李强"' in answer.text
