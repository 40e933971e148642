"""Registration of relying parties (department systems) by administrators."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.digests import secret_digest
from qilu.errors import QiluError
from qilu.identity.models import OidcClient


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
    registered_by: int | None = None,
) -> NewClient:
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
    session.add(client)
    session.flush()
    record(
        session,
        "client.registered",
        actor_person_id=registered_by,
        subject=f"client:{client_id}",
        details={"name": name, "public": public},
    )
    return NewClient(client, secret)
