"""The data API over HTTP: a department system's own token (client credentials), look-ups and
listings with machine-readable errors, pushes that are all or nothing, quality, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data import sharing
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.data.models import DataRecord
from qilu.identity.oidc_clients import disable_client
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault

from ..factories import make_service_client

NOW = datetime.now(UTC)
WANG, LI = "11010519491231002X", "370102199003073516"
CONSUMER = "370102-approval"


@pytest.fixture
def catalog(session: Session, vault: Vault, departments: None) -> None:
    install_standard_catalog(session)
    people = [
        {"id_number": WANG, "name": "王芳", "sex": "2", "birth_date": "1949-12-31",
         "household_division": "370102", "phone": "13800138000"},
    ]  # fmt: skip
    load_rows(session, vault, "JC-RK-001", enumerate(people, 1), source="t", actor=OPERATOR)
    asked = sharing.request_access(
        session, "JC-RK-001", consumer=CONSUMER, fields=["id_number", "name", "phone"],
        clear_fields=["name"], purpose="核验办事人身份信息", legal_basis="依据", may_list=True,
        valid_until=NOW + timedelta(days=30), actor=OPERATOR, now=NOW - timedelta(minutes=1),
    )  # fmt: skip
    sharing.decide(session, asked.id, approve=True, reason="同意", actor=OPERATOR)


def token_for(client: TestClient, client_id: str, secret: str, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    answer = client.post("/oidc/token", data=data, auth=(client_id, secret))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "refresh_token" not in body and body["token_type"].lower() == "bearer"
    return str(body["access_token"])


def system(client: TestClient, session: Session, department: str = CONSUMER, **kw: Any) -> str:
    new = make_service_client(session, department, **kw)
    assert new.secret is not None
    return token_for(client, new.client.client_id, new.secret)


def lookup(client: TestClient, token: str, key: str = WANG, **body: Any) -> Any:
    return client.post(
        "/api/v1/data/JC-RK-001/lookup",
        json={"key": key, **body},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_system_reads_with_its_own_token_only_what_its_grant_allows(
    client: TestClient, session: Session, catalog: None
) -> None:
    answer = client.post(
        "/api/v1/data/JC-RK-001/lookup",
        json={"key": WANG},
        headers={"Authorization": f"Bearer {system(client, session)}", "X-Operator": "LX0042"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["records"][0]["data"] == {
        "id_number": "110105********002X",
        "name": "王芳",
        "phone": "138****8000",
    }
    assert body["records"][0]["masked"] == ["id_number", "phone"]
    assert body["grant"]["purpose"] == "核验办事人身份信息"
    read = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.read")).one()
    assert read.details["operator"] == "LX0042" and read.details["department"] == CONSUMER


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"key": LI}, 404, "sharing.record_not_found"),
        ({"key": "370102199003073510"}, 400, "sharing.key"),
        ({"fields": ["sex"]}, 403, "sharing.field_not_granted"),
    ],
)
def test_errors_are_machine_readable(
    client: TestClient, session: Session, catalog: None, body: Any, status: int, code: str
) -> None:
    answer = lookup(client, system(client, session), **body)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


def test_a_department_without_a_grant_and_a_bad_token_are_refused(
    client: TestClient, session: Session, catalog: None
) -> None:
    refused = lookup(client, system(client, session, "370103-approval"))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "sharing.no_grant"
    bad = lookup(client, "not-a-token")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "token.invalid"
    assert "invalid_token" in bad.headers["WWW-Authenticate"]


def test_a_token_without_the_scope_or_of_a_disabled_system_does_not_serve(
    client: TestClient, session: Session, catalog: None
) -> None:
    new = make_service_client(session, CONSUMER)
    assert new.secret is not None
    push_only = token_for(client, new.client.client_id, new.secret, scope="data.push")
    narrow = lookup(client, push_only)
    assert narrow.status_code == 403 and narrow.json()["error"]["code"] == "token.scope"
    token = token_for(client, new.client.client_id, new.secret)
    disable_client(session, new.client.client_id, actor=OPERATOR)
    assert lookup(client, token).status_code == 401


def test_a_system_client_may_not_sign_people_in_nor_a_person_read_data(
    client: TestClient, session: Session, catalog: None
) -> None:
    new = make_service_client(session, CONSUMER)
    answer = client.post(
        "/oidc/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://a"},
        auth=(new.client.client_id, new.secret or ""),
    )
    assert answer.json()["error"] == "unauthorized_client"
    wrong = client.post(
        "/oidc/token",
        data={"grant_type": "client_credentials"},
        auth=(new.client.client_id, "wrong-secret"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_a_system_over_its_rate_is_told_when_to_come_back(
    client: TestClient, session: Session, catalog: None
) -> None:
    token = system(client, session, rate_per_second=2)
    answers = [lookup(client, token) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert answers[2].status_code == 429
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert int(answers[2].headers["Retry-After"]) >= 1


def records_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DataRecord)) or 0


def push(client: TestClient, token: str, records: list[dict[str, Any]]) -> Any:
    return client.post(
        "/api/v1/data/JC-RK-001/records",
        json={"records": records},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_the_provider_pushes_records_all_or_nothing(
    client: TestClient, session: Session, catalog: None
) -> None:
    token = system(client, session, "370000-public_security")
    good = {"id_number": LI, "name": "李强", "sex": "1", "birth_date": "1990-03-07",
            "household_division": "370102"}  # fmt: skip
    bad = {**good, "id_number": "370102198001010015", "sex": "9"}
    before = records_count(session)
    refused = push(client, token, [good, bad])
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "data.rows_rejected" and error["field"] == "records.2.sex"
    assert error["details"]["problems"][0]["row"] == 2
    assert records_count(session) == before  # the good row was not written either
    accepted = push(client, token, [good])
    assert accepted.status_code == 200 and accepted.json()["inserted"] == 1
    assert records_count(session) == before + 1
    outsider = push(client, system(client, session), [good])
    assert outsider.status_code == 403
    assert outsider.json()["error"]["code"] == "data.not_provider"


def test_a_listing_and_the_quality_figures_over_http(
    client: TestClient, session: Session, catalog: None
) -> None:
    token = system(client, session)
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/data/JC-RK-001/records?limit=5", headers=headers)
    assert listed.status_code == 200 and len(listed.json()["records"]) == 1
    sealed = client.get("/api/v1/data/JC-RK-001/records?name=王芳", headers=headers)
    assert sealed.json()["error"]["code"] == "sharing.filter_field"
    figures = client.get("/api/v1/data/JC-RK-001/quality", headers=headers).json()
    assert figures["records"] == 1 and figures["validity"] == 1.0
    assert figures["completeness"]["name"] == 1.0 and figures["overdue"] is False


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"name": {"first": "强"}}, "name", "须为单个值"),  # was stored as its Python repr
        ({"sex": True}, "sex", "不是"),
        ({"nickname": "强子"}, "nickname", "没有字段"),  # was silently dropped
    ],
)
def test_a_push_refuses_malformed_values_by_field(
    client: TestClient,
    session: Session,
    catalog: None,
    change: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    token = system(client, session, "370000-public_security")
    good = {"id_number": LI, "name": "李强", "sex": "1", "birth_date": "1990-03-07",
            "household_division": "370102"}  # fmt: skip
    refused = push(client, token, [{**good, **change}])
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["field"] == f"records.1.{field}" and reason in error["message"]
