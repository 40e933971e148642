from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault

from ..factories import make_person

ID = "11010519491231002X"
PASSWORD = "qilu-Sign-in-2026"


def csrf(client: TestClient) -> str:
    client.get("/account/sign-in")
    token = client.cookies.get("qilu_csrf")
    assert token
    return token


def register(client: TestClient, **changes: str) -> object:
    form = {
        "name": "王芳",
        "id_number": ID,
        "password": PASSWORD,
        "password_again": PASSWORD,
        "csrf_token": csrf(client),
        **changes,
    }
    return client.post("/account/register", data=form, follow_redirects=False)


@pytest.fixture
def resident(session: Session, vault: Vault) -> None:
    make_person(session, vault, name="王芳", id_number=ID)


def test_register_signs_in_and_shows_the_account(client: TestClient, resident: None) -> None:
    response = register(client)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    cookie = response.headers["set-cookie"]
    assert "qilu_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/account")
    assert page.status_code == 200
    assert "王芳" in page.text and "110105********002X" in page.text
    assert "注册账号" in page.text and "本设备" in page.text


def test_a_form_without_the_csrf_token_is_refused(client: TestClient, resident: None) -> None:
    response = register(client, csrf_token="forged")
    assert response.status_code == 403
    assert "表单已过期或来源不明" in response.text
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_registration_errors_are_shown_by_the_field(client: TestClient, resident: None) -> None:
    response = register(client, id_number="110105194912310021")
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text and "校验码应为 X" in response.text
    mismatch = register(client, password_again="something-else-2026")
    assert "两次输入的密码不一致" in mismatch.text


