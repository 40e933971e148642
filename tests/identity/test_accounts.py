from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.audit.service import verify
from qilu.codes.errors import CodeError
from qilu.codes.idcard import make_id_number
from qilu.errors import QiluError, Refused
from qilu.identity.accounts import authenticate, change_password, register_resident
from qilu.identity.models import Account
from qilu.identity.passwords import check_policy
from qilu.pii import Vault

from ..factories import make_person

ID = "11010519491231002X"
GOOD = "qilu-Sign-in-2026"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


@pytest.fixture
def account(session: Session, vault: Vault) -> Account:
    make_person(session, vault, name="王芳", id_number=ID)
    return register_resident(
        session, vault, name="王芳", id_number=ID, password=GOOD, profile="standard", now=T0
    )


def sign_in(
    session: Session,
    vault: Vault,
    password: str,
    *,
    address: str = "10.0.0.1",
    at: datetime = T0,
    profile: str = "standard",
) -> Account:
    return authenticate(
        session,
        vault,
        id_number=ID,
        password=password,
        profile=profile,  # type: ignore[arg-type]
        client_address=address,
        now=at,
    ).account


def test_registration_is_real_name_and_audited(session: Session, account: Account) -> None:
    assert account.assurance == 3 and account.status == "active"
    assert account.password_hash.startswith("$argon2id$")
    assert GOOD not in account.password_hash
    assert actions(session) == ["account.registered"]


@pytest.mark.parametrize(("name", "number"), [("李四", ID), ("王芳", "370102199003073516")])
def test_registration_refuses_a_mismatch_without_saying_which(
    session: Session, vault: Vault, name: str, number: str
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    with pytest.raises(QiluError) as caught:
        register_resident(
            session, vault, name=name, id_number=number, password=GOOD, profile="standard"
        )
    assert caught.value.code == "registration.refused"
    assert session.scalars(select(Account)).first() is None


def test_registration_accepts_the_name_with_stray_spaces(session: Session, vault: Vault) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    account = register_resident(
        session, vault, name=" 王 芳 ", id_number=ID.lower(), password=GOOD, profile="standard"
    )
    assert account.id


def test_one_account_per_person(session: Session, vault: Vault, account: Account) -> None:
    with pytest.raises(QiluError) as caught:
        register_resident(
            session, vault, name="王芳", id_number=ID, password=GOOD + "x", profile="standard"
        )
    assert caught.value.code == "registration.refused"


def test_registration_is_no_oracle_on_the_register(session: Session, vault: Vault) -> None:
    """Found: the password rule was checked only after name and number matched, so the answer
    told a match from a mismatch (and an existing account); a full ID number was recovered in
    163 requests. Now: the rules first, one answer for every miss, throttled, audited."""
    make_person(session, vault, name="王芳", id_number=ID)
    other = make_person(session, vault, name="李强", id_number="370102199003073516")
    register_resident(
        session, vault, name="李强", id_number="370102199003073516", password=GOOD,
        profile="standard",
    )  # fmt: skip
    weak = "12345678"
    answers = set()
    for name, number, password in [
        ("王芳", ID, weak),  # a match, weak password
        ("赵六", ID, weak),  # a mismatch, weak password
        ("王芳", "370102199003073516", weak),
    ]:
        with pytest.raises(QiluError) as caught:
            register_resident(
                session, vault, name=name, id_number=number, password=password,
                profile="standard", client_address="10.9.9.9",
            )  # fmt: skip
        answers.add((caught.value.code, caught.value.message))
    assert len(answers) == 1  # the weak password is refused before the register is asked
    assert answers.pop()[0] == "password.too_short"
    misses = set()
    nobody = make_id_number("370102", date(1980, 1, 1), 7)
    for name, number in [("赵六", ID), ("李强", "370102199003073516"), ("路人", nobody)]:
        # a wrong name, an account that exists, a number not in the register
        with pytest.raises(QiluError) as caught:
            register_resident(
                session, vault, name=name, id_number=number, password=GOOD + "!",
                profile="standard", client_address="10.9.9.8",
            )  # fmt: skip
        misses.add((caught.value.code, caught.value.message, caught.value.field))
    assert len(misses) == 1 and other.id


def test_registration_is_throttled_per_number_and_per_address(
    session: Session, vault: Vault
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    for guess in ["赵一", "赵二", "赵三", "赵四", "赵五"]:
        with pytest.raises(QiluError) as caught:
            register_resident(
                session, vault, name=guess, id_number=ID, password=GOOD, profile="standard",
                client_address=f"10.1.1.{len(guess)}",
            )  # fmt: skip
        assert caught.value.code == "registration.refused"
    with pytest.raises(Refused) as locked:  # the number, from yet another address
        register_resident(
            session, vault, name="王芳", id_number=ID, password=GOOD, profile="standard",
            client_address="10.2.2.2",
        )  # fmt: skip
    assert locked.value.code == "auth.locked"
    for n in range(20):
        number = make_id_number("370102", date(1980, 1, 1), n + 1)
        with pytest.raises(QiluError):
            register_resident(
                session, vault, name="路人", id_number=number, password=GOOD,
                profile="standard", client_address="10.3.3.3",
            )  # fmt: skip
    with pytest.raises(Refused) as throttled:
        register_resident(
            session, vault, name="王芳", id_number=ID, password=GOOD, profile="standard",
            client_address="10.3.3.3",
        )  # fmt: skip
    assert throttled.value.code == "auth.throttled"
    refusals = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "account.registration_refused")
    ).all()
    assert len(refusals) == 25 and all(ID not in (e.subject or "") for e in refusals)


