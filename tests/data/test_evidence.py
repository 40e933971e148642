"""Evidence of shared calls: every answer carries its call id, the platform's time, the digests
of request and answer and an SM2 signature a consumer checks from the headers alone; the kept
evidence catches a changed record or a changed answer, and only the two parties may see it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from qilu import seals
from qilu.data import evidence, sharing
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.db import make_engine, upgrade
from qilu.digests import sm3
from qilu.errors import NotFound
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault, load_vault

from ..conftest import make_settings
from ..factories import make_service_client
from ..test_cli import run

CONSUMER, PROVIDER = "370102-approval", "370000-market_regulation"
USCC = "91370102MA3C0000X5"


def entity_rows() -> list[tuple[int, dict[str, Any]]]:
    return [
        (
            1,
            {
                "uscc": USCC,
                "name": "济南示例科技有限公司",
                "industry": "I",
                "division": "370102",
                "status": "存续",
            },
        )
    ]


@pytest.fixture
def shared(session: Session, vault: Vault, departments: None) -> None:
    install_standard_catalog(session)
    load_rows(session, vault, "JC-FR-001", entity_rows(), source="t", actor=OPERATOR)
    sharing.request_access(
        session,
        "JC-FR-001",
        consumer=CONSUMER,
        fields=["uscc", "name", "status"],
        may_list=True,
        purpose="核验企业登记状态",
        legal_basis="《政务数据共享条例》",
        valid_until=datetime.now(UTC) + timedelta(days=30),
        actor=OPERATOR,
    )


def token(client: Any, session: Session, department: str) -> dict[str, str]:
    registered = make_service_client(session, department)
    answer = client.post(
        "/oidc/token",
        data={"grant_type": "client_credentials", "scope": "data.read"},
        auth=(registered.client.client_id, registered.secret),
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def public_key(client: Any, kid: str) -> bytes:
    (key,) = [k for k in client.get("/oidc/jwks/sm2").json()["keys"] if k["kid"] == kid]
    x, y = (base64.urlsafe_b64decode(key[c] + "==") for c in ("x", "y"))
    return b"\x04" + x + y


def test_an_answer_carries_evidence_a_consumer_checks_from_the_headers_alone(
    session: Session, shared: None, client: Any
) -> None:
    headers = token(client, session, CONSUMER)
    body = f'{{"key": "{USCC}"}}'.encode()
    answer = client.post("/api/v1/data/JC-FR-001/lookup", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    got = answer.headers
    assert got["Qilu-Answer-Digest"] == sm3(answer.content).hex()
    asked = evidence.request_digest("POST", "/api/v1/data/JC-FR-001/lookup", body)
    assert got["Qilu-Request-Digest"] == asked.hex()
    kept = evidence.find(session, got["Qilu-Call-Id"])
    rebuilt = "\n".join(
        [
            evidence.VERSION,
            got["Qilu-Call-Id"],
            got["Qilu-Signed-At"],
            kept.client_id,
            CONSUMER,
            "JC-FR-001",
            "POST /api/v1/data/JC-FR-001/lookup",
            "200",
            got["Qilu-Request-Digest"],
            got["Qilu-Answer-Digest"],
        ]
    ).encode()
    signature = bytes.fromhex(got["Qilu-Signature"])
    assert seals.verify(seals.SM2, public_key(client, got["Qilu-Key-Id"]), signature, rebuilt)
    listing = client.get("/api/v1/data/JC-FR-001/records?status=存续", headers=headers)
    later = evidence.find(session, listing.headers["Qilu-Call-Id"])
    assert later.endpoint.startswith("GET /api/v1/data/JC-FR-001/records?status=")
    assert later.call_id != kept.call_id


def test_the_kept_evidence_catches_a_changed_record_or_a_changed_answer(
    session: Session, vault: Vault, shared: None, client: Any
) -> None:
    answer = client.get("/api/v1/data/JC-FR-001/quality", headers=token(client, session, CONSUMER))
    call = answer.headers["Qilu-Call-Id"]
    assert evidence.check(session, call, answer.content).holds
    assert evidence.check(session, call, answer.content + b" ").answer_matches is False
    kept = evidence.find(session, call)
    kept.status = 403  # someone edits the record of the call
    assert not evidence.check(session, call).signature_holds


def test_evidence_is_given_again_to_the_consumer_and_the_provider_only(
    session: Session, shared: None, client: Any
) -> None:
    mine = token(client, session, CONSUMER)
    call = client.get("/api/v1/data/JC-FR-001/quality", headers=mine).headers["Qilu-Call-Id"]
    again = client.get(f"/api/v1/data/evidence/{call}", headers=mine)
    assert again.status_code == 200 and again.json()["signature_holds"] is True
    provider = client.get(f"/api/v1/data/evidence/{call}", headers=token(client, session, PROVIDER))
    assert provider.status_code == 200
    stranger = client.get(
        f"/api/v1/data/evidence/{call}", headers=token(client, session, "370000-health")
    )
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "evidence.not_found"
    malformed = client.get("/api/v1/data/evidence/nothex", headers=mine)
    assert malformed.status_code == 422 and malformed.json()["error"]["field"] == "call_id"


def test_qilu_audit_evidence_prints_and_verifies_a_call(tmp_path: Path) -> None:
    from dataclasses import astuple

    from qilu.demo import organisations
    from qilu.demo.seed import write_rows

    settings = make_settings(tmp_path)
    engine = make_engine(settings)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        columns = ["id", "code", "kind", "name", "level", "division_code", "parent_id", "uscc"]
        rows = [astuple(d) for d in organisations.department_rows()]
        write_rows(session.connection(), "departments", columns, rows)
        caller = ServiceCaller.of(make_service_client(session, CONSUMER).client)
        kept = evidence.seal(
            session,
            load_vault(settings),
            caller,
            resource="JC-FR-001",
            endpoint="GET /api/v1/data/JC-FR-001/quality",
            asked=evidence.request_digest("GET", "/api/v1/data/JC-FR-001/quality", b""),
            answer=b'{"records":1}',
        )
        call = kept.call_id
    env = {
        "QILU_DATA_DIR": str(settings.data_dir),
        "QILU_PII_KEY": settings.pii_key.get_secret_value(),  # type: ignore[union-attr]
        "QILU_INDEX_KEY": settings.index_key.get_secret_value(),  # type: ignore[union-attr]
    }
    kept_answer = tmp_path / "answer.json"
    kept_answer.write_bytes(b'{"records":1}')
    good = run("audit", "evidence", call, "--answer", str(kept_answer), env=env)
    assert good.returncode == 0, good.stderr
    assert call in good.stdout and "SM2 签名：有效" in good.stdout
    assert "与存证摘要一致" in good.stdout
    kept_answer.write_bytes(b'{"records":2}')
    changed = run("audit", "evidence", call, "--answer", str(kept_answer), env=env)
    assert changed.returncode == 1 and "与存证摘要不符" in changed.stdout
    unknown = run("audit", "evidence", "0" * 32, env=env)
    assert unknown.returncode != 0 and "没有调用编号" in unknown.stdout + unknown.stderr
    with pytest.raises(NotFound), Session(engine) as session:
        evidence.find(session, "f" * 32)
