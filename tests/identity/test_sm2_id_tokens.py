"""SM2 ID tokens for department systems that must verify 国密 signatures (issue 14): the same
claims, signed with the platform's SM2 key, verifiable by an independent SM2 (GmSSL) with the
key published at /oidc/jwks/sm2; the standard JWKS and RS256 clients are untouched."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from fastapi.testclient import TestClient
from gmssl_pyx import sm2_verify
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu import seals
from qilu.db import make_engine
from qilu.digests import sm3
from qilu.identity.models import OidcClient
from qilu.identity.oidc_clients import Integration, register_client
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault
from qilu.settings import Settings

from ..factories import make_person
from ..services.test_seals import der
from ..test_cli import run
from .test_oidc import REDIRECT, code_for, exchange, pkce
from .test_pages import ID, register


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_an_sm2_client_gets_id_tokens_gmssl_verifies(
    client: TestClient, session: Session, vault: Vault
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    new = register_client(
        session,
        name="济南市社保系统",
        redirect_uris=[REDIRECT],
        public=True,
        integration=Integration(sm2_id_tokens=True),
        actor=OPERATOR,
    )
    register(client)
    client_id = new.client.client_id
    verifier, challenge = pkce()
    tokens = exchange(client, client_id, code_for(client, client_id, challenge), verifier).json()
    header_part, claims_part, signature_part = tokens["id_token"].split(".")
    header = json.loads(unb64(header_part))
    claims = json.loads(unb64(claims_part))
    assert header["alg"] == "SM2" and claims["aud"] == [client_id] and claims["nonce"] == "n1"
    assert (
        claims["at_hash"]
        == base64.urlsafe_b64encode(sm3(tokens["access_token"].encode())[:16]).rstrip(b"=").decode()
    )

    published = client.get("/oidc/jwks/sm2").json()["keys"]
    [key] = [k for k in published if k["kid"] == header["kid"]]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "SM2", "SM2")
    public = unb64(key["x"]) + unb64(key["y"])
    signing_input = f"{header_part}.{claims_part}".encode()
    signature = unb64(signature_part)
    assert sm2_verify(public, signing_input, der(signature), seals.SIGNER_ID)
    assert not sm2_verify(public, signing_input + b"x", der(signature), seals.SIGNER_ID)
    standard = client.get("/oidc/jwks").json()["keys"]
    assert all(k.get("crv") != "SM2" for k in standard)  # standard parties never meet SM2
    discovery = client.get("/.well-known/openid-configuration").json()
    assert "SM2" in discovery["id_token_signing_alg_values_supported"]
    assert discovery["sm2_jwks_uri"].endswith("/oidc/jwks/sm2")


def test_the_command_line_registers_an_sm2_client(tmp_path: Path) -> None:
    env = {"QILU_DATA_DIR": str(tmp_path)}
    assert run("db", "upgrade", env=env).returncode == 0
    added = run(
        "clients", "add", "国密系统", "--redirect-uri", "https://sys.example/cb",
        "--public", "--sm2-id-tokens", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client_id"]
    engine = make_engine(Settings(data_dir=tmp_path))
    with Session(engine) as session:
        row = session.scalars(select(OidcClient).where(OidcClient.client_id == client_id)).one()
        assert row.id_token_alg == "SM2"
    engine.dispose()