def test_bad_check_digit_is_refused_at_registration(session: Session, vault: Vault) -> None:
    with pytest.raises(CodeError) as caught:
        register_resident(
            session,
            vault,
            name="王芳",
            id_number="110105194912310021",
            password=GOOD,
            profile="standard",
        )
    assert caught.value.code == "id_number.check_digit"


@pytest.mark.parametrize(
    ("password", "profile", "code"),
    [
        ("short", "standard", "password.too_short"),
        ("1234567890", "standard", "password.common"),
        ("aaaaaaaaaaaa", "standard", "password.common"),
        ("my11010519491231002X", "standard", "password.personal"),
        ("alllowercaseletters", "dengbao3", "password.complexity"),
    ],
)
def test_password_policy(password: str, profile: str, code: str) -> None:
    with pytest.raises(QiluError) as caught:
        check_policy(password, profile, [ID, "王芳"])  # type: ignore[arg-type]
    assert caught.value.code == code and caught.value.field == "password"
    check_policy("Lower-UPPER-2026", "dengbao3", [ID])


def test_sign_in_with_the_right_password(session: Session, vault: Vault, account: Account) -> None:
    assert sign_in(session, vault, GOOD).id == account.id
    assert actions(session)[-1] == "auth.login_ok"


def test_wrong_password_is_refused_and_audited(
    session: Session, vault: Vault, account: Account
) -> None:
    with pytest.raises(Refused) as caught:
        sign_in(session, vault, "wrong-password-1")
    assert caught.value.code == "auth.invalid" and caught.value.keeps_trail
    assert actions(session)[-1] == "auth.login_failed"


def test_unknown_account_gives_the_same_answer(session: Session, vault: Vault) -> None:
    with pytest.raises(Refused) as caught:
        authenticate(
            session,
            vault,
            id_number=ID,
            password=GOOD,
            profile="standard",
            client_address="10.0.0.1",
        )
    assert caught.value.code == "auth.invalid"


def test_five_failures_lock_for_a_while_not_forever(
    session: Session, vault: Vault, account: Account
) -> None:
    for minute in range(5):
        with pytest.raises(Refused):
            sign_in(session, vault, "wrong-password-1", at=T0 + timedelta(minutes=minute))
    assert "auth.locked" in actions(session)
    with pytest.raises(Refused) as caught:  # even the right password waits out the lock
        sign_in(session, vault, GOOD, at=T0 + timedelta(minutes=6))
    assert caught.value.code == "auth.locked"
    assert "auth.refused_locked" in actions(session)
    assert sign_in(session, vault, GOOD, at=T0 + timedelta(minutes=20)).id == account.id
    assert verify(session).is_intact


def test_dengbao_profile_locks_for_thirty_minutes(
    session: Session, vault: Vault, account: Account
) -> None:
    for minute in range(5):
        with pytest.raises(Refused):
            sign_in(
                session,
                vault,
                "wrong-password-1",
                at=T0 + timedelta(minutes=minute),
                profile="dengbao3",
            )
    with pytest.raises(Refused):
        sign_in(session, vault, GOOD, at=T0 + timedelta(minutes=25), profile="dengbao3")
    assert sign_in(session, vault, GOOD, at=T0 + timedelta(minutes=36), profile="dengbao3")


