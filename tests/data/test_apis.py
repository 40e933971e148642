"""Department APIs through the exchange: registered from an OpenAPI document as a catalog
resource whose fields are its operations, asked for per operation through the sharing flow, and
called through Qilu with the grant checked, the consumer named and signed, the API's rate and
timeout kept, and the call's evidence and log entry written whatever the answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu import seals
from qilu.audit.models import AuditEvent
from qilu.data import apis, evidence, monitoring, sharing
from qilu.data.models import CallEvidence
from qilu.errors import QiluError
from qilu.identity.roles import OPERATOR
from qilu.identity.signing_keys import sm2_public_key
from qilu.pii import Vault

from ..factories import make_person, make_service_client, make_staff
from ..identity.test_pages import register
from ..operations.test_system import sample, scrape

CONSUMER = "370102-approval"
STEWARD_ID = "370102199003073516"
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "户籍证明", "version": "1"},
    "paths": {
        "/households/{number}": {"get": {"operationId": "getHousehold", "summary": "查询户籍"}},
        "/certificates": {"post": {"operationId": "issue_certificate", "summary": "开具证明"}},
    },
}


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "code": "JK-GA-001",
        "name": "户籍证明接口",
        "provider": "370000-public_security",
        "topic": "人口",
        "sharing": "conditional",
        "sharing_conditions": "办理户籍相关事项",
        "legal_basis": "《政务数据共享条例》",
        "base_url": "http://police.example/api/",
        "timeout_ms": 500,
        "rate_per_second": 100,
        "openapi": OPENAPI,
        **changes,
    }


class Upstream:
    """The department's system: answers as told and keeps what reached it."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []
        self.fail: Exception | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail is not None:
            raise self.fail
        self.seen.append(request)
        return httpx.Response(200, json={"household": request.url.path.rsplit("/", 1)[-1]})


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def registered(session: Session, departments: None) -> apis.DataApi:
    return apis.register_api(session, spec(), actor=OPERATOR)


def grant(session: Session, operations: list[str]) -> None:
    asked = sharing.request_access(
        session,
        "JK-GA-001",
        consumer=CONSUMER,
        fields=operations,
        purpose="办理户籍类事项时核验户籍",
        legal_basis="《政务数据共享条例》",
        valid_until=datetime.now(UTC) + timedelta(days=30),
        actor=OPERATOR,
    )
    sharing.decide(session, asked.id, approve=True, reason="同意", actor=OPERATOR)


def token(client: Any, session: Session) -> dict[str, str]:
    registered = make_service_client(session, CONSUMER)
    answer = client.post(
        "/oidc/token",
        data={"grant_type": "client_credentials", "scope": "data.read"},
        auth=(registered.client.client_id, registered.secret),
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}", "X-Operator": "E1024"}


@pytest.fixture
def api_client(client: Any, upstream: Upstream) -> Any:
    client.app.state.api_client = httpx.Client(transport=httpx.MockTransport(upstream))
    return client


def test_an_api_registers_as_a_catalog_resource_whose_fields_are_its_operations(
    session: Session, registered: apis.DataApi
) -> None:
    assert registered.resource.share_mode == "api"
    assert registered.base_url == "http://police.example/api"
    assert [(o.name, o.method, o.path) for o in apis.operations(registered)] == [
        ("get_household", "GET", "/households/{number}"),
        ("issue_certificate", "POST", "/certificates"),
    ]
    with pytest.raises(QiluError) as refused:
        apis.register_api(session, spec(code="JK-GA-002", base_url="ftp://x"), actor=OPERATOR)
    assert refused.value.field == "base_url"
    nameless = {**OPENAPI, "paths": {"/x": {"get": {"summary": "无名"}}}}
    with pytest.raises(QiluError) as refused:
        apis.register_api(session, spec(code="JK-GA-003", openapi=nameless), actor=OPERATOR)
    assert refused.value.code == "api.operation_id"
    with pytest.raises(QiluError) as refused:
        apis.register_api(session, spec(code="JK-GA-004", timeout_ms=10), actor=OPERATOR)
    assert refused.value.code == "api.invalid" and refused.value.field == "timeout_ms"


def test_a_granted_operation_is_forwarded_with_the_consumer_named_and_signed(
    session: Session, registered: apis.DataApi, api_client: Any, upstream: Upstream
) -> None:
    grant(session, ["get_household"])
    headers = token(api_client, session)
    answer = api_client.get("/api/v1/apis/JK-GA-001/call/households/3701?full=1", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"household": "3701"}
    (sent,) = upstream.seen
    assert str(sent.url) == "http://police.example/api/households/3701?full=1"
    assert sent.headers["Qilu-Consumer"] == CONSUMER and sent.headers["Qilu-Operator"] == "E1024"
    asked = evidence.request_digest("GET", "/households/3701?full=1", b"")
    statement = (
        f"{sent.headers['Qilu-Call-Id']}\n{CONSUMER}\n{sent.headers['Qilu-Client']}\n"
        f"GET /households/3701?full=1\n{asked.hex()}"
    ).encode()
    public = sm2_public_key(session, sent.headers["Qilu-Key-Id"])
    assert public is not None
    signature = bytes.fromhex(sent.headers["Qilu-Signature"])
    assert seals.verify(seals.SM2, public, signature, statement)
    kept = evidence.find(session, answer.headers["Qilu-Call-Id"])
    assert kept.call_id == sent.headers["Qilu-Call-Id"] and kept.duration_ms is not None
    assert evidence.check(session, kept.call_id, answer.content).holds
    (logged,) = session.scalars(select(AuditEvent).where(AuditEvent.action == apis.CALLED))
    assert logged.details["operation"] == "get_household" and logged.details["status"] == 200


