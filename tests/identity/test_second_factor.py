from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy.orm import Session

from qilu.errors import QiluError, Refused
from qilu.identity import second_factor
from qilu.identity.accounts import authenticate, register_resident
from qilu.identity.models import Account
from qilu.pii import Vault

from ..factories import make_person

ID = "11010519491231002X"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def account(session: Session, vault: Vault) -> Account:
    make_person(session, vault, name="王芳", id_number=ID)
    return register_resident(
        session, vault, name="王芳", id_number=ID, password="qilu-Sign-in-2026", profile="standard"
    )


def enable(session: Session, vault: Vault, account: Account) -> tuple[str, list[str]]:
    setup = second_factor.begin_setup(session, vault, account)
    codes = second_factor.confirm_setup(
        session, vault, account, pyotp.TOTP(setup.secret).at(T0), client_address=None, now=T0
    )
    return setup.secret, codes


def check(session: Session, vault: Vault, account: Account, code: str, at: datetime) -> str:
    return second_factor.verify(
        session, vault, account, code, profile="standard", client_address="10.0.0.1", now=at
    )


def test_setup_needs_a_right_code(session: Session, vault: Vault, account: Account) -> None:
    setup = second_factor.begin_setup(session, vault, account)
    assert setup.uri.startswith("otpauth://totp/") and "<svg" in setup.qr_svg
    assert second_factor.begin_setup(session, vault, account).secret == setup.secret
    with pytest.raises(QiluError) as caught:
        second_factor.confirm_setup(session, vault, account, "000000", client_address=None, now=T0)
    assert caught.value.code == "totp.wrong_code" and not account.has_second_factor
    assert account.totp_secret_cipher and setup.secret.encode() not in account.totp_secret_cipher


def test_enabling_gives_ten_recovery_codes(
    session: Session, vault: Vault, account: Account
) -> None:
    _, codes = enable(session, vault, account)
    assert account.has_second_factor and len(set(codes)) == 10
    assert authenticate(
        session,
        vault,
        id_number=ID,
        password="qilu-Sign-in-2026",
        profile="standard",
        client_address="10.0.0.1",
    ).needs_second_factor


def test_a_code_is_accepted_once(session: Session, vault: Vault, account: Account) -> None:
    secret, _ = enable(session, vault, account)
    later = T0 + timedelta(minutes=5)
    code = pyotp.TOTP(secret).at(later)
    assert check(session, vault, account, code, later) == "totp"
    with pytest.raises(Refused) as caught:
        check(session, vault, account, code, later + timedelta(seconds=5))
    assert caught.value.code == "auth.second_factor"


def test_clock_drift_of_one_step_is_tolerated(
    session: Session, vault: Vault, account: Account
) -> None:
    secret, _ = enable(session, vault, account)
    later = T0 + timedelta(minutes=5)
    assert (
        check(session, vault, account, pyotp.TOTP(secret).at(later - timedelta(seconds=30)), later)
        == "totp"
    )
    with pytest.raises(Refused):
        check(session, vault, account, pyotp.TOTP(secret).at(later + timedelta(minutes=2)), later)


def test_recovery_codes_work_once(session: Session, vault: Vault, account: Account) -> None:
    _, codes = enable(session, vault, account)
    later = T0 + timedelta(minutes=5)
    assert check(session, vault, account, codes[0].lower(), later) == "recovery_code"
    with pytest.raises(Refused):
        check(session, vault, account, codes[0], later)


def test_wrong_codes_lock_like_wrong_passwords(
    session: Session, vault: Vault, account: Account
) -> None:
    secret, _ = enable(session, vault, account)
    for second in range(5):
        with pytest.raises(Refused):
            check(session, vault, account, "123456", T0 + timedelta(minutes=1, seconds=second))
    with pytest.raises(Refused) as caught:
        check(
            session,
            vault,
            account,
            pyotp.TOTP(secret).at(T0 + timedelta(minutes=2)),
            T0 + timedelta(minutes=2),
        )
    assert caught.value.code == "auth.locked"