def test_failures_outside_the_window_do_not_add_up(
    session: Session, vault: Vault, account: Account
) -> None:
    for hour in range(6):  # one failure an hour never reaches five in fifteen minutes
        with pytest.raises(Refused) as caught:
            sign_in(session, vault, "wrong-password-1", at=T0 + timedelta(hours=hour))
        assert caught.value.code == "auth.invalid"


def test_a_success_clears_the_failures(session: Session, vault: Vault, account: Account) -> None:
    for minute in range(4):
        with pytest.raises(Refused):
            sign_in(session, vault, "wrong-password-1", at=T0 + timedelta(minutes=minute))
    sign_in(session, vault, GOOD, at=T0 + timedelta(minutes=5))
    for minute in range(6, 10):
        with pytest.raises(Refused) as caught:
            sign_in(session, vault, "wrong-password-1", at=T0 + timedelta(minutes=minute))
        assert caught.value.code == "auth.invalid"


def test_an_address_that_keeps_failing_is_throttled(session: Session, vault: Vault) -> None:
    for index in range(30):  # guessing across many ID numbers from one address
        with pytest.raises(Refused):
            authenticate(
                session,
                vault,
                id_number="11010519491231002X",
                password=f"guess-{index}",
                profile="standard",
                client_address="10.6.6.6",
                now=T0 + timedelta(seconds=index),
            )
    with pytest.raises(Refused) as caught:
        authenticate(
            session,
            vault,
            id_number=ID,
            password=GOOD,
            profile="standard",
            client_address="10.6.6.6",
            now=T0 + timedelta(minutes=1),
        )
    assert caught.value.code == "auth.throttled"


def test_change_password(session: Session, vault: Vault, account: Account) -> None:
    with pytest.raises(Refused) as caught:
        change(session, vault, account, current="not-it-at-all", new="another-Pass-2027")
    assert caught.value.code == "password.current_wrong"
    with pytest.raises(QiluError) as reused:
        change(session, vault, account, current=GOOD, new=GOOD)
    assert reused.value.code == "password.reused"
    change(session, vault, account, current=GOOD, new="another-Pass-2027")
    assert sign_in(session, vault, "another-Pass-2027").id == account.id
    assert "account.password_changed" in actions(session)


def change(session: Session, vault: Vault, account: Account, **passwords: str) -> int:
    return change_password(
        session,
        vault,
        account,
        current=passwords["current"],
        new=passwords["new"],
        profile="standard",
        client_address="10.0.0.9",
    )


def test_wrong_current_passwords_count_toward_the_lockout(
    session: Session, vault: Vault, account: Account
) -> None:
    """Found: a wrong current password on the change form was not counted, so it could be
    guessed there without limit."""
    for _ in range(5):
        with pytest.raises(Refused):
            change(session, vault, account, current="guess-Pass-0000", new="another-Pass-2027")
    with pytest.raises(Refused) as locked:
        change(session, vault, account, current=GOOD, new="another-Pass-2027")
    assert locked.value.code == "auth.locked"


def test_a_password_change_ends_every_other_session(
    session: Session, vault: Vault, account: Account
) -> None:
    """Found: sessions signed in with the old password survived its change."""
    from qilu.identity.sessions import start_session

    _, here = start_session(
        session, account, assurance=3, profile="standard", client_address="a", user_agent="a"
    )
    _, elsewhere = start_session(
        session, account, assurance=3, profile="standard", client_address="b", user_agent="b"
    )
    ended = change_password(
        session,
        vault,
        account,
        current=GOOD,
        new="another-Pass-2027",
        profile="standard",
        client_address="a",
        keep_session_id=here.id,
    )
    session.refresh(here)
    session.refresh(elsewhere)
    assert ended == 1 and here.revoked_at is None and elsewhere.revoked_at is not None


def test_dengbao_profile_expires_passwords_after_ninety_days(
    session: Session, vault: Vault, account: Account
) -> None:
    later = T0 + timedelta(days=91)
    result = authenticate(
        session,
        vault,
        id_number=ID,
        password=GOOD,
        profile="dengbao3",
        client_address="10.0.0.1",
        now=later,
    )
    assert result.password_expired
    standard = authenticate(
        session,
        vault,
        id_number=ID,
        password=GOOD,
        profile="standard",
        client_address="10.0.0.1",
        now=later,
    )
    assert not standard.password_expired