def test_sign_out_then_sign_in(client: TestClient, resident: None) -> None:
    register(client)
    signed_out = client.post(
        "/account/sign-out", data={"csrf_token": csrf(client)}, follow_redirects=False
    )
    assert signed_out.status_code == 303
    assert (
        client.get("/account", follow_redirects=False)
        .headers["location"]
        .startswith("/account/sign-in?next=/account")
    )
    wrong = client.post(
        "/account/sign-in",
        data={"id_number": ID, "password": "not-the-one-1", "csrf_token": csrf(client)},
    )
    assert wrong.status_code == 403 and "身份号码或密码错误" in wrong.text
    right = client.post(
        "/account/sign-in",
        follow_redirects=False,
        data={"id_number": ID, "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert right.status_code == 303 and right.headers["location"] == "/account"
    history = client.get("/account").text
    assert "登录失败" in history and "登录成功" in history and "退出登录" in history


def test_failed_sign_in_is_audited_even_though_refused(
    client: TestClient, resident: None, session: Session
) -> None:
    register(client)
    client.post(
        "/account/sign-in",
        data={"id_number": ID, "password": "not-the-one-1", "csrf_token": csrf(client)},
    )
    actions = list(session.scalars(select(AuditEvent.action)))
    assert "auth.login_failed" in actions


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/account/../x"])
def test_sign_in_never_redirects_off_site(client: TestClient, resident: None, target: str) -> None:
    register(client)
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    response = client.post(
        "/account/sign-in",
        follow_redirects=False,
        data={"id_number": ID, "password": PASSWORD, "next": target, "csrf_token": csrf(client)},
    )
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith("//")


def test_sign_out_everywhere_ends_other_browsers(
    client: TestClient, app: object, resident: None
) -> None:
    register(client)
    with TestClient(app) as other:  # type: ignore[arg-type]
        other.post(
            "/account/sign-in",
            data={"id_number": ID, "password": PASSWORD, "csrf_token": csrf(other)},
        )
        assert other.get("/account", follow_redirects=False).status_code == 200
        client.post("/account/sign-out-everywhere", data={"csrf_token": csrf(client)})
        assert other.get("/account", follow_redirects=False).status_code == 303


def test_change_password_on_the_account_page(client: TestClient, resident: None) -> None:
    register(client)
    wrong = client.post(
        "/account/password",
        data={
            "current": "not-the-one-1",
            "password": "New-pass-2027x",
            "password_again": "New-pass-2027x",
            "csrf_token": csrf(client),
        },
    )
    assert wrong.status_code == 400 and "当前密码不正确" in wrong.text
    done = client.post(
        "/account/password",
        data={
            "current": PASSWORD,
            "password": "New-pass-2027x",
            "password_again": "New-pass-2027x",
            "csrf_token": csrf(client),
        },
    )
    assert done.status_code == 200 and "密码已修改" in done.text


def test_sign_in_with_a_second_factor(client: TestClient, resident: None) -> None:
    import re

    import pyotp

    register(client)
    page = client.get("/account/two-factor/setup")
    secret = re.search(r"data-totp-secret>([A-Z2-7]+)<", page.text)
    assert secret
    totp = pyotp.TOTP(secret.group(1))
    enabled = client.post(
        "/account/two-factor/setup",
        data={"code": totp.now(), "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert "data-recovery-codes" in enabled.text
    assert "实名核验 + 两步验证" in client.get("/account").text
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    half = client.post(
        "/account/sign-in",
        follow_redirects=False,
        data={"id_number": ID, "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert half.headers["location"].startswith("/account/two-factor")
    assert client.get("/account", follow_redirects=False).status_code == 303  # not in yet
    wrong = client.post("/account/two-factor", data={"code": "000000", "csrf_token": csrf(client)})
    assert wrong.status_code == 403 and "验证码不正确" in wrong.text
    codes = re.findall(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", enabled.text)
    done = client.post(
        "/account/two-factor",
        follow_redirects=False,
        data={"code": codes[0], "csrf_token": csrf(client)},
    )
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert 'data-fact="assurance">4' in client.get("/account").text


def test_civil_servants_must_set_up_a_second_factor_first(
    client: TestClient, resident: None, session: Session, vault: Vault
) -> None:
    import re

    import pyotp

    from qilu.codes.uscc import make_uscc
    from qilu.identity.models import Department, Person
    from qilu.identity.roles import grant_role

    register(client)
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    session.add(
        Department(
            code="370102-approval",
            kind="approval",
            name="历下区行政审批服务局",
            level="county",
            division_code="370102",
            uscc=make_uscc("1", "1", "370102", "00000001"),
        )
    )
    person = session.scalars(select(Person).where(Person.name == "王芳")).one()
    grant_role(
        session,
        person_id=person.id,
        department_code="370102-approval",
        role="window_clerk",
        profile="standard",
        actor=OPERATOR,
    )
    signed = client.post(
        "/account/sign-in",
        follow_redirects=False,
        data={"id_number": ID, "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert signed.headers["location"] == "/account/two-factor/setup"
    assert client.get("/account", follow_redirects=False).status_code == 303
    page = client.get("/account/two-factor/setup")
    assert "公职人员账号须启用两步验证" in page.text
    secret = re.search(r"data-totp-secret>([A-Z2-7]+)<", page.text)
    assert secret
    client.post(
        "/account/two-factor/setup",
        data={"code": pyotp.TOTP(secret.group(1)).now(), "csrf_token": csrf(client)},
    )
    assert client.get("/account", follow_redirects=False).status_code == 200


def test_an_expired_password_must_be_changed_before_anything_else(
    settings: object, session: Session, vault: Vault, resident: None
) -> None:
    """Found: the 等保 profile computed the 90-day expiry and never enforced it."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from qilu.identity.models import Account
    from qilu.routes import get_reader, get_session
    from qilu.settings import Settings
    from qilu.web import create_app

    assert isinstance(settings, Settings)
    app = create_app(settings.model_copy(update={"security_profile": "dengbao3"}))
    app.dependency_overrides[get_session] = app.dependency_overrides[get_reader] = lambda: session
    with TestClient(app) as client:
        strong = "Qilu-Sign-in-2026!"
        register(client, password=strong, password_again=strong)
        long_ago = datetime.now(UTC) - timedelta(days=91)
        session.execute(update(Account).values(password_changed_at=long_ago))
        blocked = client.get("/account/data", follow_redirects=False)
        assert blocked.status_code == 303 and blocked.headers["location"].startswith("/account?")
        assert "data-password-expired" in client.get("/account").text
        changed = client.post(
            "/account/password",
            data={
                "current": strong,
                "password": "Qilu-New-Pass-2027!",
                "password_again": "Qilu-New-Pass-2027!",
                "csrf_token": csrf(client),
            },
        )
        assert changed.status_code == 200 and "data-password-expired" not in changed.text
        assert client.get("/account/data", follow_redirects=False).status_code == 200


def test_signing_in_rotates_the_csrf_token_and_account_pages_are_not_cached(
    client: TestClient, resident: None
) -> None:
    before = csrf(client)
    register(client)
    after = client.cookies.get("qilu_csrf")
    assert after and after != before  # a token planted before sign-in is worth nothing after
    page = client.get("/account")
    assert page.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in page.headers  # plain HTTP here
    assert "cache-control" not in client.get("/services").headers


def test_my_account_speaks_words_not_codes(
    client: TestClient, resident: None, session: Session
) -> None:
    """Issue 13: raw codes (`services.rated`, "demo"), the raw User-Agent as a device name, and
    UTC on one page but Beijing time on another."""
    import re

    from qilu.audit.service import record
    from qilu.identity.events import event_name
    from qilu.identity.models import Account

    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    client.headers["User-Agent"] = iphone
    register(client)
    account = session.query(Account).one()
    for action in ("services.rated", "services.application_submitted", "services.case_x"):
        record(session, action, actor_person_id=account.person_id, client_address="demo")
    page = client.get("/account")
    history = page.text[page.text.index('id="history-title"') :]
    assert not re.search(r">[a-z]+\.[a-z_]+<", history)  # no action shown as its code
    assert "评价办件（好差评）" in history and "提交办件申请" in history and "演示数据" in history
    assert "iPhone · Safari" in page.text and "Mozilla/5.0" not in page.text
    assert "UTC" not in page.text
    assert event_name("nobody.knows") == "其他操作"
