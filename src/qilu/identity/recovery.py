"""忘记密码: a resident sets a new password with a code sent to the phone the population
register holds for them. The form asks name and ID number; whether an account exists is never
said (a miss answers like a hit and sends nothing). A reset ends every session of the account
and the tokens department systems hold for it, and the person is told in the message centre.
Civil servants reset at their administrator (`qilu users reset-password`), not here."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.errors import QiluError
from qilu.identity import accounts, passwords, roles, sessions, sms_codes
from qilu.identity.models import Account
from qilu.identity.service import matching_person
from qilu.messages import service as messages
from qilu.pii import Vault

SENT = "如信息无误，验证码已发送至您在人口库登记的手机，5 分钟内有效"
WRONG_CODE = "验证码不正确或已过期，请重新获取"


def _account(session: Session, vault: Vault, name: str, id_number: str) -> Account | None:
    try:
        person = matching_person(session, vault, name, id_number)
    except QiluError:
        raise QiluError("recovery.id_number", "公民身份号码格式不正确", field="id_number") from None
    if person is None:
        return None
    account = session.scalars(select(Account).where(Account.person_id == person.id)).first()
    if account is None or roles.is_civil_servant(session, person.id):
        return None
    return account


def send_code(
    session: Session, vault: Vault, *, name: str, id_number: str, client_address: str
) -> str:
    """Send a reset code if name and number are a resident's account; the same answer if not."""
    if not name.strip():
        raise QiluError("recovery.name", "请填写姓名", field="name")
    account = _account(session, vault, name, id_number)
    if account is not None:
        try:
            sms_codes.send_code(
                session, vault, account, client_address=client_address, purpose="重置密码"
            )
        except QiluError as error:
            if error.code == "sms.no_phone":
                raise QiluError(
                    "recovery.no_phone",
                    "人口库中没有您的手机号码：请携带身份证到政务服务窗口重置密码",
                    field="id_number",
                ) from None
            raise
    return SENT


def reset(
    session: Session,
    vault: Vault,
    *,
    name: str,
    id_number: str,
    code: str,
    password: str,
    password_again: str,
    profile: passwords.Profile,
    client_address: str,
) -> Account:
    """The new password, if the code is the account's live one."""
    if password != password_again:
        raise QiluError("password.mismatch", "两次输入的密码不一致", field="password_again")
    account = _account(session, vault, name, id_number)
    moment = datetime.now(UTC)
    if account is None or not sms_codes.accept(session, account, code.strip(), moment):
        raise QiluError("recovery.code", WRONG_CODE, field="code")
    accounts.set_password(
        session,
        vault,
        account,
        password,
        profile,
        actor_person_id=account.person_id,
        client_address=client_address,
        now=moment,
    )
    ended = sessions.end_all_sessions(session, account, client_address=client_address)
    record(
        session,
        "account.password_reset",
        actor_person_id=account.person_id,
        subject=f"account:{account.id}",
        client_address=client_address,
        details={"by": "sms", "sessions_ended": ended},
    )
    messages.send(
        session,
        account.person_id,
        title="密码已重置",
        body="您的一号通行密码已通过短信验证码重置，其他设备已退出登录。如非本人操作，请立即到政务服务窗口处理。",
        link="/account",
    )
    return account
