"""Files as shared resources: the provider's system puts files (a name again is a new version);
a department with a grant lists and downloads the newest, whole or from a byte on, checked by
SHA-256; anyone else is refused; every put and download is logged."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data import evidence, sharing
from qilu.data.catalog import install_standard_catalog, parse_spec, register_resource
from qilu.identity.roles import OPERATOR

from ..factories import service_token

MAP = {
    "code": "YW-DT-001",
    "name": "山东省标准地图",
    "provider": "370000-bigdata",
    "library": "business",
    "topic": "自然资源",
    "sharing": "unconditional",
    "share_mode": "file",
    "update_cycle": "yearly",
    "legal_basis": "《地图管理条例》",
    "fields": [{"name": "file", "label": "文件", "type": "string"}],
}


def test_a_provider_puts_files_and_a_granted_department_fetches_the_newest_in_ranges(
    client: TestClient, session: Session, departments: None
) -> None:
    install_standard_catalog(session)
    register_resource(session, parse_spec(MAP), actor=OPERATOR)
    provider = service_token(client, session, "370000-bigdata", "data.push")
    first = client.put(
        "/api/v1/data/YW-DT-001/files/标准地图.pdf",
        content=b"%PDF-1" + b"a" * 500,
        headers=provider,
    )
    assert first.status_code == 201, first.text
    newer = b"%PDF-2" + bytes(range(256)) * 20
    second = client.put(
        "/api/v1/data/YW-DT-001/files/标准地图.pdf", content=newer, headers=provider
    )
    assert second.json()["version"] == 2

    reader = service_token(client, session, "370102-approval", "data.read")
    refused = client.get("/api/v1/data/YW-DT-001/files", headers=reader)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "sharing.no_grant"
    sharing.request_access(
        session, "YW-DT-001", consumer="370102-approval", fields=["file"],
        purpose="行政审批中使用标准地图", legal_basis="《地图管理条例》",
        valid_until=datetime.now(UTC) + timedelta(days=30), actor=OPERATOR,
    )  # fmt: skip
    listed = client.get("/api/v1/data/YW-DT-001/files", headers=reader).json()["files"]
    assert [(f["name"], f["version"], f["size"]) for f in listed] == [
        ("标准地图.pdf", 2, len(newer))
    ]
    whole = client.get("/api/v1/data/YW-DT-001/files/标准地图.pdf", headers=reader)
    assert whole.status_code == 200 and whole.content == newer
    assert hashlib.sha256(whole.content).hexdigest() == listed[0]["sha256"]
    rest = client.get(
        "/api/v1/data/YW-DT-001/files/标准地图.pdf", headers={**reader, "Range": "bytes=1000-"}
    )
    assert rest.status_code == 206 and newer[:1000] + rest.content == newer
    kept = evidence.check(session, rest.headers["qilu-call-id"], newer)  # the whole file's SM3
    assert kept.holds and "Range: bytes=1000-" in kept.evidence.endpoint
    actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions.count("data.file_put") == 2 and actions.count("data.read") == 2

    missing = client.get("/api/v1/data/YW-DT-001/files/没有.pdf", headers=reader)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "files.not_found"
    stranger = service_token(client, session, "370102-approval", "data.push")
    not_theirs = client.put("/api/v1/data/YW-DT-001/files/x.pdf", content=b"x", headers=stranger)
    assert not_theirs.status_code == 403
    bad = client.put("/api/v1/data/YW-DT-001/files/.hidden", content=b"x", headers=provider)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "name"
    table = client.put("/api/v1/data/JC-FR-001/files/a.csv", content=b"x", headers=provider)
    assert table.json()["error"]["code"] == "files.not_file_resource"
