"""Registration of relying parties (department systems) by administrators."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.models import Department, OidcClient, OidcToken


@dataclass(frozen=True)
class NewClient:
    client: OidcClient
    secret: str | None  # shown once; None for a public client


def register_client(
    session: Session,
    *,
    name: str,
    redirect_uris: list[str],
    public: bool,
    sector: str | None = None,
    first_party: bool = False,
    post_logout_redirect_uris: list[str] | None = None,
    actor: roles.Actor,
) -> NewClient:
    """Register a system that signs people in. It belongs to no one department, so only an
    administrator whose reach is the whole province (or the command line) registers one."""
    roles.authorize(actor, "admin.clients", roles.PROVINCE)
    if not name.strip():
        raise QiluError("client.name", "请填写系统名称", field="name")
    if not redirect_uris:
        raise QiluError("client.redirect_uri", "至少登记一个回调地址", field="redirect_uri")
    for uri in [*redirect_uris, *(post_logout_redirect_uris or [])]:
        parts = urlsplit(uri)
        local = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local):
            raise QiluError(
                "client.redirect_uri",
                f"回调地址 {uri} 须为 https（本机调试可用 http://127.0.0.1）",
                field="redirect_uri",
            )
        if parts.fragment:
            raise QiluError(
                "client.redirect_uri", f"回调地址 {uri} 不能带 #片段", field="redirect_uri"
            )
    client_id = secrets.token_urlsafe(18)
    secret = None if public else secrets.token_urlsafe(32)
    client = OidcClient(
        client_id=client_id,
        secret_hash=secret_digest(secret) if secret else None,
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_redirect_uris or [],
        sector=sector or client_id,
        is_first_party=first_party,
        created_at=datetime.now(UTC),
    )
    return _registered(session, client, secret, actor, {"name": name, "public": public})


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
    revoked = session.execute(
        update(OidcToken)
        .where(OidcToken.client_id == client_id, OidcToken.revoked_at.is_(None))
        .values(revoked_at=moment, rotated_at=moment)
        .returning(OidcToken.id)
    ).all()
    record(
        session,
        "client.disabled",
        actor_person_id=roles.person_of(actor),
        subject=f"client:{client_id}",
        at=moment,
        details={"tokens_revoked": len(revoked)},
    )
    return client