def test_calls_outside_the_grant_are_refused_with_a_code_and_never_forwarded(
    session: Session, registered: apis.DataApi, api_client: Any, upstream: Upstream
) -> None:
    headers = token(api_client, session)
    none = api_client.get("/api/v1/apis/JK-GA-001/call/households/1", headers=headers)
    assert none.status_code == 403 and none.json()["error"]["code"] == "sharing.no_grant"
    grant(session, ["get_household"])
    other = api_client.post("/api/v1/apis/JK-GA-001/call/certificates", headers=headers)
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "api.operation_not_granted"
    unknown = api_client.get("/api/v1/apis/JK-GA-001/call/nowhere", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "api.operation"
    assert upstream.seen == []
    detail = api_client.get("/api/v1/apis/JK-GA-001", headers=headers).json()
    assert {o["name"]: o["allowed"] for o in detail["operations"]} == {
        "get_household": True,
        "issue_certificate": False,
    }
    document = api_client.get("/api/v1/apis/JK-GA-001/openapi", headers=headers)
    assert document.json() == json.loads(json.dumps(OPENAPI))


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (httpx.ReadTimeout("slow"), 504, "api.timeout"),
        (httpx.ConnectError("refused"), 502, "api.unreachable"),
    ],
)
def test_a_silent_or_absent_system_is_answered_with_a_code_and_kept_in_the_evidence(
    session: Session,
    registered: apis.DataApi,
    api_client: Any,
    upstream: Upstream,
    failure: Exception,
    status: int,
    code: str,
) -> None:
    grant(session, ["get_household"])
    upstream.fail = failure
    answer = api_client.get(
        "/api/v1/apis/JK-GA-001/call/households/1", headers=token(api_client, session)
    )
    assert answer.status_code == status and answer.json()["error"]["code"] == code
    (kept,) = session.scalars(select(CallEvidence)).all()
    assert kept.status == status
    (logged,) = session.scalars(select(AuditEvent).where(AuditEvent.action == apis.FAILED))
    assert logged.details["status"] == status


def test_the_api_rate_is_kept_for_all_consumers_together(
    session: Session, departments: None, api_client: Any, upstream: Upstream
) -> None:
    apis.register_api(session, spec(rate_per_second=1), actor=OPERATOR)
    grant(session, ["get_household"])
    headers = token(api_client, session)
    first = api_client.get("/api/v1/apis/JK-GA-001/call/households/1", headers=headers)
    second = api_client.get("/api/v1/apis/JK-GA-001/call/households/2", headers=headers)
    assert first.status_code == 200 and second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limited" and len(upstream.seen) == 1


def test_the_calls_are_counted_per_consumer_and_resource_for_the_workbench_and_metrics(
    app: FastAPI, session: Session, vault: Vault, registered: apis.DataApi, api_client: Any,
    upstream: Upstream,
) -> None:  # fmt: skip
    grant(session, ["get_household"])
    headers = token(api_client, session)
    for number in ("1", "2"):
        api_client.get(f"/api/v1/apis/JK-GA-001/call/households/{number}", headers=headers)
    upstream.fail = httpx.ConnectError("refused")
    api_client.get("/api/v1/apis/JK-GA-001/call/households/3", headers=headers)
    (row,) = monitoring.usage(session, None)
    assert (row.consumer_code, row.resource_code) == (CONSUMER, "JK-GA-001")
    assert (row.calls, row.failures) == (3, 1) and row.provider == "山东省公安厅"
    assert row.p50_ms is not None and row.p95_ms is not None and row.p95_ms >= row.p50_ms
    text = scrape(app, api_client)
    assert sample(text, "qilu_exchange_calls_24h", consumer=CONSUMER, resource="JK-GA-001") == 3
    assert sample(text, "qilu_exchange_failures_24h", resource="JK-GA-001") == 1
    steward = make_person(session, vault, name="李强", id_number=STEWARD_ID)
    make_staff(session, steward, "370000-public_security", "data_steward")
    session.commit()
    with TestClient(app) as other:
        register(other, name="李强", id_number=STEWARD_ID)
        page = other.get("/workbench/exchange")
    assert page.status_code == 200
    assert f'data-usage="{CONSUMER}:JK-GA-001"' in page.text and "户籍证明接口" in page.text
