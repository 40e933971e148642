"""Resident accounts: real-name registration, password sign-in with lockout, password changes.

Registration is real-name: the name and ID number must match the population register, and a
person has one account. Sign-in failures are counted per account and per client address; reaching
a threshold locks for a while, never for good, and an address that fails too often is slowed for
every account it tries. Every outcome is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.idcard import validate_id_number
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import passwords, sessions
from qilu.identity.models import Account, Person, SignInFailure
from qilu.identity.service import has_number, matching_person, phone_of
from qilu.pii import Vault


@dataclass(frozen=True)
class LockPolicy:
    account_failures: int
    account_lock: timedelta
    address_failures: int
    address_lock: timedelta
    window: timedelta


_QUARTER, _HALF = timedelta(minutes=15), timedelta(minutes=30)
POLICIES: dict[passwords.Profile, LockPolicy] = {
    "standard": LockPolicy(5, _QUARTER, 30, _QUARTER, _QUARTER),
    # 等保 level 3: five failures lock the account for thirty minutes.
    "dengbao3": LockPolicy(5, _HALF, 30, _HALF, _HALF),
}


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


class RegistrationRefused(QiluError):
    """The one answer registration gives when name and number do not open an account; its
    trail (the failure counters, the audit entry) is kept."""

    keeps_trail = True


# Registration is throttled per client address and per ID number tried (its blind index), in
# the same failure table as sign-ins under keys of their own.
REGISTRATION = LockPolicy(5, _QUARTER, 20, _QUARTER, _QUARTER)


def register_resident(
    session: Session,
    vault: Vault,
    *,
    name: str,
    id_number: str,
    password: str,
    profile: passwords.Profile,
    client_address: str | None = None,
    now: datetime | None = None,
) -> Account:
    """Open an account for a resident whose name and ID number match the register.

    The form must not be an oracle on the register: everything that can be checked without it
    (the number's check digit, the password rules) is checked first, and a name that does not
    match, a person not in the register and a person who already has an account all get the
    same answer, counted per address and per number tried, and audited."""
    moment = _now(now)
    number = validate_id_number(id_number)
    if not name.strip():
        raise QiluError("registration.name", "请填写姓名", field="name")
    passwords.check_policy(password, profile, [number, name.strip()])
    address = f"register:{client_address or 'unknown'}"
    target = f"register:{vault.blind_index(number, 'id_number').hex()[:48]}"
    refuse_if_locked(session, "address", address, moment, client_address or "unknown")
    refuse_if_locked(session, "account", target, moment, client_address or "unknown")
    person = matching_person(session, vault, name, number)
    taken = person is not None and (
        session.scalars(select(Account.id).where(Account.person_id == person.id)).first()
        is not None
    )
    if person is None or taken:
        count_failure(session, "address", address, moment, REGISTRATION)
        count_failure(session, "account", target, moment, REGISTRATION)
        record(
            session,
            "account.registration_refused",
            subject=target,
            client_address=client_address,
            at=moment,
        )
        raise RegistrationRefused(
            "registration.refused",
            "未能注册：姓名与身份号码不匹配、人口库中没有此人，或该身份已注册账号。"
            "请核对后重试；已注册的请直接登录，忘记密码可在登录页找回",
            field="id_number",
        )
    account = Account(
        person_id=person.id,
        password_hash=passwords.hash_password(password),
        password_changed_at=moment,
        assurance=3,
        status="active",
    )
    session.add(account)
    session.flush()
    record(
        session,
        "account.registered",
        actor_person_id=person.id,
        subject=f"account:{account.id}",
        client_address=client_address,
        at=moment,
    )
    return account


def _account_by_number(session: Session, vault: Vault, number: str) -> Account | None:
    return session.scalars(
        select(Account).join(Person).where(has_number(vault, number))
    ).one_or_none()


def account_of(session: Session, vault: Vault, id_number: str) -> Account:
    """The account of the resident with this ID number."""
    account = _account_by_number(session, vault, validate_id_number(id_number))
    if account is None:
        raise NotFound("account.not_found", "该身份号码没有账号", field="id_number")
    return account


@dataclass(frozen=True)
class SignIn:
    account: Account
    password_expired: bool

    @property
    def needs_second_factor(self) -> bool:
        return self.account.has_second_factor


def authenticate(
    session: Session,
    vault: Vault,
    *,
    id_number: str,
    password: str,
    profile: passwords.Profile,
    client_address: str,
    now: datetime | None = None,
) -> SignIn:
    """Check an ID number and password; raise `Refused` (its trail kept) if they do not pass."""
    moment = _now(now)
    account = _account_by_number(session, vault, validate_id_number(id_number))
    # With a second factor still to come, the password alone is not yet a sign-in.
    passed = "auth.password_ok" if account and account.has_second_factor else "auth.login_ok"
    account = _check_password(session, account, password, profile, client_address, moment, passed)
    expired = passwords.is_expired(account.password_changed_at, moment, profile)
    return SignIn(account, expired)


def confirm_password(
    session: Session,
    account: Account,
    password: str,
    *,
    profile: passwords.Profile,
    client_address: str,
    now: datetime | None = None,
) -> None:
    """A signed-in holder proves their password again before a sensitive action. Failures count
    towards the same lockout as failed sign-ins."""
    try:
        _check_password(
            session, account, password, profile, client_address, _now(now), "auth.reconfirmed"
        )
    except Refused as refusal:
        if refusal.code != "auth.invalid":
            raise  # a lock says so itself
        raise Refused("auth.password_wrong", "密码不正确", field="password") from None


def _check_password(
    session: Session,
    account: Account | None,
    password: str,
    profile: passwords.Profile,
    client_address: str,
    moment: datetime,
    passed: str,
) -> Account:
    """Check a password under the lockout rules and record `passed`, or record the failure (and
    any lock) and raise `Refused` with its trail kept. Without an account a dummy hash is
    checked, so both answers take as long."""
    policy = POLICIES[profile]
    account_key = f"account:{account.id}" if account else None
    for scope, key in (("address", client_address), ("account", account_key)):
        if key is not None:
            refuse_if_locked(session, scope, key, moment, client_address)
    stored = account.password_hash if account else passwords.DUMMY_HASH
    valid = passwords.verify_password(stored, password)
    if account is None or not valid or account.status != "active":
        count_failure(session, "address", client_address, moment, policy)
        if account is not None:
            locked = count_failure(session, "account", account_key or "", moment, policy)
            record(
                session,
                "auth.login_failed",
                actor_person_id=account.person_id,
                subject=account_key,
                client_address=client_address,
                at=moment,
                details={"reason": "password" if not valid else account.status},
            )
            if locked:
                record(
                    session,
                    "auth.locked",
                    subject=account_key,
                    client_address=client_address,
                    at=moment,
                    details={"until": locked.isoformat()},
                )
        else:
            record(
                session,
                "auth.login_failed",
                client_address=client_address,
                at=moment,
                details={"reason": "no_account"},
            )
        raise Refused("auth.invalid", "身份号码或密码错误", field="password")
    forget_failures(session, account)
    if passwords.HASHER.check_needs_rehash(account.password_hash):
        account.password_hash = passwords.hash_password(password)
    record(
        session,
        passed,
        actor_person_id=account.person_id,
        subject=account_key,
        client_address=client_address,
        at=moment,
        details={"method": "password"},
    )
    return account


def change_password(
    session: Session,
    vault: Vault,
    account: Account,
    *,
    current: str,
    new: str,
    profile: passwords.Profile,
    client_address: str,
    keep_session_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """The holder changes their password, proving the current one first (a wrong one counts
    toward the lockout like a failed sign-in). Every other session of the account ends, and
    the tokens department systems hold for it are revoked: whoever knew the old password is
    out. Returns how many sessions ended."""
    moment = _now(now)
    try:
        _check_password(
            session, account, current, profile, client_address, moment, "auth.reconfirmed"
        )
    except Refused as refusal:
        record(
            session,
            "account.password_change_refused",
            actor_person_id=account.person_id,
            subject=f"account:{account.id}",
            client_address=client_address,
            at=moment,
        )
        if refusal.code != "auth.invalid":
            raise  # a lock says so itself
        raise Refused("password.current_wrong", "当前密码不正确", field="current") from None
    set_password(
        session,
        vault,
        account,
        new,
        profile,
        actor_person_id=account.person_id,
        client_address=client_address,
        now=moment,
    )
    return sessions.end_other_sessions(session, account, keep=keep_session_id, now=moment)


def set_password(
    session: Session,
    vault: Vault,
    account: Account,
    new: str,
    profile: passwords.Profile,
    *,
    actor_person_id: int | None,
    client_address: str | None = None,
    now: datetime | None = None,
) -> None:
    """Set a new password under the policy (also the operator's reset)."""
    person = account.person
    personal = [
        vault.decrypt(person.id_number_cipher, "id_number"),
        person.name,
        phone_of(vault, person) or "",
    ]
    passwords.check_policy(new, profile, personal)
    if passwords.verify_password(account.password_hash, new):
        raise QiluError("password.reused", "新密码不能与当前密码相同", field="password")
    moment = _now(now)
    account.password_hash = passwords.hash_password(new)
    account.password_changed_at = moment
    forget_failures(session, account)
    record(
        session,
        "account.password_changed",
        actor_person_id=actor_person_id,
        subject=f"account:{account.id}",
        client_address=client_address,
        at=moment,
    )


def forget_failures(session: Session, account: Account) -> None:
    key = f"account:{account.id}"
    session.execute(
        delete(SignInFailure).where(SignInFailure.scope == "account", SignInFailure.key == key)
    )


def refuse_if_locked(
    session: Session, scope: str, key: str, now: datetime, client_address: str
) -> None:
    row = session.get(SignInFailure, (scope, key))
    if row is None or row.locked_until is None or row.locked_until <= now:
        return
    minutes = max(1, int((row.locked_until - now).total_seconds() // 60) + 1)
    record(
        session,
        "auth.refused_locked",
        subject=key,
        client_address=client_address,
        at=now,
        details={"scope": scope},
    )
    if scope == "account":
        raise Refused(
            "auth.locked",
            f"连续登录失败次数过多，账号已临时锁定，请 {minutes} 分钟后再试",
            minutes=minutes,
        )
    raise Refused(
        "auth.throttled", f"该地址登录失败次数过多，请 {minutes} 分钟后再试", minutes=minutes
    )


def count_failure(
    session: Session, scope: str, key: str, now: datetime, policy: LockPolicy
) -> datetime | None:
    """Add a failure in the current window (atomically); lock if the threshold is reached."""
    table = SignInFailure.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stale = table.c.window_started_at < now - policy.window
    statement = (
        dialect.insert(table)
        .values(scope=scope, key=key, failures=1, window_started_at=now, locked_until=None)
        .on_conflict_do_update(
            index_elements=[table.c.scope, table.c.key],
            set_={
                "failures": case((stale, 1), else_=table.c.failures + 1),
                "window_started_at": case((stale, now), else_=table.c.window_started_at),
            },
        )
        .returning(table.c.failures)
    )
    failures = session.execute(statement).scalar_one()
    limit = policy.account_failures if scope == "account" else policy.address_failures
    if failures < limit:
        return None
    lock = policy.account_lock if scope == "account" else policy.address_lock
    row = session.get(SignInFailure, (scope, key), populate_existing=True)
    assert row is not None
    row.locked_until, row.failures, row.window_started_at = now + lock, 0, now
    return now + lock
