"""Signing in through an upstream OpenID Connect provider: as a province accepts the national
platform's 统一身份认证 (国家政务服务平台), Qilu is then a relying party of it.

The person goes to the upstream provider (code flow with PKCE S256, `state` bound to this
browser by a cookie, `nonce`), signs in there and agrees that Qilu may know their ID number; the
answer is checked the relying party's way (the `iss` of RFC 9207 against mix-up, the ID token's
signature from the upstream JWKS, `iss`, `aud`, `exp`, `nonce`), and the person is found in the
population register by their ID number, with the name checked as registration checks it. They
are signed in at the level the upstream asserts (`acr`), never above what Qilu itself reaches
online. A person in the register without a Qilu account gets one (with no usable password: they
sign in upstream, or set a password at a window).

The upstream's discovery document and keys are read once per process and every hour after.
No transaction is open while the upstream is called (SQLite's one write lock is not held).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes.idcard import validate_id_number
from qilu.digests import secret_digest
from qilu.errors import QiluError
from qilu.identity import assurance
from qilu.identity.models import Account, Person, UpstreamSignIn
from qilu.identity.service import has_number, matching_person
from qilu.pii import Vault
from qilu.settings import Settings

LIFETIME = timedelta(minutes=10)
METADATA_TTL = 3600.0
TIMEOUT = 10.0
SCOPE = "openid profile id_number"


class UpstreamRefused(QiluError):
    status_code = 400


def _refused(code: str, message: str) -> UpstreamRefused:
    return UpstreamRefused(f"federation.{code}", message)


@dataclass(frozen=True)
class Upstream:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    redirect_uri: str  # ours, registered there


def upstream_of(settings: Settings) -> Upstream | None:
    if not settings.upstream_issuer or not settings.upstream_client_id:
        return None
    secret = settings.upstream_client_secret
    return Upstream(
        settings.upstream_issuer.rstrip("/"),
        settings.upstream_client_id,
        secret.get_secret_value() if secret else "",
        settings.upstream_name,
        f"{settings.issuer}/account/federated/callback",
    )


_metadata: dict[str, tuple[float, dict[str, Any], KeySet]] = {}


def _discovered(upstream: Upstream) -> tuple[dict[str, Any], KeySet]:
    held = _metadata.get(upstream.issuer)
    if held is not None and held[0] > time.monotonic():
        return held[1], held[2]
    try:
        document = httpx.get(
            f"{upstream.issuer}/.well-known/openid-configuration", timeout=TIMEOUT
        ).json()
        if document.get("issuer") != upstream.issuer:  # Discovery §4.3
            raise _refused("issuer", f"{upstream.name}的发现文档与登记的签发者不一致")
        keys = KeySet.import_key_set(httpx.get(document["jwks_uri"], timeout=TIMEOUT).json())
    except (httpx.HTTPError, ValueError, KeyError) as error:
        raise _refused("unreachable", f"暂时无法连接{upstream.name}：请稍后再试") from error
    _metadata[upstream.issuer] = (time.monotonic() + METADATA_TTL, document, keys)
    return document, keys


@dataclass(frozen=True)
class Departure:
    url: str  # where the browser goes
    state: str  # the browser's cookie


def depart(session: Session, upstream: Upstream, *, next_path: str) -> Departure:
    """Send the person to the upstream provider; remember what the answer must match."""
    document, _ = _discovered(upstream)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(64)  # RFC 7636 §4.1: 43 to 128 characters
    now = datetime.now(UTC)
    session.execute(delete(UpstreamSignIn).where(UpstreamSignIn.expires_at < now))
    session.add(
        UpstreamSignIn(
            state_hash=secret_digest(state),
            nonce=nonce,
            code_verifier=verifier,
            next_path=next_path,
            expires_at=now + LIFETIME,
        )
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": upstream.client_id,
            "redirect_uri": upstream.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    return Departure(f"{document['authorization_endpoint']}?{query}", state)


@dataclass(frozen=True)
class Pending:
    nonce: str
    code_verifier: str
    next_path: str


def take_state(session: Session, state: str, cookie: str | None) -> Pending:
    """The request this answer belongs to: the same browser (its cookie), in time, once."""
    if not cookie or not secrets.compare_digest(cookie, state):
        raise _refused("state", "登录请求已失效或来自另一个浏览器：请重新登录")
    row = session.scalars(
        select(UpstreamSignIn).where(UpstreamSignIn.state_hash == secret_digest(state))
    ).first()
    if row is None or row.expires_at <= datetime.now(UTC):
        raise _refused("state", "登录请求已失效：请重新登录")
    pending = Pending(row.nonce, row.code_verifier, row.next_path)
    session.delete(row)
    return pending


@dataclass(frozen=True)
class Asserted:
    """What the upstream asserted about the person, checked."""

    id_number: str
    name: str | None
    acr: int
    subject: str


def exchange(upstream: Upstream, pending: Pending, *, code: str, iss: str | None) -> Asserted:
    """Code for tokens at the upstream, and its ID token checked (no transaction open)."""
    if iss is not None and iss.rstrip("/") != upstream.issuer:  # RFC 9207 §2.4: mix-up
        raise _refused("issuer", "登录结果不是来自登记的身份提供方")
    document, keys = _discovered(upstream)
    try:
        answer = httpx.post(
            document["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": upstream.redirect_uri,
                "code_verifier": pending.code_verifier,
            },
            auth=(upstream.client_id, upstream.client_secret),
            timeout=TIMEOUT,
        )
        tokens = answer.json()
    except (httpx.HTTPError, ValueError) as error:
        raise _refused("unreachable", f"暂时无法连接{upstream.name}：请稍后再试") from error
    if answer.status_code != 200 or "id_token" not in tokens:
        raise _refused("token", f"{upstream.name}未能完成登录（{tokens.get('error', '未知错误')}）")
    try:
        claims = jwt.decode(tokens["id_token"], keys).claims
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": upstream.issuer},
            aud={"essential": True, "value": upstream.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": pending.nonce},
            sub={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError) as error:
        raise _refused("id_token", "身份提供方的身份令牌未通过校验") from error
    number = claims.get("id_number")
    if not isinstance(number, str):
        raise _refused("id_number", f"{upstream.name}没有提供您的身份号码：登录时须同意提供")
    try:
        level = int(str(claims.get("acr", "3")))
    except ValueError:
        level = 2
    name = claims.get("name")
    return Asserted(
        validate_id_number(number), str(name) if name else None, level, str(claims["sub"])
    )


def arrive(
    session: Session,
    vault: Vault,
    upstream: Upstream,
    asserted: Asserted,
    *,
    client_address: str | None,
) -> tuple[Account, int]:
    """The person in the register the upstream vouched for, their account (opened if they have
    none) and the level to sign them in at."""
    person = session.scalars(select(Person).where(has_number(vault, asserted.id_number))).first()
    if person is not None and asserted.name:
        person = matching_person(session, vault, asserted.name, asserted.id_number)
    if person is None:
        record(
            session,
            "auth.federated_refused",
            subject=f"upstream:{upstream.issuer}",
            client_address=client_address,
            details={"reason": "not_in_register"},
        )
        raise _refused("not_in_register", "人口库中没有与您身份一致的记录：请到窗口核实")
    account = session.scalars(select(Account).where(Account.person_id == person.id)).first()
    if account is None:
        account = Account(
            person_id=person.id,
            password_hash="!federated",  # no password opens it: they sign in upstream
            password_changed_at=datetime.now(UTC),
            assurance=3,
            status="active",
        )
        session.add(account)
        session.flush()
    if account.status != "active":
        raise _refused("disabled", "您的账号已停用：请到窗口办理")
    level = max(2, min(asserted.acr, assurance.HIGHEST_ONLINE))
    record(
        session,
        "auth.federated_login",
        actor_person_id=person.id,
        subject=f"account:{account.id}",
        client_address=client_address,
        details={
            "upstream": upstream.issuer,
            "upstream_sub": asserted.subject,
            "acr": asserted.acr,
            "level": level,
        },
    )
    return account, level
