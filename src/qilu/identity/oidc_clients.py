"""Registration of relying parties (department systems) by administrators."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.models import Department, OidcClient, OidcToken
from qilu.identity.oidc_provider import REAL_NAME_SCOPES, revoke_tokens


@dataclass(frozen=True)
class NewClient:
    client: OidcClient
    secret: str | None  # shown once; None for a public client


@dataclass(frozen=True)
class Integration:
    """How a system integrates beyond signing people in (all optional)."""

    jwks: dict[str, Any] | None = None  # private_key_jwt: its public keys, no secret kept
    allowed_scopes: tuple[str, ...] = ()  # real-name scopes it may ask people for
    jwt_access_tokens: bool = False  # RFC 9068 access tokens its API checks offline
    sm2_id_tokens: bool = False  # 国密: its ID tokens signed with SM2 (keys at /oidc/jwks/sm2)
    backchannel_logout_uri: str | None = None
    frontchannel_logout_uri: str | None = None


def _checked_uri(uri: str, field: str, label: str) -> str:
    parts = urlsplit(uri)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local):
        raise QiluError(
            "client.redirect_uri",
            f"{label} {uri} 须为 https（本机调试可用 http://127.0.0.1）",
            field=field,
        )
    if parts.fragment:
        raise QiluError("client.redirect_uri", f"{label} {uri} 不能带 #片段", field=field)
    return uri


def parse_jwks(text: str) -> dict[str, Any]:
    """A JWKS typed or pasted into a form."""
    try:
        parsed = json.loads(text)
    except ValueError:
        raise QiluError("client.jwks", "公钥须为 JSON 格式的 JWKS", field="jwks") from None
    if not isinstance(parsed, dict):
        raise QiluError("client.jwks", "公钥须为含 keys 的 JWKS", field="jwks")
    return parsed


def _checked_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """A client's public keys for private_key_jwt: a JWKS of signing keys, no private part."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise QiluError("client.jwks", "公钥须为含 keys 的 JWKS", field="jwks")
    if any(not isinstance(k, dict) or "d" in k or "k" in k for k in keys):
        raise QiluError("client.jwks", "只能登记公钥：JWKS 中不能有私钥或对称密钥", field="jwks")
    try:
        KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise QiluError("client.jwks", f"公钥无法识别：{error}", field="jwks") from error
    return {"keys": keys}


def register_client(
    session: Session,
    *,
    name: str,
    redirect_uris: list[str],
    public: bool,
    sector: str | None = None,
    first_party: bool = False,
    post_logout_redirect_uris: list[str] | None = None,
    integration: Integration = Integration(),
    actor: roles.Actor,
) -> NewClient:
    """Register a system that signs people in. It belongs to no one department, so only an
    administrator whose reach is the whole province (or the command line) registers one.

    A confidential client gets a secret, unless it registers public keys (`integration.jwks`):
    then it authenticates with private_key_jwt and no shared secret exists anywhere."""
    roles.authorize(actor, "admin.clients", roles.PROVINCE)
    if not name.strip():
        raise QiluError("client.name", "请填写系统名称", field="name")
    if not redirect_uris:
        raise QiluError("client.redirect_uri", "至少登记一个回调地址", field="redirect_uri")
    for uri in redirect_uris:
        _checked_uri(uri, "redirect_uri", "回调地址")
    for uri in post_logout_redirect_uris or []:
        _checked_uri(uri, "post_logout_redirect_uris", "退出后返回地址")
    notified = {
        "backchannel_logout_uri": integration.backchannel_logout_uri,
        "frontchannel_logout_uri": integration.frontchannel_logout_uri,
    }
    for field, address in notified.items():
        if address:
            _checked_uri(address, field, "退出通知地址")
    unknown = sorted(set(integration.allowed_scopes) - set(REAL_NAME_SCOPES))
    if unknown:
        raise QiluError(
            "client.scope", f"没有实名信息范围 {'、'.join(unknown)}", field="allowed_scopes"
        )
    jwks = _checked_jwks(integration.jwks) if integration.jwks is not None else None
    if jwks is not None and public:
        raise QiluError("client.jwks", "公开客户端不登记公钥", field="jwks")
    client_id = secrets.token_urlsafe(18)
    secret = None if public or jwks is not None else secrets.token_urlsafe(32)
    client = OidcClient(
        client_id=client_id,
        secret_hash=secret_digest(secret) if secret else None,
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris or [],
        sector=sector or client_id,
        is_first_party=first_party,
        jwks=jwks,
        allowed_scopes=list(integration.allowed_scopes),
        access_token_format="jwt" if integration.jwt_access_tokens else "opaque",
        id_token_alg="SM2" if integration.sm2_id_tokens else "RS256",
        backchannel_logout_uri=integration.backchannel_logout_uri or None,
        frontchannel_logout_uri=integration.frontchannel_logout_uri or None,
        created_at=datetime.now(UTC),
    )
    details = {
        "name": name,
        "public": public,
        "auth": client.auth_method,
        "allowed_scopes": list(integration.allowed_scopes),
    }
    return _registered(session, client, secret, actor, details)


def register_service_client(
    session: Session,
    *,
    name: str,
    department_code: str,
    rate_per_second: int | None = None,
    actor: roles.Actor,
) -> NewClient:
    """Register a department's system that calls the data APIs with its own credentials
    (client_credentials): it reads and pushes as that department, within its grants. An
    administrator registers one only for a department inside their division."""
    if not name.strip():
        raise QiluError("client.name", "请填写系统名称", field="service_name")
    department = session.scalars(
        select(Department).where(Department.code == department_code)
    ).one_or_none()
    if department is None:
        raise NotFound(
            "client.department", f"没有编码为 {department_code} 的部门", field="department"
        )
    roles.authorize(actor, "admin.clients", roles.Target.of(department))
    if rate_per_second is not None and not 1 <= rate_per_second <= 100_000:
        raise QiluError("client.rate", "每秒请求上限须在 1 到 100000 之间", field="rate_per_second")
    client_id = secrets.token_urlsafe(18)
    secret = secrets.token_urlsafe(32)
    client = OidcClient(
        client_id=client_id,
        secret_hash=secret_digest(secret),
        name=name.strip(),
        redirect_uris=[],
        post_logout_redirect_uris=[],
        sector=client_id,
        department_id=department.id,
        rate_per_second=rate_per_second,
        created_at=datetime.now(UTC),
    )
    details = {"name": client.name, "department": department.code, "service": True}
    return _registered(session, client, secret, actor, details)


def _registered(
    session: Session,
    client: OidcClient,
    secret: str | None,
    actor: roles.Actor,
    details: dict[str, object],
) -> NewClient:
    session.add(client)
    session.flush()
    record(
        session,
        "client.registered",
        actor_person_id=roles.person_of(actor),
        subject=f"client:{client.client_id}",
        details=details,
    )
    return NewClient(client, secret)


def clients_visible_to(session: Session, actor: roles.Staff) -> list[OidcClient]:
    """The systems `actor` administers: those of departments inside their division, and the
    sign-in systems too if their reach is the province."""
    query = (
        select(OidcClient)
        .outerjoin(Department, OidcClient.department_id == Department.id)
        .order_by(OidcClient.created_at.desc())
    )
    mine = roles.visible_departments(list(actor.grants), "admin.clients")
    if roles.allows(actor, "admin.clients", roles.PROVINCE):
        mine = or_(mine, OidcClient.department_id.is_(None))
    return list(session.scalars(query.where(mine)))


def _target(session: Session, client: OidcClient) -> roles.Target:
    if client.department_id is None:
        return roles.PROVINCE
    return roles.Target.of(session.get_one(Department, client.department_id))


def disable_client(
    session: Session, client_id: str, *, actor: roles.Actor, now: datetime | None = None
) -> OidcClient:
    """Cut a system off: it can sign no one in, and every token it holds stops working."""
    client = session.scalars(select(OidcClient).where(OidcClient.client_id == client_id)).first()
    if client is None:
        raise NotFound("client.not_found", "没有这个接入系统")
    roles.authorize(actor, "admin.clients", _target(session, client))
    if client.disabled_at is not None:
        return client
    moment = now or datetime.now(UTC)
    client.disabled_at = moment
    revoked = revoke_tokens(session, OidcToken.client_id == client_id, at=moment)
    record(
        session,
        "client.disabled",
        actor_person_id=roles.person_of(actor),
        subject=f"client:{client_id}",
        at=moment,
        details={"tokens_revoked": revoked},
    )
    return client
